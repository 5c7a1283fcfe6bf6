"""The README is the front page and the generated tables of README.md and docs/ follow from their sources."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MARKER = re.compile(r"<!-- ([a-z0-9-]+):start -->")


def test_readme_is_a_short_front_page_whose_links_exist():
    text = (ROOT / "README.md").read_text()
    assert len(text.encode()) <= 12_000
    assert "make report" in text and "make test" in text
    assert text.index("## Results on real imagery (real-val)") < text.index("## Results on the synthetic test")
    for target in re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", text):
        assert (ROOT / target).exists(), target


def test_every_generated_section_lives_in_exactly_one_page(tool):
    doc_section = tool("doc_section")
    names = {n for page in doc_section.documents() for n in MARKER.findall(page.read_text())}
    assert {"eval-table", "real-val-table", "train-table", "selection-table", "swap-table", "speed-table"} <= names
    for name in names:
        page = doc_section.document_of(name)
        assert page.read_text().count(f"<!-- {name}:end -->") == 1, name
    with pytest.raises(ValueError, match="exactly one page"):
        doc_section.document_of("no-such-table")


def test_training_and_experiment_tables_follow_from_their_json(tool):
    training = (ROOT / "docs" / "training.md").read_text()
    experiments = (ROOT / "docs" / "experiments.md").read_text()
    data = ROOT / "experiments"
    assert tool("make_training_table").table() in training
    assert tool("select_on_val").table(json.loads((data / "selection.json").read_text())) in training
    assert tool("params_on_val").table(json.loads((data / "params_selection.json").read_text())) in experiments
    assert tool("ablations").table(json.loads((data / "ablations.json").read_text())) in experiments


def test_every_script_is_listed_in_its_index():
    for folder, pattern in (("tools", "*.py"), ("tools", "*.sh"), ("experiments", "*.py"), ("experiments", "*.json")):
        index = (ROOT / folder / "README.md").read_text()
        for path in sorted((ROOT / folder).glob(pattern)):
            assert f"`{path.name}`" in index or path.stem.startswith("round"), f"{folder}/README.md: {path.name}"
    assert "`round3.json`" in (ROOT / "experiments" / "README.md").read_text()


def _tracked_text_files() -> list[Path]:
    try:
        names = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    files = []
    for name in names.decode().split("\0"):
        path = ROOT / name
        if name and path.is_file() and path.suffix not in {".png", ".jpg", ".safetensors", ".mp4", ".pth"}:
            files.append(path)
    return files


def test_no_file_speaks_of_work_periods_or_internal_issue_numbers():
    word = re.compile(r"\bses" r"sions?\b", re.I)  # spelt in two pieces, so that this file passes its own search
    allowed = re.compile(r"jupyter|kernel|http|papermill|requests", re.I)
    found = []
    for path in _tracked_text_files():
        try:
            lines = path.read_text().splitlines()
        except (UnicodeDecodeError, OSError):
            continue
        for number, line in enumerate(lines, 1):
            if (word.search(line) and not allowed.search(line)) or \
                    re.search(r"\bissue \d", line, re.I):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:80]}")
    assert not found, "\n".join(found)
