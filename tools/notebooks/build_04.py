"""Write notebooks/04_baselines.ipynb (no outputs): ``python tools/notebooks/build_04.py``.

The notebook is generated so that its cells stay reviewable as plain text; edit this file and rerun it.
Cell ids are fixed (``04-00``, ``04-01``, ...), so regenerating an unchanged notebook gives identical bytes.
"""

from __future__ import annotations

from nbbuild import write

CELLS: list[tuple[str, str]] = [
    ("md", r"""# 04 · Baselines: SiamFC vs ATOM vs DiMP on the synthetic benchmark

Three generations of deep trackers, run with the same one-pass evaluation (OPE) on the synthetic test split
(`dimp synth`, SPEC section 4), with OpenCV's CSRT and KCF correlation filters as a classical reference:

- **SiamFC** (Bertinetto et al. 2016): the score map is $s = \varphi(z) \star \varphi(x) + b$, the exemplar's
  features slid over the search area's. Only $\varphi$ is learned, offline; nothing is learned while tracking.
- **ATOM** (Danelljan et al. 2019): $s = f \ast (P x)$, where the filter $f$ and projection $P$ are learned online
  on the first frame by Gauss-Newton + conjugate gradient on $\sum_j \gamma_j \lVert f \ast P x_j - y_j \rVert^2
  + \lambda \lVert f \rVert^2$, and refined during tracking; the IoU-Net that fits the box is learned offline.
- **DiMP** (Bhat et al. 2019): $s = x \ast f$ with $f = D(S_\text{train})$, the model predictor's steepest
  descent on a learned, hinge-like loss; the initialiser, the loss, the step length, the feature head and the
  IoU-Net are all learned offline (notebooks 02, 03, 06).

Then a **distractor case study**: on a frame where a look-alike of the target passes close by, the score maps
of ATOM and DiMP side by side.

Presets: `fast` (tests, `make report`) runs the first 3 sequences cut to 30 frames each and the case study on a
window of at most 31 frames; `full` runs all 24 sequences (every frame) and the case study over its whole sequence."""),
    ("params", r"""preset = "fast"  # "fast" (tests, make report): 3 sequences x 30 frames | "full": all 24 sequences
record_path = "records/04_baselines.json"
figures_dir = "../figures"
results_dir = ""  # OPE result files; empty: a fresh temporary folder (fast) or ../results/notebook-04 (full)"""),
    ("code", r"""%matplotlib inline
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from IPython.display import Markdown, display

from dimp_core.data.benchmarks import load_dataset
from dimp_core.data.synthetic import benchmark_plan
from dimp_core.evaluation import difference_table, evaluate, format_table, paired_bootstrap, plot_curves, run_tracker
from dimp_core.evaluation.discrimination import first_frame_discrimination
from dimp_core.trackers import build_tracker
from dimp_core.viz import benchmark as vb
from dimp_core.viz.figures import savefig

if preset not in ("fast", "full"):
    raise ValueError(f"preset must be 'fast' or 'full', got {preset!r}")
FAST = {"num_sequences": 3, "num_frames": 30, "case_before": 20, "case_after": 10}
figures = Path(figures_dir)
figures.mkdir(parents=True, exist_ok=True)
Path(record_path).parent.mkdir(parents=True, exist_ok=True)
temporary = not results_dir and preset == "fast"  # removed at the end
results = Path(results_dir or (tempfile.mkdtemp(prefix="dimp-04-") if temporary else "../results/notebook-04"))
print(f"preset {preset!r}; result files in {results}")"""),
    ("md", r"""## 1. The benchmark

24 test sequences of 100-150 frames at 480 x 360, each carrying 2-4 of 12 attribute labels (distractors,
occlusions, fast motion, ...). `load_dataset("synth-test")` generates them on first use (about a minute) and
reads them in the OTB layout. The fast preset keeps the first sequences' first frames; their attribute labels
stay, although an attribute's event may come after the cut."""),
    ("code", r"""full = load_dataset("synth-test")
dataset = vb.subset(full, FAST["num_sequences"], FAST["num_frames"]) if preset == "fast" else full
for seq in dataset:
    print(f"{seq.name}: {len(seq):3d} frames, {', '.join(seq.attributes)}")
print(f"{len(dataset)} sequences, {sum(len(s) for s in dataset)} frames")"""),
    ("md", r"""## 2. Which trackers can run

A learned tracker runs on the project's shipped weights (`data/weights/<name>.safetensors`); one whose weights
are not there yet is skipped, with the reason, rather than run with an untrained network."""),
    ("code", r"""candidates = ["siamfc", "atom", "dimp", "opencv-csrt", "opencv-kcf"]
trackers, skipped = vb.available_trackers(candidates)
for name, reason in skipped.items():
    print(f"skipped {name}: {reason}")
print("evaluating:", ", ".join(trackers))"""),
    ("md", r"""## 3. One-pass evaluation

Each tracker starts from the ground truth of frame 1 (`init`) and runs to the end (`update`) without
re-initialisation; `run_tracker` writes one result file per sequence and skips sequences whose complete file is
already there (the full preset keeps its files in `results/notebook-04` and reruns a tracker whose weights are
newer than its files). With IoU$_i$ the overlap of the predicted and
true boxes in frame $i$, the success curve is $S(\tau) = \frac{1}{N} \#\{i : \text{IoU}_i > \tau\}$ on
$\tau = 0, 0.05, \dots, 1$ and the **AUC** is its mean; the **precision** is the fraction of frames whose centre
error is at most 20 px. Frames where the target is hidden count as failures for every tracker."""),
    ("code", r"""for name in trackers:
    reused, stale = vb.reusable_results(dataset, results, name)
    start = time.perf_counter()
    run_tracker(build_tracker(name), dataset, results, tracker_name=name, progress=False)
    note = f" ({len(stale)} older than the weights, run again)" if stale else ""
    print(f"{name:12s} reused {len(reused):2d} sequences, ran {len(dataset) - len(reused):2d}{note} "
          f"in {time.perf_counter() - start:5.1f} s")
summary = evaluate(dataset, results, trackers)"""),
    ("code", r"""for kind in ("success", "precision"):
    fig = plot_curves(summary, kind)
    savefig(fig, figures, f"04_{kind}", dpi=120)
    display(fig)"""),
    ("md", r"""## 4. The table, overall and per attribute

AUC per attribute averages the success curves of the sequences carrying that label (in brackets: how many).
With few short sequences (fast preset) a column rests on one or two sequences; the full preset is the one to
read conclusions from. FPS is left out: on a shared CPU it says little (notebook 05 measures speed)."""),
    ("code", r"""display(Markdown(format_table(summary, fps=False)))
fig = vb.plot_attribute_auc(summary)
savefig(fig, figures, "04_attributes", dpi=120)
fig"""),
    ("md", r"""### How sure is the ranking?

A benchmark of a few dozen sequences is a sample. Each sequence gives a per-tracker AUC, and the difference
between two trackers on the same sequence is what carries the evidence (sequences differ from each other far
more than two trackers differ on one). Resampling the sequences with replacement many times (a paired
bootstrap) shows how much the mean difference would move on another benchmark drawn the same way. An
interval that straddles zero means this benchmark cannot rank the two."""),
    ("code", r"""reference = "dimp" if "dimp" in trackers else trackers[0]
differences = {}
if len(trackers) > 1:
    display(Markdown(difference_table(summary, reference)))
    ref_auc = {s: v["auc"] for s, v in summary["trackers"][reference]["sequences"].items()}
    for other in trackers:
        if other != reference:
            d = paired_bootstrap(ref_auc, {s: v["auc"] for s, v in summary["trackers"][other]["sequences"].items()},
                                 reference, other)
            differences[other] = {"mean": d.mean, "low": d.low, "high": d.high, "p_higher": d.p_a_better}
    fig = vb.plot_differences(differences, reference)
    savefig(fig, figures, "04_ranking", dpi=120)
    display(fig)"""),
    ("md", r"""## 5. A distractor case study

A look-alike (the target's sprite, recoloured by up to 12 % and rescaled by up to 15 %) crossing the target is
the hardest case for a tracker that scores appearance: its score map gets a second peak. Both ATOM and DiMP
learn their filter online against the background of the search area and flag a strong second peak as a
*hard negative* (`localize_advanced`); the difference is how the filter is learned: ATOM regresses Gaussian
labels with an L2 loss by Gauss-Newton/CG, DiMP runs its meta-learned optimiser on a learned hinge-like loss.

The case is chosen by a rule fixed in advance, not by the outcome: the test sequence labelled `distractors`
with the fewest other labels, and its first frame where a distractor's centre comes within half a target size
of the target's (the scene knows the distractors' boxes). Both trackers start from the ground truth at the
window's first frame (the sequence's first frame unless the fast preset cuts it)."""),
    ("code", r"""plan = {spec.name: spec for spec in benchmark_plan("test")}
case = min((s for s in full if "distractors" in s.attributes), key=lambda s: (len(s.attributes), s.name))
spec = plan[case.name]
target, distractors = vb.scene_boxes(spec.seed, "test", spec.attributes, spec.num_frames)
assert np.allclose(target, case.ground_truth, atol=0.01), "the scene must match the files on disk"
distance = vb.distractor_distance(target, distractors)
t_case = vb.first_approach(distance, case.visible)
if preset == "fast":
    start, stop = max(0, t_case - FAST["case_before"]), min(len(case), t_case + FAST["case_after"] + 1)
else:
    start, stop = 0, len(case)
print(f"{case.name} ({', '.join(case.attributes)}): {len(distractors)} distractors; first within half a target size "
      f"at frame {t_case + 1} ({distance[t_case]:.2f} target sizes); tracking frames {start + 1}..{stop}")"""),
    ("code", r"""case_trackers = {name: build_tracker(name) for name in ("atom", "dimp") if name in trackers}
runs = vb.track_side_by_side(case_trackers, case, start, stop)
kinds = {name: vb.tracker_kind(tracker) for name, tracker in case_trackers.items()}
fig = vb.plot_distractor_case(case, t_case, runs, kinds, distractors, distance)
savefig(fig, figures, "04_distractor_case", dpi=110)
fig"""),
    ("code", r"""case_record = {"sequence": case.name, "frame": t_case, "distance": float(distance[t_case]),
               "window": [start, stop], "iou": {}, "flag": {}, "map_shape": {}, "mean_iou_after": {}}
for name, run in runs.items():
    iou = vb.window_iou(run, case)
    row = run.at(t_case)
    case_record["iou"][name] = float(iou[row])
    case_record["flag"][name] = run.flags[row]
    case_record["map_shape"][name] = list(run.score_maps[row].shape)
    case_record["mean_iou_after"][name] = float(np.nanmean(iou[row:]))
    print(f"{name}: frame {t_case + 1} IoU {iou[row]:.2f} ({run.flags[row]}); mean IoU from there to frame {stop}: "
          f"{np.nanmean(iou[row:]):.2f}; hard negatives in the run: {run.flags.count('hard_negative')}")"""),
    ("md", r"""### The first-frame model alone

A whole sequence can turn on one frame, so tracking AUC is a noisy view of how well a tracker tells the target
from a look-alike. A cleaner test (`dimp_core.evaluation.discrimination`): initialise on the first frame, then,
with **no online update**, centre a search patch on the ground truth every few frames and ask whether the
highest score lies on the target, and how strong the strongest peak outside the target's neighbourhood is
relative to the target's (the *distractor ratio* $r$; the localisation calls $r > 0.5$ a hard negative and
$r > 0.8$ a distractor). Same frames, same patches for both trackers."""),
    ("code", r"""every = 4 if preset == "fast" else 2
one_shot = {name: first_frame_discrimination(build_tracker(name), case, every) for name in case_trackers}
fig = vb.plot_first_frame_discrimination(one_shot, distance, f"{case.name}: the first-frame model alone")
savefig(fig, figures, "04_first_frame_model", dpi=110)
fig"""),
    ("md", r"""Over whole benchmarks (`python experiments/discrimination.py`, all 24 sequences of synth-val and of
synth-test, every 5th frame), the recorded numbers for the shipped files: DiMP's filter finds the target about as
often as ATOM's on both splits. With the earlier, shorter-trained `dimp` file it found it more often on the
validation photos and less often on unseen ones, which raised the question whether DiMP's trained feature head
had learnt the training photos (retrained without four of them, it had not, at the scale a CPU allows:
`experiments/heldout_photos.py`)."""),
    ("code", r"""recorded = json.loads(Path("../experiments/discrimination.json").read_text())["summary"]
for split, row in recorded["splits"].items():
    hit, d = row["hit_rate"], row["dimp_minus_atom"]
    print(f"{split}: top score on the target dimp {hit['dimp']:.1f} %, atom {hit['atom']:.1f} %; "
          f"dimp - atom {d['mean']:+.1f} [{d['low']:+.1f}, {d['high']:+.1f}] over {row['frames']} frames")"""),
    ("md", r"""### Classifier or IoU-Net?

Both trackers refine the box with an IoU-Net of the same architecture, trained on the same data, so the two
IoU-Nets can be exchanged: DiMP's classifier with ATOM's IoU-Net and the other way round
(`python experiments/component_swap.py`, all 24 sequences of both splits, one torch thread per run; recorded)."""),
    ("code", r"""swap = json.loads(Path("../experiments/component_swap.json").read_text())
fig = vb.plot_component_swap(swap)
savefig(fig, figures, "04_component_swap", dpi=110)
fig"""),
    ("md", r"""Without any online update, each tracker with its own IoU-Net, `dimp` is ahead on both splits (bottom
row): DiMP's first-frame model is the better one. DiMP's IoU-Net helps DiMP's classifier more than ATOM's would
(the IoU-Net row with DiMP's classifier), while under ATOM's classifier the two IoU-Nets are level. So the gap
opens during tracking: the recorded JSON also holds what the online update adds to each tracker. ATOM's (every
10th frame, Gauss-Newton and conjugate gradient on 250 samples) adds about four points on both splits, DiMP's
(every 20th frame, two steepest-descent steps on 50 samples) about one. Two more cells give each tracker the
other's schedule (memory size, how often it optimises) with its own learner. Single runs, 24 sequences: several
intervals reach zero."""),
    ("code", r"""for run, row in swap["runs"].items():
    e = row["summary"]["effects"]
    update = {name: e[f"online update, {name}"]["mean"] for name in ("DiMP", "ATOM")}
    schedule = {name: e[f"ATOM's schedule, {name}'s learner"]["mean"] for name in ("DiMP", "ATOM")}
    print(f"{run}: the online update adds {update['DiMP']:+.1f} AUC to DiMP, {update['ATOM']:+.1f} to ATOM; "
          f"ATOM's schedule instead of DiMP's: {schedule['DiMP']:+.1f} with DiMP's learner, "
          f"{schedule['ATOM']:+.1f} with ATOM's")"""),
    ("md", r"""The schedule moves each tracker by under a point, while ATOM's learner gains several points on either
schedule: what separates the two updates is the learner (Gauss-Newton and conjugate gradient against two
steepest-descent steps of the learned loss), not how often it runs or how much it remembers."""),
    ("md", r"""Is it the unseen photos? `experiments/update_on_heldout.py` asked on 48 `val-heldout` sequences, made of
4 training photos that the held-out-photo experiment's `kept` networks never saw, and then with networks that did
see them. If unseen appearance were what spoils DiMP's update, the update would be worth more to the networks that
saw the photos."""),
    ("code", r"""update = json.loads(Path("../experiments/update_selection.json").read_text())
for name, row in update["contrast"].items():
    w = row["update_worth"]
    print(f"{name:13s} saw the photos: {'no ' if row['train_split'] == 'train-kept' else 'yes'}  DiMP's update adds "
          f"{w['mean']:+.1f} [{w['low']:+.1f}, {w['high']:+.1f}]")
atom = update["trackers"]["atom"]["candidates"]["first-frame"]
print(f"atom-kept     saw the photos: no   ATOM's update adds {-atom['vs_reference']:+.1f} "
      f"[{-atom['high']:+.1f}, {-atom['low']:+.1f}]")"""),
    ("md", r"""It is not: the `cpu` network gets nothing from DiMP's update whether or not it saw the photos, and
the shipped file about one point, while ATOM's update adds about four points on the same sequences. With
every network measured DiMP's update is worth little; making it gain as much as ATOM's is the open lever."""),
    ("md", r"""## 6. Record

The values the notebook's test checks (`tests/test_notebooks_analysis.py`)."""),
    ("code", r"""record = {
    "preset": preset,
    "dataset": summary["dataset"],
    "sequences": [seq.name for seq in dataset],
    "frames": sum(len(seq) for seq in dataset),
    "trackers": trackers,
    "skipped": skipped,
    "auc": {name: summary["trackers"][name]["auc"] for name in trackers},
    "precision": {name: summary["trackers"][name]["precision"] for name in trackers},
    "attributes": {name: {a: v["auc"] for a, v in summary["trackers"][name]["attributes"].items()}
                   for name in trackers},
    "case": case_record,
    "reference": reference,
    "differences": differences,
    "one_shot": {name: {**r.summary(), "every": every} for name, r in one_shot.items()},
    "component_swap": {run: row["summary"]["auc"] for run, row in swap["runs"].items()},
    "figures": sorted(p.name for p in figures.glob("04_*.png")),
}
Path(record_path).write_text(json.dumps(record, indent=1) + "\n")
if temporary:
    shutil.rmtree(results)
print(json.dumps({k: record[k] for k in ("trackers", "auc", "precision")}, indent=1))"""),
]


if __name__ == "__main__":
    write(CELLS, "04_baselines")
