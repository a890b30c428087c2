"""Verbs and roots: text, nesting, appending, reading parsed elements, rendering.

A verb class declares (see ``verbs.py``): ``name``; ``text_kind`` if it holds text (the
first positional argument), ``text_optional`` and ``text_trimmed``; its ``attributes``
table and ``required`` attributes; ``child_names`` with ``min_children``/``max_children``; and
``nested_only`` for verbs that live only inside another verb (PhoneNumber, SipUri,
StreamParam, CustomParam).  Everything else is here.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Iterator
from copy import deepcopy
from typing import TYPE_CHECKING, ClassVar, TypeVar, cast

from lxml import etree

from bxml.errors import BxmlError
from bxml.node import Node, bad_character, line_of
from bxml.safe_xml import MAX_DOCUMENT_BYTES
from bxml.values import Invalid, Kind, Url, show
from voice_rules import exposes_credentials

XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'
_XML_SPACE = " \t\n\r"


class Verb(Node):
    """Base of every BXML verb; see the package docstring for the public surface."""

    registry: ClassVar[dict[str, type[Verb]]] = {}  # tag -> class, for the parser
    text_kind: ClassVar[Kind | None] = None  # None: the verb holds no text
    text_optional: ClassVar[bool] = False
    # Parsed text is an identifier, number or URL: surrounding whitespace is layout, as in
    # Bandwidth's own examples (the text on its own indented line), and is trimmed.
    text_trimmed: ClassVar[bool] = False
    child_names: ClassVar[tuple[str, ...]] = ()
    min_children: ClassVar[int] = 0
    max_children: ClassVar[int] = 0
    nested_only: ClassVar[bool] = False
    belongs_in: ClassVar[str] = ""  # for nested_only verbs: where they go, for messages
    _child_classes: ClassVar[frozenset[type[Verb]]] = frozenset()  # set by verbs.py

    __slots__ = ("_children", "_shared")
    _children: list[Verb] | tuple[Verb, ...]
    # Set (True) only once the verb sits in two parents, the second holding a copy that
    # later appends would not reach; append() refuses from then on.
    _shared: bool

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        if cls.name:
            Verb.registry[cls.name] = cls

    if TYPE_CHECKING:  # generated per class from the attribute table (node._compile_init)

        def __init__(self, *content: str | Verb, **attributes: object) -> None: ...

    def _init_content(self, element: etree._Element, content: tuple[object, ...]) -> None:
        text_kind = self.text_kind
        if text_kind is not None:
            if content and not isinstance(content[0], Node):
                self._set_text(element, text_kind, content[0])
                content = content[1:]
            elif not self.text_optional:
                raise self.error(f"text is required: it {text_kind.rule or 'must be a string'}")
        self._children = NO_CHILDREN
        if content:
            self._attach_all(cast(tuple[Verb, ...], content))  # each is checked there
        elif self.min_children:
            raise self._count_error(0)

    @classmethod
    def _content_source(cls) -> tuple[list[str], dict[str, object]]:
        if cls.text_kind is None and not cls.max_children:  # no text, no children
            lines = [
                "    if content:",
                "        self._init_content(element, content)",  # explains the error
                "    self._children = NO_CHILDREN",
            ]
            return lines, {"NO_CHILDREN": NO_CHILDREN}
        if cls.text_kind is None:  # child verbs: the common case inline, linked at once
            count_ok = [f"{cls.min_children} <= len(content)"] if cls.min_children > 1 else []
            if cls.max_children < sys.maxsize:
                count_ok.append(f"len(content) <= {cls.max_children}")
            empty = ["    else:", "        raise self._count_error(0)"] if cls.min_children else []
            lines = [
                "    self._children = NO_CHILDREN",
                "    if content:",
                f"        plain = {' and '.join(count_ok) or 'True'}",
                "        if plain:",
                "            allowed = self._child_classes",
                "            for child in content:",
                # A child already in another parent gets a copy: _attach_all does that.
                "                if type(child) not in allowed or "
                "child._element.getparent() is not None:",
                "                    plain = False",
                "                    break",
                "        if plain:",
                "            element.extend([child._element for child in content])",
                "            self._children = content",  # a tuple: append() makes a list
                "        else:",
                "            self._init_content(element, content)",
                *empty,
            ]
            return lines, {"NO_CHILDREN": NO_CHILDREN}
        lines = [  # the common case, one string, inline; the rest in _init_content
            "    if len(content) == 1 and type(content[0]) is str:",
            "        try:",
            "            text = memo_text[content[0]]",  # learns a new text itself
            "            if text:",
            "                element.text = text",
            "        except (Invalid, ValueError) as error:",
            "            raise self._text_error(content[0], error) from None",
            "        self._children = NO_CHILDREN",
            "    else:",
            "        self._init_content(element, content)",
        ]
        names: dict[str, object] = {"NO_CHILDREN": NO_CHILDREN, "memo_text": cls.text_kind.memo}
        return lines, names

    @classmethod
    def _credential_urls(cls) -> list[tuple[tuple[str, str], tuple[str, ...]]]:
        """((username, password), the URLs they are sent to) for each credential pair:
        ``fallback_*`` to the fallback URLs, ``destination_*`` to ``destination``, and
        ``username``/``password`` to the other http(s) URLs ("text" for a URL text)."""
        urls = {
            name: kind for name, (_, _, kind) in cls._by_python.items() if isinstance(kind, Url)
        }
        if isinstance(cls.text_kind, Url):
            urls["text"] = cls.text_kind
        pairs = []
        for user in cls._by_python:
            if not user.endswith("username"):
                continue
            prefix = user[: -len("username")]
            if prefix == "fallback_":
                targets = [name for name in urls if "fallback" in name]
            elif prefix:
                targets = [prefix.rstrip("_")]
            else:
                targets = [
                    name
                    for name, kind in urls.items()
                    if "fallback" not in name and "https://" in kind.schemes
                ]
            if targets:
                pairs.append(((user, prefix + "password"), tuple(targets)))
        return pairs

    @classmethod
    def _rules_source(cls) -> tuple[list[str], dict[str, object]]:
        lines = []
        for (user, password), targets in cls._credential_urls():
            values = ", ".join(
                f"({name!r}, {'element.text' if name == 'text' else name})" for name in targets
            )
            lines += [
                f"    if {user} is not None or {password} is not None:",
                f"        self._require_tls(({user!r}, {password!r}), ({values},))",
            ]
        return lines, {}

    def _require_tls(
        self, credentials: tuple[str, str], urls: tuple[tuple[str, object], ...]
    ) -> None:
        """Credentials go only to https (wss) URLs, loopback hosts excepted (voice_rules)."""
        for name, url in urls:
            if isinstance(url, str) and exposes_credentials(url):
                where = "text (the URL)" if name == "text" else self.xml_name(name)
                secure = "wss" if url[:3].lower() == "ws:" else "https"
                names = "/".join(self.xml_name(python_name) for python_name in credentials)
                raise self.error(f"{where} must use {secure} when {names} is set, got {show(url)}")

    def _set_text(self, element: etree._Element, kind: Kind, text: object) -> None:
        try:
            checked = kind.to_xml(text)
            if checked:
                element.text = checked
        except (Invalid, ValueError) as error:
            raise self._text_error(text, error) from None

    def _text_error(self, text: object, error: Exception) -> BxmlError:
        if isinstance(error, Invalid):
            return self.error(f"text {error}")
        return self.error(f"text {bad_character(str(text))}")  # lxml refused a character

    def _attach_all(self, children: tuple[Verb, ...]) -> None:
        """Check every child, then link them all: a refused child changes nothing."""
        self._check_new_children(children)
        add = self._element.append
        for verb in children:
            element = verb._element
            if element.getparent() is not None:
                # Already in another parent: this one gets a copy (see _shared).
                element = deepcopy(element)
                verb._shared = True
            add(element)
        if isinstance(self._children, list) and self._children is not NO_CHILDREN:
            self._children += children
        else:  # the constructor's tuple, or the shared empty list, which stays empty
            self._children = [*self._children, *children]

    def _check_new_children(self, children: tuple[Verb, ...]) -> None:
        """Refuse what this verb may not hold, or one child too many (or too few)."""
        allowed = self._child_classes
        for child in children:
            if type(child) not in allowed:
                raise self._refuse(child)
        count = len(self._children) + len(children)
        if count > self.max_children or count < self.min_children:
            raise self._count_error(count)

    def _refuse(self, child: object) -> BxmlError:
        if isinstance(child, Verb):
            if not self._child_classes:
                return self.error(f"holds no child verbs, got {child.name}")
            where = f" (it belongs inside {child.belongs_in})" if child.belongs_in else ""
            allowed = "" if where else f" (allowed: {'/'.join(self.child_names)})"
            return self.error(f"cannot contain {child.name}{where}{allowed}")
        if isinstance(child, str):
            if self.text_kind is None:
                return self.error(f"holds no text, got {show(child)}")
            return self.error(f"takes one text argument, got another: {show(child)}")
        return self.error(f"children must be bxml verbs, got {type(child).__name__} {show(child)}")

    def _count_error(self, count: int) -> BxmlError:
        names = "/".join(self.child_names)
        if self.min_children == self.max_children:
            return self.error(f"must hold exactly {self.min_children} {names}, got {count}")
        if count < self.min_children:
            return self.error(f"must hold at least {self.min_children} {names}, got {count}")
        return self.error(f"holds at most {self.max_children} {names}, got {count}")

    def copy(self: _V) -> _V:
        """A deep copy sharing nothing that can change with this verb's tree: one lxml copy
        of the elements and new verbs around them, checked by construction already."""
        return self._twin(deepcopy(self._element))

    def _twin(self: _V, element: etree._Element) -> _V:
        twin = object.__new__(type(self))
        for name in _extra_slots(type(self)):  # e.g. SpeakSentence's content: read-only
            value = getattr(self, name, _UNSET)
            if value is not _UNSET:
                setattr(twin, name, value)
        twin._element = element
        twin._shared = False
        children = self._children
        if children:
            copies = [child._twin(each) for child, each in zip(children, element, strict=True)]
            # (parsed documents hold no comments or processing instructions: safe_xml drops them)
            twin._children = copies if isinstance(children, list) else tuple(copies)
        else:
            twin._children = children
        return twin

    def append(self, verb: Verb) -> None:
        """Add a child verb at the end, checked as the constructor checks it."""
        if getattr(self, "_shared", False):
            raise self.error("was placed in two parents; build a new one instead of appending")
        self._attach_all((verb,))

    # --- read access -------------------------------------------------------------------

    @property
    def text(self) -> str | None:
        """The text content ("" when empty), or None for a verb that holds no text."""
        if self.text_kind is None:
            return None
        return self._element.text or ""

    @property
    def children(self) -> list[Verb]:
        """The child verbs (a copy; use ``append`` to add one)."""
        return list(self._children)

    def _repr_content(self) -> list[str]:
        head = [repr(self.text)] if self.text_kind is not None else []
        return head + [repr(child) for child in self._children]

    # --- parsing -----------------------------------------------------------------------

    @classmethod
    def _from_element(cls, element: etree._Element) -> Verb:
        """Build this verb from a parsed element through the constructor's checks."""
        try:
            return cls(*cls._read_content(element), **cls._read_attributes(element))
        except BxmlError as error:
            if error.line is None:
                error.line = line_of(element)
            raise

    @classmethod
    def _read_content(cls, element: etree._Element) -> list[str | Verb]:
        if cls.text_kind is not None:
            if len(element):
                raise BxmlError(f"{cls.name}: holds no child elements", line_of(element[0]))
            text = element.text
            if text is None:
                return []
            return [text.strip(_XML_SPACE) if cls.text_trimmed else text]
        _refuse_text(cls.name, element.text, line_of(element))
        content: list[str | Verb] = []
        for child in element:
            tag = child.tag
            child_class = Verb.registry.get(tag) if isinstance(tag, str) else None
            if child_class is None:
                raise BxmlError(f"{cls.name}: unknown verb {show(tag)}", line_of(child))
            if child_class not in cls._child_classes:
                # Refuse before reading the child, so deep nesting never recurses far.
                raise BxmlError(f"{cls.name}: cannot contain {child_class.name}", line_of(child))
            content.append(child_class._from_element(child))
            _refuse_text(cls.name, child.tail, line_of(child))
        return content


