"""``parse``: a BXML document back into the verb tree that renders it."""

from __future__ import annotations

from bxml.errors import BxmlError
from bxml.node import line_of
from bxml.safe_xml import parse_document
from bxml.values import show
from bxml.verb import Root
from bxml.verbs import Bxml, Response

ROOTS: dict[str, type[Root]] = {"Response": Response, "Bxml": Bxml}


def parse(document: str | bytes) -> Root:
    """Parse a ``<Response>`` or ``<Bxml>`` document, checked exactly as the builder checks.

    ``parse(doc.to_bxml()) == doc``.  Any problem with the input (not XML, too large, a
    DOCTYPE, an unknown verb or attribute, a value out of range, wrong nesting) raises
    ``BxmlError``, never another exception.
    """
    element = parse_document(document)
    tag = element.tag
    root_class = ROOTS.get(tag) if isinstance(tag, str) else None
    if root_class is None:
        raise BxmlError(
            f"the root element must be Response or Bxml, got {show(tag)}", line_of(element)
        )
    root = root_class._from_element(element)
    assert isinstance(root, Root)
    return root
