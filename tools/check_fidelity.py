"""Check that dimp_core's DiMP and ATOM networks compute what the official pytracking code computes.

Usage (from the repository root)::

    python tools/check_fidelity.py --pytracking PATH [--json scratch/fidelity.json] [--seed 0]

``PATH`` is a checkout of https://github.com/visionml/pytracking: the folder that holds ``ltr/`` and
``pytracking/``. Nothing of it is copied into this project; it is imported from ``PATH`` at run time, so
anyone can repeat the check against their own checkout. The script runs on the CPU in a few minutes and
exits with status 1 if any comparison is out of tolerance.

What is compared
----------------
Three networks are built twice, by pytracking and by :func:`dimp_core.nets.build_network`:

* ``dimpnet18`` with the DiMP-18 training settings (``ltr/train_settings/dimp/dimp18.py``: filter size 4,
  5 optimiser iterations, step 0.9, regulariser 0.1, label sigma 0.9 cells, 100 distance bins of 0.1,
  mask factor 3) vs ``build_network("dimp18")``;
* ``dimpnet50`` with the same settings, ``clf_feat_blocks=0, out_feature_dim=512`` vs ``"dimp50"``;
* ``atom_resnet18`` vs ``"atom"``.

For each pair the script

1. checks that the state dicts have the same keys and shapes and the parameters the same
   ``requires_grad`` (ATOM's backbone is frozen in both);
2. draws random weights for OUR network from a seeded generator -- every parameter and every BatchNorm
   running statistic (set from the statistics of one pass on separate random images, then perturbed, so
   that eval-mode activations stay O(1) even through ResNet-50); the learned loss of the model predictor
   (label, mask and spatial-weight 1x1 convs) is perturbed around its initialisation, ``log_step_length``
   and ``filter_reg`` keep their given initial values -- and copies that state dict into the official
   network with ``load_state_dict(strict=True)``;
3. feeds both the same random inputs (train and test images (3, 2, 3, 288, 288), i.e. 3 frames of 2
   sequences, train boxes (3, 2, 4) in crop pixels, proposals (3, 2, 8, 4)) and compares, in eval mode:

   - backbone features (layer2, layer3) and classification features;
   - the model predictor on identical features: every filter iterate and every loss of pytracking's
     ``classifier.get_filter`` vs our ``classifier.predict_filter``, without sample weights, with (N,)
     sample weights and with per-sequence (N, S) sample weights; the scores of ``classify``;
   - the IoU-Net on identical features: ``get_modulation``, ``get_iou_feat``, ``predict_iou``;
   - ``forward``: every score-map iterate and ``iou_pred``;
   - gradients: a fixed random linear functional of all ``forward`` outputs (every score iterate and
     ``iou_pred``) is back-propagated through both networks and every parameter gradient is compared.
     This checks that the unrolled optimiser is differentiated identically. (Random weights instead of a
     plain sum make the check sensitive to errors a sum could average out.)

   and again in train mode (BatchNorm on batch statistics, as in training; pytracking's optimiser also
   switches to its training implementation of the filter-gradient convolution): ``forward`` outputs,
   gradients, the BatchNorm running statistics after that forward, and the model predictor;
4. runs pytracking's tracking-time calls of the DiMP tracker (``pytracking/tracker/dimp/dimp.py``): the
   initial ``get_filter`` on 4-D features of 15 samples with ``num_iter=10, compute_losses=True``, then
   ``filter_optimizer`` on a 40-sample memory with sample weights (``num_iter=10``), then ``classify``,
   against ours (which takes a sequence axis of length 1).

Tolerances
----------
A check passes when ``|ours - ref| <= atol * max|ref| + rtol * |ref|`` element-wise, per tensor (per
parameter for gradients). float64 is the exact check: ``rtol, atol = 1e-9, 1e-11`` for values and
``1e-8, 1e-10`` for gradients; observed differences are ~1e-16 to 1e-13 of the largest magnitude.
float32 shows agreement at the precision the tracker runs in, with ``1e-3, 1e-3`` for values and
``1e-2, 5e-3`` for gradients. These are looser than float32's epsilon suggests because the unrolled
Gauss-Newton optimiser amplifies rounding (its step lengths divide by data-dependent norms, and the
hinge's Jacobian switches where a score changes sign): over seeds 0-9, the largest float32 difference
was 1.6e-4 of the largest value (seed 6, 10-iteration tracking optimisation) and 4.4e-4 of a parameter's
largest gradient (seed 7), while float64 runs of seeds 0, 6 and 7 stayed below 1e-13. Parts without the
optimiser (backbones, IoU-Net) agreed bit for bit (same operations in the same order).

float64 convolutions are slow on a CPU, so the float64 run uses 128-pixel crops (``--float64-size``;
boxes scale with the crop) and back-propagates in train mode only: our model predictor has a single code
path for both modes, so eval-mode gradients, checked in float32, add a check of pytracking's eval-only
filter-gradient implementation rather than of ours.

The table lists per check: the number of tensors compared, the largest reference magnitude, the largest
absolute difference, their ratio (for gradients: the largest ratio over parameters, each against its own
largest gradient) and the largest element-wise relative difference (with the absolute tolerance as
floor, so near-zero elements do not dominate). ``--json`` (default ``scratch/fidelity.json``) gets the
same rows, the worst parameter of each gradient comparison and the settings.

Why shims, and what is therefore NOT checked independently
-----------------------------------------------------------
``ltr`` imports a few packages that cannot be installed beside this torch or are irrelevant here.
Before ``ltr`` is imported the script puts stand-ins into ``sys.modules``:

* ``torchvision``: a stub whose ``torchvision.models.resnet`` provides ``BasicBlock`` and ``Bottleneck``
  (ours, from :mod:`dimp_core.nets.backbones`, which follow torchvision's definitions) and an empty
  ``model_urls``. pytracking takes these blocks from torchvision only for the classification-feature
  head (``ltr/models/target_classifier/features.py``), so that head's BasicBlock (DiMP-18) is ours on
  both sides and NOT independently checked. The ResNet backbones are checked independently: pytracking's
  ``ltr/models/backbone/resnet.py`` defines its own blocks.
* ``ltr.external.PreciseRoIPooling.pytorch.prroi_pool``: the official PrRoIPool is a CUDA extension (a git
  submodule); the stand-in ``PrRoIPool2D(pooled_h, pooled_w, spatial_scale)`` calls
  :func:`dimp_core.ops.prroi_pool2d`. The pooling itself is therefore NOT independently checked here (it
  has its own tests against numerical integration, ``tests/test_ops.py``); everything around it (box
  to roi conversion, batch indices, pooled sizes and scales) is.
* ``timm.models.layers``: needed only by ``ltr/models/backbone/swin_transformer_flex.py``, which
  ``ltr.models.backbone`` imports but DiMP and ATOM never use; its names raise if called.
* ``pytracking``: the package's ``__init__`` imports the whole tracking suite (OpenCV, evaluation,
  webcam); a bare package object pointing at ``PATH/pytracking`` lets ``from pytracking import
  TensorList`` work without running it.

No other module is stubbed (``jpeg4py``, OpenCV and ``ltr.data`` are not imported by the model code).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import types
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # check the dimp_core next to this script, not another installed copy
    sys.path.insert(0, str(REPO_ROOT))

from dimp_core.nets import build_network  # noqa: E402
from dimp_core.nets.backbones import BasicBlock, Bottleneck  # noqa: E402
from dimp_core.ops import prroi_pool2d  # noqa: E402

# Pass: |ours - ref| <= atol * max|ref| + rtol * |ref| element-wise, per tensor (per parameter for
# gradients), with (rtol, atol) per dtype and kind. float64 is the exact check; float32 shows agreement at
# the precision the tracker runs in, where the unrolled optimiser amplifies rounding (module docstring).
TOLERANCES = {
    torch.float32: {"values": (1e-3, 1e-3), "gradients": (1e-2, 5e-3)},
    torch.float64: {"values": (1e-9, 1e-11), "gradients": (1e-8, 1e-10)},
}

# The DiMP training settings (ltr/train_settings/dimp/dimp18.py); init_gauss_sigma = 1/4 / 5 * 18 cells.
DIMP_TRAIN_SETTINGS = dict(filter_size=4, optim_iter=5, optim_init_step=0.9, optim_init_reg=0.1,
                           init_gauss_sigma=0.9, num_dist_bins=100, bin_displacement=0.1,
                           mask_init_factor=3.0, backbone_pretrained=False)

# Input sizes: DiMP training uses 3 train and 3 test frames per sequence, 288 x 288 crops, 8 proposals.
# float64 convolutions are slow on a CPU (ResNet-50's backward ~8x float32), so the float64 run uses
# smaller crops by default (--float64-size); boxes scale with the crop.
N_TRAIN, N_TEST, NUM_SEQ, NUM_PROPOSALS = 3, 3, 2, 8
IMG_SIZE = {"float32": 288, "float64": 128}
FEAT_STRIDE = 16
TRACK_FEAT_SIZE = 18  # tracking-time features: DiMP's 288-pixel search crop at stride 16


# --------------------------------------------------------------------------- shims


def _stub_module(name: str, package: bool = False, **attrs: object) -> types.ModuleType:
    """Create a module object, register it in sys.modules and as an attribute of its parent stub."""
    module = types.ModuleType(name)
    if package:
        module.__path__ = []  # type: ignore[attr-defined]
    for key, value in attrs.items():
        setattr(module, key, value)
    sys.modules[name] = module
    parent, _, child = name.rpartition(".")
    if parent in sys.modules:
        setattr(sys.modules[parent], child, module)
    return module


class PrRoIPool2D(nn.Module):
    """Stand-in for the official CUDA ``PrRoIPool2D``, with its signature, computed by dimp_core.ops."""

    def __init__(self, pooled_height: int, pooled_width: int, spatial_scale: float) -> None:
        super().__init__()
        self.pooled_height, self.pooled_width = int(pooled_height), int(pooled_width)
        self.spatial_scale = float(spatial_scale)

    def forward(self, features: Tensor, rois: Tensor) -> Tensor:
        return prroi_pool2d(features, rois, (self.pooled_height, self.pooled_width), self.spatial_scale)


def _unavailable(name: str) -> Callable[..., object]:
    def fail(*args: object, **kwargs: object) -> object:
        raise NotImplementedError(f"{name} is a stub of tools/check_fidelity.py (timm is not installed)")

    return fail


class _DropPathStub(nn.Module):
    def __init__(self, *args: object, **kwargs: object) -> None:
        raise NotImplementedError("timm.models.layers.DropPath is a stub of tools/check_fidelity.py")


def install_shims(pytracking_root: Path) -> None:
    """Make ``ltr.models.tracking.dimpnet`` and ``ltr.models.bbreg.atom`` importable (module docstring)."""
    if not (pytracking_root / "ltr" / "models" / "tracking" / "dimpnet.py").is_file():
        raise SystemExit(f"{pytracking_root} does not look like a pytracking checkout (no "
                         "ltr/models/tracking/dimpnet.py); pass the folder that holds ltr/ and pytracking/")
    for name in ("ltr", "pytracking", "torchvision", "timm"):
        if name in sys.modules:
            raise SystemExit(f"{name} was imported before the shims could be installed")

    # (a) torchvision: pytracking takes BasicBlock/Bottleneck for the classifier head from it
    _stub_module("torchvision", package=True)
    _stub_module("torchvision.models", package=True)
    _stub_module("torchvision.models.resnet", BasicBlock=BasicBlock, Bottleneck=Bottleneck, model_urls={})

    # (b) the PrRoIPool CUDA extension (a git submodule, usually absent)
    _stub_module("ltr.external", package=True)
    _stub_module("ltr.external.PreciseRoIPooling", package=True)
    _stub_module("ltr.external.PreciseRoIPooling.pytorch", package=True)
    _stub_module("ltr.external.PreciseRoIPooling.pytorch.prroi_pool", PrRoIPool2D=PrRoIPool2D)

    # (c) timm, for the Swin backbone that ltr.models.backbone imports but DiMP/ATOM never build
    _stub_module("timm", package=True)
    _stub_module("timm.models", package=True)
    _stub_module("timm.models.layers", DropPath=_DropPathStub, to_2tuple=_unavailable("to_2tuple"),
                 trunc_normal_=_unavailable("trunc_normal_"))

    # (d) pytracking's package __init__ imports the whole tracker suite; skip it, keep its submodules
    _stub_module("pytracking", package=True).__path__ = [str(pytracking_root / "pytracking")]  # type: ignore[attr-defined]
    sys.path.insert(0, str(pytracking_root))
    from pytracking.libs import TensorList

    sys.modules["pytracking"].TensorList = TensorList  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- networks and weights


@dataclass
class Pair:
    """Our network and the official one, same weights."""

    name: str
    ours: nn.Module
    theirs: nn.Module
    has_classifier: bool
    state: dict[str, Tensor] = field(default_factory=dict)  # the random weights, kept to restore them


def build_pairs(names: Iterable[str]) -> list[Pair]:
    from ltr.models.bbreg import atom
    from ltr.models.tracking import dimpnet

    official = {
        "dimp18": lambda: dimpnet.dimpnet18(**DIMP_TRAIN_SETTINGS),
        "dimp50": lambda: dimpnet.dimpnet50(**DIMP_TRAIN_SETTINGS, clf_feat_blocks=0, out_feature_dim=512),
        "atom": lambda: atom.atom_resnet18(backbone_pretrained=False),
    }
    return [Pair(n, build_network(n), official[n](), n != "atom") for n in names]


def structure_problems(ours: nn.Module, theirs: nn.Module) -> list[str]:
    """Differences in state-dict keys/shapes and in which parameters require gradients."""
    a, b = ours.state_dict(), theirs.state_dict()
    problems = [f"only ours: {k}" for k in sorted(a.keys() - b.keys())]
    problems += [f"only theirs: {k}" for k in sorted(b.keys() - a.keys())]
    problems += [f"shape of {k}: {tuple(a[k].shape)} vs {tuple(b[k].shape)}"
                 for k in sorted(a.keys() & b.keys()) if a[k].shape != b[k].shape]
    ga = {n: p.requires_grad for n, p in ours.named_parameters()}
    gb = {n: p.requires_grad for n, p in theirs.named_parameters()}
    if ga.keys() != gb.keys():
        problems.append("named_parameters differ (a buffer on one side is a parameter on the other)")
    problems += [f"requires_grad of {k}: {ga[k]} vs {gb[k]}" for k in sorted(ga.keys() & gb.keys())
                 if ga[k] != gb[k]]
    return problems


def randomise(net: nn.Module, gen: torch.Generator, img_size: int) -> None:
    """Seeded random weights for every parameter and BatchNorm statistic, at scales keeping activations O(1).

    Convolutions and linear layers: He normal (fan in), biases N(0, 0.1^2). BatchNorm: weight U(0.5, 1.5),
    bias N(0, 0.1^2), running statistics from :func:`calibrate_batchnorm`. The model predictor's learned
    loss (label, mask and spatial-weight 1x1 convs over the distance bins) is perturbed around its initial
    value by N(0, 0.1^2); log_step_length and filter_reg keep their initial values.
    """

    def randn(t: Tensor, std: float = 1.0) -> Tensor:
        return torch.randn(t.shape, generator=gen).to(t.dtype) * std

    def rand(t: Tensor, low: float, high: float) -> Tensor:
        return (low + (high - low) * torch.rand(t.shape, generator=gen)).to(t.dtype)

    learned_loss: set[int] = set()
    classifier = getattr(net, "classifier", None)
    if classifier is not None:
        opt = classifier.filter_optimizer
        for m in (opt.label_map_predictor, opt.target_mask_predictor[0], opt.spatial_weight_predictor):
            learned_loss.add(id(m))
    with torch.no_grad():
        for m in net.modules():
            if id(m) in learned_loss:
                m.weight.add_(randn(m.weight, 0.1))
            elif isinstance(m, (nn.Conv2d, nn.Linear)):
                m.weight.copy_(randn(m.weight, math.sqrt(2.0 / m.weight[0].numel())))
                if m.bias is not None:
                    m.bias.copy_(randn(m.bias, 0.1))
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(rand(m.weight, 0.5, 1.5))
                m.bias.copy_(randn(m.bias, 0.1))
    calibrate_batchnorm(net, gen, img_size)


def calibrate_batchnorm(net: nn.Module, gen: torch.Generator, img_size: int) -> None:
    """Running statistics close to those the BatchNorms actually see, so eval-mode activations stay O(1).

    Random running statistics (say mean N(0, 0.1^2), variance U(0.5, 1.5)) let activations grow through
    ResNet-50, to ~1e4 in layer3 and ~1e7 in the IoU prediction. Instead, one eval-mode forward pass on
    separate random inputs (1 train and 1 test frame of 4 sequences) sets each BatchNorm's statistics,
    just before it runs, from its input: mean + N(0, 0.1^2) std, variance (plus a tenth of the mean
    variance over channels, so that no channel is divided by ~0) times U(0.5, 1.5).
    """

    def set_statistics(module: nn.Module, args: tuple[Tensor, ...]) -> None:
        x = args[0]
        dims = [d for d in range(x.dim()) if d != 1]
        mean, var = x.mean(dim=dims), x.var(dim=dims, unbiased=False)
        var = var + 0.1 * var.mean() + 1e-6
        module.running_mean.copy_(mean + 0.1 * var.sqrt() * torch.randn(mean.shape, generator=gen).to(x.dtype))
        module.running_var.copy_(var * (0.5 + torch.rand(var.shape, generator=gen)).to(x.dtype))

    bn = [m for m in net.modules() if isinstance(m, nn.BatchNorm2d)]
    handles = [m.register_forward_pre_hook(set_statistics) for m in bn]
    try:
        with torch.no_grad():
            s = 4
            imgs = torch.randn(2, s, 3, img_size, img_size, generator=gen)
            boxes = random_boxes((2, s), gen, img_size)
            proposals = random_boxes((1, s, NUM_PROPOSALS), gen, img_size, proposals=True)
            net.eval()(imgs[:1], imgs[1:], boxes[:1], proposals)
    finally:
        for h in handles:
            h.remove()


# --------------------------------------------------------------------------- inputs


def random_boxes(shape: tuple[int, ...], gen: torch.Generator, img_size: int, proposals: bool = False) -> Tensor:
    """(*shape, 4) boxes (x, y, w, h) in crop pixels near the crop centre, as in DiMP's training crops.

    Targets (search area 5x the target): centre within +-8 % of the crop, sides 10-35 % of the crop.
    Proposals: centre within +-28 %, sides 5-50 % (at 288 pixels: 14-144).
    """
    spread, low, high = (0.28, 0.05, 0.5) if proposals else (0.08, 0.1, 0.35)
    centre = img_size * (0.5 + spread * (2 * torch.rand(*shape, 2, generator=gen) - 1))
    wh = img_size * (low + (high - low) * torch.rand(*shape, 2, generator=gen))
    return torch.cat([centre - wh / 2, wh], dim=-1)


def normalised_weights(shape: tuple[int, ...], gen: torch.Generator) -> Tensor:
    """Positive sample weights summing to one over the first axis."""
    w = 0.2 + torch.rand(*shape, generator=gen)
    return w / w.sum(dim=0, keepdim=True)


@dataclass
class Inputs:
    img_size: int
    train_imgs: Tensor  # (N_train, S, 3, H, W)
    test_imgs: Tensor  # (N_test, S, 3, H, W)
    train_bb: Tensor  # (N_train, S, 4)
    proposals: Tensor  # (N_test, S, P, 4)
    weights: Tensor  # (N_train,) sample weights
    seq_weights: Tensor  # (N_train, S) per-sequence sample weights
    out_coeffs: list[Tensor] = field(default_factory=list)  # random linear functional of the outputs


def make_inputs(gen: torch.Generator, img_size: int, dtype: torch.dtype) -> Inputs:
    """Random images (standard normal, like ImageNet-normalised pixels), boxes, weights, output coefficients."""
    ho = -(-img_size // FEAT_STRIDE) + 1  # score map size for the even filter size 4
    num_scores = DIMP_TRAIN_SETTINGS["optim_iter"] + 1
    coeffs = [torch.randn(N_TEST, NUM_SEQ, ho, ho, generator=gen) for _ in range(num_scores)]
    coeffs.append(torch.randn(N_TEST, NUM_SEQ, NUM_PROPOSALS, generator=gen))
    inp = Inputs(
        img_size=img_size,
        train_imgs=torch.randn(N_TRAIN, NUM_SEQ, 3, img_size, img_size, generator=gen),
        test_imgs=torch.randn(N_TEST, NUM_SEQ, 3, img_size, img_size, generator=gen),
        train_bb=random_boxes((N_TRAIN, NUM_SEQ), gen, img_size),
        proposals=random_boxes((N_TEST, NUM_SEQ, NUM_PROPOSALS), gen, img_size, proposals=True),
        weights=normalised_weights((N_TRAIN,), gen),
        seq_weights=normalised_weights((N_TRAIN, NUM_SEQ), gen),
        out_coeffs=coeffs,
    )
    for name in ("train_imgs", "test_imgs", "train_bb", "proposals", "weights", "seq_weights"):
        setattr(inp, name, getattr(inp, name).to(dtype))
    inp.out_coeffs = [c.to(dtype) for c in inp.out_coeffs]
    return inp


# --------------------------------------------------------------------------- comparison


@dataclass
class Row:
    dtype: str
    net: str
    mode: str
    check: str
    tensors: int
    ref_max: float  # max |reference|
    max_abs: float  # max |ours - reference|
    rel_to_max: float  # max_abs / ref_max (gradients: the largest such ratio over the parameters)
    max_rel: float  # max |ours - ref| / (|ref| + atol * ref_max)
    ok: bool
    detail: str = ""


class Comparer:
    """Compares (nested lists of) tensors, ours against the reference, and collects table rows."""

    def __init__(self, dtype: torch.dtype) -> None:
        self.dtype = dtype
        self.rows: list[Row] = []
        self.net, self.mode = "", ""

    def _stats(self, ours: Tensor, ref: Tensor, kind: str = "values") -> tuple[float, float, float, bool]:
        """max |ref|, max |ours - ref|, max element-wise relative difference, within tolerance."""
        rtol, atol = TOLERANCES[self.dtype][kind]
        if ref.numel() == 0:
            return 0.0, 0.0, 0.0, True
        ours, ref = ours.detach(), ref.detach()
        ref_abs = ref.abs()
        diff = (ours - ref).abs()  # exact when the two are close (Sterbenz), NaN if either is
        ref_max, max_abs = float(ref_abs.max()), float(diff.max())
        if not (math.isfinite(ref_max) and math.isfinite(max_abs)):
            return ref_max, math.inf, math.inf, False
        floor = atol * ref_max if ref_max > 0 else torch.finfo(self.dtype).tiny
        max_rel = float((diff / (ref_abs + floor)).max())
        ok = bool((diff <= atol * ref_max + rtol * ref_abs).all())
        return ref_max, max_abs, max_rel, ok

    def compare(self, check: str, ours: object, ref: object, detail: str = "") -> Row:
        a, b = _flatten(ours), _flatten(ref)
        ref_max = max_abs = max_rel = 0.0
        ok = len(a) == len(b)
        if not ok:
            detail = f"{len(a)} tensors vs {len(b)}"
        for x, y in zip(a, b, strict=False):  # a length mismatch is reported above
            if x.shape != y.shape:
                ok, detail = False, f"shape {tuple(x.shape)} vs {tuple(y.shape)}"
                continue
            r, d, q, good = self._stats(x, y)
            ref_max, max_abs, max_rel, ok = max(ref_max, r), max(max_abs, d), max(max_rel, q), ok and good
        return self._add(check, len(b), ref_max, max_abs, max_rel, ok, detail)

    def compare_grads(self, check: str, ours: nn.Module, ref: nn.Module) -> Row:
        """Every parameter gradient; the same parameters must have (or lack) one on both sides."""
        ga = {n: p.grad for n, p in ours.named_parameters()}
        gb = {n: p.grad for n, p in ref.named_parameters()}
        ref_max = max_abs = max_rel = 0.0
        ok, worst, worst_rel, count = True, "", -1.0, 0
        for name in sorted(gb):
            x, y = ga.get(name), gb[name]
            if (x is None) != (y is None):
                ok, worst = False, f"{name}: gradient on one side only"
                continue
            if y is None:
                continue
            count += 1
            r, d, q, good = self._stats(x, y, "gradients")
            ref_max, max_abs, max_rel, ok = max(ref_max, r), max(max_abs, d), max(max_rel, q), ok and good
            if r > 0 and d / r > worst_rel:
                worst_rel, worst = d / r, f"worst: {name} ({d:.2e} of {r:.2e})"
        if count == 0:
            ok, worst = False, "no gradients"
        # gradients differ in scale from parameter to parameter: the ratio column holds the largest
        # ratio of a parameter's difference to that parameter's own largest gradient
        return self._add(check, count, ref_max, max_abs, max_rel, ok, worst, ratio=max(worst_rel, 0.0))

    def require(self, check: str, problems: list[str]) -> Row:
        detail = "; ".join(problems[:5]) + (f" (+{len(problems) - 5} more)" if len(problems) > 5 else "")
        return self._add(check, 0, 0.0, 0.0, 0.0, not problems, detail)

    def _add(self, check: str, tensors: int, ref_max: float, max_abs: float, max_rel: float, ok: bool,
             detail: str, ratio: float | None = None) -> Row:
        if ratio is None:
            ratio = max_abs / ref_max if ref_max > 0 else max_abs
        row = Row(dtype_name(self.dtype), self.net, self.mode, check, tensors, ref_max, max_abs, ratio, max_rel, ok,
                  detail)
        self.rows.append(row)
        print(format_row(row), flush=True)
        return row


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "")


def _flatten(x: object) -> list[Tensor]:
    if isinstance(x, Tensor):
        return [x]
    if isinstance(x, dict):
        return [t for k in sorted(x) for t in _flatten(x[k])]
    if isinstance(x, (list, tuple)):
        return [t for item in x for t in _flatten(item)]
    raise TypeError(f"cannot compare {type(x).__name__}")


HEADER = (f"{'dtype':<8}{'net':<7}{'mode':<6}{'check':<44}{'#':>4}{'max|ref|':>10}{'max abs diff':>14}"
          f"{'abs/max|ref|':>14}{'max rel':>10}  ok")


def format_row(r: Row) -> str:
    text = (f"{r.dtype:<8}{r.net:<7}{r.mode:<6}{r.check:<44}{r.tensors:>4}{r.ref_max:>10.2e}"
            f"{r.max_abs:>14.2e}{r.rel_to_max:>14.2e}{r.max_rel:>10.2e}  {'yes' if r.ok else 'NO'}")
    return text + (f"  [{r.detail}]" if r.detail and (not r.ok or r.check.startswith("gradients")) else "")


# --------------------------------------------------------------------------- the checks


def _first_frame(feat: Tensor, num_seq: int) -> Tensor:
    return feat.reshape(-1, num_seq, *feat.shape[-3:])[0]


def forward_with_grads(net: nn.Module, inp: Inputs, has_classifier: bool) -> tuple[list[Tensor], Tensor]:
    """Training forward pass, then backprop of a fixed random linear functional of all outputs."""
    net.zero_grad(set_to_none=True)
    out = net(inp.train_imgs, inp.test_imgs, inp.train_bb, inp.proposals)
    scores, iou = out if has_classifier else ([], out)
    total = (iou * inp.out_coeffs[-1]).sum()
    for s, c in zip(scores, inp.out_coeffs[: len(scores)], strict=True):
        total = total + (s * c).sum()
    total.backward()
    return [s.detach() for s in scores], iou.detach()


def check_predictor(cmp: Comparer, pair: Pair, x: Tensor, bb: Tensor, label: str = "",
                    our_weight: Tensor | None = None, ref_weight: Tensor | None = None) -> Tensor:
    """get_filter (theirs) vs predict_filter (ours) on identical features; returns the reference filter.

    x: (N, S, C, H, W) classification features, bb: (N, S, 4); sample weights as each side takes them.
    """
    f_ref, iterates_ref, losses_ref = pair.theirs.classifier.get_filter(x, bb, sample_weight=ref_weight)
    trace = pair.ours.classifier.predict_filter(x, bb, sample_weight=our_weight)
    cmp.compare(f"filter iterates{label}", trace.iterates, iterates_ref)
    cmp.compare(f"losses{label}", trace.losses, losses_ref)
    return f_ref


def check_eval(cmp: Comparer, pair: Pair, inp: Inputs, eval_grads: bool) -> None:
    """Eval mode: the pieces on identical inputs (the reference's features), then forward and gradients."""
    ours, theirs = pair.ours.eval(), pair.theirs.eval()
    cmp.mode = "eval"
    s = NUM_SEQ
    with torch.no_grad():
        train_flat = inp.train_imgs.reshape(-1, *inp.train_imgs.shape[-3:])
        test_flat = inp.test_imgs.reshape(-1, *inp.test_imgs.shape[-3:])
        layers = ["layer2", "layer3"]
        feat_o = ours.extract_backbone_features(train_flat)
        feat_t = theirs.extract_backbone_features(train_flat)
        test_t = theirs.extract_backbone_features(test_flat)
        cmp.compare("backbone layer2, layer3", [feat_o[k] for k in layers], [feat_t[k] for k in layers])

        if pair.has_classifier:
            x_train = theirs.classifier.extract_classification_feat(feat_t["layer3"], s)
            x_test = theirs.classifier.extract_classification_feat(test_t["layer3"], s)
            cmp.compare("classification features", ours.classification_features(feat_t, s), x_train)
            bb = inp.train_bb
            f_ref = check_predictor(cmp, pair, x_train, bb)
            w, ws = inp.weights, inp.seq_weights
            # pytracking needs (N, S) weights when S > 1 (it reshapes them); ours also broadcasts (N,)
            check_predictor(cmp, pair, x_train, bb, ", weights (N,)", our_weight=w,
                            ref_weight=w[:, None].expand(-1, s))
            check_predictor(cmp, pair, x_train, bb, ", weights (N, S)", our_weight=ws, ref_weight=ws)
            cmp.compare("classify (scores of the final filter)", ours.classifier.classify(f_ref, x_test),
                        theirs.classifier.classify(f_ref, x_test))

        # IoU-Net pieces on identical inputs: reference frame = first train frame of each sequence
        first = [_first_frame(feat_t[k], s) for k in layers]
        mod_t = theirs.bb_regressor.get_modulation(first, inp.train_bb[0])
        mod_o = ours.bb_regressor.get_modulation(tuple(first), inp.train_bb[0])
        cmp.compare("iou get_modulation", mod_o, mod_t)
        test_iou = [test_t[k] for k in layers]
        iou_feat_t = theirs.bb_regressor.get_iou_feat(test_iou)
        cmp.compare("iou get_iou_feat", ours.bb_regressor.get_iou_feat(tuple(test_iou)), iou_feat_t)
        mod_rep = [m.reshape(1, s, -1).expand(N_TEST, -1, -1).reshape(N_TEST * s, -1) for m in mod_t]
        proposals = inp.proposals.reshape(N_TEST * s, NUM_PROPOSALS, 4)
        cmp.compare("iou predict_iou", ours.bb_regressor.predict_iou(tuple(mod_rep), iou_feat_t, proposals),
                    theirs.bb_regressor.predict_iou(mod_rep, iou_feat_t, proposals))

    check_forward_and_grads(cmp, pair, inp, grads=eval_grads)


def check_forward_and_grads(cmp: Comparer, pair: Pair, inp: Inputs, grads: bool = True) -> None:
    """End to end: every output of ``forward`` and, with ``grads``, every parameter gradient."""
    if grads:
        scores_o, iou_o = forward_with_grads(pair.ours, inp, pair.has_classifier)
        scores_t, iou_t = forward_with_grads(pair.theirs, inp, pair.has_classifier)
    else:
        with torch.no_grad():
            out_o = pair.ours(inp.train_imgs, inp.test_imgs, inp.train_bb, inp.proposals)
            out_t = pair.theirs(inp.train_imgs, inp.test_imgs, inp.train_bb, inp.proposals)
        (scores_o, iou_o), (scores_t, iou_t) = (out_o, out_t) if pair.has_classifier else (([], out_o), ([], out_t))
    if pair.has_classifier:
        cmp.compare("forward scores (every iterate)", scores_o, scores_t)
    cmp.compare("forward iou_pred", iou_o, iou_t)
    if grads:
        cmp.compare_grads("gradients of all parameters", pair.ours, pair.theirs)
        pair.ours.zero_grad(set_to_none=True)
        pair.theirs.zero_grad(set_to_none=True)


def check_train(cmp: Comparer, pair: Pair, inp: Inputs) -> None:
    """Train mode: BatchNorm on batch statistics (and updating its running statistics)."""
    ours, theirs = pair.ours.train(), pair.theirs.train()
    cmp.mode = "train"
    check_forward_and_grads(cmp, pair, inp)
    buffers_o, buffers_t = dict(ours.named_buffers()), dict(theirs.named_buffers())
    running = [k for k in sorted(buffers_t) if "running" in k]
    cmp.compare("BN running stats after the forward", [buffers_o[k] for k in running],
                [buffers_t[k] for k in running])
    if pair.has_classifier:
        # the model predictor alone, in its training code path; both networks see the same train-mode
        # passes, so their BatchNorm running statistics stay equal (compared once more below)
        with torch.no_grad():
            train_flat = inp.train_imgs.reshape(-1, *inp.train_imgs.shape[-3:])
            feat_o = ours.extract_backbone_features(train_flat)
            feat_t = theirs.extract_backbone_features(train_flat)
            x = theirs.classifier.extract_classification_feat(feat_t["layer3"], NUM_SEQ)
            cmp.compare("classification features", ours.classification_features(feat_o, NUM_SEQ), x)
            check_predictor(cmp, pair, x, inp.train_bb)
        buffers_o, buffers_t = dict(ours.named_buffers()), dict(theirs.named_buffers())
        cmp.compare("BN running stats after 2 train-mode passes", [buffers_o[k] for k in running],
                    [buffers_t[k] for k in running])
    ours.eval()
    theirs.eval()


def check_tracking(cmp: Comparer, pair: Pair, gen: torch.Generator, dtype: torch.dtype) -> None:
    """The calls of pytracking's DiMP tracker: 4-D features (no sequence axis), S = 1, no autograd."""
    ours, theirs = pair.ours.eval(), pair.theirs.eval()
    cmp.mode = "track"
    n_init, n_mem, num_iter = 15, 40, 10
    cb, size = ours.config.clf_input_dim, TRACK_FEAT_SIZE
    with torch.no_grad():
        backbone = torch.relu(torch.randn(n_mem + 1, cb, size, size, generator=gen)).to(dtype)
        x_all = theirs.classifier.extract_classification_feat(backbone)  # (n_mem + 1, C, H, W)
        x_ours = ours.classifier.extract_features(backbone, 1)[:, 0]
        cmp.compare("classification features (4-D)", x_ours, x_all)
        x, x_test = x_all[:n_mem], x_all[n_mem:]
        bb = random_boxes((n_mem,), gen, size * FEAT_STRIDE).to(dtype)
        weights = normalised_weights((n_mem,), gen).to(dtype)

        f_ref, iterates_ref, losses_ref = theirs.classifier.get_filter(x[:n_init], bb[:n_init],
                                                                       num_iter=num_iter, compute_losses=True)
        trace = ours.classifier.predict_filter(x[:n_init, None], bb[:n_init, None], num_iter=num_iter)
        cmp.compare(f"init get_filter, {num_iter} iter: iterates", trace.iterates, iterates_ref)
        cmp.compare(f"init get_filter, {num_iter} iter: losses", trace.losses, losses_ref)

        f2_ref, iterates2_ref, losses2_ref = theirs.classifier.filter_optimizer(
            f_ref, num_iter=num_iter, feat=x, bb=bb, sample_weight=weights, compute_losses=True)
        trace2 = ours.classifier.filter_optimizer(f_ref, x[:, None], bb[:, None], sample_weight=weights,
                                                  num_iter=num_iter)
        cmp.compare(f"update, weights, {num_iter} iter: iterates", trace2.iterates, iterates2_ref)
        cmp.compare(f"update, weights, {num_iter} iter: losses", trace2.losses, losses2_ref)
        cmp.compare("classify (4-D test features)", ours.classifier.classify(f2_ref, x_test[:, None]),
                    theirs.classifier.classify(f2_ref, x_test))


def run_dtype(pairs: list[Pair], dtype: torch.dtype, seed: int, img_size: int) -> list[Row]:
    cmp = Comparer(dtype)
    inp = make_inputs(torch.Generator().manual_seed(seed), img_size, dtype)
    for pair in pairs:
        t0 = time.perf_counter()
        cmp.net, cmp.mode = pair.name, "-"
        pair.ours.to(dtype)
        pair.theirs.to(dtype)
        # the same weights for both networks, restored before each dtype (train mode moves BN statistics)
        pair.ours.load_state_dict({k: v.to(dtype) if v.is_floating_point() else v
                                   for k, v in pair.state.items()})
        pair.theirs.load_state_dict(pair.ours.state_dict(), strict=True)
        check_eval(cmp, pair, inp, eval_grads=dtype == torch.float32)
        check_train(cmp, pair, inp)
        if pair.has_classifier:
            check_tracking(cmp, pair, torch.Generator().manual_seed(seed + 1), dtype)
        print(f"# {pair.name} {dtype_name(dtype)}, {img_size} px crops: {time.perf_counter() - t0:.1f} s",
              flush=True)
    return cmp.rows


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pytracking", type=Path, required=True,
                        help="pytracking checkout: the folder holding ltr/ and pytracking/")
    parser.add_argument("--json", type=Path, default=REPO_ROOT / "scratch" / "fidelity.json",
                        help="where to write the JSON summary (default: scratch/fidelity.json)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the weights and inputs (default 0)")
    nets = ["dimp18", "dimp50", "atom"]
    parser.add_argument("--nets", nargs="+", default=nets, choices=nets, help="networks to compare (default: all)")
    parser.add_argument("--dtypes", nargs="+", default=["float32", "float64"], choices=["float32", "float64"])
    parser.add_argument("--float64-size", type=int, default=IMG_SIZE["float64"],
                        help=f"crop size of the float64 run (default {IMG_SIZE['float64']}; float32 uses 288)")
    args = parser.parse_args(argv)

    install_shims(args.pytracking.resolve())
    t0 = time.perf_counter()
    pairs = build_pairs(args.nets)

    print(HEADER)
    structure = Comparer(torch.float32)
    for i, pair in enumerate(pairs):
        structure.net, structure.mode = pair.name, "-"
        problems = structure_problems(pair.ours, pair.theirs)
        structure.require("state-dict keys, shapes, requires_grad", problems)
        if problems:
            print(f"{pair.name}: the architectures differ; nothing else can be compared", file=sys.stderr)
            return 1
        randomise(pair.ours, torch.Generator().manual_seed(args.seed + 100 + i), IMG_SIZE["float32"])
        pair.state = {k: v.clone() for k, v in pair.ours.state_dict().items()}
        pair.theirs.load_state_dict(pair.ours.state_dict(), strict=True)

    sizes = dict(IMG_SIZE, float64=args.float64_size)
    rows = list(structure.rows)
    for name in args.dtypes:
        print(f"\n{HEADER}")
        rows += run_dtype(pairs, getattr(torch, name), args.seed, sizes[name])

    failed = [r for r in rows if not r.ok]
    print(f"\nSummary (worst over checks):\n{HEADER}")
    for dtype in args.dtypes:
        for pair in pairs:
            sel = [r for r in rows if r.dtype == dtype and r.net == pair.name and r.tensors > 0]
            if sel:
                worst = max(sel, key=lambda r: r.rel_to_max)
                label = f"worst: {worst.mode} {worst.check}" if worst.rel_to_max > 0 else "all bit-identical"
                print(format_row(Row(dtype, pair.name, "all", label,
                                     sum(r.tensors for r in sel), max(r.ref_max for r in sel),
                                     max(r.max_abs for r in sel), worst.rel_to_max,
                                     max(r.max_rel for r in sel), all(r.ok for r in sel))))
    elapsed = time.perf_counter() - t0
    print(f"\n{len(rows) - len(failed)} of {len(rows)} checks within tolerance ({elapsed:.0f} s)")
    for r in failed:
        print(f"FAILED: {format_row(r)}")

    args.json.parent.mkdir(parents=True, exist_ok=True)
    summary = {
        "passed": not failed,
        "pytracking": str(args.pytracking.resolve()),
        "torch": torch.__version__,
        "seed": args.seed,
        "tolerances": {dtype_name(k): {kind: {"rtol": r, "atol_of_max_ref": a} for kind, (r, a) in v.items()}
                       for k, v in TOLERANCES.items()},
        "dimp_settings": DIMP_TRAIN_SETTINGS,
        "inputs": {name: {"train_imgs": [N_TRAIN, NUM_SEQ, 3, sizes[name], sizes[name]],
                          "test_imgs": [N_TEST, NUM_SEQ, 3, sizes[name], sizes[name]],
                          "train_bb": [N_TRAIN, NUM_SEQ, 4], "proposals": [N_TEST, NUM_SEQ, NUM_PROPOSALS, 4]}
                   for name in args.dtypes},
        "seconds": round(elapsed, 1),
        "rows": [asdict(r) for r in rows],
    }
    args.json.write_text(json.dumps(summary, indent=1, allow_nan=True) + "\n")
    print(f"wrote {args.json}")
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
