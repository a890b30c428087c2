"""The one base class that owns all XML work: attribute tables, lxml elements, equality.

A node builds its lxml element as it is constructed.  Each class's constructor is
generated from its attribute table (``_compile_init``): every attribute is a keyword
argument, checked by its value kind and set on the element in table order, so output is
deterministic and a document renders with one ``tostring``.  The element is the only copy
of the values: ``attrs`` reads them back through the same kinds, and equality compares
elements.  Subclasses (the verbs in ``verbs.py``, the SSML elements in ``ssml.py``) only
declare their name, attribute table and content.
"""

from __future__ import annotations

import keyword
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, TypeAlias, cast

from lxml import etree

from bxml.errors import BxmlError
from bxml.values import Invalid, Kind, show

# One attribute table row: (python_name, kind) or (python_name, kind, xml_name).  The XML
# name defaults to the camelCase of the Python name; a trailing "_" is dropped (from_).
AttributeRow: TypeAlias = tuple[str, Kind] | tuple[str, Kind, str]

_XML_NAMESPACE = "{http://www.w3.org/XML/1998/namespace}"
_STRINGS = frozenset({str})

# Every element is created in one shared, never-serialized document: appending a child
# to its parent then links it in place instead of moving it between documents, which
# costs more than creating it.  Unlinked trees are freed when their node is collected.
# The document is of lxml's HTML kind for one effect: ``set`` skips re-checking the
# attribute *name*, a check that raises and clears a Python exception inside lxml on
# Python 3.11 and was about a third of each attribute's cost.  Names here come only from
# the attribute tables, each checked once by lxml's XML rules when its class is defined
# (``_check_name``); tags, values and text are still checked on every call, and
# ``tostring`` writes XML whatever the document's kind (tests/bxml/test_golden.py).
make_element = etree.HTMLParser().makeelement("bxml-element-factory").makeelement
_XML_NAME_CHECK = etree.Element("bxml-name-check")


def _check_name(cls_name: str, lxml_name: str) -> None:
    """Refuse an attribute name that XML cannot carry, as lxml's ``set`` would in an
    XML document (which is what the element factory above skips)."""
    try:
        _XML_NAME_CHECK.set(lxml_name, "")
    except ValueError as error:
        raise TypeError(f"{cls_name}: {lxml_name!r} is not an XML attribute name") from error
    finally:
        _XML_NAME_CHECK.attrib.clear()


def line_of(element: etree._Element) -> int | None:
    """The source line of a parsed element, when lxml knows it."""
    line = element.sourceline
    return line if isinstance(line, int) else None


def lower_camel(python_name: str) -> str:
    """``gather_url`` -> ``gatherUrl``, ``from_`` -> ``from``."""
    first, *rest = python_name.rstrip("_").split("_")
    return first + "".join(word[:1].upper() + word[1:] for word in rest)


def bad_character(text: str) -> str:
    """Describe the first character of ``text`` that XML 1.0 cannot carry."""
    for char in text:
        code = ord(char)
        if (
            (code < 0x20 and char not in "\t\n\r")
            or 0xD800 <= code <= 0xDFFF
            or code in (0xFFFE, 0xFFFF)
        ):
            return f"contains a character XML cannot carry (U+{code:04X})"
    return "contains text XML cannot carry"


class _Slotted(type):
    """Gives every subclass ``__slots__ = ()`` unless it declares its own, so each verb
    class stays a few lines and ``verb.txt = ...`` (a typo) fails instead of passing."""

    def __new__(
        mcls, name: str, bases: tuple[type, ...], namespace: dict[str, Any], **kwargs: Any
    ) -> _Slotted:
        namespace.setdefault("__slots__", ())
        return super().__new__(mcls, name, bases, namespace, **kwargs)


