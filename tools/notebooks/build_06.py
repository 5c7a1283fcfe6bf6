"""Write notebooks/06_training.ipynb (no outputs): ``python tools/notebooks/build_06.py``.

The notebook is generated so that its cells stay reviewable as plain text; edit this file and rerun it.
Cell ids are fixed (``06-00``, ``06-01``, ...), so regenerating an unchanged notebook gives identical bytes.
"""

from __future__ import annotations

from nbbuild import write

CELLS: list[tuple[str, str]] = [
    ("md", r"""# 06 · Training DiMP: meta-learning the model predictor

DiMP is trained *offline* to be good at learning *online*. One training example is a short episode cut
from one sequence: a train set $S_\text{train}$ of 3 frames with their target boxes, from which the model
predictor $D$ learns a filter, and a test set $S_\text{test}$ of 3 later frames, on which that filter is judged.
The predictor starts from the initialiser's $f^{(0)}$ and takes $N_\text{iter} = 5$ steepest-descent steps
$f^{(i+1)} = f^{(i)} - \alpha^{(i)} \nabla L(f^{(i)})$ on the learned discriminative loss $L$ over $S_\text{train}$.
Every iterate is scored on the test frames (the paper's eq. 10):

$$L_\text{cls} = \frac{1}{N_\text{iter}} \sum_{i=0}^{N_\text{iter}} \sum_{(x, c) \in S_\text{test}}
\big\lVert \ell\big(x \ast f^{(i)}, z_c\big) \big\rVert^2, \qquad
\ell(s, z) = \begin{cases} s - z & z > T \\ \max(0, s) & z \le T \end{cases}$$

with $z_c$ a Gaussian label at the target centre $c$ and $T = 0.05$ (pytracking's LBHinge); the IoU-Net's
loss on box proposals is added. Gradients flow through all the unrolled steps into the initialiser, the loss
parameters, the step length and the feature head: that is what "meta-learning" means here.

The notebook walks through one example (sampling, crops, labels, proposals), the losses over the predictor's
iterations, a short live training run, and the logs of the runs that produced the shipped weights.

Presets: `fast` (tests, `make report`): 5 sampling draws, 6 examples (3 sequences) for the iteration losses,
the `smoke` training preset (12 steps); `full`: 8 draws, 32 examples (8 sequences), and the smoke run stretched
to 150 steps on 8 sequences."""),
    ("params", r"""preset = "fast"  # "fast" (tests, make report): a smoke run of 12 steps | "full": 150 steps
record_path = "records/06_training.json"
figures_dir = "../figures"
seed = 0  # the training sequence, the sampler, the processing and the live run"""),
    ("code", r"""%matplotlib inline
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from dimp_core import checkpoints
from dimp_core.data.synthetic import make_sequence
from dimp_core.train import preset as train_preset, train
from dimp_core.train.losses import DiMPLossWeights
from dimp_core.train.processing import ProcessingParams, make_example
from dimp_core.train.sampler import sample_causal
from dimp_core.trackers import WEIGHTS_DIR, build_tracker
from dimp_core.viz import training as vt
from dimp_core.viz.figures import savefig

if preset not in ("fast", "full"):
    raise ValueError(f"preset must be 'fast' or 'full', got {preset!r}")
SETTINGS = {
    "fast": {"draws": 5, "sequences": 3, "per_sequence": 2, "live": {}},
    "full": {"draws": 8, "sequences": 8, "per_sequence": 4, "live": {"steps": 150, "pool_sequences": 8}},
}[preset]
figures = Path(figures_dir)
figures.mkdir(parents=True, exist_ok=True)
Path(record_path).parent.mkdir(parents=True, exist_ok=True)
record = {"preset": preset, "seed": seed}"""),
    ("md", r"""## 1. Sampling train and test frames from one sequence

The training data are synthetic sequences of the train split (their own photos and seeds, disjoint from the
test split). `sample_causal` (pytracking's `DiMPSampler`, mode "causal") draws a **base frame**, 2 more train
frames from the `max_gap` = 30 frames before it and 3 test frames from the 30 frames after it, with
replacement, only among frames where the target is visible; the gap widens by 5 until frames are found.
The test frames come *after* the train frames, as during tracking."""),
    ("code", r"""shipped = checkpoints.load_checkpoint_info(WEIGHTS_DIR / "dimp.safetensors")  # their metadata
config = train_preset("dimp", shipped["config"]["preset"], seed=seed)  # the preset they were trained with
sequence = make_sequence(seed, "train", num_frames=config.pool_frames, image_size=config.pool_image_size)
rng = np.random.default_rng(seed)
draws = [sample_causal(sequence.visible, config.num_train, config.num_test, config.max_gap, rng)
         for _ in range(SETTINGS["draws"])]
print(f"training preset of the shipped DiMP weights: {config.preset!r} ({config.pool_frames}-frame sequences)")
print(f"{sequence.name}: {len(sequence)} frames, target visible in {sequence.visible.sum()}, "
      f"attributes {', '.join(sequence.attributes)}")
for train_ids, test_ids in draws:
    print(f"train {train_ids} (base {train_ids[0]})  test {sorted(test_ids)}")
fig = vt.plot_sampling(sequence.visible, draws, config.max_gap)
savefig(fig, figures, "06_sampling", dpi=120)
fig"""),
    ("md", r"""## 2. From frames to an example: crops, Gaussian labels, proposals

Each frame's box is jittered (scale $\times e^{0.25\,\mathcal{N}(0,1)}$, centre moved by up to $3 \cdot
\tfrac12\sqrt{wh}$ for train frames; $0.5$ and $4.5$ for test frames), and a square of $5\sqrt{wh}$ of the
*jittered* box is cropped to 288 px, so the target is not always at the centre. The test label $z_c$ is a
Gaussian on the 19 x 19 score grid, $\sigma = \tfrac14 \cdot \tfrac{18}{5}$ cells, peaked at the true target
centre divided by the stride 16. Each test frame also gets 8 box proposals around the target for the IoU-Net,
whose target is $2\,\text{IoU} - 1$."""),
    ("code", r"""params = ProcessingParams(output_size=config.image_sample_size)
train_ids, test_ids = draws[0]
example = make_example([sequence.frames[i] for i in train_ids], sequence.boxes[train_ids],
                       [sequence.frames[i] for i in test_ids], sequence.boxes[test_ids], params,
                       np.random.default_rng(seed))
peak_error = vt.label_peak_error(example, params)
print(f"train crops {tuple(example.train_images.shape)}, test crops {tuple(example.test_images.shape)}, "
      f"labels {tuple(example.test_labels.shape)}, proposals {tuple(example.test_proposals.shape)}")
print(f"label peak vs box centre: at most {peak_error:.1f} crop pixels apart (one cell is {params.feature_stride} px)")
fig = vt.plot_example(example, params, train_ids, test_ids)
savefig(fig, figures, "06_example", dpi=100)
fig"""),
    ("md", r"""## 3. The losses over the model predictor's iterations

For a few examples (2 from each of 3 training sequences), run the model predictor and score each iterate
$f^{(0)}, \dots, f^{(5)}$: on the train frames with the learned loss $L(f^{(i)})$ that the steepest descent
minimises, and on the test frames with $\ell$ above, the term of $L_\text{cls}$. `dimp_loss` weights the test
loss of $f^{(0)}$ and of the final filter by 100 and shares 400 among the intermediate iterates. Compare the
shipped weights with the same network before training (ImageNet backbone, untrained heads), and with the test
losses the shipped run logged over its last 50 steps (a batch of random training sequences per step, heads in
training mode).

What to look for: on the train frames the trained predictor lowers its loss step after step, while the untrained
one (initial step length and loss) can overshoot; on the test frames, meta-training lowers the whole curve, and
how much the later iterates still gain over $f^{(0)}$ varies from example to example."""),
    ("code", r"""nets = {"shipped weights": build_tracker("dimp", device="cpu").net,
        "untrained heads": build_tracker("dimp", device="cpu", weights="random").net}
examples = []  # a few from each of several training sequences, as in a batch
for k in range(SETTINGS["sequences"]):
    seq = sequence if k == 0 else make_sequence(seed + k, "train", num_frames=config.pool_frames,
                                                image_size=config.pool_image_size)
    rng = np.random.default_rng([seed, k])
    for _ in range(SETTINGS["per_sequence"]):
        tr, te = sample_causal(seq.visible, config.num_train, config.num_test, config.max_gap, rng)
        examples.append(make_example([seq.frames[i] for i in tr], seq.boxes[tr], [seq.frames[i] for i in te],
                                     seq.boxes[te], params, rng))
results = {name: [vt.iterate_losses(net, ex) for ex in examples] for name, net in nets.items()}
curves = {name: {key: np.mean([r[key] for r in rs], axis=0).tolist() for key in ("train", "test")}
          for name, rs in results.items()}
shipped_steps, _ = vt.read_log(WEIGHTS_DIR / "dimp.log.jsonl")
curves["shipped run's log, last 50 steps"] = {"test": vt.iterate_log_means(shipped_steps[-50:])}
n = len(curves["shipped weights"]["test"])
w = DiMPLossWeights()
weights = [w.test_init_clf] + [w.test_iter_clf / (n - 2)] * (n - 2) + [w.test_clf]
print(f"{len(examples)} examples from {SETTINGS['sequences']} sequences")
for name, c in curves.items():
    for key in ("train", "test"):
        if key in c:
            print(f"{name:36s} {key:5s}: " + " ".join(f"{v:.4f}" for v in c[key]))
print("dimp_loss's weight of each iterate's test loss:", ", ".join(f"{v:g}" for v in weights))
fig = vt.plot_iterate_losses(curves)
savefig(fig, figures, "06_iterate_losses", dpi=120)
fig"""),
    ("code", r"""fig = vt.plot_iterate_scores(results["shipped weights"][0],
                            "Shipped weights, example 1, test frame 1: label and the score map of each iterate")
savefig(fig, figures, "06_iterate_scores", dpi=120)
fig"""),
    ("md", r"""## 4. A short live training run

`train(config, out, callback=...)` is the whole training loop: sample frames, process them, forward, the loss
above, backward, an Adam step, one JSON line per step in `out/log.jsonl`; the callback receives each step's loss
terms. The `smoke` preset is tiny (a couple of short, small sequences, small crops, a dozen steps at raised head
learning rates; the cell prints its numbers): enough to see the losses fall in seconds, far from enough to track
well."""),
    ("code", r"""live = train_preset("dimp", "smoke", seed=seed, **SETTINGS["live"])
print(f"{live.steps} steps x {live.batch_size} sequences ({live.num_train} train + {live.num_test} test frames, "
      f"{live.image_sample_size} px crops) from a pool of {live.pool_sequences} sequences of {live.pool_frames} "
      f"frames at {live.pool_image_size[0]} x {live.pool_image_size[1]}")
history = []
out = Path(tempfile.mkdtemp(prefix="dimp-06-"))
start = time.perf_counter()
train(live, out, callback=lambda step, terms: history.append(dict(terms)), progress=False)
total = [h["total"] for h in history]
first3, last3 = float(np.mean(total[:3])), float(np.mean(total[-3:]))
final = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()][-1]
shutil.rmtree(out)  # the run's weights and checkpoints: a demonstration, not kept
print(f"{live.steps} steps in {time.perf_counter() - start:.1f} s; total loss: first 3 steps {first3:.3f}, "
      f"last 3 steps {last3:.3f}; validation AUC after the run {final.get('val_auc', float('nan')):.1f} %")
fig = vt.plot_live_run(history, ["total", "clf_init", "clf_iter", "clf_final", "iou"])
savefig(fig, figures, "06_live_run", dpi=120)
fig"""),
    ("md", r"""## 5. The runs behind the shipped weights

`make weights` retrains each tracker from the configuration and seed recorded in its weights and commits the
run's log next to them (`data/weights/<tracker>.log.jsonl`); the weights' metadata names the preset. A file
that continued an earlier one (a warm start) records that file's metadata too, and the earlier run's log is
kept in `data/runs/`: the panels join them, first run first. ATOM's offline part is only the IoU-Net (its
classifier is learned online while tracking), so its log has a single loss term. The validation AUC is the
tracker itself, run with the weights of that step on held-out synthetic sequences."""),
    ("code", r"""names = [path.name.split(".")[0] for path in sorted(WEIGHTS_DIR.glob("*.log.jsonl"))]
logs = {name: vt.shipped_chain_log(name, WEIGHTS_DIR) for name in names}
fig = vt.plot_shipped_logs(logs, {name: vt.loss_terms(steps) for name, (steps, _, _) in logs.items()})
savefig(fig, figures, "06_shipped_logs", dpi=120)
for name, (steps, val, _) in logs.items():
    meta = checkpoints.load_checkpoint_info(WEIGHTS_DIR / f"{name}.safetensors")
    runs = " then ".join(f"{r['config']['preset']!r} {r['config']['steps']} steps x {r['config']['batch_size']} "
                         f"on {r.get('device', '?')} in {r.get('wall_time_s', float('nan')) / 60:.1f} min"
                         for r in checkpoints.training_runs(meta))
    first, last = np.mean([e["total"] for e in steps[:50]]), np.mean([e["total"] for e in steps[-50:]])
    print(f"{name}: {runs}; total loss, mean of the first 50 steps {first:.3f} -> last 50 {last:.3f}; "
          "validation AUC " + ", ".join(f"{e['val_auc']:.1f} (step {e['step']})" for e in val))
fig"""),
    ("md", r"""### Which run ships

Several runs (schedules, rounds, precisions) are candidates for each tracker. They are compared on `synth-val`,
a split of their own random stream that no training run sees, and never on the test split, which is only
reported: choosing on the test split would make its numbers a score of the choice, not of the tracker.
`tools/select_on_val.py` runs every candidate there and writes `experiments/selection.json`."""),
    ("code", r"""selection = json.loads((WEIGHTS_DIR.parents[1] / "experiments" / "selection.json").read_text())
for tracker, entry in selection["trackers"].items():
    for name, c in entry["candidates"].items():
        mark = "  <- shipped" if name == entry["selected"] else ""
        print(f"{tracker:5s} {name:14s} {c['steps']} steps x {c['batch_size']}, {c['pool_sequences']} pool sequences: "
              f"synth-val AUC {c['auc']:.1f}{mark}")"""),
    ("md", r"""## 6. Record

The values the notebook's test checks (`tests/test_notebooks_analysis.py`)."""),
    ("code", r"""record.update({
    "sequence": {"name": sequence.name, "num_frames": len(sequence), "visible": sequence.visible.astype(int).tolist()},
    "max_gap": config.max_gap,
    "draws": [{"train": tr, "test": te} for tr, te in draws],
    "example": {"train_shape": list(example.train_images.shape), "test_shape": list(example.test_images.shape),
                "label_shape": list(example.test_labels.shape), "label_peak_error_px": peak_error},
    "iterate_losses": curves,
    "smoke": {"steps": live.steps, "total": total, "first3_mean": first3, "last3_mean": last3,
              "val_auc": final.get("val_auc")},
    "shipped_logs": {name: {"steps": len(steps), "val_auc": [e["val_auc"] for e in val], "warm_starts": starts}
                     for name, (steps, val, starts) in logs.items()},
    "selected": {tracker: entry["selected"] for tracker, entry in selection["trackers"].items()},
    "figures": sorted(p.name for p in figures.glob("06_*.png")),
})
Path(record_path).write_text(json.dumps(record, indent=1) + "\n")
print(json.dumps(record["smoke"], indent=1))"""),
]


if __name__ == "__main__":
    write(CELLS, "06_training")
