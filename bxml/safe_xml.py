"""The one hardened XML parser, and the checks every parsed input goes through.

No DTD is loaded, no entity is resolved, nothing is fetched from the network, and a
document with a DOCTYPE is refused outright (so XXE and "billion laughs" never get as far
as entity handling).  Inputs are limited to 64 KB, must be UTF-8, and every lxml or
Unicode error comes out as a ``BxmlError``.
"""

from __future__ import annotations

from lxml import etree

from bxml.errors import BxmlError

MAX_DOCUMENT_BYTES = 65536  # Bandwidth's limit for one BXML document (64 KB)

# Each option is a layer of its own: the tests build parsers with one layer turned off and
# check that the next still holds (no network even if a DTD were loaded, and so on).
HARDENING: dict[str, bool] = {
    "resolve_entities": False,
    "no_network": True,
    "load_dtd": False,
    "dtd_validation": False,
    "attribute_defaults": False,
    "huge_tree": False,  # keeps libxml2's limits: 256 levels of nesting, 10 MB text nodes
    # True (lxml's default): False makes libxml2 load the external DTD a DOCTYPE names,
    # even with load_dtd off, which a UTF-16 document could use past the DOCTYPE check.
    "collect_ids": True,
    "remove_comments": True,  # comments are layout, like whitespace between verbs
    "remove_pis": True,
}
PARSER = etree.XMLParser(**HARDENING)  # type: ignore[arg-type]  # the stubs type each keyword


def to_bytes(data: object) -> bytes:
    """The input as UTF-8 bytes, at most 64 KB."""
    if isinstance(data, str):
        try:
            data = data.encode("utf-8")
        except UnicodeEncodeError as error:
            raise BxmlError(f"document is not valid Unicode: {error.reason}") from None
    elif isinstance(data, bytearray | memoryview):
        data = bytes(data)
    if not isinstance(data, bytes):
        raise BxmlError(f"expected the document as str or bytes, got {type(data).__name__}")
    if len(data) > MAX_DOCUMENT_BYTES:
        raise BxmlError(
            f"document is {len(data)} bytes, over the 64 KB ({MAX_DOCUMENT_BYTES} bytes) limit"
        )
    return data


def parse_document(data: object) -> etree._Element:
    """Parse a whole document with the hardened parser; return its root element."""
    raw = to_bytes(data)
    doctype_at = raw.find(b"<!DOCTYPE")
    if doctype_at >= 0:  # refused before parsing: the DTD is never even read
        line = raw.count(b"\n", 0, doctype_at) + 1
        raise BxmlError("DOCTYPE is not allowed (no DTDs, no entities)", line)
    root = _parse(raw)
    info = root.getroottree().docinfo
    # e.g. UTF-16 input.  libxml2 keeps every DOCTYPE as an internal subset, even one that
    # only names an external DTD.
    if info.internalDTD is not None or info.externalDTD is not None:
        raise BxmlError("DOCTYPE is not allowed (no DTDs, no entities)")
    encoding = info.encoding.upper()  # lxml reports UTF-8 when nothing is declared
    if encoding not in ("UTF-8", "UTF8"):
        raise BxmlError(f"document must be UTF-8, got {encoding}")
    return root


def parse_fragment(owner: str, markup: str) -> etree._Element:
    """Parse markup as the content of an ``<owner>`` element (SSML for SpeakSentence)."""
    raw = to_bytes(markup)  # a DOCTYPE cannot appear inside an element: libxml2 refuses it
    tag = owner.encode("ascii")
    return _parse(b"<" + tag + b">" + raw + b"</" + tag + b">", owner)


def _parse(raw: bytes, owner: str = "") -> etree._Element:
    prefix = f"{owner}: " if owner else ""
    try:
        return etree.fromstring(raw, PARSER)
    except etree.XMLSyntaxError as error:
        raise BxmlError(f"{prefix}not well-formed XML: {error.msg}", error.lineno) from None
    except (etree.LxmlError, ValueError) as error:  # includes UnicodeDecodeError
        raise BxmlError(f"{prefix}cannot parse: {error}") from None
