"""Write the table of training runs behind the shipped weights into README.md.

Usage (from the repository root)::

    python tools/make_training_table.py

Reads each ``data/weights/<tracker>.safetensors`` (its metadata: preset, steps, seed, wall time) and the
run's log ``data/weights/<tracker>.log.jsonl`` (copied from ``results/train/<tracker>-<preset>/log.jsonl``
by the run that produced the weights), and replaces the text between ``<!-- train-table:start -->`` and
``<!-- train-table:end -->`` in README.md.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- train-table:start -->", "<!-- train-table:end -->"


def table() -> str:
    from dimp_core import checkpoints

    rows = ["| tracker | preset, steps x batch, seed | hardware | wall time | validation AUC (step: AUC) |",
            "|---|---|---|---:|---|"]
    for weights in sorted((ROOT / "data" / "weights").glob("*.safetensors")):
        meta = checkpoints.load_checkpoint_info(weights)
        log = [json.loads(line) for line in weights.with_suffix(".log.jsonl").read_text().splitlines()]
        val = ", ".join(f"{e['step']}: {e['val_auc']:.1f}" for e in log if "val_auc" in e)
        cfg = meta["config"]
        steps = meta.get("steps_done", cfg["steps"])
        rows.append(f"| `{meta['tracker']}` | {cfg['preset']}, {steps} x {cfg['batch_size']}, {meta['seed']} "
                    f"| {meta.get('hardware', meta.get('device', '?'))} | {meta['wall_time_s'] / 60:.1f} min | {val} |")
    return "\n".join(rows)


def main() -> int:
    readme = ROOT / "README.md"
    text = readme.read_text()
    if text.count(START) != 1 or text.count(END) != 1:
        raise ValueError(f"README must hold exactly one {START} ... {END} pair")
    head, rest = text.split(START)
    _, tail = rest.split(END)
    readme.write_text(f"{head}{START}\n{table()}\n{END}{tail}")
    print(f"updated the training table in {readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
