"""BXML as the operator reads it: indented, signed tags shown as the state they carry,
coloured on the server, and compared line by line.

Colouring is Pygments' XML lexer with its HTML formatter in ``nowrap`` mode: every piece of
the document comes out escaped, inside ``<span class="...">`` elements whose colours live
in the stylesheet, so the page needs neither a script nor a style attribute (the CSP allows
neither).  A reply that is not well-formed XML is shown as it was, escaped, never "fixed".
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass

from lxml import etree
from markupsafe import Markup
from pygments import highlight as pygments_highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import XmlLexer

from bxml.errors import BxmlError
from bxml.safe_xml import parse_document

DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'

_LEXER = XmlLexer()
_FORMATTER = HtmlFormatter(nowrap=True)


def pretty(document: str | None, readable: Callable[[str], str] | None = None) -> str:
    """``document`` indented two spaces per level, each text and attribute value passed
    through ``readable`` (e.g. signed tags -> their state); unchanged when it does not parse."""
    if not document or not document.strip():
        return document or ""
    try:
        root = parse_document(document)
    except BxmlError:
        return readable(document) if readable else document
    if readable is not None:
        for element in root.iter():
            if element.text:
                element.text = readable(element.text)
            if element.tail:
                element.tail = readable(element.tail)
            for name, value in element.attrib.items():
                shown = readable(value)
                if shown != value:  # JSON's double quotes would come out as &quot;
                    element.set(name, shown.replace('"', "'"))
    etree.indent(root, space="  ")
    body = etree.tostring(root, encoding="unicode")
    declared = document.lstrip().startswith("<?xml")
    return f"{DECLARATION}\n{body}" if declared else body


def highlight(text: str) -> Markup:
    """Escaped, coloured XML (spans with Pygments' short token classes)."""
    if not text:
        return Markup("")
    return Markup(pygments_highlight(text, _LEXER, _FORMATTER).rstrip("\n"))  # noqa: S704  # Pygments escapes every token


@dataclass(frozen=True)
class DiffLine:
    kind: str  # "add", "remove", "context" or "hunk"
    text: str


def diff(before: str, after: str) -> list[DiffLine]:
    """A unified line diff (three lines of context) of two pretty-printed documents."""
    lines = list(difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm=""))
    out = []
    for line in lines[2:]:  # after the "---"/"+++" header
        if line.startswith("@@"):
            out.append(DiffLine("hunk", line))
        elif line.startswith("+"):
            out.append(DiffLine("add", line))
        elif line.startswith("-"):
            out.append(DiffLine("remove", line))
        else:
            out.append(DiffLine("context", line))
    return out
