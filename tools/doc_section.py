"""Replace a generated section of README.md: the text between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``.

The tables in the README come from scripts (``make_eval_table.py``, ``make_training_table.py``, ``ablations.py``);
each writes its own marked section with :func:`write_section`, so no number in them is typed by hand.
"""

from __future__ import annotations

from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def replace_section(text: str, name: str, body: str) -> str:
    """``text`` with everything between the markers of section ``name`` replaced by ``body``."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    if text.count(start) != 1 or text.count(end) != 1 or text.index(start) > text.index(end):
        raise ValueError(f"README must hold exactly one {start} ... {end} pair, in that order")
    head, rest = text.split(start)
    _, tail = rest.split(end)
    return f"{head}{start}\n{body.strip()}\n{end}{tail}"


def write_section(name: str, body: str, readme: Path = README) -> None:
    readme.write_text(replace_section(readme.read_text(), name, body))