class Node(metaclass=_Slotted):
    """An XML element with a declared attribute table; base of verbs and SSML elements."""

    name: ClassVar[str] = ""  # the XML tag, e.g. "Gather"
    attributes: ClassVar[tuple[AttributeRow, ...]] = ()
    required: ClassVar[tuple[str, ...]] = ()  # Python names that must be given (not None)

    # Precomputed from the table by __init_subclass__, in table order:
    # python name -> (xml name, lxml name, kind); lxml name -> (xml name, python name, kind).
    # The lxml name is the XML name, except xml:lang -> {namespace}lang.
    _by_python: ClassVar[dict[str, tuple[str, str, Kind]]] = {}
    _by_lxml: ClassVar[dict[str, tuple[str, str, Kind]]] = {}

    __slots__ = ("_element",)
    _element: etree._Element

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        cls._by_python = {}
        cls._by_lxml = {}
        for row in cls.attributes:
            python_name, kind = row[0], row[1]
            xml_name = row[2] if len(row) == 3 else lower_camel(python_name)
            lxml_name = xml_name.replace("xml:", _XML_NAMESPACE)
            _check_name(cls.__name__, lxml_name)
            cls._by_python[python_name] = (xml_name, lxml_name, kind)
            cls._by_lxml[lxml_name] = (xml_name, python_name, kind)
        if cls.name:  # abstract bases (Verb, Root, SsmlElement) have no tag and no constructor
            cls.__init__ = _compile_init(cls)  # type: ignore[method-assign]

    if TYPE_CHECKING:  # the real constructor is generated per class by _compile_init

        def __init__(self, *content: object, **attributes: object) -> None: ...

    def _init_content(self, element: etree._Element, content: tuple[object, ...]) -> None:
        """Check and write the positional content (text, children); set by subclasses."""
        raise NotImplementedError

    @classmethod
    def _content_source(cls) -> tuple[list[str], dict[str, object]]:
        """Lines of the generated constructor that handle ``content``, and the names they
        use.  Subclasses add fast paths for their common cases."""
        return ["    self._init_content(element, content)"], {}

    @classmethod
    def _rules_source(cls) -> tuple[list[str], dict[str, object]]:
        """Lines of the generated constructor that check rules across attributes, run
        once every value is set, and the names they use."""
        return [], {}

    @classmethod
    def xml_name(cls, python_name: str) -> str:
        """The XML attribute name of a keyword argument: ``max_digits`` -> ``maxDigits``."""
        return cls._by_python[python_name][0]

    def _attribute_error(self, python_name: str, value: object, error: Exception) -> BxmlError:
        xml_name, _, kind = self._by_python[python_name]
        if isinstance(error, TypeError):  # an unhashable value: its kind's check says why
            try:
                kind.check(value)
            except Invalid as invalid:
                error = invalid
            else:
                error = Invalid(f"must be hashable, got {type(value).__name__} {show(value)}")
        if isinstance(error, Invalid):
            return self.error(f"{xml_name} {error}")
        return self.error(f"{xml_name} {bad_character(str(value))}")  # lxml refused it

    def _missing(self, python_name: str) -> BxmlError:
        xml_name = self.xml_name(python_name)
        return self.error(f"{xml_name} is required ({python_name}=...)")

    def _unknown_attribute(self, name: str) -> BxmlError:
        hint = ""
        row = self._by_lxml.get(name)
        if row is not None and row[1] != name:
            hint = f" (write {row[1]}=...)"
        return self.error(f"unknown attribute {show(name)}{hint}")

    def error(self, message: str) -> BxmlError:
        """A BxmlError naming this node: ``Gather: maxDigits must be ...``."""
        return BxmlError(f"{self.name}: {message}")

    # --- reading -----------------------------------------------------------------------

    @classmethod
    def _read_attributes(cls, element: etree._Element) -> dict[str, object]:
        """Keyword arguments for the constructor from a parsed element's attributes."""
        kwargs: dict[str, object] = {}
        for lxml_name, text in element.attrib.items():
            row = cls._by_lxml.get(str(lxml_name))
            if row is None:
                raise BxmlError(f"{cls.name}: unknown attribute {show(lxml_name)}")
            xml_name, python_name, kind = row
            try:
                kwargs[python_name] = kind.from_xml(str(text))
            except Invalid as invalid:
                raise BxmlError(f"{cls.name}: {xml_name} {invalid}") from None
        return kwargs

    @property
    def attrs(self) -> dict[str, object]:
        """XML attribute name (camelCase) -> typed Python value, in render order.

        Values are read back from the element: bools, ints (whole numbers, also those
        given as 2.0), floats and strings.
        """
        by_lxml = self._by_lxml
        result: dict[str, object] = {}
        for lxml_name, text in self._element.attrib.items():
            xml_name, _, kind = by_lxml[str(lxml_name)]
            result[xml_name] = kind.from_xml(str(text))
        return result

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, Node)
        # Elements are canonical (table order, normalised values), so equal trees
        # serialize to equal bytes.
        return etree.tostring(self._element, with_tail=False) == etree.tostring(
            other._element, with_tail=False
        )

    __hash__ = None  # type: ignore[assignment]  # verbs change (append), so no hashing

    def _repr_content(self) -> list[str]:
        raise NotImplementedError

    def __repr__(self) -> str:
        parts = self._repr_content()
        for lxml_name, text in self._element.attrib.items():
            _, python_name, kind = self._by_lxml[str(lxml_name)]
            parts.append(f"{python_name}={kind.from_xml(str(text))!r}")
        return f"{type(self).__name__}({', '.join(parts)})"


