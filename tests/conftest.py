"""Shared fixtures."""

import importlib
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = (ROOT / "tools", ROOT / "experiments")  # maintenance scripts, one-off experiments


@pytest.fixture
def tool(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], ModuleType]:
    """Import a script of ``tools/`` or ``experiments/`` by module name (they import ``tools/doc_section``)."""
    for folder in reversed(SCRIPTS):
        monkeypatch.syspath_prepend(str(folder))
    return importlib.import_module
