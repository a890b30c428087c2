"""Rules Bandwidth states only in prose, shared by the Voice API schemas (``calls/``) and
BXML (``bxml/``), so each is written once.

* User-To-User values (RFC 7433): a comma-separated list of ``<data>[;param=value...]``
  ``;encoding=<name>``, each data in its encoding's alphabet.  Create Call allows jwt,
  base64 and hex; BXML (SipUri, Forward) documents only jwt and base64.
* Credentials travel only over TLS: a URL given with a username/password must be https (or
  wss), except on loopback hosts, which local development and the sandbox serve over http.

Framework-free: the callers word the errors.
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

UUI_DATA = {
    "hex": re.compile(r"(?:[0-9A-Fa-f]{2})+"),
    "base64": re.compile(r"[A-Za-z0-9+/]+={0,2}"),
    "jwt": re.compile(r"[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*\.[A-Za-z0-9_\-]*"),
}
# The same alphabets with possessive quantifiers, for the one-match test of a whole list.
_UUI_DATA_FAST = {
    "hex": r"(?:[0-9A-Fa-f]{2})++",
    "base64": r"[A-Za-z0-9+/]++={0,2}",
    "jwt": r"[A-Za-z0-9_\-]++\.[A-Za-z0-9_\-]*+\.[A-Za-z0-9_\-]*+",
}
_UUI_PARAMS = r"(?:;(?!encoding=)[A-Za-z][A-Za-z0-9\-]*+=[^;,\s\"]++)*+"


class UuiRule:
    """The uui list format with a given set of encodings.

    ``whole`` checks a whole list in one match; ``item`` and ``problem`` only explain a
    failure.
    """

    def __init__(self, *encodings: str) -> None:
        self.encodings = encodings
        value = "|".join(
            f"{_UUI_DATA_FAST[name]}{_UUI_PARAMS};encoding={name}" for name in encodings
        )
        self.whole = re.compile(f"(?:{value})(?:,(?:{value}))*+")
        self.item = re.compile(
            r"(?P<data>[^;,\s\"]+)(?:;[A-Za-z][A-Za-z0-9\-]*=[^;,\s\"]+)*"
            f";encoding=(?P<enc>{'|'.join(encodings)})"
        )

    def problem(self, text: str) -> tuple[int, str | None]:
        """(1-based index, encoding or None) of the first bad value of a list ``whole``
        refused: None when the value lacks ``;encoding=`` with an allowed name, else the
        encoding its data does not match."""
        for index, item in enumerate(text.split(","), start=1):
            match = self.item.fullmatch(item)
            if match is None or "encoding=" in match[0][: -len(match["enc"]) - 10]:
                return index, None
            if UUI_DATA[match["enc"]].fullmatch(match["data"]) is None:
                return index, match["enc"]
        return 1, None


CREATE_CALL_UUI = UuiRule("jwt", "base64", "hex")
BXML_UUI = UuiRule("jwt", "base64")


def is_loopback(url: str) -> bool:
    """True for URLs whose host is localhost, 127.0.0.0/8 or ::1."""
    try:
        host = urlsplit(url).hostname
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return False
    if host is None:
        return False
    if host in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def exposes_credentials(url: str) -> bool:
    """True if credentials sent to ``url`` would cross the network unencrypted: an http://
    or ws:// URL to a host other than loopback.  Relative URLs take the scheme of the URL
    that served the document, unknown here, and are not judged."""
    scheme = url[:5].lower()
    if not (scheme == "http:" or scheme.startswith("ws:")):
        return False
    return not is_loopback(url)
