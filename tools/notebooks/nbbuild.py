"""Shared by the notebook generators ``build_0N.py``: cells as (kind, source) pairs, a notebook with fixed cell ids.

Each generator lists its cells with :func:`md`, :func:`code` (or ``("md" | "params" | "code", source)`` pairs) and
calls :func:`write`. Cell ids are ``NN-00``, ``NN-01``, ..., so regenerating an unchanged notebook gives identical
bytes and the committed notebooks diff cleanly.
"""

from __future__ import annotations

from pathlib import Path

import nbformat

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"


def md(text: str) -> tuple[str, str]:
    return ("md", text.strip())


def code(text: str, tags: list[str] | None = None) -> tuple[str, str]:
    """A code cell; ``tags=["parameters"]`` marks papermill's parameters cell."""
    return ("params" if tags and "parameters" in tags else "code", text.strip())


def build(cells: list[tuple[str, str]], prefix: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    for i, (kind, source) in enumerate(cells):
        cell = nbformat.v4.new_markdown_cell(source) if kind == "md" else nbformat.v4.new_code_cell(source)
        if kind == "params":
            cell.metadata["tags"] = ["parameters"]
        cell["id"] = f"{prefix}-{i:02d}"
        nb.cells.append(cell)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


def write(cells: list[tuple[str, str]], name: str) -> Path:
    """Validate and write ``notebooks/<name>.ipynb`` (no outputs); ``name`` starts with its two-digit number."""
    nb = build(cells, name[:2])
    nbformat.validate(nb)
    out = NOTEBOOKS / f"{name}.ipynb"
    out.write_text(nbformat.writes(nb) + "\n")
    print(f"wrote {out}")
    return out
