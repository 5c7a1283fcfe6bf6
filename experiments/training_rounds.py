"""Training rounds 3 to 6: continue the shipped trackers on fresh training data.

Usage (from the repository root)::

    python experiments/training_rounds.py train 4   # both runs of a round, one after the other (round 4: ~20 min atom,
                                              # ~75 min dimp on 2 cores)
    python experiments/training_rounds.py doc       # each round's table in docs/training.md, from the logs

A round's plan is fixed before its runs, in ``experiments/runs/round<N>/plan.txt`` with one ``<tracker>.set.json`` of
settings per tracker. Both trackers continue from earlier files (the ones shipped when the round was planned, taken
from git history, or an earlier round's outputs) and train the same schedule on a fresh pool (training seed N - 2:
sequences neither has seen); the candidates are scored on synth-val with ``tools/select_on_val.py`` beside the
earlier ones, and, as in every round, each tracker ships the candidate with the highest synth-val AUC; synth-test
only after that choice.

- round 3 (CPU): 500 steps x 16 on 480 new sequences x 80 frames, learning rates 0.2 x the ``gpu`` preset's, x 0.2
  at 60 %.
- round 4 (CPU): 400 steps x 16 (what fit the CPU time) on 800 new sequences x 48 frames (the same frames on disk,
  1.7 x the sequences: round 3's losses showed DiMP's predictor fitting its pool), round 3's rates.
- round 5 (an H200, both runs in one call of ``tools/gpu_train.sh``): 2400 steps x 16 on 2000 new sequences
  x 32 frames, round 3's rates.
- round 6 (the same machine, the next call): round 5's schedule again from round 5's outputs, 2000 more sequences.
  ``train 6`` needs round 5's candidates in ``results/candidates/``.

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

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))  # the shared doc_section, make_eval_table
from doc_section import write_section  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TRACKERS = ("atom", "dimp")
LOSS = {"atom": ("iou",), "dimp": ("clf_final", "iou")}  # the trained heads' terms: DiMP's final filter, IoU-Nets
DATA = ROOT / "data"
RUNS = DATA / "runs"  # the logs and metadata of the training runs
HERE = Path(__file__).resolve().parent  # the round plans (runs/round<N>), selection.json, round<N>.json


def run_log(tracker: str, number: int) -> Path:
    """The log of round ``number``'s run of ``tracker`` (round 2: the GPU run of 2000 steps): in data/runs, or
    beside the shipped file when that run made it (checked against the shipped file's seed, N - 2)."""
    kept = RUNS / f"{tracker}-r{number}.log.jsonl"
    if kept.exists():
        return kept
    from dimp_core import checkpoints

    meta = checkpoints.load_checkpoint_info(DATA / "weights" / f"{tracker}.safetensors")
    if meta["seed"] != number - 2:
        raise FileNotFoundError(f"no log of round {number}'s {tracker} run: not in {RUNS} and the shipped file is "
                                f"from seed {meta['seed']}")
    return DATA / "weights" / f"{tracker}.log.jsonl"


@dataclass(frozen=True)
class Round:
    """One training round: what it started from, and how long it ran."""

    number: int
    starts: dict[str, int]  # per tracker, the round whose file it continued
    steps: int
    start_commit: str = ""  # the last commit whose data/weights held the starting files ("": an earlier round's
    # outputs, the candidates r<start> in experiments/selection.json)

    @property
    def plan(self) -> Path:
        return HERE / "runs" / f"round{self.number}"

    @property
    def seed(self) -> int:  # a fresh pool and fresh batches for every round
        return self.number - 2

    @property
    def start_logs(self) -> dict[str, Path]:  # the logs of the runs that made the starting files
        return {t: run_log(t, n) for t, n in self.starts.items()}

    @property
    def logs(self) -> dict[str, Path]:  # this round's logs
        return {t: run_log(t, self.number) for t in TRACKERS}

    def candidates(self, entry: dict[str, Any]) -> list[str]:
        """This round's candidates among a tracker's entry in experiments/selection.json."""
        return [n for n in entry["candidates"] if n.split("-")[0] == f"r{self.number}"]


ROUNDS = {
    3: Round(3, {"atom": 2, "dimp": 2}, 500, "f98af55"),
    4: Round(4, {"atom": 2, "dimp": 3}, 400, "5a11b9b"),
    5: Round(5, {"atom": 2, "dimp": 3}, 2400, "0a281ea"),
    6: Round(6, {"atom": 5, "dimp": 5}, 2400),
}


def _selection_entry(tracker: str) -> dict[str, Any]:
    return json.loads((HERE / "selection.json").read_text())["trackers"][tracker]


def start_sha256(rnd: Round, tracker: str) -> str:
    """The SHA-256 of the file a round started from, as its candidates record it (their ``warm_start``), checked
    against the source: the file in git history, or the run output behind the earlier round's candidate."""
    entry = _selection_entry(tracker)
    expected = {entry["candidates"][n]["warm_start"]["sha256"] for n in rnd.candidates(entry)}
    if len(expected) != 1:
        raise ValueError(f"{tracker}: experiments/selection.json holds {len(expected)} starting files for round "
                         f"{rnd.number}'s candidates (expected one)")
    if rnd.start_commit:
        source = hashlib.sha256(start_file(rnd, tracker)).hexdigest()
    else:  # an earlier round's output: the GPU run's file, recorded by the candidate made from it
        source = _round_output_meta(tracker, rnd.starts[tracker])["source_sha256"]
    if {source} != expected:
        raise ValueError(f"{tracker}: round {rnd.number} did not start from the file its plan names")
    return source


def _round_output_meta(tracker: str, number: int) -> dict[str, Any]:
    """The metadata of round ``number``'s file of ``tracker``: data/runs/<tracker>-r<number>.meta.json, or the
    shipped file when that round shipped."""
    kept = RUNS / f"{tracker}-r{number}.meta.json"
    if kept.exists():
        return json.loads(kept.read_text())
    from dimp_core import checkpoints

    shipped = DATA / "weights" / f"{tracker}.safetensors"
    if run_log(tracker, number).parent != shipped.parent:  # run_log also checks the shipped file's seed
        raise FileNotFoundError(f"no metadata of round {number}'s {tracker} file in {RUNS}")
    return checkpoints.load_checkpoint_info(shipped)


def start_file(rnd: Round, tracker: str) -> bytes:
    """The file a round started from: out of git history (``start_commit``), or the earlier round's candidate in
    results/candidates (checked against the hash experiments/selection.json records for it)."""
    if rnd.start_commit:
        return subprocess.run(["git", "show", f"{rnd.start_commit}:data/weights/{tracker}.safetensors"], cwd=ROOT,
                              check=True, capture_output=True).stdout
    name = f"r{rnd.starts[tracker]}"
    path = ROOT / "results" / "candidates" / f"{tracker}-{name}.safetensors"
    if not path.exists():
        raise FileNotFoundError(f"round {rnd.number} starts from {path}: train round {rnd.starts[tracker]} and "
                                f"score it with tools/select_on_val.py first")
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != _selection_entry(tracker)["candidates"][name]["sha256"]:
        raise ValueError(f"{path} is not the {name} candidate experiments/selection.json records")
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
            f"fresh pool (first 50) | round {n} (last 100) | synth-val AUC, start / round {n} | shipped now |",
            "|---|---|---:|---:|---:|---:|---|"]
    for t in TRACKERS:
        s, entry = summary[t], selection["trackers"][t]
        names = rnd.candidates(entry)
        if rnd.start_commit:  # the shipped file the round started from, among the candidates
            start = entry["candidates"][names[0]]["warm_start"]["sha256"]
            first = next(name for name, c in entry["candidates"].items() if c["sha256"] == start)
        else:  # an earlier round's candidate (its metadata re-recorded, so its hash is not the warm start's)
            first = f"r{rnd.starts[t]}"
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
    parser.add_argument("what", choices=("train", "doc"))
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
    selection = json.loads((HERE / "selection.json").read_text())
    for rnd in ROUNDS.values():
        summary = summary_of(rnd)
        (HERE / f"round{rnd.number}.json").write_text(json.dumps({"summary": summary}, indent=1) + "\n")
        page = write_section(f"round{rnd.number}-table", table(rnd, summary, selection))
        print(f"updated experiments/round{rnd.number}.json and the round-{rnd.number} table in {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
