"""Shared fixtures."""

import importlib
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

TOOLS = Path(__file__).resolve().parents[1] / "tools"


@pytest.fixture
def tool(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], ModuleType]:
    """Import a script of ``tools/`` by module name (the scripts import their sibling ``readme_section``)."""
    monkeypatch.syspath_prepend(str(TOOLS))
    return importlib.import_module
