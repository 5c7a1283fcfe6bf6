"""Compare the frozen and fine-tuned backbone runs of ``experiments/runs/backbone-check`` over the steps both reached.

Usage: ``python experiments/backbone_check.py`` (``experiments/runs/backbone-check/README.md`` says where the logs
come from).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

RUNS = Path(__file__).resolve().parent / "runs" / "backbone-check"


def steps(path: Path) -> dict[int, dict]:
    return {e["step"]: e for e in map(json.loads, path.read_text().splitlines()) if "total" in e}


def main() -> int:
    logs = {name: steps(RUNS / f"{name}.log.jsonl") for name in ("frozen", "finetune-2e-5")}
    last = min(max(log) for log in logs.values())
    window = range(last - 49, last + 1)
    for name, log in logs.items():
        total = np.mean([log[s]["total"] for s in window])
        final = np.mean([log[s]["clf_final"] for s in window])
        print(f"{name:14s} steps done {max(log):4d}  s/step {log[last]['seconds'] / last:.3f}  "
              f"steps {window.start}-{last}: total loss {total:.3f}, final-filter loss {final:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
