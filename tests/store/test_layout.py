"""The store stays readable, and its behaviour comes from its arguments and the hooks tests
install, never from the environment read on the write path."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

STORE = Path(__file__).resolve().parents[2] / "store"
MODULES = sorted(STORE.glob("*.py"))
MAX_LINES = 500  # one sitting


def test_the_store_has_its_modules():
    assert {"core.py", "group_commit.py", "spool.py", "replay.py"} <= {p.name for p in MODULES}


@pytest.mark.parametrize("module", MODULES, ids=lambda p: p.name)
def test_each_store_module_reads_in_one_sitting(module):
    lines = len(module.read_text().splitlines())
    assert lines <= MAX_LINES, f"store/{module.name} has {lines} lines"


def environment_reads(source: str) -> list[int]:
    """Lines that read the process environment (os.environ, os.getenv, from os import ...)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "environb", "getenv"):
            found.append(node.lineno)
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            if {alias.name for alias in node.names} & {"environ", "environb", "getenv"}:
                found.append(node.lineno)
    return sorted(found)


def test_environment_reads_are_found():
    assert environment_reads("import os\nx = os.environ.get('A')\ny = os.getenv('B')") == [2, 3]
    assert environment_reads("from os import environ") == [1]
    assert environment_reads("import os\nos.path.join('a')") == []


@pytest.mark.parametrize("module", MODULES, ids=lambda p: p.name)
def test_no_store_module_reads_the_environment(module):
    # Test-only behaviour (crash injection, pauses) is installed through Store.hooks.
    assert environment_reads(module.read_text()) == [], f"store/{module.name}"
