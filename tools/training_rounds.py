"""Training rounds 3 and 4 (on this project's 2-core CPU): continue the shipped trackers on fresh training data.

Usage (from the repository root)::

    python tools/training_rounds.py train 4   # both runs of a round, one after the other (round 4: ~15 min atom,
                                              # ~75 min dimp on 2 cores)
    python tools/training_rounds.py readme    # each round's README table from the logs and data/selection.json

A round's plan is fixed before its runs, in ``data/runs/round<N>/plan.txt`` with one ``<tracker>.set.json`` of
settings per tracker. Both trackers start from the files shipped when the round was planned (taken from git
history and checked against the hash the selection recorded for the warm start) and train the same schedule on a
fresh pool (training seed N - 2: sequences neither has seen); the candidates are scored on synth-val with
``tools/select_on_val.py`` beside the earlier ones, and, as in every round, each tracker ships the candidate with
the highest synth-val AUC; synth-test only after that choice.

- round 3: 500 steps x 16 on 480 new sequences x 80 frames, learning rates 0.2 x the ``gpu`` preset's, x 0.2 at 60 %.
- round 4: 400 steps x 16 (what fit a session) on 800 new sequences x 48 frames (the same frames on disk, 1.7 x
  the sequences: round 3's losses showed DiMP's predictor fitting its pool), round 3's rates.

Each table compares losses: the starting weights' training losses on their own pool (the last 100 steps of the
run that made them) against the same weights on the round's fresh pool (its first 50 steps, which the new
optimiser has barely moved), a direct measure of how much of the training loss was fitted to the sequences seen.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from readme_section import write_section

ROOT = Path(__file__).resolve().parents[1]
TRACKERS = ("atom", "dimp")
LOSS = {"atom": ("iou",), "dimp": ("clf_final", "iou")}  # the trained heads' terms: DiMP's final filter, IoU-Nets
DATA = ROOT / "data"
RUNS = DATA / "runs"


@dataclass(frozen=True)
class Round:
    """One training round: where its starting files and the logs of both ends are kept."""

    number: int
    start_commit: str  # the last commit whose data/weights held the files the round started from
    start_logs: dict[str, Path]  # the logs of the runs that made those files
    logs: dict[str, Path]  # this round's logs
    steps: int

    @property
    def plan(self) -> Path:
        return RUNS / f"round{self.number}"

    @property
    def seed(self) -> int:  # a fresh pool and fresh batches for every round
        return self.number - 2

    def candidates(self, entry: dict[str, Any]) -> list[str]:
        """This round's candidates among a tracker's entry in data/selection.json."""
        return [n for n in entry["candidates"] if n.split("-")[0] == f"r{self.number}"]


# the shipped files' logs are in data/weights, the others in data/runs
ROUNDS = {
    3: Round(3, "f98af55", {"atom": DATA / "weights" / "atom.log.jsonl", "dimp": RUNS / "dimp-r2.log.jsonl"},
             {"atom": RUNS / "atom-r3.log.jsonl", "dimp": DATA / "weights" / "dimp.log.jsonl"}, 500),
    4: Round(4, "5a11b9b", {"atom": DATA / "weights" / "atom.log.jsonl", "dimp": DATA / "weights" / "dimp.log.jsonl"},
             {"atom": RUNS / "atom-r4.log.jsonl", "dimp": RUNS / "dimp-r4.log.jsonl"}, 400),
}


def start_file(rnd: Round, tracker: str) -> bytes:
    """The shipped file a round started from, out of git history, checked against the hash the selection recorded
    for the warm start."""
    data = subprocess.run(["git", "show", f"{rnd.start_commit}:data/weights/{tracker}.safetensors"], cwd=ROOT,
                          check=True, capture_output=True).stdout
    entry = json.loads((DATA / "selection.json").read_text())["trackers"][tracker]
    expected = {entry["candidates"][n]["warm_start"]["sha256"] for n in rnd.candidates(entry)}
    if not expected:
        raise ValueError(f"{tracker}: data/selection.json holds no round-{rnd.number} candidate to check the "
                         "starting file against")
    if {hashlib.sha256(data).hexdigest()} != expected:
        raise ValueError(f"{tracker}: the file at {rnd.start_commit} is not the one round {rnd.number} started from")
    return data


def train_commands(rnd: Round, out: Path) -> list[list[str]]:
    """The two ``dimp train`` calls of a round's plan (the starting files are copied to ``out`` first)."""
    return [[sys.executable, "-m", "dimp_core.cli", "train", "--tracker", t, "--preset", "gpu",
             "--seed", str(rnd.seed), "--out", str(out / t), "--set", (rnd.plan / f"{t}.set.json").read_text()]
            for t in TRACKERS]


