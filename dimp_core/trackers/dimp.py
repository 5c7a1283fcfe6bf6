"""The DiMP tracker: the online logic around the network (pytracking ``pytracking/tracker/dimp/dimp.py``).

First frame: 13 augmented patches (+ 2 dropout copies of the identity sample's features) -> the model
predictor learns the target filter in 10 steepest-descent iterations; the IoU-Net's modulation vector
comes from the identity sample. Every frame: crop 5 target sizes around the last position (288 px),
score with the filter, localise (:mod:`~dimp_core.trackers.localization`), refine position and size with
the IoU-Net (:mod:`~dimp_core.trackers.refinement`), store the frame in the sample memory and, every 20th
frame or right after a hard negative, run 2 (or 1) more optimiser iterations from the current filter.

The target state (centre, size, scale) is a :class:`~dimp_core.trackers.target.TargetState`, shared with ATOM.

Deviations from pytracking, each for consistency or robustness (not visible in accuracy):

- Patch geometry uses :class:`~dimp_core.geometry.PatchFrame` both ways, so image -> patch -> image is an
  exact round trip (pytracking maps the refined box back with the continuous centre x + w/2 but forward
  with x + (w-1)/2, a half-patch-pixel drift per frame).
- The search scale is clamped to the reference's own scale bounds (10 px .. image size) also on the IoU
  path, so a target that shrinks to a few pixels or leaves the view cannot make the crop degenerate.
- Randomness (augmentation shifts, dropout, jittered boxes) comes from a seeded ``torch.Generator``.

Speed (measured by ``dimp profile`` and ``benchmarks/fps.py``). Every stage of a frame is wrapped in
``stage(name)`` (:mod:`dimp_core.profiling.timer`, a no-op unless profiling). The knobs are fields of
:class:`DiMPParams`. On by default, because they change the results only by float rounding (boxes agree to
~1e-4 px with the reference-faithful path): ``torch.inference_mode``, BatchNorm folded into the convolutions
and channels-last weights (an inference copy of the network, :func:`~dimp_core.profiling.accel.inference_copy`),
and the IoU refinement's gradient in closed form for all boxes in one batched call per step. On CUDA,
``cuda_graphs="auto"`` (the default) replays the backbone + heads and the refinement as two CUDA graphs (same
kernels, so the same boxes): they are captured in ``init`` on the first frame, so the first updates are not
slow, and where capture fails the tracker runs eagerly after a one-line warning (``graph_status`` says why).
On the CPU that knob does nothing. Off by default: ``autocast`` (bf16/fp16), ``compile`` (``torch.compile``
of the backbone), and the accuracy-for-speed settings that :data:`PRESETS` ``"fast"`` combines.
"""
from __future__ import annotations

import contextlib
import logging
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from dimp_core.geometry import PatchFrame, sample_patch
from dimp_core.nets.dimpnet import IMAGENET_MEAN, IMAGENET_STD, DiMPNet
from dimp_core.profiling import accel
from dimp_core.profiling.timer import stage
from dimp_core.trackers.augmentation import AugmentationParams, dropout_copies
from dimp_core.trackers.base import Tracker
from dimp_core.trackers.localization import LocalizationParams, localize_advanced
from dimp_core.trackers.memory import SampleMemory
from dimp_core.trackers.refinement import RefinementParams, optimize_boxes
from dimp_core.trackers.target import (
    TargetState,
    first_frame_samples,
    iou_modulation,
    iou_test_features,
    refine_target,
)

log = logging.getLogger(__name__)
_capture_warned = False  # the fallback message is printed once per process; graph_status keeps every reason


