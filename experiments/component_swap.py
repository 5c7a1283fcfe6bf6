"""Where does the ``dimp`` - ``atom`` difference come from: the classifier, the IoU-Net, the online update?

Usage (from the repository root)::

    python experiments/component_swap.py [--datasets synth-val synth-test] [--threads 1 2]  # -> JSON + docs table
    python experiments/component_swap.py --doc                                              # docs table only

Both shipped trackers find the target in two stages: a classifier locates it (DiMP's model predictor, ATOM's
online Gauss-Newton classifier) and an IoU-Net refines the box. The two IoU-Nets have the same architecture on
the same backbone layers and were trained on the same data, so their weights can be exchanged. This script runs
the four combinations with tracker seed 0 (``results/swap-<dataset>-<threads>thread/``; existing result files
are reused, as by ``dimp eval``), once with one torch thread per run and once with two: the order in which a
convolution sums its terms depends on the thread count, and ATOM's tracks are sensitive to that last bit.
Two more cells keep each tracker's first-frame model for the whole sequence (``update_classifier=False``):

=====================  ============================  ==========================  ==============
label                  classifier (online logic)     IoU-Net weights             online update
=====================  ============================  ==========================  ==============
``dimp``               DiMP's model predictor        trained with DiMP           yes
``dimp+atom-iounet``   DiMP's model predictor        trained with ATOM           yes
``atom+dimp-iounet``   ATOM's online classifier      trained with DiMP           yes
``atom``               ATOM's online classifier      trained with ATOM           yes
``dimp-no-update``     DiMP's model predictor        trained with DiMP           no
``atom-no-update``     ATOM's online classifier      trained with ATOM           no
``dimp+atom-schedule`` DiMP's model predictor        trained with DiMP           ATOM's schedule
``atom+dimp-schedule`` ATOM's online classifier      trained with ATOM           DiMP's schedule
=====================  ============================  ==========================  ==============

Each tracker keeps its own box-refinement settings (pytracking's ``dimp18.py`` and ATOM's ``default.py``); only
the IoU-Net's weights move. The effects are paired differences over the sequences: the classifier's with either
IoU-Net held fixed, the IoU-Net's with either classifier held fixed, the two trackers without updates, and what
the online update adds to each. Reporting only: nothing is selected or shipped on it (decided before the runs).

The last two cells (added later, planned before their runs, reporting only as well) ask why ATOM's update
gains more than DiMP's: its schedule or its learner? An update has a schedule (the sample memory's size and how
often the filter is optimised: DiMP 50 samples and every 20th frame, ATOM 250 and every 10th) and a learner (DiMP 2
steepest-descent steps of the learned loss per update, 1 after a hard negative; ATOM one Gauss-Newton linearisation
with 5 conjugate-gradient steps). Each tracker runs once with the other's schedule and its own learner; learning
rates and the first frame's minimum weight are the same in both trackers and stay.
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))  # the shared doc_section, make_eval_table
from doc_section import write_section  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# label -> (tracker whose classifier and online logic run, tracker whose IoU-Net weights it uses, online update)
CELLS = {"dimp": ("dimp", "dimp", True), "dimp+atom-iounet": ("dimp", "atom", True),
         "atom+dimp-iounet": ("atom", "dimp", True), "atom": ("atom", "atom", True),
         "dimp-no-update": ("dimp", "dimp", False), "atom-no-update": ("atom", "atom", False),
         "dimp+atom-schedule": ("dimp", "dimp", True), "atom+dimp-schedule": ("atom", "atom", True)}
# the cells that run with the other tracker's update schedule: its sample memory size and optimisation interval
SCHEDULE_SWAPS = ("dimp+atom-schedule", "atom+dimp-schedule")
SCHEDULE_FIELDS = ("sample_memory_size", "train_skipping")
# effect name -> (label a, label b): the effect is a - b, per sequence
EFFECTS = {
    "classifier, DiMP's IoU-Net": ("dimp", "atom+dimp-iounet"),
    "classifier, ATOM's IoU-Net": ("dimp+atom-iounet", "atom"),
    "IoU-Net, DiMP's classifier": ("dimp", "dimp+atom-iounet"),
    "IoU-Net, ATOM's classifier": ("atom+dimp-iounet", "atom"),
    "first-frame models, own IoU-Nets": ("dimp-no-update", "atom-no-update"),
    "online update, DiMP": ("dimp", "dimp-no-update"),
    "online update, ATOM": ("atom", "atom-no-update"),
    "ATOM's schedule, DiMP's learner": ("dimp+atom-schedule", "dimp"),
    "ATOM's schedule, ATOM's learner": ("atom", "atom+dimp-schedule"),
}


def build_cell(label: str, device: str = "cpu", seed: int = 0) -> Any:
    """The tracker of ``label``: the shipped network of its classifier's tracker, with the other tracker's
    IoU-Net weights if asked, swapped before the tracker makes its inference copy (which folds BatchNorm), and
    the online update on or off."""
    import torch

    from dimp_core.trackers import load_network
    from dimp_core.trackers.atom import ATOMParams, ATOMTracker
    from dimp_core.trackers.dimp import DiMPParams, DiMPTracker

    classifier, iounet, update = CELLS[label]
    net = load_network(classifier, None)
    if iounet != classifier:  # strict loading: the two IoU-Nets must have the same architecture
        net.bb_regressor.load_state_dict(load_network(iounet, None).bb_regressor.state_dict())
    schedule = {}
    if label in SCHEDULE_SWAPS:  # the other tracker's defaults
        donor = ATOMParams() if classifier == "dimp" else DiMPParams()
        schedule = {name: getattr(donor, name) for name in SCHEDULE_FIELDS}
    if classifier == "dimp":
        return DiMPTracker(net, DiMPParams(seed=seed, update_classifier=update, **schedule), torch.device(device),
                           name="dimp")
    return ATOMTracker(net, ATOMParams(seed=seed, update_classifier=update, **schedule), torch.device(device))


def run_cell(dataset_name: str, label: str, threads: int = 1) -> dict[str, float]:
    """Per-sequence AUC of cell ``label`` on ``dataset_name``, tracked with ``threads`` torch threads."""
    import torch

    from dimp_core.data.benchmarks import load_dataset
    from dimp_core.evaluation import evaluate, run_tracker

    torch.set_num_threads(threads)
    dataset = load_dataset(dataset_name)
    out = ROOT / "results" / f"swap-{dataset_name}-{threads}thread"
    run_tracker(build_cell(label), dataset, out, tracker_name=label)
    return {s: v["auc"] for s, v in evaluate(dataset, out, [label])["trackers"][label]["sequences"].items()}


def summarise(per_sequence: dict[str, dict[str, float]]) -> dict[str, Any]:
    """Mean AUC per cell and each effect (a - b) with its 95 % paired interval over the sequences."""
    import numpy as np

    from dimp_core.evaluation import paired_bootstrap

    auc = {label: float(np.mean(list(per_sequence[label].values()))) for label in CELLS}
    effects = {}
    for name, (a, b) in EFFECTS.items():
        d = paired_bootstrap(per_sequence[a], per_sequence[b], a, b)
        effects[name] = {"a": a, "b": b, "mean": d.mean, "low": d.low, "high": d.high, "p_positive": d.p_a_better}
    return {"auc": auc, "effects": effects}


def run_name(dataset: str, threads: int) -> str:
    return f"{dataset}, {threads} thread{'s' if threads > 1 else ''}"


def table(data: dict[str, Any]) -> str:
    runs = list(data["runs"])
    s = {name: data["runs"][name]["summary"] for name in runs}
    rows = ["| classifier | IoU-Net trained with | online update | " + " | ".join(f"{r}: AUC" for r in runs) + " |",
            "|---|---|---|" + "---:|" * len(runs)]
    for label, (classifier, iounet, update) in CELLS.items():
        name = {"dimp": "DiMP", "atom": "ATOM"}
        cells = " | ".join(f"{s[r]['auc'][label]:.1f}" for r in runs)
        how = "yes" if update else "no"
        if label in SCHEDULE_SWAPS:
            how = f"{name['atom' if classifier == 'dimp' else 'dimp']}'s schedule"
        rows.append(f"| {name[classifier]} (`{label}`) | {name[iounet]} | {how} | {cells} |")
    rows += ["", "| effect (a - b) [95 % interval] | " + " | ".join(runs) + " |", "|---|" + "---:|" * len(runs)]
    for effect, (a, b) in EFFECTS.items():
        cells = " | ".join(f"{e['mean']:+.1f} [{e['low']:+.1f}, {e['high']:+.1f}]"
                           for e in (s[r]["effects"][effect] for r in runs))
        rows.append(f"| {effect}: `{a}` - `{b}` | {cells} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["synth-val", "synth-test"])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                        help="torch threads per run; each count is a run of its own (the numbers depend on it)")
    parser.add_argument("--cores", type=int, default=2, help="runs in parallel: cores // threads")
    parser.add_argument("--json", default=str(ROOT / "experiments" / "component_swap.json"))
    parser.add_argument("--doc", action="store_true", help="write the table in docs/ from the JSON and exit")
    args = parser.parse_args(argv)
    path = Path(args.json)
    if not args.doc:
        runs: dict[str, Any] = {}
        for threads in args.threads:
            jobs = [(d, label) for d in args.datasets for label in CELLS]
            with ProcessPoolExecutor(max(1, args.cores // threads)) as pool:
                aucs = list(pool.map(run_cell, *zip(*jobs, strict=True), [threads] * len(jobs)))
            for d in args.datasets:
                per_sequence = {label: a for (dd, label), a in zip(jobs, aucs, strict=True) if dd == d}
                runs[run_name(d, threads)] = {"dataset": d, "torch_threads": threads, "per_sequence": per_sequence,
                                              "summary": summarise(per_sequence)}
        path.write_text(json.dumps({"tracker_seed": 0, "runs": runs}, indent=1) + "\n")
    data = json.loads(path.read_text())
    write_section("swap-table", table(data))
    print(table(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
