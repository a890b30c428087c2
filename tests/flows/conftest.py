"""Fixtures for call-flow tests: flow modules written into a folder on sys.path."""

from __future__ import annotations

import importlib
import sys
import textwrap
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest


@pytest.fixture
def flow_module(tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """``flow_module(source)`` writes a user's flow module and returns its dotted name."""
    folder = tmp_path / "userflows"
    folder.mkdir()
    sys.path.insert(0, str(folder))
    written: list[str] = []

    def write(source: str) -> str:
        name = f"user_flow_{uuid.uuid4().hex[:8]}"
        (folder / f"{name}.py").write_text(textwrap.dedent(source))
        written.append(name)
        importlib.invalidate_caches()
        return name

    yield write
    sys.path.remove(str(folder))
    for name in written:
        sys.modules.pop(name, None)
