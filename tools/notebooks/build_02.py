"""Write notebooks/02_model_predictor.ipynb (no outputs). Run: .venv/bin/python tools/notebooks/build_02.py"""

from __future__ import annotations

from nbbuild import code, md, write

CELLS = [
    md(r"""
# 02 The model predictor, step by step

The heart of DiMP is a small optimiser inside the network: from the features of a few annotated frames it
*learns* the target filter f in a handful of steepest-descent steps. We take the first frame of a real
tracking run, follow the filter from the initialiser's $f^{(0)}$ through every iterate (score map, loss, step
length $\alpha$), and compare DiMP's steepest descent with plain gradient descent at fixed step sizes and with a
conjugate-gradient solution of the same objective. Sliders at the end let you change $\lambda$, the number of
iterations and the target mask.
"""),
    code("""
preset = "fast"  # "fast" (tests, make report: 10 iterations, 3 lambdas in the sweep) | "full" (30 iter., 7 lambdas)
record_path = "records/02_model_predictor.json"
figures_dir = "../figures"
""", tags=["parameters"]),
    code("""
%matplotlib inline
import json
from pathlib import Path

import numpy as np
import torch

from dimp_core import solvers
from dimp_core.data.synthetic import make_sequence
from dimp_core.nets import model_predictor as mp
from dimp_core.trackers import build_tracker
from dimp_core.viz import predictor as vp
from dimp_core.viz.figures import savefig
from dimp_core.widgets import PredictorExplorer

PRESETS = {"fast": {"num_iter": 10, "lambdas": (0.01, 0.1, 1.0)},
           "full": {"num_iter": 30, "lambdas": (0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0)}}
if preset not in PRESETS:
    raise ValueError(f"preset must be one of {list(PRESETS)}, got {preset!r}")
P = PRESETS[preset]
torch.set_num_threads(1)  # the networks are small: one thread is as fast, and much faster on a shared CPU
Path(record_path).parent.mkdir(parents=True, exist_ok=True)
record = {"preset": preset}
"""),
    md(r"""
## 1. The first frame's training set

`DiMPTracker.init` cuts 13 augmented patches from the first frame (shifts, a flip, blurs, rotations) and adds
2 dropout copies of the unshifted one: 15 training samples $x_j$ (classification features, $C \times 18
\times 18$) with the target box $b_j$ in each. `first_frame` runs `init` and keeps them, together with the
model predictor's own record of what it did, `tracker.init_trace` (a `PredictorTrace`).
"""),
    code("""
seq = make_sequence(1, "test", attributes=("distractors", "camera_motion"), num_frames=40)
tracker = build_tracker("dimp", device="cpu")
first = vp.first_frame(tracker, seq.frames[0], seq.boxes[0])
trace, optimizer = first.trace, first.optimizer
beta = float(torch.exp(optimizer.log_step_length))
print(f"train features x_j: {tuple(first.feat.shape)} (N, S, C, H, W); boxes {tuple(first.boxes.shape)}")
print(f"filter f: {tuple(first.f0.shape)}; {len(trace.iterates) - 1} steepest-descent iterations; "
      f"learned lambda = {float(optimizer.regularization()):.4f}, beta = {beta:.3f}")
"""),
    md(r"""
## 2. The filter initialiser

The initial filter pools the target region of each sample (after a 3x3 convolution) down to the filter size
$4 \times 4$ with PrRoIPool and averages over the samples:

$$f^{(0)} = \frac{1}{N}\sum_j \mathrm{PrPool}\big(\mathrm{conv}(x_j), b_j\big).$$

A round trip: calling the initialiser ourselves gives the trace's first iterate.
"""),
    code("""
with torch.no_grad():
    f0 = tracker.net.classifier.filter_initializer(first.feat, first.boxes)
assert torch.allclose(f0, trace.iterates[0])
print(f"f0 = trace.iterates[0]: max |difference| {float((f0 - trace.iterates[0]).abs().max()):.1e}")
"""),
    md(r"""
## 3. The discriminative loss

$$L(f) = \sum_j \big\| r(x_j * f, c_j) \big\|^2 + \lambda \|f\|^2, \qquad
r(s, c) = \sqrt{w_j}\, v_c \big(m_c s + (1 - m_c)\max(0, s) - y_c\big)$$

with the learned label $y_c$, target mask $m_c$ and spatial weight $v_c$ (notebook 03), sample weights
$w_j = 1/N$ (so the data term is the mean over the train set, the paper's $\frac{1}{|S_{train}|}$) and the
learned regulariser $\lambda$ (the paper writes $\|\lambda f\|^2$; our $\lambda$ is its square, as in the
code: `optimizer.regularization()` = `filter_reg`$^2$). `first.objective()` (a `dimp_core.solvers.Objective`)
evaluates it with the model predictor's functions; it reproduces the losses the tracker logged.
"""),
    code("""
objective = first.objective()
losses = [float(objective.loss(f)) for f in trace.iterates]
assert np.allclose(losses, [float(v) for v in trace.losses], rtol=1e-5)
print("L(f_i):", np.round(losses, 4))
"""),
    md(r"""
## 4. Steepest descent with the Gauss-Newton step length

Each iteration takes the gradient $g = \nabla_f \tfrac{1}{2} L$, the step length that minimises the
Gauss-Newton (quadratic) model of $L$ along $-g$,

$$\alpha = \frac{\|g\|^2}{\sum_j \|\sqrt{w_j}\, v_c\, J_j\,(x_j * g)\|^2 + \lambda \|g\|^2}, \qquad
J_j = \frac{\partial \hat s}{\partial s} = \frac{1 - m_c}{2}\,\mathrm{sign}(s) + \frac{1 + m_c}{2},$$

and updates $f \leftarrow f - \beta \alpha g$ with a learned scale $\beta$. One step from scratch, with the
model predictor's functions, gives the tracker's $f^{(1)}$:
"""),
    code("""
scores = mp.apply_filter(first.feat, f0)
res = mp.residual(scores, objective.label, objective.mask, objective.sqrt_weight)
jac = mp.score_activation_derivative(scores, objective.mask)
g = mp.filter_gradient(first.feat, f0, res, jac, objective.sqrt_weight, objective.reg)
alpha = mp.step_length(first.feat, g, jac, objective.sqrt_weight, objective.reg)
f1 = f0 - beta * alpha.reshape(-1, 1, 1, 1) * g
assert torch.allclose(f1, trace.iterates[1], atol=1e-6)
print(f"alpha_1 = {float(alpha):.4f} (trace: {float(trace.alphas[0]):.4f}); f1 matches trace.iterates[1]")
"""),
    md("""
The score map of every iterate, on the unshifted training sample (top) and on frame 10 of the sequence,
cropped at the first frame's target region (bottom): the peak at the target sharpens and the background
goes negative, also on a frame the filter has not seen.
"""),
    code("""
test = vp.search_features(tracker, seq.frames[10])
fig = vp.plot_iterate_scores(first, test, "frame 10 (unseen)")
savefig(fig, figures_dir, "02_iterates")
fig
"""),
    code("""
fig = vp.plot_trace(trace, beta)
savefig(fig, figures_dir, "02_loss_alpha")
alphas = [float(a[0]) for a in trace.alphas]
print("loss falls at every iteration:", bool(np.all(np.diff(losses) < 0)))
fig
"""),
    md(r"""
## 5. Steepest descent vs fixed-step gradient descent vs conjugate gradients

**Gradient descent** takes $f \leftarrow f - \eta\, g$ with a fixed $\eta$. On the quadratic model it converges
only if $\eta < 2/\lambda_{max}$, where $\lambda_{max}$ is the largest eigenvalue of the Gauss-Newton matrix
$A = X^T J W J X + \lambda I$; we try $\eta = 0.5, 1$ and $1.9 / \lambda_{max}$.

**Conjugate gradients** solve the Gauss-Newton normal equations with the signs of $s$ frozen,
$A f = X^T J W y$, with one $X$ and one $X^T$ per step (as gradient descent; steepest descent needs one more
$X$ for $\alpha$); the signs are refrozen every 5 steps. Run to convergence, the same solver gives the
reference minimum ("CG solution").

All start from the same $f^{(0)}$ and run the same number of iterations.
"""),
    code("""
comparison = vp.compare_solvers(first, num_iter=P["num_iter"])
c = comparison
print(f"lambda_max = {c.lambda_max:.3f}; fixed steps eta = {[round(r.steps[0], 4) for r in c.gd]}; "
      f"steepest descent's beta * alpha ranges {min(c.sd.steps):.3f} .. {max(c.sd.steps):.3f}")
for run in (c.sd, *c.gd, c.cg, c.solution):
    print(f"  {run.name:55s} L after {len(run.losses) - 1:3d} steps: {run.losses[-1]:.4f}")
"""),
    code("""
fig = vp.plot_comparison(c, first)
savefig(fig, figures_dir, "02_solvers")
fig
"""),
    md(r"""
On this frame steepest descent ends lower than every fixed step at equal iterations (checked below): its
$\alpha$ is the exact line minimum of the quadratic model along $-g$, often well above the stability limit
$2/\lambda_{max}$ of a fixed step (the gradient rarely points along the sharpest direction), and it needs no
tuning. It is not optimal on every single step: the learned $\beta < 1$ shortens each step below the line
minimum, so in the first iteration a fixed step that happens to lie near $\alpha$ can be slightly ahead.
Whether the damping pays off over the iterations is checked against $\beta = 1$ (plain Gauss-Newton steepest
descent). CG, which keeps its search directions conjugate, gets closer to the minimum here in the same number
of steps, but it is not what DiMP unrolls: steepest descent is a fixed, short chain of differentiable steps
whose $\beta$, $\lambda$ and loss are trained through.
"""),
    code("""
gd_final = {run.name: run.losses[-1] for run in c.gd}
sd_beats_gd = all(c.sd.losses[-1] < v for v in gd_final.values())
print(f"steepest descent ({c.sd.losses[-1]:.4f}) beats every fixed step at {c.num_iter} iterations: {sd_beats_gd}")
first_step_gd = min(run.losses[1] for run in c.gd)
print(f"after one iteration: steepest descent {c.sd.losses[1]:.4f}, best fixed step {first_step_gd:.4f}")

plain = solvers.with_overrides(optimizer)
plain.log_step_length.data.zero_()  # beta = 1
sd_plain = solvers.steepest_descent(plain, objective, first.f0, first.boxes, c.num_iter)
print(f"after {c.num_iter} iterations: learned beta = {beta:.2f}: {c.sd.losses[-1]:.4f}; "
      f"beta = 1: {sd_plain.losses[-1]:.4f}")
"""),
    md(r"""
## 6. Sliders: $\lambda$, iterations, target mask

`PredictorExplorer` reruns the comparison whenever a slider moves (in JupyterLab; in a headless run the figure
below stays at the learned values). The target-mask factor $\gamma$ multiplies the mask's logits,
$m_c = \sigma(\gamma \sum_k \phi^m_k \rho_k)$: $\gamma = 1$ is the learned mask, $\gamma = 0$ gives
$m = 1/2$ everywhere, larger $\gamma$ makes it a sharper step between L2 (target) and hinge (background).
"""),
    code("""
explorer = PredictorExplorer(first, num_iter=P["num_iter"])
explorer.show()
"""),
    md(r"""
What $\lambda$ does, computed without the sliders: a larger regulariser makes the problem better conditioned
(every solver gets close to its minimum sooner) but shrinks the filter, and the target's peak with it.
"""),
    code("""
sweep = []
for lam in P["lambdas"]:
    run = vp.compare_solvers(first, reg=lam, num_iter=P["num_iter"])
    f_sd = run.sd.iterates[-1]
    sweep.append({"lambda": lam, "sd": run.sd.losses[-1], "best_gd": min(r.losses[-1] for r in run.gd),
                  "solution": run.solution.losses[-1], "filter_norm": float(f_sd.norm()),
                  "peak": float(first.scores(f_sd).max())})
print(f"{'lambda':>8} {'SD loss':>9} {'best GD':>9} {'CG sol.':>9} {'|f|':>7} {'peak':>6}")
for row in sweep:
    print(f"{row['lambda']:8.3g} {row['sd']:9.4f} {row['best_gd']:9.4f} {row['solution']:9.4f} "
          f"{row['filter_norm']:7.3f} {row['peak']:6.3f}")
"""),
    md(r"""
## 7. How many train frames does the predictor use?

Offline the predictor learns from sets of 3 train frames; online the tracker hands it a memory of up to 50
samples. `experiments/train_frames_probe.py` (seeded; its JSON lies beside it) holds the shipped weights fixed, builds
training examples of 16 train frames and 3 later test frames from validation sequences, and predicts the filter
from the first k train frames: $f^{(0)}$, $f^{(5)}$ (the 5 steps it was trained with) and $f^{(30)}$ (near
the minimum of the learned objective). Each filter is scored on the same test frames.
"""),
    code("""
probe = json.loads(Path("../experiments/train_frames_probe.json").read_text())
rows = {r["k"]: r for r in probe["rows"]}
for k, r in rows.items():
    print(f"k = {k:2d}: loss f0 {r['clf_init']:.3f}  f5 {r['clf_final']:.3f}  f30 {r['clf_deep']:.3f}  "
          f"peak hit f5 {100 * r['peak_hit']:.1f} %  f30 {100 * r['peak_hit_deep']:.1f} %")
mean, low, high = rows[16]["clf_final_vs_3"]
print(f"16 against 3 frames, f5 loss: {mean:+.4f} [{low:+.4f}, {high:+.4f}] (95 % bootstrap over examples)")
fig = vp.plot_train_frames(probe)
savefig(fig, figures_dir, "02_train_frames")
fig
"""),
    md(r"""
Going from 1 to 3 frames helps most; beyond the 3 it was trained with, the loss falls only a little and the
score peak finds the target no more often. Running 30 steps instead of 5 does not help either: that filter, close
to the minimum of the learned objective, is worse on the test frames. The predictor was trained to stop early,
and the minimum of its own objective over-fits a few frames. Whether training on larger sets would let it use
more frames is the question of the next training round (`experiments/runs/round7/plan.txt`).
"""),
    md("""
## Record
"""),
    code("""
record.update({
    "num_train_samples": int(first.feat.shape[0]),
    "lambda": float(optimizer.regularization()),
    "beta": beta,
    "tracker_losses": losses,
    "tracker_alphas": alphas,
    "num_iter": c.num_iter,
    "lambda_max": c.lambda_max,
    "sd_losses": c.sd.losses,
    "gd": {run.name: {"eta": run.steps[0], "losses": run.losses} for run in c.gd},
    "cg_losses": c.cg.losses,
    "cg_solution_loss": c.solution.losses[-1],
    "sd_beats_all_gd": sd_beats_gd,
    "sd_beta1_losses": sd_plain.losses,
    "lambda_sweep": sweep,
    "explorer_sd_final": explorer.comparison.sd.losses[-1],
    "train_frames_probe": {k: {"clf_final": r["clf_final"], "peak_hit": r["peak_hit"]} for k, r in rows.items()},
    "figures": ["02_iterates.png", "02_loss_alpha.png", "02_solvers.png", "02_train_frames.png"],
})
Path(record_path).write_text(json.dumps(record, indent=1))
print(f"wrote {record_path}")
"""),
    md(r"""
## Summary

- DiMP's filter starts from a pooled template $f^{(0)}$ and is refined by steepest descent on a
  discriminative loss over 15 augmented samples of the first frame.
- The Gauss-Newton step length $\alpha = \|g\|^2 / (\|J X g\|_W^2 + \lambda\|g\|^2)$ is the exact minimiser of
  the quadratic model along the gradient: no step size to tune, and faster than any safe fixed step.
- Conjugate gradients on the same normal equations converge faster still, but steepest descent is a short
  differentiable chain whose loss, $\lambda$ and $\beta$ DiMP learns offline.
- The predictor gains most from its first 3 train frames, the set size it was trained on, and little beyond;
  its 5 steps are part of what it learned: 30 steps lower its objective on the train frames further and do worse
  on the test frames.

## Exercises

1. Move the $\lambda$ slider to $10^{-3}$: how does the conditioning ($\lambda_{max}$, the fixed steps) change,
   and what happens to the score map of the CG solution?
2. Set the target-mask factor to 0 (every pixel half L2, half hinge): which solver suffers, and why can a
   fixed step that was safe at $f^{(0)}$ diverge later? (Hint: $J$ changes with the signs of $s$.)
3. Repeat the $\beta = 1$ comparison on other first frames (`make_sequence(seed, "test")`) and at 3 and 30
   iterations: when does the learned damping help, and when does it cost?
"""),
]


def main() -> None:
    write(CELLS, "02_model_predictor")


if __name__ == "__main__":
    main()
