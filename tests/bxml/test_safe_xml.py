"""The hardened parser, one layer at a time: each option holds even when the layer before
it (the DOCTYPE check, another option) is taken away, and the 64 KB limit is exact."""

from __future__ import annotations

import http.server
import threading

import pytest
from lxml import etree

import bxml
from bxml import safe_xml
from bxml.errors import BxmlError
from bxml.safe_xml import HARDENING, MAX_DOCUMENT_BYTES, parse_document, to_bytes


@pytest.fixture
def dtd_server():
    """An HTTP server on 127.0.0.1 that serves a DTD and records every request."""
    requests: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            body = b'<!ENTITY leak "FETCHED">'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.requests = requests
    server.url = f"http://127.0.0.1:{server.server_port}"
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def local_dtd(tmp_path):
    dtd = tmp_path / "local.dtd"
    dtd.write_text('<!ENTITY leak "FROM-FILE"><!ATTLIST r added CDATA "by-default">')
    return dtd


def _parse_past_the_doctype_check(document: str) -> etree._Element:
    """What a document reaches when the byte-level DOCTYPE check misses it (UTF-16)."""
    return safe_xml._parse(document.encode())


def test_no_external_dtd_is_read(local_dtd):
    root = _parse_past_the_doctype_check(f'<!DOCTYPE r SYSTEM "{local_dtd}"><r>&leak;</r>')
    assert root.getroottree().docinfo.externalDTD is None
    assert etree.tostring(root) == b"<r>&leak;</r>"


def test_a_utf16_doctype_is_refused_without_reading_its_dtd(local_dtd):
    # UTF-16 hides "<!DOCTYPE" from the byte search; the parser must still read nothing.
    local_dtd.write_text('<!ENTITY leak "FROM-FILE"> <!ELEMENT')  # malformed if read
    document = (
        f'<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE Response SYSTEM "{local_dtd}">'
        "<Response>&leak;</Response>"
    ).encode("utf-16")
    with pytest.raises(BxmlError, match=r"^DOCTYPE is not allowed \(no DTDs, no entities\)$"):
        parse_document(document)


def test_no_dtd_is_fetched_over_the_network(dtd_server):
    root = _parse_past_the_doctype_check(
        f'<!DOCTYPE r SYSTEM "{dtd_server.url}/r.dtd"><r>&leak;</r>'
    )
    assert root.getroottree().docinfo.externalDTD is None
    assert dtd_server.requests == []


def test_even_with_dtd_loading_on_the_network_stays_off(dtd_server):
    parser = etree.XMLParser(**{**HARDENING, "load_dtd": True})
    document = f'<!DOCTYPE r SYSTEM "{dtd_server.url}/r.dtd"><r>&leak;</r>'.encode()
    with pytest.raises(etree.XMLSyntaxError, match="network"):
        etree.fromstring(document, parser)
    assert dtd_server.requests == []


def test_even_with_a_dtd_loaded_entities_stay_unexpanded(local_dtd):
    parser = etree.XMLParser(**{**HARDENING, "load_dtd": True})
    document = f'<!DOCTYPE r SYSTEM "{local_dtd}"><r>&leak;</r>'.encode()
    root = etree.fromstring(document, parser)
    assert root.getroottree().docinfo.externalDTD is not None  # this layer was off
    assert etree.tostring(root) == b"<r>&leak;</r>"  # the next one held


def test_internal_entities_and_attribute_defaults_are_not_applied():
    root = _parse_past_the_doctype_check(
        '<!DOCTYPE r [<!ENTITY e "EXPANDED"><!ATTLIST r added CDATA "by-default">]><r>&e;</r>'
    )
    assert etree.tostring(root) == b"<r>&e;</r>"


def test_nesting_is_limited_by_libxml2():
    depth = 257  # libxml2 allows 256 levels without huge_tree
    with pytest.raises(BxmlError, match="Excessive depth"):
        parse_document("<a>" * depth + "</a>" * depth)
    root = parse_document("<a>" * 256 + "</a>" * 256)
    assert len(list(root.iter())) == 256


def test_processing_instructions_and_comments_are_layout():
    document = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<?xml-stylesheet href="x.xsl"?>'
        "<Response><?app step='1'?><!-- greet --><Hangup/><?x?></Response>"
    )
    assert bxml.parse(document) == bxml.Response(bxml.Hangup())


