"""Replace a generated section of the documentation: the text between ``<!-- NAME:start -->`` and ``<!-- NAME:end -->``.

The tables in ``README.md`` and ``docs/*.md`` come from scripts (``make_eval_table.py``, ``make_training_table.py``,
the experiments in ``experiments/``); each writes its own marked section with :func:`write_section`, so no number in
them is typed by hand. A section lives in exactly one of those files; :func:`document_of` finds it, so a section can
move from one page to another without any script changing.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"


def documents() -> list[Path]:
    """The pages that may hold generated sections: the README and every page of ``docs/``."""
    return [README, *sorted(DOCS.glob("*.md"))]


def document_of(name: str) -> Path:
    """The one page that holds the markers of section ``name``."""
    start = f"<!-- {name}:start -->"
    found = [p for p in documents() if start in p.read_text()]
    if len(found) != 1:
        where = ", ".join(str(p.relative_to(ROOT)) for p in found) or "none of README.md, docs/*.md"
        raise ValueError(f"section {name!r} must be in exactly one page; {start} is in {where}")
    return found[0]


def replace_section(text: str, name: str, body: str) -> str:
    """``text`` with everything between the markers of section ``name`` replaced by ``body``."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    if text.count(start) != 1 or text.count(end) != 1 or text.index(start) > text.index(end):
        raise ValueError(f"the page must hold exactly one {start} ... {end} pair, in that order")
    head, rest = text.split(start)
    _, tail = rest.split(end)
    return f"{head}{start}\n{body.strip()}\n{end}{tail}"


def write_section(name: str, body: str, page: Path | None = None) -> Path:
    """Write section ``name`` into ``page`` (default: the page that holds it); returns the page."""
    page = page or document_of(name)
    page.write_text(replace_section(page.read_text(), name, body))
    return page