@dataclass(frozen=True)
class DiMPParams:
    """DiMP-18/50 tracking parameters (pytracking ``parameter/dimp/dimp18.py``; both files are identical),
    then the speed knobs (defaults: the reference's results up to float rounding; see :data:`PRESETS`)."""

    image_sample_size: int = 288  # search patch side (18 * 16)
    search_area_scale: float = 5.0  # patch side = 5 sqrt(w h) in the image
    # first frame
    augmentation: AugmentationParams = field(default_factory=AugmentationParams)
    dropout_copies: int = 2  # dropout copies of the identity sample's classification features
    dropout_p: float = 0.2
    net_opt_iter: int = 10  # steepest-descent iterations on the first frame
    # model update
    sample_memory_size: int = 50
    learning_rate: float = 0.01  # memory weight of a new sample
    init_samples_minimum_weight: float = 0.25  # first-frame samples keep >= 25 % of the total weight
    train_skipping: int = 20  # optimise every 20th frame ...
    net_opt_update_iter: int = 2  # ... with 2 iterations
    net_opt_hn_iter: int = 1  # iterations right after a hard negative
    hard_negative_learning_rate: float = 0.02
    update_classifier: bool = True
    # localisation and refinement
    localization: LocalizationParams = field(default_factory=LocalizationParams)
    refinement: RefinementParams = field(default_factory=RefinementParams)
    use_iou_net: bool = True
    update_scale_when_uncertain: bool = True
    target_inside_ratio: float = 0.2  # the centre may leave the image by at most (0.5 - 0.2) target sizes
    seed: int = 0  # for the augmentation shifts, dropout and jittered boxes
    # speed knobs (dimp_core/profiling/accel.py); their measured cost: benchmarks/fps.py
    inference_mode: bool = True  # torch.inference_mode instead of torch.no_grad around a frame
    fuse_batchnorm: bool = True  # BatchNorm folded into the convolutions of an inference copy (rounding only)
    channels_last: bool = True  # NHWC weights and patches (oneDNN / cuDNN's preferred layout; rounding only)
    autocast: str = "none"  # "bf16" | "fp16": backbone and heads in half precision (changes results a little)
    cuda_graphs: bool | str = "auto"  # on CUDA ("auto" or True): backbone + heads and refinement as CUDA graphs
    compile: bool = False  # torch.compile the backbone (the first frames then take seconds to minutes)

    def __post_init__(self) -> None:
        if self.autocast not in accel.AUTOCAST_DTYPES:
            raise ValueError(f"autocast must be one of {', '.join(accel.AUTOCAST_DTYPES)}, got {self.autocast!r}")
        if not (self.cuda_graphs is True or self.cuda_graphs is False or self.cuda_graphs == "auto"):
            raise ValueError(f"cuda_graphs must be True, False or 'auto', got {self.cuda_graphs!r}")


# Named parameter sets: build_tracker("dimp", **PRESETS["fast"]). "reference" is the paper's tracker, "fast"
# trades a little accuracy for speed (fewer augmentations, refinement steps and boxes, bf16); both replay CUDA
# graphs on a GPU, as the defaults do.
PRESETS: dict[str, dict[str, Any]] = {
    "reference": {},
    "fast": {
        "augmentation": AugmentationParams(blur_sigmas=((2.0, 2.0),), rotations=(10.0, -10.0)),
        "net_opt_iter": 5,
        "refinement": RefinementParams(box_refinement_iter=3, num_init_random_boxes=5),
        "autocast": "bf16",
    },
}