NO_CHILDREN: list[Verb] = []  # shared by verbs without children; never appended to

_V = TypeVar("_V", bound=Verb)


_UNSET = object()


@functools.cache
def _extra_slots(cls: type) -> tuple[str, ...]:
    """The slots of ``cls`` and its bases beyond a verb's element and children."""
    own = {"_element", "_children", "_shared"}
    return tuple(
        name for base in cls.__mro__ for name in getattr(base, "__slots__", ()) if name not in own
    )


def _refuse_text(owner: str, text: str | None, line: int | None) -> None:
    """Whitespace between verbs is layout; any other text there is an error."""
    if text and text.strip(_XML_SPACE):
        raise BxmlError(f"{owner}: holds no text, got {show(text.strip(_XML_SPACE))}", line)


class Root(Verb):
    """A document: ``Response`` (webhook replies) or ``Bxml`` (PUT .../bxml)."""

    max_children = sys.maxsize
    child_names = ("verbs",)

    def __len__(self) -> int:
        return len(self._children)

    def __getitem__(self, index: int) -> Verb:
        return self._children[index]

    def __iter__(self) -> Iterator[Verb]:
        return iter(self._children)

    def to_bxml(self, lead: Verb | None = None) -> str:
        """The UTF-8 document as a string, with Bandwidth's XML declaration.  ``lead``, a
        verb this root may hold, is rendered before the rest, the document left as it is:
        a document shared between replies gets a first verb of each reply's own without
        a copy of its tree."""
        body = etree.tostring(self._element, encoding="unicode")
        if lead is not None:
            body = self._with_lead(body, lead)
        document = XML_DECLARATION + body
        # Cheap first test: a document is at most 4 UTF-8 bytes per character.
        if len(document) > MAX_DOCUMENT_BYTES // 4:
            size = len(document.encode("utf-8"))
            if size > MAX_DOCUMENT_BYTES:
                raise self.error(
                    f"document is {size} bytes, over the 64 KB ({MAX_DOCUMENT_BYTES} bytes) limit"
                )
        return document

    def _with_lead(self, body: str, lead: Verb) -> str:
        self._check_new_children((lead,))
        first = etree.tostring(lead._element, encoding="unicode", with_tail=False)
        opening = f"<{self.name}>"
        if body == f"<{self.name}/>":
            return f"{opening}{first}</{self.name}>"
        # A root has no attributes: its children follow its opening tag.
        return opening + first + body.removeprefix(opening)