def _steps(path: Path) -> list[dict[str, Any]]:
    return [e for e in map(json.loads, path.read_text().splitlines()) if "total" in e]


def summarise(start: dict[str, list[dict]], after: dict[str, list[dict]]) -> dict[str, Any]:
    """Per tracker and window (the starting run's last 100 steps, the round's first 50 and last 100): the mean of
    each of its :data:`LOSS` terms."""
    import numpy as np

    out: dict[str, Any] = {}
    for t in TRACKERS:
        windows = {"start_last100": start[t][-100:], "fresh_first50": after[t][:50], "last100": after[t][-100:]}
        out[t] = {w: {term: float(np.mean([e[term] for e in steps])) for term in LOSS[t]}
                  for w, steps in windows.items()}
    return out


def table(rnd: Round, summary: dict[str, Any], selection: dict[str, Any]) -> str:
    n = rnd.number
    rows = [f"| tracker | loss term | starting weights, own pool (last 100 steps) | starting weights, round {n}'s "
            f"fresh pool (first 50) | round {n} (last 100) | synth-val AUC, start / round {n} | shipped |",
            "|---|---|---:|---:|---:|---:|---|"]
    for t in TRACKERS:
        s, entry = summary[t], selection["trackers"][t]
        names = rnd.candidates(entry)
        start = entry["candidates"][names[0]]["warm_start"]["sha256"]  # the file the round started from
        first = next(name for name, c in entry["candidates"].items() if c["sha256"] == start)
        val = " / ".join(f"{entry['candidates'][name]['auc']:.1f}" + (" (fp16)" if name.endswith("fp16") else "")
                         for name in names)
        for i, term in enumerate(LOSS[t]):
            auc = f"{entry['candidates'][first]['auc']:.1f} ({first}) / {val} | {entry['selected']}" if i == 0 \
                else " | "
            rows.append(f"| `{t}` | {term} | {s['start_last100'][term]:.3f} | {s['fresh_first50'][term]:.3f} "
                        f"| {s['last100'][term]:.3f} | {auc} |")
    return "\n".join(rows)


def summary_of(rnd: Round) -> dict[str, Any]:
    return summarise({t: _steps(rnd.start_logs[t]) for t in TRACKERS}, {t: _steps(rnd.logs[t]) for t in TRACKERS})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=("train", "readme"))
    parser.add_argument("round", nargs="?", type=int, choices=sorted(ROUNDS), help="the round to train")
    args = parser.parse_args(argv)
    if args.what == "train":
        if args.round is None:
            parser.error("give the round to train")
        rnd = ROUNDS[args.round]
        out = ROOT / "results" / f"round{rnd.number}"  # where the settings' init_weights point
        out.mkdir(parents=True, exist_ok=True)
        for t in TRACKERS:  # the plan's starting points, under the names the settings give
            name = Path(json.loads((rnd.plan / f"{t}.set.json").read_text())["init_weights"]).name
            (out / name).write_bytes(start_file(rnd, t))
        for command in train_commands(rnd, out):
            subprocess.run(command, check=True, cwd=ROOT)
        return 0
    selection = json.loads((DATA / "selection.json").read_text())
    for rnd in ROUNDS.values():
        summary = summary_of(rnd)
        (DATA / f"round{rnd.number}.json").write_text(json.dumps({"summary": summary}, indent=1) + "\n")
        write_section(f"round{rnd.number}-table", table(rnd, summary, selection))
        print(f"updated data/round{rnd.number}.json and the round-{rnd.number} table in README.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
