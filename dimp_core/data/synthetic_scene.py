"""From attribute labels to a :class:`~dimp_core.data.synthetic_render.Scene`: what each attribute does.

All positions are first planned in the *scene plane* (image pixels of a still camera), then the camera's lens
map (zoom, in-plane rotation and shake about the image centre) is applied to every layer and to the
background, so camera motion moves the target too. Attributes (``ATTRIBUTES``):

- ``distractors``: 2-3 look-alikes (the target's sprite with each colour channel scaled by up to +-12 % and
  its size by up to +-15 %) wander around the target and cross it, half of them in front of it.
- ``partial_occlusion`` / ``full_occlusion``: the target passes in a straight line behind a static opaque
  object that covers 35-60 % of it for 16-30 frames, or all of it for 10-18 frames.
- ``scale_change``: the target's size spans a factor of 4 over the sequence (grow, shrink, or both).
- ``fast_motion``: 3-5 abrupt jumps of 1.5-3.5 target sizes between consecutive frames, and faster motion.
- ``in_plane_rotation``: the target turns by 120-360 degrees, or swings back and forth.
- ``illumination_change``: global brightness between x0.4 and x1.7 with sudden switches, a colour cast, and a
  moving light or shadow.
- ``motion_blur``: 2-3 bursts of 8-16 frames blurred by a 9-25 pixel linear kernel.
- ``low_contrast``: the target's colours pulled towards the background's mean colour (contrast x0.6), the
  frame's contrast x0.6 and the sensor noise x2.5.
- ``small_target``: the target's longer side is 12-20 pixels (at 480 x 360).
- ``out_of_view``: the target leaves through the nearest border for 8-16 frames (a few more while it crosses
  the border) and comes back.
- ``camera_motion``: the camera pans over a larger world, zooms (x0.8-1.25), rolls (+-12 degrees) and shakes.

Sizes and speeds are given for a 480 x 360 frame and scale with the frame's shorter side. Symbols:
``ATTRIBUTES``, ``SynthParams``, ``build_scene``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dimp_core.data.synthetic_assets import (
    Sprite,
    load_photo,
    look_alike,
    make_background,
    make_sprite,
    photo_crop,
    photo_sprite,
    procedural_texture,
    recolor_towards,
    shape_sprite,
)
from dimp_core.data.synthetic_motion import (
    bounding_boxes,
    log_curve,
    object_affines,
    pick_frames,
    rotation_scale,
    smooth,
    translation,
    waypoint_path,
)
from dimp_core.data.synthetic_path import Event, distractor_path, schedule, target_path
from dimp_core.data.synthetic_render import Layer, Scene, draw_sprite

ATTRIBUTES: tuple[str, ...] = (
    "distractors", "partial_occlusion", "full_occlusion", "scale_change", "fast_motion", "in_plane_rotation",
    "illumination_change", "motion_blur", "low_contrast", "small_target", "out_of_view", "camera_motion",
)


@dataclass(frozen=True)
class SynthParams:
    """Difficulty knobs. Lengths are pixels of a 480 x 360 frame; ranges are (low, high), drawn uniformly."""

    clean_start: int = 12  # first frames free of occlusion, jumps and leaving the view
    target_size: tuple[float, float] = (30.0, 80.0)  # longer side of the target
    small_target_size: tuple[float, float] = (12.0, 20.0)
    scale_change_low: tuple[float, float] = (20.0, 34.0)  # smaller extreme of a scale change
    scale_change_ratio: float = 4.0
    scale_wobble: float = 0.12  # log-amplitude of size changes without scale_change
    speed: tuple[float, float] = (1.0, 3.0)  # pixels per frame of smooth motion
    fast_speed_factor: float = 1.8
    jumps: tuple[int, int] = (3, 5)
    jump_distance: tuple[float, float] = (1.5, 3.5)  # in target sizes
    rotation: tuple[float, float] = (120.0, 360.0)  # degrees over the sequence
    rotation_wobble: float = 5.0  # degrees, without in_plane_rotation
    distractors: tuple[int, int] = (2, 3)
    distractor_color_jitter: float = 0.12
    distractor_scale_jitter: float = 0.15
    full_occlusion_frames: tuple[int, int] = (10, 18)
    partial_occlusion_frames: tuple[int, int] = (16, 30)
    partial_cover: tuple[float, float] = (0.35, 0.6)
    out_of_view_frames: tuple[int, int] = (8, 16)
    illumination_gain: tuple[float, float] = (0.4, 1.7)
    blur_bursts: tuple[int, int] = (2, 3)
    blur_length: tuple[float, float] = (9.0, 25.0)
    low_contrast: float = 0.6  # frame contrast factor
    low_contrast_target: float = 0.6  # target contrast factor around the background colour
    noise_sigma: float = 2.0
    low_contrast_noise_sigma: float = 5.0
    camera_zoom: tuple[float, float] = (0.8, 1.25)
    camera_roll: float = 12.0  # degrees
    camera_shake: float = 3.0  # pixels
    clutter: tuple[int, int] = (3, 8)  # static objects painted into the background
    passers_by: tuple[int, int] = (0, 2)  # moving objects behind the target


def _draw_range(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


def _draw_count(rng: np.random.Generator, bounds: tuple[int, int]) -> int:
    return int(rng.integers(bounds[0], bounds[1] + 1))


# --------------------------------------------------------------------------- target size and angle


def _size_curve(rng: np.random.Generator, attrs: set[str], n: int, p: SynthParams, unit: float) -> np.ndarray:
    """(N,) longer side of the target in pixels."""
    if "small_target" in attrs:
        low = _draw_range(rng, p.small_target_size) * unit
    else:
        low = _draw_range(rng, p.scale_change_low if "scale_change" in attrs else p.target_size) * unit
    if "scale_change" not in attrs:
        return low * np.exp(log_curve(rng, n, p.scale_wobble, (25, 50)))
    span = np.log(p.scale_change_ratio)
    t = np.linspace(0.0, 1.0, n)
    t0, t1 = rng.uniform(0.0, 0.3), rng.uniform(0.6, 1.0)
    ramp = np.clip((t - t0) / (t1 - t0), 0, 1)
    ramp = ramp * ramp * (3 - 2 * ramp)  # smoothstep from 0 to 1
    kind = rng.choice(["grow", "shrink", "grow_shrink"])
    if kind == "shrink":
        ramp = 1 - ramp
    elif kind == "grow_shrink":
        ramp = np.sin(np.pi * t) ** 2 if rng.random() < 0.5 else 1 - np.sin(np.pi * t) ** 2
    return low * np.exp(span * ramp)


def _angle_curve(rng: np.random.Generator, attrs: set[str], n: int, p: SynthParams) -> np.ndarray:
    """(N,) in-plane angle of the target in degrees."""
    if "in_plane_rotation" not in attrs:
        return log_curve(rng, n, p.rotation_wobble, (20, 50))
    total = _draw_range(rng, p.rotation) * rng.choice([-1.0, 1.0])
    t = np.linspace(0.0, 1.0, n)
    if rng.random() < 0.5:
        return total * t + log_curve(rng, n, 10.0, (15, 30))
    return 0.5 * total * np.sin(2 * np.pi * t * rng.uniform(1.0, 2.5))


# --------------------------------------------------------------------------- camera


def _camera(rng: np.random.Generator, moving: bool, n: int, size: tuple[int, int], p: SynthParams,
            unit: float) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """The lens maps (N, 3, 3) about the image centre, the pan (N, 2) (world position of the image origin) and
    the world size."""
    w, h = size
    if not moving:
        return np.tile(np.eye(3), (n, 1, 1)), np.zeros((n, 2)), size
    world = (int(w * 1.6), int(h * 1.6))
    zoom = np.exp(waypoint_path([0, n - 1], np.log(rng.uniform(*p.camera_zoom, size=2)), n, 0)[:, 0]
                  + log_curve(rng, n, 0.08, (20, 40)))
    roll = log_curve(rng, n, p.camera_roll, (25, 60))
    shake = smooth(rng.normal(0, p.camera_shake * unit, (n, 2)), 1.0) * 1.5
    center = np.tile([w / 2, h / 2], (n, 1))
    lens = translation(center + shake) @ rotation_scale(roll, zoom) @ translation(-center)
    slack = np.array(world) - np.array(size)
    pan_frames = list(range(0, n - 1, 30)) + [n - 1]
    pan = waypoint_path(pan_frames, rng.uniform(0.05, 0.95, (len(pan_frames), 2)) * slack, n, 8.0)
    return lens, pan, world


# --------------------------------------------------------------------------- events


def _plan_events(rng: np.random.Generator, attrs: set[str], n: int, p: SynthParams) -> list[Event]:
    """The occlusions, exit from the view and jumps of one sequence, scheduled so that none overlap."""
    requests = []
    if "full_occlusion" in attrs:
        requests.append(("full", _draw_count(rng, p.full_occlusion_frames), 12, 12))
    if "partial_occlusion" in attrs:
        requests.append(("partial", _draw_count(rng, p.partial_occlusion_frames), 12, 12))
    if "out_of_view" in attrs:
        requests.append(("exit", _draw_count(rng, p.out_of_view_frames), 18, 12))
    if "fast_motion" in attrs:
        requests += [("jump", 1, 4, 4)] * _draw_count(rng, p.jumps)
    return schedule(rng, n, p.clean_start, requests)


# --------------------------------------------------------------------------- other objects


def _extent(sprite: Sprite) -> float:
    """The longer side of the sprite's outline, in its pixels (the canvas around it is larger)."""
    return float((sprite.hull.max(0) - sprite.hull.min(0)).max())


