"""Same attributes, in the same order, as Bandwidth's own SDK (bandwidth-sdk 23.3.1)."""

from __future__ import annotations

import inspect

import pytest
from lxml import etree

from bxml import Verb
from tests.bxml.cases import ALL_ATTRIBUTES

sdk = pytest.importorskip("bandwidth.models.bxml")

VERBS = [cls for cls in ALL_ATTRIBUTES if cls.name not in ("Response", "Bxml")]


def sdk_attribute_names(name: str) -> list[str]:
    """The SDK class's attribute names, in its serialization order."""
    sdk_class = getattr(sdk, name)
    required = [
        p
        for p in inspect.signature(sdk_class).parameters.values()
        if p.default is inspect.Parameter.empty and p.kind is p.POSITIONAL_OR_KEYWORD
    ]
    instance = sdk_class(*["x"] * len(required))
    return list(instance._attributes or {})


@pytest.mark.parametrize("verb_class", VERBS, ids=lambda cls: cls.name)
def test_attribute_names_and_order_match_the_sdk(verb_class: type[Verb]):
    ours = [verb_class.xml_name(row[0]) for row in verb_class.attributes]
    assert ours == sdk_attribute_names(verb_class.name)


def test_the_benchmark_document_is_canonically_identical_to_the_sdks():
    from bench.bench_bxml import bandwidth_sdk, project

    def canonical(document: str) -> bytes:
        return etree.tostring(etree.fromstring(document.encode()), method="c14n")

    assert canonical(project()()) == canonical(bandwidth_sdk()())
