"""Write notebooks/03_learned_loss.ipynb (no outputs). Run: .venv/bin/python tools/notebooks/build_03.py"""

from __future__ import annotations

from nbbuild import code, md, write

CELLS = [
    md(r"""
# 03 The learned loss: label, target mask, spatial weight

DiMP does not fix the loss its model predictor minimises: the label $y_c$, the target mask $m_c$ and the
spatial weight $v_c$ are functions of the distance to the target, learned offline with everything else. We
plot them as the network initialises them and as the shipped weights have them, then look at the per-pixel
residual on a real score map, next to a plain L2 loss with Gaussian labels, to see why the learned,
hinge-like loss lets easy negatives go to zero.
"""),
    code("""
preset = "fast"  # "fast" (tests, make report: the first frame of 1 sequence) | "full" (first frames of 6 sequences)
record_path = "records/03_learned_loss.json"
figures_dir = "../figures"
""", tags=["parameters"]),
    code("""
%matplotlib inline
import json
from pathlib import Path

import numpy as np
import torch

from dimp_core.data.synthetic import make_sequence
from dimp_core.trackers import build_tracker
from dimp_core.viz import loss as vl
from dimp_core.viz import predictor as vp
from dimp_core.viz.figures import savefig

PRESETS = {"fast": {"seeds": (1,)}, "full": {"seeds": (1, 2, 3, 4, 5, 6)}}
if preset not in PRESETS:
    raise ValueError(f"preset must be one of {list(PRESETS)}, got {preset!r}")
P = PRESETS[preset]
torch.set_num_threads(1)  # the networks are small: one thread is as fast, and much faster on a shared CPU
Path(record_path).parent.mkdir(parents=True, exist_ok=True)
record = {"preset": preset}
"""),
    md(r"""
## 1. Three functions of distance

For a score cell at distance $d$ (in cells) from the target centre, DiMP expands $d$ in $K = 100$ triangular
bins $\rho_k(d)$ of width $\Delta = 0.1$ cell and learns one weight per bin for each function:

$$y_c(d) = \sum_k \phi^y_k \rho_k(d), \qquad m_c(d) = \sigma\Big(\sum_k \phi^m_k \rho_k(d)\Big), \qquad
v_c(d) = \sum_k \phi^v_k \rho_k(d).$$

The network starts from a Gaussian label ($\sigma = 0.9$ cells), a mask $\sigma(3 \tanh(2 - d))$ and a
constant weight $v = 1$; training on many sequences moves them.
"""),
    code("""
tracker = build_tracker("dimp", device="cpu")
trained = tracker.net.classifier.filter_optimizer  # the shipped weights
initial = vl.initial_optimizer(tracker.net)  # the same network as its constructor initialises it
sigma = tracker.net.config.init_gauss_sigma
d = np.linspace(0, 10, 201)
f_init, f_trained = vl.loss_functions(initial, d), vl.loss_functions(trained, d)
fig = vl.plot_loss_functions(f_init, f_trained)
savefig(fig, figures_dir, "03_functions")
fig
"""),
    code("""
marks = [0.0, 1.0, 2.0, 3.0, 5.0, 8.0]
at = lambda funcs, key: [float(np.interp(x, funcs.distance, getattr(funcs, key))) for x in marks]  # noqa: E731
print(f"{'d (cells)':>18}" + "".join(f"{x:>8.1f}" for x in marks))
for key in ("label", "mask", "weight"):
    for name, funcs in (("initial", f_init), ("trained", f_trained)):
        print(f"{key + ' (' + name + ')':>18}" + "".join(f"{v:8.3f}" for v in at(funcs, key)))
change = max(float(np.abs(getattr(f_trained, k) - getattr(f_init, k)).max()) for k in ("label", "mask", "weight"))
print(f"largest change from the initialisation: {change:.3f}")
"""),
    md(r"""
The first frame of a tracking run, as in notebook 02. A round trip: the functions sampled at the distances of
the real $19 \times 19$ score grid are exactly the maps the model predictor uses (`loss_maps`).
"""),
    code("""
seq = make_sequence(P["seeds"][0], "test", attributes=("distractors", "camera_motion"), num_frames=40)
first = vp.first_frame(tracker, seq.frames[0], seq.boxes[0])
box = first.boxes[0, 0]  # the target in the unshifted training sample, patch pixels
label, mask, weight = trained.loss_maps(box.reshape(1, 1, 4), (19, 19), 4)
grid = vl.distance_map(box, (19, 19))
on_grid = vl.loss_functions(trained, grid.reshape(-1).numpy())
assert np.allclose(on_grid.label, label.detach().reshape(-1).numpy(), atol=1e-5)
assert np.allclose(on_grid.mask, mask.detach().reshape(-1).numpy(), atol=1e-5)
print("loss_functions on the score grid == loss_maps")
"""),
    md(r"""
## 2. A hinge where the mask is zero

The residual of a pixel with score $s$ is

$$r = v_c\big(m_c\, s + (1 - m_c)\max(0, s) - y_c\big).$$

Near the target $m_c \approx 1$: the residual is $v_c (s - y_c)$, an L2 regression to the label. Far away
$m_c \approx 0$ and $y_c \approx 0$: $r \approx v_c \max(0, s)$, a hinge. A negative score is then as good as
any other: the loss is (nearly) flat for $s < 0$ and its gradient, scaled by $J = m_c$, almost vanishes. An L2
loss with Gaussian labels instead pulls every background score to exactly zero, from below as hard as from
above. The right panel shows a background pixel under the trained loss: flat for $s < 0$ up to the small
slope $m_c \approx 0.06$.
"""),
    code("""
fig = vl.plot_pixel_losses(trained, (0.0, 1.5, 5.0), sigma)
savefig(fig, figures_dir, "03_pixel_losses")
fig
"""),
    md(r"""
## 3. Residuals on a real score map

The score map of the tracker's first-frame filter on the unshifted training sample, and the residual of every
cell under the learned loss (trained, and as initialised) and under L2 with Gaussian labels ($\sigma = 0.9$
cells, DiMP's initial label).
Cells at least `radius` = 3 cells from the target centre count as background (the trained mask is below 0.12
there). A residual counts as zero when $|r| < 0.01$, one percent of the target's label.
"""),
    code("""
radius = 3.0
scores = torch.from_numpy(first.scores(first.trace.filter))
maps = vl.residual_maps(trained, scores, box, sigma)
init_maps = vl.residual_maps(initial, scores, box, sigma)
fig = vl.plot_residual_maps(maps, first.patch, box.numpy(), radius, "first frame (unshifted sample)", init_maps)
savefig(fig, figures_dir, "03_residuals")
fig
"""),
    code("""
def background_numbers(maps, radius):
    bg = maps.background(radius)
    return {"background_cells": int(bg.sum()),
            "negative_fraction": float((maps.scores[bg] < 0).mean()),
            "zero_fraction_learned": maps.zero_fraction("learned", radius),
            "zero_fraction_l2": maps.zero_fraction("l2", radius),
            "mean_abs_learned": float(np.abs(maps.learned[bg]).mean()),
            "mean_abs_l2": float(np.abs(maps.l2[bg]).mean()),
            "background_loss_learned": maps.background_loss("learned", radius),
            "background_loss_l2": maps.background_loss("l2", radius)}


numbers = background_numbers(maps, radius)
numbers["zero_fraction_initial_loss"] = init_maps.zero_fraction("learned", radius)
for key, value in numbers.items():
    print(f"{key:28s} {value:.3f}" if isinstance(value, float) else f"{key:28s} {value}")
"""),
    md(r"""
## 4. Why easy negatives go to zero

Almost every background cell has a negative score. Under L2 each of them still has a residual about equal to
its score, so nearly all of the L2 loss sits in the background and its gradient keeps spending the filter's
few degrees of freedom on pushing already-negative scores back up to 0. Under the learned loss those cells are
easy negatives: their residual is $v_c(m_c s - y_c)$ with $m_c \approx 0.05$, and their gradient is scaled down
once more by $J = m_c$. What is left for the filter is the target's peak and the background cells with
*positive* scores (hard negatives, such as distractors), which is what a tracker needs to separate.

Two honest details. The mask is a sigmoid and never reaches exactly 0, so "zero" means "small". And the trained
label dips slightly below 0 far from the target (about -0.02, see the table in section 1): the trained loss is
zero at $s = y_c / m_c \approx -0.4$ instead of anywhere below 0, so fewer background cells fall under the
0.01 threshold than under the initial loss, whose label is exactly 0 there. Their residuals are still much
smaller than under L2 (`mean_abs_*`), and their squared sum (`background_loss_*`, what they add to $L$) is
smaller by one to two orders of magnitude. With `preset = "full"` the table below repeats the numbers on the
first frames of six sequences.
"""),
    code("""
rows = [{"seed": P["seeds"][0], **numbers}]
for seed in P["seeds"][1:]:
    other = make_sequence(seed, "test", num_frames=2)
    ff = vp.first_frame(tracker, other.frames[0], other.boxes[0])
    m = vl.residual_maps(trained, torch.from_numpy(ff.scores(ff.trace.filter)), ff.boxes[0, 0], sigma)
    rows.append({"seed": seed, **background_numbers(m, radius)})
print(f"{'seed':>5} {'s < 0':>6} {'|r|<0.01: learned':>18} {'L2':>5} {'mean |r|: learned':>18} {'L2':>7}")
for r in rows:
    print(f"{r['seed']:5d} {r['negative_fraction']:6.2f} {r['zero_fraction_learned']:18.2f} "
          f"{r['zero_fraction_l2']:5.2f} {r['mean_abs_learned']:18.4f} {r['mean_abs_l2']:7.4f}")
"""),
    md("""
## Record
"""),
    code("""
record.update({
    "distances": marks,
    "initial": {k: at(f_init, k) for k in ("label", "mask", "weight")},
    "trained": {k: at(f_trained, k) for k in ("label", "mask", "weight")},
    "largest_change_from_init": change,
    "gauss_sigma": sigma,
    "background_radius": radius,
    **numbers,
    "per_sequence": rows,
    "figures": ["03_functions.png", "03_pixel_losses.png", "03_residuals.png"],
})
Path(record_path).write_text(json.dumps(record, indent=1))
print(f"wrote {record_path}")
"""),
    md(r"""
## Summary

- The label, target mask and spatial weight are learned functions of the distance to the target; the
  shipped weights keep the shape of their initialisation (Gaussian label, mask from 1 to about 0.05 around
  2 cells, weight about 1), with a label that dips slightly below 0 in the background.
- The target mask turns the loss into L2 near the target and into a hinge far from it, so negative scores in
  the background cost (almost) nothing.
- On a real score map the background residuals are several times smaller under the learned loss than under
  L2 (where they equal the scores); the filter's effort goes to the target and the hard negatives.

## Exercises

1. Set the target-mask factor slider of notebook 02 to 0 ($m = 1/2$ everywhere): how does the CG solution's
   score map change?
2. Compute the residuals on a later frame's score map (`vp.search_features`) with the ground-truth box mapped
   into that patch: are there hard negatives (distractors) with large residuals?
3. Try a threshold of 0.005 or 0.02 instead of 0.01 for "zero" (`vl.ZERO_RESIDUAL`, or the `tol` argument of
   `maps.zero_fraction`): how robust is the comparison?
"""),
]


def main() -> None:
    write(CELLS, "03_learned_loss")


if __name__ == "__main__":
    main()
