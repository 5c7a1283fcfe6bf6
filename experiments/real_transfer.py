"""What of DiMP transfers to real imagery? Each learned part against its untrained or analytic stand-in, on real-val.

Usage (from the repository root)::

    python experiments/real_transfer.py [--cells dimp dimp-no-refinement ...] [--threads 1]  # -> JSON + docs table
    python experiments/real_transfer.py --doc                                                # docs table only

Every cell is one tracker run once over ``real-val`` (tracker seed 0, one torch thread; result files under
``results/real-transfer/``, reused when present, as by ``dimp eval``). The cells:

- localisation (issue item b): the IoU-Net refinement, none (classifier peak, scale from the previous box),
  or ATOM's IoU-Net weights in DiMP;
- the learned parts of the model predictor (item f): the initialiser's learned 3x3 conv replaced by the
  identity (the initial filter is the mean feature in the box), a zero initial filter, the learned loss replaced
  by the plain L2 loss (Gaussian label, no mask, uniform weight), no online update;
- training data (item d): weights trained on synthetic data only (the shipped file before real data), mixed,
  real only (``--weights LABEL=PATH`` adds a cell for any weights file);
- the other trackers on the same backbone and data: ``atom``, ``siamfc``; OpenCV's CSRT as the reference.

The JSON (``experiments/real_transfer.json``) holds each cell's AUC per sequence and the paired bootstrap of its
difference from ``dimp`` (10 000 resamples over the sequences). Choices are made on real-val only.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
from doc_section import write_section  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
JSON = ROOT / "experiments" / "real_transfer.json"
RESULTS = ROOT / "results" / "real-transfer"
# label -> (tracker, tracker parameter overrides, network surgery, what it tests)
CELLS: dict[str, tuple[str, dict[str, Any], str, str]] = {
    "dimp": ("dimp", {}, "", "shipped dimp: learned initialiser, learned loss, Gauss-Newton steps, IoU-Net"),
    "dimp-no-refinement": ("dimp", {"use_iou_net": False}, "", "classifier peak only, scale from the previous box"),
    "dimp+atom-iounet": ("dimp", {}, "atom-iounet", "ATOM's IoU-Net weights in DiMP"),
    "dimp-mean-init": ("dimp", {}, "mean-init", "initial filter = mean feature in the box (no learned conv)"),
    "dimp-zero-init": ("dimp", {}, "zero-init", "initial filter = 0 (steepest descent alone)"),
    "dimp-l2-loss": ("dimp", {}, "l2-loss", "plain L2 loss: Gaussian label, no mask, uniform weight"),
    "dimp-no-update": ("dimp", {"update_classifier": False}, "", "the first frame's filter for the whole sequence"),
    "atom": ("atom", {}, "", "ATOM: online Gauss-Newton classifier, same backbone and IoU-Net design"),
    "atom-no-refinement": ("atom", {"use_iou_net": False}, "", "ATOM without its IoU-Net"),
    "siamfc": ("siamfc", {}, "", "SiamFC on the same backbone"),
    "opencv-csrt": ("opencv-csrt", {}, "", "OpenCV CSRT (reference)"),
}


def _surgery(net: Any, kind: str) -> Any:
    import torch

    from dimp_core.trackers import load_network

    class ZeroInit(torch.nn.Module):
        """A filter initialiser that returns zeros of the learned one's shape."""

        def __init__(self, learned: torch.nn.Module) -> None:
            super().__init__()
            self.learned = learned

        def forward(self, feat: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
            return self.learned(feat, boxes) * 0

    if kind == "atom-iounet":  # strict: the two IoU-Nets have the same architecture
        net.bb_regressor.load_state_dict(load_network("atom", None).bb_regressor.state_dict())
    elif kind == "mean-init":
        net.classifier.filter_initializer.filter_conv = torch.nn.Identity()
    elif kind == "zero-init":
        net.classifier.filter_initializer = ZeroInit(net.classifier.filter_initializer)
    elif kind == "l2-loss":
        net.classifier.filter_optimizer.loss = "l2"
    elif kind:
        raise ValueError(f"unknown surgery {kind!r}")
    return net


def build_cell(label: str, weights: str | None = None) -> Any:
    """The tracker of cell ``label``; ``weights`` (``TRACKER:PATH`` or a dimp ``PATH``) adds a cell for a file."""
    import torch

    from dimp_core.trackers import build_tracker, load_network
    from dimp_core.trackers.dimp import DiMPParams, DiMPTracker

    tracker, overrides, surgery, _ = CELLS.get(label, ("dimp", {}, "", ""))
    if weights and ":" in weights and label not in CELLS:
        tracker, weights = weights.split(":", 1)
    if tracker == "dimp" and (surgery or weights):
        net = _surgery(load_network("dimp", weights), surgery)
        return DiMPTracker(net, DiMPParams(**overrides), torch.device("cpu"), name="dimp")
    return build_tracker(tracker, device="cpu", **({"weights": weights} if weights else {}), **overrides)


def _weights_what(spec: str) -> str:
    """What a weights cell is, from the training configuration recorded in the file."""
    from dimp_core import checkpoints

    tracker, _, path = spec.rpartition(":") if ":" in spec else ("dimp", "", spec)
    c = checkpoints.load_checkpoint_info(path).get("config", {})
    start = Path(c["init_weights"]).name if c.get("init_weights") else "scratch"
    return (f"{tracker or 'dimp'} fine-tuned from {start}: {c.get('steps')} steps x {c.get('batch_size')}, "
            f"{c.get('pool_sequences')} synthetic + {c.get('real_sequences', 0)} real sequences of "
            f"{c.get('pool_frames')} frames, feature cache {c.get('feature_cache', 0)}")


def run_cells(labels: list[str], extra: dict[str, str], threads: int) -> dict[str, Any]:
    import torch

    from dimp_core.data.benchmarks import load_dataset
    from dimp_core.evaluation import evaluate, run_tracker
    from dimp_core.evaluation.significance import paired_bootstrap

    torch.set_num_threads(threads)
    dataset = load_dataset("real-val")
    for label in labels:
        run_tracker(lambda label=label: build_cell(label, extra.get(label)), dataset, RESULTS, tracker_name=label)
    summary = evaluate(dataset, RESULTS, labels)["trackers"]
    table = json.loads(JSON.read_text()) if JSON.exists() else {"cells": {}}
    for label in labels:
        s = summary[label]
        table["cells"][label] = {
            "what": CELLS[label][3] if label in CELLS else _weights_what(extra[label]),
            "weights": extra.get(label, "shipped"), "auc": s["auc"], "precision": s["precision"],
            "sequences": {k: v["auc"] for k, v in s["sequences"].items()}}
    base = table["cells"].get("dimp")
    table["vs_dimp"] = {} if base is None else {
        label: vars(paired_bootstrap(cell["sequences"], base["sequences"], label, "dimp"))
        for label, cell in table["cells"].items() if label != "dimp"}
    table.update(dataset="real-val", num_sequences=len(dataset), torch_threads=threads, tracker_seed=0)
    JSON.write_text(json.dumps(table, indent=1) + "\n")
    return table


def doc_table(table: dict[str, Any]) -> str:
    lines = ["| cell | what | AUC | precision | minus dimp [95 % interval] |", "|---|---|---|---|---|"]
    for label, cell in table["cells"].items():
        d = table["vs_dimp"].get(label)
        diff = "" if d is None else f"{d['mean']:+.1f} [{d['low']:+.1f}, {d['high']:+.1f}]"
        lines.append(f"| `{label}` | {cell['what']} | {cell['auc']:.1f} | {cell['precision']:.1f} | {diff} |")
    return "\n".join(lines) + (f"\n\n{table['num_sequences']} sequences of real-val, tracker seed 0, "
                               f"{table['torch_threads']} torch thread; `python experiments/real_transfer.py`.")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cells", nargs="*", default=None, help=f"cells to run (default: all): {', '.join(CELLS)}")
    parser.add_argument("--weights", nargs="*", default=[],
                        help="LABEL=[TRACKER:]PATH: a cell for another weights file (tracker default: dimp)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--doc", action="store_true", help="only rewrite the docs table from the JSON")
    args = parser.parse_args()
    if not args.doc:
        extra = dict(item.split("=", 1) for item in args.weights)
        labels = (args.cells if args.cells is not None else list(CELLS)) + [k for k in extra if k not in CELLS]
        table = run_cells(labels, extra, args.threads)
    else:
        table = json.loads(JSON.read_text())
    try:
        print(f"wrote {write_section('real-transfer', doc_table(table))}")
    except ValueError as err:  # the page has no section yet
        print(f"docs table not written: {err}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