def _document_of(size: int) -> bytes:
    """A valid document of exactly ``size`` bytes (layout whitespace as the filler)."""
    head, tail = b"<Response>", b"<Hangup/></Response>"
    return head + b" " * (size - len(head) - len(tail)) + tail


def test_the_64_kb_limit_is_exact():
    assert MAX_DOCUMENT_BYTES == 65536
    largest = _document_of(MAX_DOCUMENT_BYTES)
    assert to_bytes(largest) is largest
    assert bxml.parse(largest) == bxml.Response(bxml.Hangup())
    for too_large in (_document_of(MAX_DOCUMENT_BYTES + 1), bytearray(_document_of(65537))):
        with pytest.raises(
            BxmlError, match=r"^document is 65537 bytes, over the 64 KB \(65536 bytes\) limit$"
        ):
            bxml.parse(too_large)


def test_the_limit_counts_utf8_bytes_not_characters():
    text = "é" * 32768  # 32,768 characters, 65,536 bytes
    assert len(to_bytes(text)) == MAX_DOCUMENT_BYTES
    with pytest.raises(BxmlError, match="document is 65538 bytes"):
        to_bytes(text + "é")


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ("<Response>\ud800</Response>", r"^document is not valid Unicode: surrogates not allowed$"),
        (42, r"^expected the document as str or bytes, got int$"),
        (b"<Response>", r"^not well-formed XML: .+"),
        (b"<Response>\xff</Response>", r"^not well-formed XML: .+"),
        (b"\n\n<!DOCTYPE Response><Response/>", r"^DOCTYPE is not allowed"),
    ],
)
def test_input_problems_are_bxml_errors(data, match):
    with pytest.raises(BxmlError, match=match):
        parse_document(data)


@pytest.mark.parametrize(
    ("document", "line"),
    [
        (b"<!DOCTYPE r []>\n<r/>\n", 1),
        (b"\n<!DOCTYPE r []>\n<r/>", 2),
        # The first DOCTYPE counts; the lines after it do not.
        (b"<?xml version='1.0'?>\n\n<!DOCTYPE r []>\n<r>\n<!-- <!DOCTYPE -->\n</r>\n", 3),
    ],
)
def test_a_doctype_error_names_its_line(document, line):
    with pytest.raises(BxmlError, match="DOCTYPE is not allowed") as caught:
        parse_document(document)
    assert caught.value.line == line


def test_a_syntax_error_names_its_line():
    with pytest.raises(BxmlError, match=r"^not well-formed XML: ") as caught:
        parse_document(b"<Response>\n\n<Hangup>\n</Response>")
    assert caught.value.line == 4  # where libxml2 finds the mismatched end tag


def test_any_other_lxml_error_is_a_bxml_error(monkeypatch):
    def refuse(*args):
        raise etree.LxmlError("parser broke")

    monkeypatch.setattr(safe_xml.etree, "fromstring", refuse)
    with pytest.raises(BxmlError, match=r"^cannot parse: parser broke$") as caught:
        parse_document(b"<Response/>")
    assert caught.value.line is None
    with pytest.raises(BxmlError, match=r"^SpeakSentence: cannot parse: parser broke$"):
        safe_xml.parse_fragment("SpeakSentence", "hi")


def test_a_memoryview_is_read_like_bytes():
    assert parse_document(memoryview(b"<Response/>")).tag == "Response"


def test_only_utf8_is_accepted():
    with pytest.raises(BxmlError, match=r"^document must be UTF-8, got ISO-8859-1$"):
        parse_document(b'<?xml version="1.0" encoding="ISO-8859-1"?><Response/>')
    for declared in ("UTF-8", "utf-8", "UTF8"):
        document = f'<?xml version="1.0" encoding="{declared}"?><Response/>'.encode()
        assert parse_document(document).tag == "Response"


def test_fragment_errors_name_their_owner():
    with pytest.raises(BxmlError, match=r"^SpeakSentence: not well-formed XML: "):
        safe_xml.parse_fragment("SpeakSentence", "<emphasis>")
    root = safe_xml.parse_fragment("SpeakSentence", 'Hi <break time="1s"/>')
    assert root.tag == "SpeakSentence" and root[0].tag == "break"
