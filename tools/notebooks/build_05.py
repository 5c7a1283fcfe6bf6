"""Write notebooks/05_fps_profiling.ipynb (no outputs): ``python tools/notebooks/build_05.py``.

The notebook is generated so that its cells stay reviewable as plain text; edit this file and rerun it.
Cell ids are fixed (``05-00``, ``05-01``, ...), so regenerating an unchanged notebook gives identical bytes.
"""

from __future__ import annotations

from nbbuild import write

CELLS: list[tuple[str, str]] = [
    ("md", r"""# 05 · Where the frames per second go: profiling DiMP on CPU and GPU

DiMP's paper reports real-time speed; the maintainer puts DiMP-18 at **57 FPS on a GTX 1080** (pytracking's
[issue tracker](https://github.com/visionml/pytracking/issues/231)), while users measure under 20 FPS on a
P100, with patch sampling, the backbone and the IoU-Net
refinement each taking 15-25 ms. This notebook measures where the milliseconds of one frame go, live on this
machine's CPU and from recorded GPU runs, and what the speed knobs buy at what accuracy.

One frame of DiMP (`dimp_core/trackers/dimp.py`) is a chain of stages, each timed by `dimp profile`:

| stage | what it computes |
|---|---|
| patch extraction | the 288 px search patch around the last position, 5 target sizes wide |
| backbone | features of the patch (EfficientNet-Lite0 for `dimp`, ResNet-18 to layer3 for `dimp18`) |
| classification features | $x$, the model predictor's feature head |
| scoring | $s = x * f$, the target filter correlated with $x$ |
| localisation | the peak of $s$, and whether a second peak makes it a hard negative |
| IoU-Net refinement | 5 steps of $B \leftarrow B + \gamma \nabla_B \mathrm{IoU}(B) \circ (w,h,w,h)$, 10 boxes |
| memory update | the frame's $x$ and box join the sample memory |
| optimiser steps | steepest descent on the discriminative loss, every 20th frame and after hard negatives |

Presets: `fast` (tests, `make report`) profiles `dimp` live on 25 frames of one synthetic sequence with the
`fast` parameter preset; `full` profiles 60 frames of three sequences with the reference settings as well.
Recorded runs (`benchmarks/fps.py`, `benchmarks/gpu.sh`) are read from `data/benchmarks/`."""),
    ("params", r"""preset = "fast"  # "fast" (tests, report): 25 frames, fast preset | "full": 3 x 60 frames, +reference
record_path = "records/05_fps_profiling.json"
figures_dir = "../figures"
benchmarks_dir = "../data/benchmarks"  # recorded JSON of benchmarks/fps.py and benchmarks/gpu.sh"""),
    ("code", r"""%matplotlib inline
import json
import tempfile
from pathlib import Path

import torch
from IPython.display import Markdown, display

from dimp_core.data.benchmarks import load_dataset
from dimp_core.data.synthetic import write_benchmark
from dimp_core.profiling.runner import format_profile, profile_tracker
from dimp_core.trackers.dimp import preset_params
from dimp_core.viz import profiling as vp

if preset not in ("fast", "full"):
    raise ValueError(f"preset must be 'fast' or 'full', got {preset!r}")
RUN = {"fast": {"frames": 25, "sequences": 1, "presets": ["fast"]},
       "full": {"frames": 60, "sequences": 3, "presets": ["reference", "fast"]}}[preset]
figures = Path(figures_dir)
figures.mkdir(parents=True, exist_ok=True)
Path(record_path).parent.mkdir(parents=True, exist_ok=True)
print(f"preset {preset!r}; torch {torch.__version__}, {torch.get_num_threads()} threads")"""),
    ("md", r"""## 1. A live profile on this CPU

The first sequences of the synthetic test split (the same sequences as `synth-test`, written to a temporary
folder) are tracked with stage timing on. The first frame (`init`: 13 augmented patches through the backbone
and 10 steepest-descent iterations, fewer in the fast preset) is reported apart, and the first 5 updates are
left out as warm-up. FPS counts `update()` only, as pytracking does; decoding the JPEG is timed but not
counted. On a CPU that other jobs share, the numbers move from run to run; the proportions are what to read."""),
    ("code", r"""data_root = write_benchmark(Path(tempfile.mkdtemp(prefix="dimp-05-")) / "synth", "test",
                            num_sequences=RUN["sequences"])
dataset = load_dataset(f"otb:{data_root}")
live = {}
for name in RUN["presets"]:
    report = profile_tracker("dimp", "cpu", frames=RUN["frames"], sequences=RUN["sequences"], warmup=5,
                             params=preset_params(name), dataset=dataset)
    live[f"dimp {name} (live, cpu)"] = report
    print(format_profile(report), end="\n\n")"""),
    ("code", r"""device = vp.device_label(next(iter(live.values())))
fig = vp.plot_stages(live, title=f"dimp on {device}: mean ms per frame")
fig.savefig(figures / "05_stages_cpu.png", dpi=110)
fig"""),
    ("md", r"""## 2. Recorded runs: the CPU benchmark and the GPU

`benchmarks/fps.py` runs every tracker and knob over the same frames in one process, with OpenCV's CSRT in the
same loop as the anchor (a shared machine slows all of them alike, so the ratio to CSRT is comparable across
runs); `benchmarks/gpu.sh` does the same on a GPU for the paper's DiMP-18 (official architecture, random
weights: only speed is meaningful there) and writes per-stage profiles. Every recorded number below is labelled
with the device it was measured on."""),
    ("code", r"""recorded = vp.load_recorded(benchmarks_dir)
for kind in ("cpu", "gpu"):
    report = recorded[kind]
    if report is None:
        print(f"no recorded {kind.upper()} benchmark in {benchmarks_dir}")
    else:
        print(f"{kind.upper()}: {report['_file']} on {vp.device_label(report)}, {report['system']['time'][:10]}, "
              f"{report['frames_timed_note']}")
gpu_profiles = recorded["gpu_profiles"]
print(f"GPU per-stage profiles: {', '.join(gpu_profiles) or 'none recorded'}")"""),
    ("code", r"""if gpu_profiles:
    labelled = {f"{r.get('label', name)} ({r['system']['device_name'].replace('NVIDIA ', '')})": r
                for name, r in gpu_profiles.items()}
    fig = vp.plot_stages(labelled, title="Recorded GPU profiles: mean ms per frame (CUDA-synchronised stages)")
    fig.savefig(figures / "05_stages_gpu.png", dpi=110)
    display(fig)
else:
    print("No GPU profile is recorded yet: run `bash benchmarks/gpu.sh` on a GPU machine and copy its JSON "
          "files into data/benchmarks/.")"""),
    ("md", r"""Read the GPU bars for their proportions, not their totals: the profiler waits for the GPU at the end of
every stage, so a profiled frame is longer than an unprofiled one (the benchmark's FPS, next section, counts
frames without those waits). Without CUDA graphs the IoU refinement dwarfs everything: its 5 steps are chains of
small kernels, each paying a launch, so a GPU far faster than the paper's spends its time starting work rather
than doing it. Replayed as a CUDA graph (the `fast` bar) it shrinks several-fold. With random weights DiMP-18
flags many frames as hard negatives, so its optimiser runs far more often than a trained tracker's."""),
    ("md", r"""## 3. Against the paper's 57 FPS

The claim is for DiMP-18 on a GTX 1080 with PyTorch 1.0/1.1. The bars are `update()` FPS: live on this CPU,
from the recorded CPU benchmark (the project's `dimp` and the OpenCV anchors) and, when recorded, DiMP-18 on a
GPU with the reference-faithful settings and with the knobs."""),
    ("code", r"""entries = [(f"{label}", r["update"]["fps"]) for label, r in live.items()]
for kind in ("cpu", "gpu"):
    report = recorded[kind]
    if report is None:
        continue
    device = report["system"]["device_name"].replace("NVIDIA ", "")
    wanted = (("dimp", "dimp fast", "dimp reference-faithful", "atom", "opencv-csrt", "opencv-kcf") if kind == "cpu"
              else ("dimp18 reference-faithful", "dimp18 -cuda_graphs", "dimp18", "dimp18 +bf16",
                    "dimp18 +cuda_graphs", "dimp18 +bf16 +cuda_graphs", "dimp18 fast", "dimp -cuda_graphs", "dimp",
                    "dimp fast", "atom"))
    for r in report["results"]:
        if r["label"] in wanted and r.get("fps"):
            entries.append((f"{r['label']} ({kind}: {device})", r["fps"]))
fig = vp.plot_fps(entries)
fig.savefig(figures / "05_fps_vs_paper.png", dpi=110)
fig"""),
    ("md", r"""## 4. The knobs and what they cost

Each knob is a field of `DiMPParams` (`build_tracker("dimp", **overrides)`). The **exact** ones change nothing
but float rounding and are on by default: `torch.inference_mode`, BatchNorm folded into the convolutions,
channels-last memory layout, batched refinement with the closed-form IoU gradient. The **approximate** ones
trade accuracy for speed and are off: bf16/fp16 autocast, fewer refinement steps or boxes, fewer first-frame
augmentations, a larger update interval; `preset_params("fast")` combines several. CUDA graphs are exact too
and on by default on a GPU (`cuda_graphs="auto"`: captured in `init`, eager with one warning where capture
fails; GPU runs recorded before that labelled them `+cuda_graphs`); `torch.compile` is exact but needs a compiler
and time at start-up.

The first table is the recorded CPU speed benchmark: every configuration ran over the same frames, the AUC is the
success AUC over them, "x default" is the speed relative to `dimp` with its defaults, and the CPU-time columns
use the process CPU time per frame, which other jobs on a shared machine disturb less than the wall clock. A
handful of short sequences makes AUC differences noisy (one sequence that flips from success to failure moves
the mean by several points); the second table, when recorded, is an accuracy sweep over the whole test split."""),
    ("code", r"""knobs = []
if recorded["cpu"] is not None:
    knobs = vp.knob_rows(recorded["cpu"], "dimp")
    display(Markdown(vp.knob_table(knobs)))
    fig = vp.plot_knobs(knobs, "dimp", title=f"Speed knobs on {vp.device_label(recorded['cpu'])}: FPS vs AUC")
    fig.savefig(figures / "05_knobs.png", dpi=110)
    display(fig)
else:
    print("No recorded CPU benchmark: run `python benchmarks/fps.py` (about half an hour).")
accuracy = []
if recorded["cpu_accuracy"] is not None:
    sweep = recorded["cpu_accuracy"]
    print(f"accuracy sweep: {sweep['_file']}, {sweep['frames_timed_note']}")
    accuracy = vp.knob_rows(sweep, "dimp")
    display(Markdown(vp.knob_table(accuracy)))"""),
    ("md", r"""## 5. Record

The values the notebook's test checks (`tests/test_notebook_05.py`)."""),
    ("code", r"""record = {
    "preset": preset,
    "live": {label: {"device": r["device"], "device_name": r["system"]["device_name"], "fps": r["update"]["fps"],
                     "update_median_ms": r["update"]["median_ms"], "stage_medians_ms": vp.stage_medians(r),
                     "frames_timed": r["frames_timed"]} for label, r in live.items()},
    "paper_fps": 57.0,
    "recorded_cpu": None if recorded["cpu"] is None else {
        "file": recorded["cpu"]["_file"], "device_name": recorded["cpu"]["system"]["device_name"],
        "fps": {r["label"]: r["fps"] for r in recorded["cpu"]["results"] if r.get("fps")}},
    "recorded_gpu": None if recorded["gpu"] is None else {
        "file": recorded["gpu"]["_file"], "device_name": recorded["gpu"]["system"]["device_name"],
        "fps": {r["label"]: r["fps"] for r in recorded["gpu"]["results"] if r.get("fps")}},
    "gpu_profiles": {name: {"device_name": r["system"]["device_name"], "fps": r["update"]["fps"],
                            "stage_medians_ms": vp.stage_medians(r)} for name, r in gpu_profiles.items()},
    "knobs": knobs,
    "accuracy_sweep": accuracy,
    "figures": sorted(p.name for p in figures.glob("05_*.png")),
}
Path(record_path).write_text(json.dumps(record, indent=1) + "\n")
print(json.dumps({label: round(v["fps"], 1) for label, v in record["live"].items()}, indent=1))"""),
]


if __name__ == "__main__":
    write(CELLS, "05_fps_profiling")
