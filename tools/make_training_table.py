"""Write the table of training runs behind the shipped weights into docs/training.md.

Usage (from the repository root)::

    python tools/make_training_table.py

Reads each ``data/weights/<tracker>.safetensors`` (its metadata: preset, steps, seed, wall time) and the
run's log ``data/weights/<tracker>.log.jsonl`` (copied from ``results/train/<tracker>-<preset>/log.jsonl``
by the run that produced the weights), plus earlier runs kept as ``data/runs/<name>.meta.json`` (the weights'
metadata) and ``data/runs/<name>.log.jsonl``, and replaces the text between ``<!-- train-table:start -->`` and
``<!-- train-table:end -->`` in docs/training.md.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from doc_section import write_section

ROOT = Path(__file__).resolve().parents[1]


def row(meta: dict, log_path: Path, shipped: bool) -> str:
    from dimp_core import checkpoints

    log = [json.loads(line) for line in log_path.read_text().splitlines()]
    val = ", ".join(f"{e['step']}: {e['val_auc']:.1f}" for e in log if "val_auc" in e)
    cfg = meta["config"]
    steps = meta.get("steps_done", cfg["steps"])
    warm = ""
    earlier = checkpoints.training_runs(meta)[:-1]  # continued from other runs' weights (fresh optimiser each)
    if earlier:
        warm = ", continuing " + ", then ".join(f"the {r['config']['preset']} {r.get('steps_done')} x "
                                                f"{r['config']['batch_size']} run of seed {r['seed']}" for r in earlier)
    hardware = meta.get("hardware", meta.get("device", "?"))
    return (f"| `{meta['tracker']}` | {'yes' if shipped else 'no'} | {cfg['preset']}, {steps} x {cfg['batch_size']}, "
            f"{meta['seed']}{warm} | {hardware} | {meta['wall_time_s'] / 60:.1f} min | {val} |")


def table() -> str:
    from dimp_core import checkpoints

    rows = ["| tracker | shipped | preset, steps x batch, seed | hardware | wall time | validation AUC (step: AUC) |",
            "|---|---|---|---|---:|---|"]
    for weights in sorted((ROOT / "data" / "weights").glob("*.safetensors")):
        rows.append(row(checkpoints.load_checkpoint_info(weights), weights.with_suffix(".log.jsonl"), True))
    for meta_path in sorted((ROOT / "data" / "runs").glob("*.meta.json")):
        log_path = meta_path.with_name(meta_path.name.replace(".meta.json", ".log.jsonl"))
        rows.append(row(json.loads(meta_path.read_text()), log_path, False))
    return "\n".join(rows)


def main() -> int:
    page = write_section("train-table", table())
    print(f"updated the training table in {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
