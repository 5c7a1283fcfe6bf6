"""The SiamFC tracker: the online logic around :class:`~dimp_core.nets.siamfc.SiamFCNet`.

Paper: Bertinetto et al., "Fully-Convolutional Siamese Networks for Object Tracking" (ECCV-W 2016), as
implemented in huanglianghua/siamfc-pytorch (``siamfc/siamfc.py`` ``init`` / ``update``, ``siamfc/ops.py``
``crop_and_resize``). The algorithm and every default value are the reference's:

First frame: a square exemplar crop of side ``z = sqrt((w + p)(h + p))``, ``p = 0.5 (w + h)``, around the
target, padded with the first frame's mean colour and resized to 127 px, is embedded once; that embedding
is the correlation kernel for the whole sequence. Every frame: three search crops of side
``x = z * 255 / 127`` times ``1.0375^{-1, 0, +1}`` around the last centre, resized to 255 px, are embedded
and correlated with the kernel (17 x 17 responses). Each response is upsampled x16 (bicubic, 272 x 272),
the non-centre scales are multiplied by 0.9745, the scale with the highest peak wins; its map is shifted
to min 0, divided by its sum and blended with a sum-normalised Hanning window (influence 0.176). The
peak's offset from the map centre is carried back to the image::

    disp_in_response -> disp_in_instance = disp_in_response * 8 / 16
                     -> disp_in_image = disp_in_instance * search_side / 255

and the target, exemplar and search sizes are all multiplied by the damped scale
``(1 - 0.59) + 0.59 * factor``.

State is kept in image pixels with x before y: ``center`` (cx, cy) and ``scale``, the product of all scale
updates so far (target size = first-frame size * scale, likewise the exemplar and search sides).

Deviations from siamfc-pytorch, none of which changes the result on an ordinary frame:

- Boxes are 0-indexed (x, y, w, h) with the centre at x + (w - 1) / 2, as everywhere in this package;
  siamfc-pytorch reads its input box as 1-indexed (centre at x - 1 + (w - 1) / 2). The same box therefore
  means the same pixels as in the rest of dimp-lab, and is one pixel left/up of siamfc-pytorch's reading.
  Coordinates are (x, y), not the reference's (row, col), and float64, not float32.
- Robustness (SPEC section 6): the scale is clamped so that the target's shorter side stays at least
  ``min_target_size`` px (or its first-frame size, if that was smaller) and the target no larger than the
  image (or its first-frame size, if that was larger); the aspect ratio never changes, as in SiamFC. The
  centre is kept within the image with a slack of half the target size. Crop sides are at least 1 px.
- Crops pad only the sides that need it (``cv2.copyMakeBorder`` on the part inside the image) instead of
  padding all four sides by the largest overhang: the same pixels, without building a huge image when the
  window lies far outside; a window entirely outside the image is a patch of the mean colour.
- Flags: SiamFC has no confidence model. ``flag`` is ``'normal'`` unless ``not_found_threshold`` is set and
  the chosen scale's raw peak (the ``score``) falls below it; then ``flag='not_found'`` and the centre and
  scale are kept, as DiMP does. The default (None) never reports ``not_found``, as the reference.
- The Lite0 embedding (the project's default, :mod:`dimp_core.nets.siamfc`) takes ImageNet-normalised
  crops; the classic AlexNet takes raw RGB in [0, 255] as the reference. The response size comes from the
  network instead of the ``response_sz = 17`` setting.

``info`` after ``update``: ``score`` = the maximum of the chosen scale's upsampled response before the
scale penalty, normalisation and window (the network's own value); ``flag``; ``score_map`` = the chosen
scale's raw 17 x 17 response at network resolution; ``scale_factor`` = the chosen search scale.

Tracking draws no random numbers (deterministic by construction); ``seed`` only seeds the initialisation
of an untrained network (``weights='random'``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from dimp_core.geometry import cxcywh_to_xywh, xywh_to_cxcywh
from dimp_core.nets.dimpnet import normalize_image
from dimp_core.nets.siamfc import SiamFCNet
from dimp_core.profiling import accel
from dimp_core.profiling.timer import stage
from dimp_core.trackers.base import Tracker


@dataclass(frozen=True)
class SiamFCParams:
    """SiamFC tracking parameters (siamfc-pytorch ``TrackerSiamFC.parse_args``, inference part)."""

    # crops
    context: float = 0.5  # context margin p = context * (w + h) around the target in the exemplar crop
    exemplar_size: int = 127  # exemplar crop side (exemplar_sz)
    instance_size: int = 255  # search crop side (instance_sz); search side in the image = z * 255 / 127
    # scale search
    scale_num: int = 3  # search scales per frame
    scale_step: float = 1.0375  # scale factors scale_step ** {-1, 0, +1}
    scale_penalty: float = 0.9745  # multiplies the responses of the non-centre scales
    scale_lr: float = 0.59  # damping of the scale update: (1 - lr) * 1 + lr * factor
    # response
    response_up: int = 16  # bicubic upsampling of the response (17 -> 272)
    total_stride: int = 8  # stride of the embedding: one response cell = 8 search-crop pixels
    window_influence: float = 0.176  # weight of the Hanning window (cosine window) on the normalised response
    # robustness (not in siamfc-pytorch; see the module docstring)
    not_found_threshold: float | None = None  # raw peak below this -> flag 'not_found'; None: never
    min_target_size: float = 4.0  # the target's shorter side never shrinks below this (px)
    seed: int = 0  # seeds the initialisation of an untrained network (weights='random') only
    # speed knobs, as DiMPParams' (rounding only)
    fuse_batchnorm: bool = True  # BatchNorm folded into the convolutions of an inference copy of the network
    channels_last: bool = True  # NHWC weights and crops


# --------------------------------------------------------------------------- crops


def exemplar_side(target_size: np.ndarray, context: float) -> float:
    """Side of the square exemplar region, sqrt((w + p)(h + p)) with p = context * (w + h).

    Example:
        >>> exemplar_side(np.array([10.0, 10.0]), 0.5)
        20.0
    """
    p = context * float(np.sum(target_size))
    return float(np.sqrt((target_size[0] + p) * (target_size[1] + p)))


def crop_window(center: np.ndarray, side: float) -> tuple[int, int, int]:
    """Integer square window (x0, y0, n) of about ``side`` px centred on ``center`` = (cx, cy).

    As siamfc-pytorch: ``n = round(side)`` (at least 1) and the corner ``round(c - (n - 1) / 2)``.

    Example:
        >>> crop_window(np.array([10.0, 20.0]), 5.0)
        (8, 18, 5)
    """
    n = max(int(np.round(side)), 1)
    x0, y0 = np.round(np.asarray(center, dtype=np.float64) - (n - 1) / 2)
    return int(x0), int(y0), n


def crop_and_resize(image: np.ndarray, center: np.ndarray, side: float, out_size: int,
                    fill: np.ndarray) -> np.ndarray:
    """Cut the square ``crop_window(center, side)`` from ``image``, pad it with ``fill``, resize (bilinear).

    Args:
        image: H x W x 3 uint8.
        center: (cx, cy) in image pixels.
        side: window side in image pixels.
        out_size: side of the output patch.
        fill: the colour of the pixels outside the image (3 values).

    Returns:
        out_size x out_size x 3 uint8 patch.
    """
    height, width = image.shape[:2]
    x0, y0, n = crop_window(center, side)
    x1, y1 = x0 + n, y0 + n
    inside = image[max(y0, 0):min(y1, height), max(x0, 0):min(x1, width)]
    fill_value = tuple(float(c) for c in fill)
    if inside.size == 0:  # the window lies entirely outside the image
        patch = np.empty((n, n, 3), dtype=image.dtype)
        patch[:] = np.round(np.asarray(fill_value)).clip(0, 255).astype(image.dtype)
    else:
        pads = (max(-y0, 0), max(y1 - height, 0), max(-x0, 0), max(x1 - width, 0))  # top, bottom, left, right
        patch = cv2.copyMakeBorder(inside, *pads, cv2.BORDER_CONSTANT, value=fill_value) if any(pads) else inside
    return cv2.resize(patch, (out_size, out_size), interpolation=cv2.INTER_LINEAR)


# --------------------------------------------------------------------------- response -> displacement


def scale_factors(step: float, num: int) -> np.ndarray:
    """The search scale factors step ** linspace(-(num // 2), num // 2, num).

    Example:
        >>> scale_factors(2.0, 3)
        array([0.5, 1. , 2. ])
    """
    return step ** np.linspace(-(num // 2), num // 2, num)


@functools.lru_cache(maxsize=8)
def hanning_window(height: int, width: int) -> np.ndarray:
    """Outer product of two Hanning windows, normalised to sum 1 (read-only, cached).

    Example:
        >>> w = hanning_window(4, 4)
        >>> round(float(w.sum()), 12), w.shape
        (1.0, (4, 4))
    """
    window = np.outer(np.hanning(height), np.hanning(width))
    window /= window.sum()
    window.flags.writeable = False
    return window


def upsample_responses(responses: np.ndarray, factor: int) -> np.ndarray:
    """(S, h, w) responses -> (S, h * factor, w * factor), bicubic (``cv2.INTER_CUBIC``)."""
    h, w = responses.shape[-2:]
    return np.stack([cv2.resize(r, (w * factor, h * factor), interpolation=cv2.INTER_CUBIC) for r in responses])


def normalize_response(response: np.ndarray) -> np.ndarray:
    """Shift to min 0 and divide by the sum (+1e-16), so that the map sums to 1 like the window."""
    shifted = response - response.min()
    return shifted / (shifted.sum() + 1e-16)


def blend_window(response: np.ndarray, window: np.ndarray, influence: float) -> np.ndarray:
    """(1 - influence) * response + influence * window: the cosine-window motion prior."""
    return (1 - influence) * response + influence * window


def response_to_image_displacement(peak_xy: tuple[float, float], response_size: tuple[int, int],
                                   total_stride: int, response_up: int, search_side: float,
                                   instance_size: int) -> np.ndarray:
    """Carry a peak in the upsampled response back to a displacement (dx, dy) of the centre in the image.

    .. math:: d_{img} = (p - (U - 1) / 2) \\cdot \\frac{stride}{up} \\cdot \\frac{x_{side}}{instance}

    Args:
        peak_xy: (column, row) of the peak in the upsampled response.
        response_size: (height, width) of the upsampled response.
        total_stride: embedding stride (search-crop pixels per response cell).
        response_up: upsampling factor of the response.
        search_side: side of the searched image region in image pixels (search side times scale factor).
        instance_size: side of the resized search crop.

    Example:
        >>> response_to_image_displacement((167.5, 135.5), (272, 272), 8, 16, 510.0, 255)
        array([32.,  0.])
    """
    centre_in_response = (np.array(response_size[::-1], dtype=np.float64) - 1) / 2  # (x, y)
    disp_in_response = np.asarray(peak_xy, dtype=np.float64) - centre_in_response
    disp_in_instance = disp_in_response * total_stride / response_up
    disp_in_image = disp_in_instance * search_side / instance_size
    return disp_in_image


def damped_scale(factor: float, lr: float) -> float:
    """The scale update (1 - lr) * 1 + lr * factor.

    Example:
        >>> round(damped_scale(1.0375, 0.59), 6)
        1.022125
    """
    return (1 - lr) * 1.0 + lr * factor


@dataclass(frozen=True)
class Localization:
    """Where the responses put the target."""

    scale_index: int  # the winning search scale
    disp_in_image: np.ndarray  # (dx, dy) of the centre in image pixels
    raw_peak: float  # max of the winning scale's upsampled response, before penalty, normalisation, window
    response: np.ndarray  # the winning scale's upsampled, normalised, windowed map (where the peak was found)


def locate_target(responses: np.ndarray, search_sides: np.ndarray, params: SiamFCParams) -> Localization:
    """Pick the scale and the peak from (S, h, w) raw responses; ``search_sides`` (S,) in image pixels."""
    p = params
    upsampled = upsample_responses(responses.astype(np.float32), p.response_up)  # (S, U, U)
    penalty = np.full(len(upsampled), p.scale_penalty)
    penalty[len(upsampled) // 2] = 1.0  # the centre scale is not penalised
    scale_index = int(np.argmax(upsampled.max(axis=(1, 2)) * penalty))

    raw = upsampled[scale_index]
    response = blend_window(normalize_response(raw), hanning_window(*raw.shape), p.window_influence)
    row, col = np.unravel_index(int(np.argmax(response)), response.shape)
    disp_in_image = response_to_image_displacement((float(col), float(row)), response.shape, p.total_stride,
                                                   p.response_up, float(search_sides[scale_index]),
                                                   p.instance_size)
    return Localization(scale_index, disp_in_image, float(raw.max()), response)


# --------------------------------------------------------------------------- tracker


class SiamFCTracker(Tracker):
    """SiamFC's online tracking on top of a :class:`~dimp_core.nets.siamfc.SiamFCNet`."""

    name = "siamfc"

    def __init__(self, net: SiamFCNet, params: SiamFCParams = SiamFCParams(), device: torch.device | str = "cpu",
                 name: str = "siamfc") -> None:
        super().__init__()
        if net.input_normalization not in ("raw255", "imagenet"):
            raise ValueError(f"unknown input normalisation {net.input_normalization!r}; expected raw255 or imagenet")
        self.params, self.device, self.name = params, torch.device(device), name
        self.net = accel.inference_copy(net, self.device, params.fuse_batchnorm, params.channels_last)

    # ------------------------------------------------------------------- helpers

    def _embed(self, crops: np.ndarray) -> torch.Tensor:
        """(B, S, S, 3) uint8 crops -> embeddings, with the input normalisation the network expects."""
        x = torch.from_numpy(crops).to(self.device).permute(0, 3, 1, 2).float()  # RGB in [0, 255]
        if self.net.input_normalization == "imagenet":
            x = normalize_image(x)
        if self.params.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return self.net.embed(x)

    def _responses(self, crops: np.ndarray) -> np.ndarray:
        """(S, 255, 255, 3) search crops -> (S, h, w) raw responses against the exemplar kernel."""
        with stage("backbone"):
            x = self._embed(crops)
        with stage("scoring"):
            return self.net.correlate(self.kernel, x)[:, 0].float().cpu().numpy()

    def _target_size(self) -> np.ndarray:
        return self.base_size * self.scale

    def _box(self) -> np.ndarray:
        center_size = torch.from_numpy(np.concatenate([self.center, self._target_size()]))
        return cxcywh_to_xywh(center_size).numpy()

    def _clamp_center(self, center: np.ndarray, image_shape: tuple[int, ...]) -> np.ndarray:
        """Keep the centre inside the image, with a slack of half the target size."""
        slack = self._target_size() / 2
        upper = np.array([image_shape[1] - 1, image_shape[0] - 1], dtype=np.float64) + slack
        return np.clip(center, -slack, upper)

    # ------------------------------------------------------------------- first frame

    @torch.no_grad()
    def initialize(self, image: np.ndarray, box: np.ndarray) -> None:
        p = self.params
        center_size = xywh_to_cxcywh(torch.from_numpy(box)).numpy()
        self.center, self.base_size = center_size[:2].copy(), center_size[2:].copy()  # (cx, cy), (w, h)
        self.scale = 1.0
        self.base_exemplar_side = exemplar_side(self.base_size, p.context)
        self.base_search_side = self.base_exemplar_side * p.instance_size / p.exemplar_size
        image_wh = np.array([image.shape[1], image.shape[0]], dtype=np.float64)
        self.min_scale = min(1.0, p.min_target_size / float(self.base_size.min()))
        self.max_scale = max(1.0, float((image_wh / self.base_size).min()))
        self.factors = scale_factors(p.scale_step, p.scale_num)

        self.mean_color = image.mean(axis=(0, 1))  # padding colour for every crop of the sequence
        z = crop_and_resize(image, self.center, self.base_exemplar_side, p.exemplar_size, self.mean_color)
        self.kernel = self._embed(z[None])  # the exemplar embedding, computed once
        self.info = {"score": 1.0, "flag": "normal"}

    # ------------------------------------------------------------------- every frame

    @torch.no_grad()
    def track(self, image: np.ndarray) -> np.ndarray:
        p = self.params
        search_sides = self.base_search_side * self.scale * self.factors  # (S,) image pixels
        with stage("patch_extraction"):
            crops = np.stack([crop_and_resize(image, self.center, side, p.instance_size, self.mean_color)
                              for side in search_sides])
        responses = self._responses(crops)  # (S, 17, 17)
        with stage("localization"):
            loc = locate_target(responses, search_sides, p)

        lost = p.not_found_threshold is not None and loc.raw_peak < p.not_found_threshold
        if not lost:
            new_scale = self.scale * damped_scale(float(self.factors[loc.scale_index]), p.scale_lr)
            self.scale = float(np.clip(new_scale, self.min_scale, self.max_scale))
            self.center = self._clamp_center(self.center + loc.disp_in_image, image.shape)

        self.info = {"score": loc.raw_peak, "flag": "not_found" if lost else "normal",
                     "score_map": responses[loc.scale_index], "scale_factor": float(self.factors[loc.scale_index])}
        return self._box()
