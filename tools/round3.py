"""Training round 3 (on this project's 2-core CPU): continue both shipped trackers on fresh training data.

Usage (from the repository root)::

    python tools/round3.py train     # both runs, one after the other (~20 min atom, ~90 min dimp on 2 cores)
    python tools/round3.py readme    # the README's round-3 table from the logs and data/selection.json

The plan, fixed before any run (also ``data/runs/round3/plan.txt``):

- both trackers start from their shipped round-2 files (``dimp`` float32, ``atom`` fp16 widened: what ships) and
  train the same schedule: the ``gpu`` preset, 500 steps x 16 sequences, training seed 1 (a fresh pool of 480 new
  train-photo sequences x 80 frames, and new batches), learning rates 0.2 x the preset's (the middle level of
  round 2's schedule), x 0.2 again at 60 % (``data/runs/round3/<tracker>.set.json``);
- candidates: ``dimp`` r3 (float32), ``atom`` r3 and r3-fp16, scored on synth-val (one torch thread, tracker
  seed 0) with ``tools/select_on_val.py`` beside the earlier candidates;
- rule, as in rounds 1 and 2: per tracker ship the candidate with the highest synth-val AUC; synth-test only
  after that choice.

The table also compares losses: the round-2 weights' training losses on their own pool (last 100 steps of round 2)
against the same weights on round 3's fresh pool (its first 50 steps, which the new optimiser has barely moved),
a direct measure of how much of round 2's training loss is fitted to the sequences it saw.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from readme_section import write_section

ROOT = Path(__file__).resolve().parents[1]
TRACKERS = ("atom", "dimp")
PLAN = ROOT / "data" / "runs" / "round3"
LOSS = {"atom": ("iou",), "dimp": ("clf_final", "iou")}  # the trained heads' terms: DiMP's final filter, IoU-Nets
DATA = ROOT / "data"
# the logs of the shipped files are in data/weights, the others in data/runs (atom kept round 2, dimp ships round 3)
ROUND2_LOG = {"atom": DATA / "weights" / "atom.log.jsonl", "dimp": DATA / "runs" / "dimp-r2.log.jsonl"}
ROUND2_COMMIT = "f98af55"  # the last commit that shipped both round-2 files
ROUND3_LOG = {"atom": DATA / "runs" / "atom-r3.log.jsonl", "dimp": DATA / "weights" / "dimp.log.jsonl"}


def round2_file(tracker: str) -> bytes:
    """The shipped round-2 file round 3 started from, out of git history (``dimp`` ships round 3 now), checked
    against the hash the selection recorded for the warm start."""
    data = subprocess.run(["git", "show", f"{ROUND2_COMMIT}:data/weights/{tracker}.safetensors"], cwd=ROOT,
                          check=True, capture_output=True).stdout
    selection = json.loads((DATA / "selection.json").read_text())["trackers"][tracker]["candidates"]
    expected = {c["warm_start"]["sha256"] for c in selection.values() if "warm_start" in c}
    if {hashlib.sha256(data).hexdigest()} != expected:
        raise ValueError(f"{tracker}: the file at {ROUND2_COMMIT} is not the one round 3 started from")
    return data


def train_commands(out: Path) -> list[list[str]]:
    """The two ``dimp train`` calls of the plan (the starting files are copied to ``out`` first)."""
    return [[sys.executable, "-m", "dimp_core.cli", "train", "--tracker", t, "--preset", "gpu", "--seed", "1",
             "--out", str(out / t), "--set", (PLAN / f"{t}.set.json").read_text()] for t in TRACKERS]


def _steps(path: Path) -> list[dict[str, Any]]:
    return [e for e in map(json.loads, path.read_text().splitlines()) if "total" in e]


def summarise(round2: dict[str, list[dict]], round3: dict[str, list[dict]]) -> dict[str, Any]:
    """Per tracker and window (round 2's last 100 steps, round 3's first 50 and last 100): the mean of each of its
    :data:`LOSS` terms."""
    import numpy as np

    out: dict[str, Any] = {}
    for t in TRACKERS:
        windows = {"round2_last100": round2[t][-100:], "round3_first50": round3[t][:50],
                   "round3_last100": round3[t][-100:]}
        out[t] = {w: {term: float(np.mean([e[term] for e in steps])) for term in LOSS[t]}
                  for w, steps in windows.items()}
    return out


def table(summary: dict[str, Any], selection: dict[str, Any]) -> str:
    rows = ["| tracker | loss term | round 2, own pool (last 100 steps) | round-2 weights, fresh pool (first 50) | "
            "round 3 (last 100) | synth-val AUC, round 2 / round 3 | shipped |", "|---|---|---:|---:|---:|---:|---|"]
    for t in TRACKERS:
        s, entry = summary[t], selection["trackers"][t]
        r3 = [n for n in entry["candidates"] if "warm_start" in entry["candidates"][n]]
        start = entry["candidates"][r3[0]]["warm_start"]["sha256"]  # the round-2 file round 3 started from
        r2 = next(n for n, c in entry["candidates"].items() if c["sha256"] == start)
        val3 = " / ".join(f"{entry['candidates'][n]['auc']:.1f}" + (" (fp16)" if n.endswith("fp16") else "")
                          for n in r3)
        for i, term in enumerate(LOSS[t]):
            auc = f"{entry['candidates'][r2]['auc']:.1f} / {val3} | {entry['selected']}" if i == 0 else " | "
            rows.append(f"| `{t}` | {term} | {s['round2_last100'][term]:.3f} | {s['round3_first50'][term]:.3f} "
                        f"| {s['round3_last100'][term]:.3f} | {auc} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=("train", "readme"))
    args = parser.parse_args(argv)
    if args.what == "train":
        out = ROOT / "results" / "round3"  # where the settings' init_weights point
        out.mkdir(parents=True, exist_ok=True)
        for t in TRACKERS:  # the plan's starting points, under the names the settings give
            (out / f"{t}-r2.safetensors").write_bytes(round2_file(t))
        for command in train_commands(out):
            subprocess.run(command, check=True, cwd=ROOT)
        return 0
    summary = summarise({t: _steps(ROUND2_LOG[t]) for t in TRACKERS}, {t: _steps(ROUND3_LOG[t]) for t in TRACKERS})
    selection = json.loads((ROOT / "data" / "selection.json").read_text())
    (ROOT / "data" / "round3.json").write_text(json.dumps({"summary": summary}, indent=1) + "\n")
    write_section("round3-table", table(summary, selection))
    print("updated data/round3.json and the round-3 table in README.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
