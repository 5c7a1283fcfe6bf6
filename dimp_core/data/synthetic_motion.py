"""Motion for the synthetic benchmark: smooth paths through waypoints, abrupt jumps, scale and angle curves,
and the 3 x 3 affine maps that place sprites and the background in a frame.

Paths are (N, 2) arrays of positions, x before y, one row per frame. A path is built from waypoints
``(frame, point)``: linear interpolation between them, then a Gaussian smoothing whose window never crosses a
*cut* (a frame where the object jumps), so smooth motion stays smooth and abrupt motion stays abrupt.

Affine maps are (N, 3, 3) float64 matrices acting on homogeneous continuous pixel coordinates (a pixel
``(i, j)`` covers ``[j, j + 1) x [i, i + 1)``). :func:`to_cv2` converts one to OpenCV's pixel-centre convention.

Symbols: ``smooth``, ``waypoint_path``, ``pick_frames``, ``log_curve``, ``translation``, ``rotation_scale``,
``object_affines``, ``to_cv2``, ``transform_points``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# --------------------------------------------------------------------------- 1-D curves and paths


def smooth(values: np.ndarray, sigma: float, cuts: Sequence[int] = ()) -> np.ndarray:
    """Gaussian smoothing along axis 0, separately within each piece between ``cuts`` (edge values repeat).

    Args:
        values: (N, ...) samples, one row per frame.
        sigma: standard deviation in frames; 0 returns a copy.
        cuts: frame indices where a new piece starts.

    Returns:
        (N, ...) smoothed samples.
    """
    out = np.array(values, dtype=np.float64)
    if sigma <= 0:
        return out
    radius = int(np.ceil(3 * sigma))
    kernel = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    kernel /= kernel.sum()
    bounds = [0, *sorted(c for c in cuts if 0 < c < len(out)), len(out)]
    for a, b in zip(bounds[:-1], bounds[1:], strict=True):
        piece = out[a:b]
        padded = np.concatenate([np.repeat(piece[:1], radius, 0), piece, np.repeat(piece[-1:], radius, 0)])
        flat = padded.reshape(len(padded), -1)
        smoothed = np.stack([np.convolve(flat[:, k], kernel, mode="valid") for k in range(flat.shape[1])], 1)
        out[a:b] = smoothed.reshape(piece.shape)
    return out


def waypoint_path(frames: Sequence[int], points: np.ndarray, num_frames: int, sigma: float,
                  cuts: Sequence[int] = ()) -> np.ndarray:
    """Interpolate waypoints linearly, then smooth within the pieces between ``cuts``.

    At a cut frame ``c`` the path jumps: the waypoint at ``c`` is reached without passing through the frames
    in between, so give a waypoint at both ``c - 1`` and ``c``.

    Args:
        frames: (K,) increasing frame indices of the waypoints, the first 0 and the last ``num_frames - 1``.
        points: (K, D) waypoint values.
        num_frames: N.
        sigma: smoothing in frames.
        cuts: frames where the path jumps.

    Returns:
        (N, D) path.
    """
    frames = np.asarray(frames, dtype=np.float64)
    points = np.asarray(points, dtype=np.float64).reshape(len(frames), -1)
    t = np.arange(num_frames, dtype=np.float64)
    path = np.stack([np.interp(t, frames, points[:, k]) for k in range(points.shape[1])], 1)
    return smooth(path, sigma, cuts)


def pick_frames(rng: np.random.Generator, num_frames: int, count: int, length: int, start: int,
                taken: list[tuple[int, int]], gap: int = 4) -> list[int]:
    """Start frames of ``count`` non-overlapping windows of ``length`` frames in ``[start, num_frames)``.

    Windows keep ``gap`` frames away from each other and from the intervals in ``taken``, which is extended
    with the new windows. Fewer than ``count`` starts come back when the sequence is too short.
    """
    chosen: list[int] = []
    for _ in range(count):
        free = [s for s in range(start, num_frames - length)
                if all(s + length + gap <= a or s >= b + gap for a, b in taken)]
        if not free:
            break
        s = int(rng.choice(free))
        chosen.append(s)
        taken.append((s, s + length))
    return sorted(chosen)


def log_curve(rng: np.random.Generator, num_frames: int, amplitude: float, period: tuple[float, float]) -> np.ndarray:
    """A smooth random curve around 0 with values in about [-amplitude, amplitude]: (N,) float64."""
    step = max(2, int(rng.uniform(*period)))
    frames = list(range(0, num_frames - 1, step)) + [num_frames - 1]
    values = rng.uniform(-amplitude, amplitude, len(frames))
    return waypoint_path(frames, values, num_frames, sigma=step / 3)[:, 0]


# --------------------------------------------------------------------------- affine maps


def translation(t: np.ndarray) -> np.ndarray:
    """(N, 3, 3) translations by (N, 2) offsets."""
    m = np.tile(np.eye(3), (len(t), 1, 1))
    m[:, :2, 2] = t
    return m


def rotation_scale(angle_deg: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """(N, 3, 3) maps x -> scale * R(angle) x about the origin; positive angles turn clockwise on screen."""
    a = np.deg2rad(angle_deg)
    c, s = np.cos(a) * scale, np.sin(a) * scale
    m = np.tile(np.eye(3), (len(a), 1, 1))
    m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1] = c, -s, s, c
    return m


def object_affines(center: np.ndarray, scale: np.ndarray, angle_deg: np.ndarray,
                   sprite_size: tuple[int, int]) -> np.ndarray:
    """Sprite pixels -> scene: the sprite's centre goes to ``center`` (N, 2), scaled and rotated about it.

    Returns:
        (N, 3, 3) affine maps.
    """
    w, h = sprite_size
    to_origin = translation(np.tile([[-w / 2, -h / 2]], (len(center), 1)))
    return translation(center) @ rotation_scale(angle_deg, scale) @ to_origin


def to_cv2(m: np.ndarray) -> np.ndarray:
    """A continuous-pixel affine (3, 3) as OpenCV's (2, 3) forward map between pixel centres."""
    shift = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])
    unshift = np.array([[1.0, 0.0, -0.5], [0.0, 1.0, -0.5], [0.0, 0.0, 1.0]])
    return (unshift @ m @ shift)[:2]


def transform_points(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply (N, 3, 3) maps to (K, 2) points: (N, K, 2)."""
    return np.einsum("nij,kj->nki", m[:, :2, :2], points) + m[:, None, :2, 2]


def bounding_boxes(m: np.ndarray, outline: np.ndarray) -> np.ndarray:
    """Axis-aligned (x, y, w, h) boxes of an outline (K, 2) under (N, 3, 3) maps: (N, 4)."""
    pts = transform_points(m, outline)
    lo, hi = pts.min(1), pts.max(1)
    return np.concatenate([lo, hi - lo], 1)
