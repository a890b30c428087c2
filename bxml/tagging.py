"""Rewriting the tag values of a built document: the ``<Tag>`` verb's text and every verb's
``tag`` attribute, in document order.

The callbacks framework uses it to keep its own routing state in every tag a reply sets,
whatever the handler wrote there.
"""

from __future__ import annotations

from collections.abc import Callable

from bxml.values import Invalid
from bxml.verb import Root, Verb
from bxml.verbs import TAG_ATTRIBUTE, PhoneNumber, SipUri, Tag, Transfer

# The targets of a <Transfer> start calls of their own (B-legs); their tag attribute is
# the only tag those calls' callbacks can carry.
_LEGS = (PhoneNumber, SipUri)


def rewrite_tags(document: Root, transform: Callable[[str | None], str]) -> None:
    """Replace each tag value in ``document`` with ``transform(value)``, in place.

    ``value`` is the ``<Tag>`` text or the ``tag`` attribute as written (``""`` clears), or
    None for a Transfer target without a ``tag`` attribute, which gets one.  A value the
    tag's kind refuses raises ``BxmlError`` naming the verb.
    """
    for parent, verb in _walk(document):
        element = verb._element
        if isinstance(verb, Tag):
            element.text = _checked(verb, transform(element.text or ""))
        elif "tag" in element.attrib:
            element.set("tag", _checked(verb, transform(str(element.get("tag")))))
        elif isinstance(verb, _LEGS) and isinstance(parent, Transfer):
            element.set("tag", _checked(verb, transform(None)))


def _checked(verb: Verb, value: str) -> str:
    try:
        return TAG_ATTRIBUTE[1].check(value)
    except (Invalid, ValueError) as error:
        raise verb.error(f"tag {error}") from None


def _walk(document: Root) -> list[tuple[Verb, Verb]]:
    """(parent, verb) for every verb below ``document``, in document order."""
    found: list[tuple[Verb, Verb]] = []
    stack: list[tuple[Verb, Verb]] = [(document, child) for child in reversed(document.children)]
    while stack:
        parent, verb = stack.pop()
        found.append((parent, verb))
        stack.extend((verb, child) for child in reversed(verb.children))
    return found
