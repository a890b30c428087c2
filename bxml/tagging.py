"""Rewriting the tag values of a built document: the ``<Tag>`` verb's text and every verb's
``tag`` attribute, in document order.

The callbacks framework uses it to keep its own routing state in every tag a reply sets,
whatever the handler wrote there.
"""

from __future__ import annotations

from collections.abc import Callable

from bxml.errors import BxmlError
from bxml.values import Invalid
from bxml.verb import Root, Verb
from bxml.verbs import TAG_ATTRIBUTE, Conference, PhoneNumber, SipUri, Tag, Transfer

# The targets of a <Transfer> start calls of their own (B-legs); their tag attribute is
# the only tag those calls' callbacks can carry.
_LEGS = frozenset({PhoneNumber.name, SipUri.name})


def rewrite_tags(document: Root, transform: Callable[[str | None, str], str]) -> None:
    """Replace each tag value in ``document`` with ``transform(value, verb_name)``, in place.

    ``value`` is the ``<Tag>`` text or the ``tag`` attribute as written (``""`` clears), or
    None for a Transfer target or a Conference without a ``tag`` attribute, which gets one.  A value the
    tag's kind refuses raises ``BxmlError`` naming the verb.
    """
    # The elements hold every value (see node.py), so one pass of lxml's own iteration
    # over them, in document order, sees and changes what the verbs render.
    for element in document._element.iter(Tag.name, *_LEGS, *_TAGGED):
        name = element.tag
        if name == Tag.name:
            element.text = _checked(name, transform(element.text or "", name))
        elif "tag" in element.attrib:
            element.set("tag", _checked(name, transform(str(element.get("tag")), name)))
        elif name == Conference.name or (
            name in _LEGS and element.getparent().tag == Transfer.name  # type: ignore[union-attr]
        ):
            element.set("tag", _checked(name, transform(None, name)))


def holds_tags(document: Root) -> bool:
    """Whether ``rewrite_tags`` would look at anything in ``document`` (a ``<Tag>``, a verb
    with a ``tag`` attribute, a Transfer target or a Conference)."""
    return next(document._element.iter(Tag.name, *_LEGS, *_TAGGED), None) is not None


# Every verb with a ``tag`` attribute.
_TAGGED = tuple(
    sorted(
        name
        for name, cls in Verb.registry.items()
        if any(row[0] == "tag" for row in cls.attributes) and name not in _LEGS
    )
)


def _checked(verb_name: str, value: str) -> str:
    try:
        return TAG_ATTRIBUTE[1].check(value)
    except (Invalid, ValueError) as error:
        raise BxmlError(f"{verb_name}: tag {error}") from None