def preset_params(name: str) -> dict[str, Any]:
    """The parameter overrides of preset ``name`` (see :data:`PRESETS`), for ``build_tracker(..., **overrides)``."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    return dict(PRESETS[name])


class DiMPTracker(Tracker):
    """DiMP's online tracking on top of a :class:`~dimp_core.nets.dimpnet.DiMPNet`.

    ``self.net`` is the network the tracker runs: with ``fuse_batchnorm`` or ``channels_last`` an inference
    copy of the one passed in (which is left untouched), otherwise that network itself, in eval mode.
    """

    name = "dimp"

    def __init__(self, net: DiMPNet, params: DiMPParams = DiMPParams(), device: torch.device | str = "cpu",
                 name: str = "dimp") -> None:
        super().__init__()
        self.params, self.device, self.name = params, torch.device(device), name
        self.net = accel.inference_copy(net, self.device, params.fuse_batchnorm, params.channels_last, params.compile)
        self.use_graphs = params.cuda_graphs is not False and accel.cuda_graphs_supported(self.device)
        self.graph_status = "off" if not self.use_graphs else "pending"
        self._graphs: dict[str, accel.GraphedCall] = {}
        self._mean = torch.tensor(IMAGENET_MEAN, device=self.device).reshape(1, 3, 1, 1)
        self._std = torch.tensor(IMAGENET_STD, device=self.device).reshape(1, 3, 1, 1)

    # ------------------------------------------------------------------- helpers

    def _grad_off(self) -> contextlib.AbstractContextManager:
        return torch.inference_mode() if self.params.inference_mode else torch.no_grad()

    def _prepare(self, patches: Tensor) -> Tensor:
        """(B, 3, S, S) patches in [0, 255] -> ImageNet-normalised on the device, in the network's layout."""
        x = patches.to(self.device, non_blocking=True)
        x = (x / 255.0 - self._mean) / self._std  # dimpnet.normalize_image, without building tensors per call
        return x.contiguous(memory_format=torch.channels_last) if self.params.channels_last else x

    def _heads_eager(self, images: Tensor, iou: bool) -> tuple[dict[str, Tensor], Tensor, tuple[Tensor, Tensor] | None]:
        """Backbone, classification features x (B, 1, C, h, w) and (optionally) the IoU test features."""
        with stage("backbone"), accel.autocast(self.device, self.params.autocast):
            feat = self.net.extract_backbone_features(images)
        with stage("classification_features"), accel.autocast(self.device, self.params.autocast):
            x = self.net.classification_features(feat, num_sequences=1)
        iou_feat = None
        if iou:
            with stage("iou_features"), accel.autocast(self.device, self.params.autocast):
                iou_feat = iou_test_features(self.net, feat)
            iou_feat = (iou_feat[0].float(), iou_feat[1].float())
        return {k: v.float() for k, v in feat.items()}, x.float(), iou_feat

    def _frame_features(self, patch: Tensor) -> tuple[Tensor, tuple[Tensor, Tensor] | None]:
        """One search patch (1, 3, S, S) -> x (1, 1, C, h, w) and the IoU test features, eager or as a graph."""
        use_iou = self.params.use_iou_net
        if self.use_graphs and self._capture("frame", lambda im: self._graph_frame(im), [self._prepare(patch)]):
            with stage("features_graph"):  # backbone and heads in one replay
                x, *iou = self._graphs["frame"](self._prepare(patch))
            return x, (iou[0], iou[1]) if use_iou else None
        _, x, iou_feat = self._heads_eager(self._prepare(patch), use_iou)
        return x, iou_feat

    def _graph_frame(self, images: Tensor) -> tuple[Tensor, ...]:
        _, x, iou_feat = self._heads_eager(images, self.params.use_iou_net)
        return (x, *iou_feat) if iou_feat is not None else (x,)

    def _capture(self, key: str, fn: Any, example: list[Tensor]) -> bool:
        """Capture ``fn`` as CUDA graph ``key`` once; on failure fall back to eager (one warning, ``graph_status``)."""
        global _capture_warned
        if key in self._graphs:
            return True
        if not self.use_graphs:
            return False
        try:
            self._graphs[key] = accel.GraphedCall(fn, example)
            self.graph_status = "on"
            return True
        except Exception as err:  # noqa: BLE001 - any capture problem means: run eagerly
            message = f"{self.name}: CUDA graph capture of {key!r} failed ({err!r}); running eagerly"
            if not _capture_warned:
                warnings.warn(message, RuntimeWarning, stacklevel=2)
                _capture_warned = True
            log.info(message)
            self.use_graphs, self.graph_status = False, f"failed: {err!r}"[:300]
            self._graphs.clear()
            return False

    def _graph_refine(self, boxes: Tensor) -> tuple[Tensor, Tensor]:
        """The refinement the ``refine`` graph captures: it reads the frame graph's (fixed) output buffers."""
        return optimize_boxes(self.net.bb_regressor, self._static_modulation, self._graphs["frame"].outputs[1:],
                              boxes, self.params.refinement)

    def _warm_up_graphs(self, patch: Tensor, box: Tensor) -> None:
        """Capture both graphs on the first frame's identity patch (1, 3, S, S) and its (1, 4) box, so that the
        first updates replay them instead of paying for the capture. No random number is drawn."""
        if not self._capture("frame", self._graph_frame, [self._prepare(patch)]):
            return
        if self.params.use_iou_net:
            num_boxes = 1 + max(self.params.refinement.num_init_random_boxes, 0)  # what jittered_boxes returns
            self._capture("refine", self._graph_refine, [box.reshape(1, 4).expand(num_boxes, 4)])

    def _optimize(self, iou_feat: tuple[Tensor, Tensor]) -> Any:
        """The box optimiser of this frame: (P, 4) boxes -> refined boxes and IoU (replayed when captured)."""
        if self.use_graphs and "refine" in self._graphs:  # captured in init (_warm_up_graphs)
            return self._graphs["refine"]

        def eager(boxes: Tensor) -> tuple[Tensor, Tensor]:
            return optimize_boxes(self.net.bb_regressor, self.modulation, iou_feat, boxes, self.params.refinement)

        return eager

    # ------------------------------------------------------------------- first frame

    def initialize(self, image: np.ndarray, box: np.ndarray) -> None:
        with self._grad_off():
            self._initialize(image, box)

    def _initialize(self, image: np.ndarray, box: np.ndarray) -> None:
        p = self.params
        self.generator = torch.Generator().manual_seed(p.seed)
        self.state = TargetState.from_box(box, image.shape, p.search_area_scale, p.image_sample_size)
        self.frame_num = 1

        with stage("init_augmentation"):
            patches, boxes = first_frame_samples(torch.from_numpy(image).permute(2, 0, 1), self.state,
                                                 p.image_sample_size, p.augmentation, self.generator)
        feat, x, _ = self._heads_eager(self._prepare(patches), False)  # x: (M, 1, C, h, w)
        if p.dropout_copies > 0:
            drop = dropout_copies(x[0, 0], p.dropout_copies, p.dropout_p, self.generator)  # (n, C, h, w)
            x = torch.cat([x, drop[:, None]])
            boxes = torch.cat([boxes, boxes[:1].expand(p.dropout_copies, 4)])
        boxes = boxes.to(self.device)
        with stage("init_optimizer"):
            trace = self.net.classifier.predict_filter(x, boxes[:, None], num_iter=p.net_opt_iter,
                                                       compute_losses=True)
        self.filter = trace.filter
        self.init_trace = trace  # for notebooks: every iterate, loss and step length
        self.memory = SampleMemory(x[:, 0], boxes, p.sample_memory_size, p.learning_rate,
                                   p.init_samples_minimum_weight)
        if p.use_iou_net:  # modulation from the identity sample only (iounet_augmentation False)
            with stage("init_iou_modulation"):
                modulation = iou_modulation(self.net, feat, boxes[:1])
            self.modulation = modulation
            if self.use_graphs:  # the refinement graph reads the modulation from fixed buffers
                if not hasattr(self, "_static_modulation"):
                    self._static_modulation = tuple(m.clone() for m in modulation)
                for static, m in zip(self._static_modulation, modulation, strict=True):
                    static.copy_(m)
        if self.use_graphs:
            with stage("init_graph_capture"):
                self._warm_up_graphs(patches[:1], boxes[:1])
        self.info = {"score": 1.0, "flag": "normal"}

    # ------------------------------------------------------------------- every frame

    def score_patch(self, image: np.ndarray, center: tuple[float, float]) -> tuple[Tensor, PatchFrame]:
        """The current filter's raw scores (19, 19) on a search patch centred on ``center`` (x, y) at the current
        scale, and where that patch sits. For analysis: the tracker's state is left as it is."""
        with self._grad_off():
            im = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)
            patch, frame = sample_patch(im.to(self.device), center, self.state.scale, self.params.image_sample_size)
            x, _ = self._heads_eager(self._prepare(patch[None]), False)[1:]
            return self.net.classifier.classify(self.filter, x)[0, 0].float().cpu(), frame

    def track(self, image: np.ndarray) -> np.ndarray:
        with self._grad_off():
            return self._track(image)

    def _track(self, image: np.ndarray) -> np.ndarray:
        p, state = self.params, self.state
        self.frame_num += 1
        with stage("patch_extraction"):
            im = torch.from_numpy(image).permute(2, 0, 1)
            if self.device.type == "cuda":
                im = im.to(self.device, non_blocking=True)
            patch, frame = sample_patch(im, (float(state.center[0]), float(state.center[1])), state.scale,
                                        p.image_sample_size)
        x, iou_feat = self._frame_features(patch[None])
        with stage("scoring"):
            scores = self.net.classifier.classify(self.filter, x)[0, 0]  # (19, 19)

        with stage("localization"):  # in score cells: one cell = image_sample_size / (score size - 1) pixels
            cell = frame.scale * p.image_sample_size / (scores.shape[-1] - 1)
            centre = torch.tensor(frame.center, dtype=torch.float64)
            prev = (state.center - centre) / cell
            scores_cpu = scores.float().cpu()
            loc = localize_advanced(scores_cpu, (float(prev[0]), float(prev[1])),
                                    (float(state.size[0] / cell), float(state.size[1] / cell)), p.localization)
        candidates = None
        if loc.flag != "not_found":
            state.move_to(centre + torch.tensor(loc.displacement) * cell, p.target_inside_ratio)
            if p.use_iou_net:
                update_scale = p.update_scale_when_uncertain or loc.flag != "uncertain"
                with stage("iou_refinement"):
                    candidates = refine_target(self._optimize(iou_feat), frame, state, p.refinement,
                                               self.generator, update_scale, self.device)

        if p.update_classifier and loc.flag in ("normal", "hard_negative"):
            hard = loc.flag == "hard_negative"
            with stage("memory_update"):
                box_in_patch = frame.box_to_patch(state.box()).float().to(self.device)
                self.memory.add(x[0, 0], box_in_patch, p.hard_negative_learning_rate if hard else None)
            num_iter = p.net_opt_hn_iter if hard else (p.net_opt_update_iter
                                                       if (self.frame_num - 1) % p.train_skipping == 0 else 0)
            if num_iter > 0:
                with stage("optimizer"):
                    samples, boxes, weights = self.memory.stored()
                    trace = self.net.classifier.filter_optimizer(self.filter, samples[:, None], boxes[:, None],
                                                                 sample_weight=weights, num_iter=num_iter,
                                                                 compute_losses=False)
                    self.filter = trace.filter

        self.info = {"score": loc.max_score, "flag": loc.flag, "score_map": scores_cpu.numpy(),
                     "candidates": candidates, "frame": frame}
        return state.box().numpy()