def _target_sprite(rng: np.random.Generator, photos: tuple[str, ...]) -> Sprite:
    if rng.random() < 0.5:
        return photo_sprite(rng, photos)
    return shape_sprite(rng)


def _occluder(rng: np.random.Generator, photos: tuple[str, ...], boxes: np.ndarray, full: bool, p: SynthParams,
              unit: float) -> tuple[Sprite, np.ndarray]:
    """An opaque rectangle that covers (all or part of) the target boxes (L, 4) of one window; returns the
    sprite and its scene-plane centre."""
    x0, y0 = boxes[:, :2].min(0)
    x1, y1 = (boxes[:, :2] + boxes[:, 2:]).max(0)
    margin = 4 * unit
    lo, hi = np.array([x0, y0]) - margin, np.array([x1, y1]) + margin
    motion = np.abs(boxes[-1, :2] - boxes[0, :2])
    across = 1 if motion[0] >= motion[1] else 0  # the axis across the motion
    extent = boxes[len(boxes) // 2, 2 + across]
    if full:
        grow = rng.uniform(0.0, 0.6) * extent
        lo[across] -= grow * rng.random()
        hi[across] += grow * rng.random()
    else:
        cover = _draw_range(rng, p.partial_cover)
        mid = boxes[len(boxes) // 2, across] + extent / 2
        beyond = rng.uniform(0.3, 1.0) * extent
        if rng.random() < 0.5:
            lo[across], hi[across] = mid + (0.5 - cover) * extent, mid + 0.5 * extent + beyond
        else:
            lo[across], hi[across] = mid - 0.5 * extent - beyond, mid - (0.5 - cover) * extent
    w, h = np.maximum(np.ceil(hi - lo).astype(int), 4)
    rgb = procedural_texture(rng, (w, h)) if rng.random() < 0.4 else photo_crop(rng, _photo(rng, photos), (w, h))
    sprite = make_sprite(rgb, np.ones((h, w), np.float32))
    return sprite, (lo + hi) / 2


def _photo(rng: np.random.Generator, photos: tuple[str, ...]) -> np.ndarray:
    return load_photo(str(rng.choice(photos)))


def _paint_clutter(rng: np.random.Generator, world: np.ndarray, photos: tuple[str, ...], count: int,
                   unit: float) -> None:
    """Paint ``count`` static objects into the world image (H, W, 3) float32, in place."""
    h, w = world.shape[:2]
    for _ in range(count):
        sprite = photo_sprite(rng, photos, max_side=96) if rng.random() < 0.5 else shape_sprite(rng, max_side=96)
        side = rng.uniform(15, 100) * unit
        center = rng.uniform([0, 0], [w, h])
        m = object_affines(center[None], np.array([side / _extent(sprite)]), rng.uniform(0, 360, 1), sprite.size)
        draw_sprite(world, sprite, m[0])


def _overlaps(boxes: np.ndarray, box: np.ndarray) -> np.ndarray:
    """(N,) whether each of the (N, 4) boxes intersects ``box`` (4,)."""
    return ((boxes[:, 0] < box[0] + box[2]) & (box[0] < boxes[:, 0] + boxes[:, 2])
            & (boxes[:, 1] < box[1] + box[3]) & (box[1] < boxes[:, 1] + boxes[:, 3]))


def _lifetime(hits: np.ndarray, event: Event, clean_start: int, linger: int = 20, fade: int = 3) -> np.ndarray:
    """(N,) opacity of an occluder whose box meets the target's box in the frames flagged by ``hits`` (N,).

    It is shown for the contiguous stretch of hits around the event's core frames, cut to the event's lead-in and
    lead-out, plus up to ``linger`` clear frames either side, and fades in and out over ``fade`` frames, so it
    hides the target only around its event (a target that wanders back later is not hidden again)."""
    n = len(hits)
    first, last = event.start, event.start + event.length - 1
    while first > max(event.start - event.before, 0) and hits[first - 1]:
        first -= 1
    while last + 1 < min(event.start + event.length + event.after, n) and hits[last + 1]:
        last += 1
    appear, vanish = max(first - linger, clean_start, 0), min(last + 1 + linger, n)
    appear = max(appear, int(np.max(np.nonzero(hits[:first])[0], initial=-1)) + 1)  # no earlier meeting
    later = np.nonzero(hits[last + 1 :])[0]
    vanish = min(vanish, last + 1 + int(later[0])) if len(later) else vanish
    opacity = np.zeros(n)
    opacity[appear:vanish] = 1.0
    ramp = np.arange(1, fade + 1) / (fade + 1)
    if first - appear >= fade:
        opacity[appear : appear + fade] = ramp
    if vanish - (last + 1) >= fade and vanish < n:
        opacity[vanish - fade : vanish] = ramp[::-1]
    return opacity


def _passers_by(rng: np.random.Generator, n: int, size: tuple[int, int], lens: np.ndarray, photos: tuple[str, ...],
                p: SynthParams, unit: float) -> list[Layer]:
    """Objects unlike the target that wander across the whole frame, behind it."""
    w, h = size
    layers = []
    for _ in range(_draw_count(rng, p.passers_by)):
        other = _target_sprite(rng, photos)
        frames = list(range(0, n - 1, 25)) + [n - 1]
        route = waypoint_path(frames, rng.uniform([0, 0], [w, h], (len(frames), 2)), n, 4.0)
        side = _draw_range(rng, p.target_size) * unit
        m = object_affines(route, np.full(n, side / _extent(other)), np.full(n, rng.uniform(0, 360)), other.size)
        layers.append(Layer(other, lens @ m, np.ones(n), "object"))
    return layers


def _look_alikes(rng: np.random.Generator, attrs: set[str], sprite: Sprite, path: np.ndarray, sizes: np.ndarray,
                 angles: np.ndarray, lens: np.ndarray, size: tuple[int, int],
                 p: SynthParams) -> tuple[list[Layer], list[Layer]]:
    """Distractors: recoloured, rescaled copies of the target that cross it; (behind it, in front of it)."""
    behind: list[Layer] = []
    front: list[Layer] = []
    if "distractors" not in attrs:
        return behind, front
    n, duration = len(path), 30
    count = _draw_count(rng, p.distractors)
    scales = sizes / _extent(sprite)
    for crossing in pick_frames(rng, n, count, duration, p.clean_start + 4, [(0, p.clean_start)], gap=2):
        twin = look_alike(rng, sprite, p.distractor_color_jitter)
        route = distractor_path(rng, path, sizes, crossing + duration // 2, duration, size)
        factor = 1.0 + rng.uniform(-p.distractor_scale_jitter, p.distractor_scale_jitter)
        m = object_affines(route, scales * factor, angles + rng.uniform(-20, 20), sprite.size)
        (front if rng.random() < 0.5 else behind).append(Layer(twin, lens @ m, np.ones(n), "distractor"))
    return behind, front


def _occluders(rng: np.random.Generator, events: list[Event], target_boxes: np.ndarray, lens: np.ndarray,
               photos: tuple[str, ...], p: SynthParams, unit: float) -> list[Layer]:
    """One static occluder over the core frames of each occlusion event, shown only around its event."""
    n = len(target_boxes)
    layers = []
    for e in events:
        if e.kind not in ("full", "partial"):
            continue
        core = target_boxes[e.start : e.start + e.length]
        blocker, center = _occluder(rng, photos, core, e.kind == "full", p, unit)
        corner = center - np.array(blocker.size) / 2
        box = np.concatenate([corner, blocker.size])
        opacity = _lifetime(_overlaps(target_boxes, box), e, p.clean_start)
        layers.append(Layer(blocker, lens @ translation(np.tile(corner, (n, 1))), opacity, "occluder"))
    return layers


# --------------------------------------------------------------------------- the scene


def build_scene(rng: np.random.Generator, attributes: tuple[str, ...], num_frames: int, image_size: tuple[int, int],
                photos: tuple[str, ...], params: SynthParams) -> Scene:
    """Plan a whole sequence: appearance, motion and effects of every frame, from the attribute labels."""
    unknown = sorted(set(attributes) - set(ATTRIBUTES))
    if unknown:
        raise ValueError(f"unknown attributes {unknown}; choose from {', '.join(ATTRIBUTES)}")
    attrs, n, p = set(attributes), num_frames, params
    w, h = image_size
    unit = min(w, h) / 360.0

    # target appearance, size, angle; camera; path
    sprite = _target_sprite(rng, photos)
    sizes = _size_curve(rng, attrs, n, p, unit)
    angles = _angle_curve(rng, attrs, n, p)
    lens, pan, world_size = _camera(rng, "camera_motion" in attrs, n, image_size, p, unit)
    events = _plan_events(rng, attrs, n, p)
    speed = _draw_range(rng, p.speed) * unit * (p.fast_speed_factor if "fast_motion" in attrs else 1.0)
    path = target_path(rng, n, image_size, sizes, lens, events, speed, p.jump_distance, unit)
    scales = sizes / _extent(sprite)
    target_scene = object_affines(path, scales, angles, sprite.size)
    target_boxes = bounding_boxes(target_scene, sprite.hull)

    # background world with clutter
    world = make_background(rng, photos, world_size)
    _paint_clutter(rng, world, photos, _draw_count(rng, p.clutter), unit)
    if "low_contrast" in attrs:
        sprite = recolor_towards(sprite, world.reshape(-1, 3).mean(0), p.low_contrast_target)

    behind = _passers_by(rng, n, image_size, lens, photos, p, unit)
    twins_behind, twins_front = _look_alikes(rng, attrs, sprite, path, sizes, angles, lens, image_size, p)
    occluders = _occluders(rng, events, target_boxes, lens, photos, p, unit)

    target = Layer(sprite, lens @ target_scene, np.ones(n), "target")
    behind += twins_behind
    layers = (*behind, target, *twins_front, *occluders)
    background_affines = lens @ translation(-pan)
    gain, spot = _illumination(rng, "illumination_change" in attrs, n, image_size, path, p)
    blur = _motion_blur(rng, "motion_blur" in attrs, n, path, p, unit)
    low = "low_contrast" in attrs
    noise = np.stack([rng.standard_normal((h, w, 3), dtype=np.float32) for _ in range(3)])
    return Scene(
        image_size=image_size,
        background=np.clip(world + 0.5, 0, 255).astype(np.uint8),
        background_affines=background_affines,
        layers=layers,
        target=len(behind),
        gain=gain,
        spot=spot,
        blur=blur,
        contrast=p.low_contrast if low else 1.0,
        noise_sigma=p.low_contrast_noise_sigma if low else p.noise_sigma,
        noise=noise,
        noise_index=rng.integers(0, len(noise), n),
    )


# --------------------------------------------------------------------------- effects


def _illumination(rng: np.random.Generator, changing: bool, n: int, size: tuple[int, int], path: np.ndarray,
                  p: SynthParams) -> tuple[np.ndarray, np.ndarray]:
    """(N, 3) per-channel gain and (N, 4) light/shadow spot (x, y, sigma, amplitude)."""
    if not changing:
        return np.ones((n, 3)), np.zeros((n, 4))
    lo, hi = np.log(p.illumination_gain[0]), np.log(p.illumination_gain[1])
    level = log_curve(rng, n, 0.5 * (hi - lo), (15, 40)) + 0.5 * (hi + lo)
    switch = int(rng.integers(8, 25))  # frames of a sudden change
    for s in pick_frames(rng, n, int(rng.integers(1, 3)), switch, 8, []):
        level[s : s + switch] += rng.choice([-1.0, 1.0]) * rng.uniform(0.4, 0.7)
    level = np.clip(level, lo, hi)
    cast = np.stack([log_curve(rng, n, 0.15, (20, 50)) for _ in range(3)], 1)
    gain = np.exp(level[:, None] + cast)
    w, h = size
    drift = waypoint_path([0, n - 1], rng.uniform(-0.4, 0.4, (2, 2)) * np.array([w, h]), n, 0)
    spot = np.concatenate([path + drift, np.full((n, 1), rng.uniform(0.2, 0.45) * w),
                           np.full((n, 1), rng.uniform(0.5, 1.0) * rng.choice([-0.8, 1.0]))], 1)
    return gain, spot


def _motion_blur(rng: np.random.Generator, blurred: bool, n: int, path: np.ndarray, p: SynthParams,
                 unit: float) -> np.ndarray:
    """(N, 2) blur length in pixels and direction in degrees (the target's direction of motion)."""
    blur = np.zeros((n, 2))
    if not blurred:
        return blur
    velocity = np.gradient(path, axis=0)
    for s in pick_frames(rng, n, _draw_count(rng, p.blur_bursts), 16, 4, []):
        length = int(rng.integers(8, 17))
        peak = _draw_range(rng, p.blur_length) * unit
        profile = np.sin(np.linspace(0, np.pi, length)) * 0.6 + 0.4
        blur[s : s + length, 0] = peak * profile[: n - s]
        v = velocity[s : s + length]
        direction = np.degrees(np.arctan2(v[:, 1], v[:, 0])) if np.abs(v).sum() > 1 else rng.uniform(0, 180)
        blur[s : s + length, 1] = direction
    return blur