_GENERATED_NAMES = frozenset(
    {"self", "content", "unknown", "element", "error", "text", "type", "make_element", "Invalid"}
)


def _compile_init(cls: type[Node]) -> Callable[..., None]:
    """Write the class's constructor from its attribute table, as ``dataclasses`` does.

    Every attribute becomes a keyword parameter (default None = left out), checked by its
    kind and set on the element in table order, so the hot path has no per-call table
    lookups or sorting; unknown keywords land in ``**unknown`` and raise BxmlError.
    """
    params = ["self", "*content"]
    body = [
        "    if unknown:",
        "        raise self._unknown_attribute(next(iter(unknown)))",
        f"    element = self._element = make_element({cls.name!r})",
    ]
    namespace: dict[str, object] = {"make_element": make_element, "Invalid": Invalid}
    # Names in the generated code, per table row: memo_<position> is the kind's memo (a
    # subscript that learns a missing value) and types_<position> the types it holds.
    for position, (python_name, (_, lxml_name, kind)) in enumerate(cls._by_python.items()):
        if (
            not python_name.isidentifier()
            or keyword.iskeyword(python_name)
            or python_name in _GENERATED_NAMES
        ):
            raise TypeError(f"{cls.__name__}: {python_name!r} cannot be a keyword argument")
        params.append(f"{python_name}=None")
        namespace[f"learn_{position}"] = kind.learn
        namespace[f"memo_{position}"] = kind.memo
        namespace[f"types_{position}"] = kind.memo_types
        value = python_name  # the parameter holding this attribute's value
        if kind.memo_types == _STRINGS:
            # Any value may be looked up: one that is not a str misses (or is unhashable,
            # a TypeError that _attribute_error explains) and its kind's check refuses it.
            text = f"memo_{position}[{value}]"
        else:
            # Exact types only: 1 == 1.0 == True would share an entry across kinds' rules.
            text = (
                f"memo_{position}[{value}] if type({value}) in types_{position} "
                f"else learn_{position}({value})"
            )
        body += [
            f"    if {value} is not None:",
            "        try:",
            f"            element.set({lxml_name!r}, {text})",
            "        except (Invalid, ValueError, TypeError) as error:",
            f"            raise self._attribute_error({value!r}, {value}, error) from None",
        ]
    for python_name in cls.required:
        body += [
            f"    if {python_name} is None:",
            f"        raise self._missing({python_name!r})",
        ]
    for make_lines in (cls._content_source, cls._rules_source):
        lines, names = make_lines()
        body += lines
        namespace.update(names)
    source = f"def __init__({', '.join(params)}, **unknown):\n" + "\n".join(body) + "\n"
    exec(source, namespace)  # noqa: S102  (source built from our own class tables only)
    init = cast(Callable[..., None], namespace["__init__"])
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    return init
