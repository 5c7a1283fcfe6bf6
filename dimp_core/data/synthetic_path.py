"""Where things go and when: the schedule of events and the paths of the target and its look-alikes.

An :class:`Event` is a stretch of the target's path with a purpose (an occlusion, leaving the view, a jump);
``schedule`` places events on the timeline without overlaps, ``target_path`` builds a random walk with the
events in it, and ``distractor_path`` makes a look-alike wander around the target and cross it. Paths are
(N, 2) positions in the scene plane (image pixels of a still camera), x before y.

Symbols: ``Event``, ``schedule``, ``target_path``, ``room``, ``exit_waypoints``, ``distractor_path``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dimp_core.data.synthetic_motion import waypoint_path

# --------------------------------------------------------------------------- events


@dataclass(frozen=True)
class Event:
    """A stretch of the target's path: ``kind`` (``full``, ``partial``, ``exit`` or ``jump``), its core frames
    ``start ... start + length - 1`` (occluded, out of view, or the frame landed on after a jump) and the lead-in
    and lead-out frames reserved around the core."""

    kind: str
    start: int
    length: int
    before: int
    after: int


def schedule(rng: np.random.Generator, n: int, first: int, requests: list[tuple[str, int, int, int]]) -> list[Event]:
    """Place every requested (kind, length, before, after) window in frames [first, n) without overlaps, in a
    random order with random gaps. When they do not fit, all are shrunk by one factor; on a very short sequence
    the windows that still do not fit are dropped."""
    if not requests:
        return []
    available = n - 1 - first
    total = sum(length + before + after for _, length, before, after in requests)
    f = min(1.0, available / total)
    sized = [(kind, max(int(length * f), min(length, 2)), max(int(before * f), min(before, 2)),
              max(int(after * f), min(after, 2))) for kind, length, before, after in requests]
    free = max(0, available - sum(length + before + after for _, length, before, after in sized))
    gaps = np.diff(np.concatenate([[0.0], np.sort(rng.uniform(0, free, len(sized))), [float(free)]])).astype(int)
    events, t = [], first
    for gap, i in zip(gaps, rng.permutation(len(sized)), strict=False):
        kind, length, before, after = sized[i]
        t += int(gap)
        if t + before + length + after > n - 1:
            break
        events.append(Event(kind, t + before, length, before, after))
        t += before + length + after
    return events


# --------------------------------------------------------------------------- paths


def target_path(rng: np.random.Generator, n: int, size: tuple[int, int], sizes: np.ndarray, lens: np.ndarray,
                events: list[Event], speed: float, jump_distance: tuple[float, float], unit: float) -> np.ndarray:
    """(N, 2) scene-plane centre of the target: a random walk through waypoints, with the ``events`` built in.

    Through an occlusion the target moves in a straight line at a steady pace (so an occluder over the core
    stretch hides it for about that many frames); for an exit it leaves through the nearest border; for a jump it
    lands ``jump_distance`` target sizes away from one frame to the next.

    Args:
        n: number of frames N.
        size: (width, height) of the frames.
        sizes: (N,) longer side of the target in scene pixels; keeps it inside the frame.
        lens: (N, 3, 3) the camera's lens maps (scene plane -> image), to stay in view or to leave it.
        events: from ``schedule``, in order.
        speed: pixels per frame of the random walk.
        jump_distance: (low, high) in target sizes.
        unit: pixels of this frame size per pixel of a 480 x 360 frame.
    """
    w, h = size
    center = np.array([w / 2, h / 2])
    zoom = np.sqrt(np.abs(np.linalg.det(lens[:, :2, :2])))
    reach = 0.75 * sizes.max() * zoom.max() + 4 * unit  # keeps a rotated target inside
    half = np.maximum(center - reach, 0.15 * center) / zoom.max()
    if zoom.max() != 1.0 or zoom.min() != 1.0:
        half *= 0.8  # room for the camera's roll and shake
    lo, hi = center - half, center + half

    pending = list(events)
    frames, points, cuts = [0], [rng.uniform(lo, hi)], []
    while frames[-1] < n - 1:
        t, pos = frames[-1], points[-1]
        step = int(rng.integers(12, 30))
        if pending and pending[0].start - max(pending[0].before, 1) <= t + step:
            e = pending.pop(0)
            lead = 1 if e.kind == "jump" else e.before
            walk = np.clip(pos + rng.normal(0, 1, 2) * speed * (e.start - lead - t) * 0.5, lo, hi)
            if e.start - lead > t:
                frames.append(e.start - lead)
                points.append(walk)
            else:
                walk = pos
            if e.kind == "jump":
                direction = rng.normal(0, 1, 2)
                dist = rng.uniform(*jump_distance) * sizes[e.start]
                frames.append(e.start)
                points.append(np.clip(walk + direction / np.linalg.norm(direction) * dist, lo, hi))
                cuts.append(e.start)
            elif e.kind in ("full", "partial"):
                directions = rng.normal(0, 1, (8, 2))
                directions /= np.linalg.norm(directions, axis=1, keepdims=True)
                rooms = [room(walk, d, lo, hi) for d in directions]
                direction = directions[int(np.argmax(rooms))]
                span = e.before + e.length + e.after - 1
                pace = min(max(speed, 2.0 * unit, 0.8 * sizes[e.start] / e.length), max(rooms) / span)
                ends = (e.start - 1, e.start + e.length, e.start - lead + span)
                frames += list(ends)
                points += [walk + direction * pace * (f - (e.start - lead)) for f in ends]
            else:
                exit_frames, exit_points = exit_waypoints(rng, walk, e, size, sizes * zoom, lens, lo, hi, unit)
                frames += exit_frames
                points += exit_points
            continue
        t_next = min(t + step, n - 1)
        move = rng.normal(0, 1, 2)
        move = move / np.linalg.norm(move) * speed * (t_next - t)
        nxt = pos + move
        nxt = np.where(nxt < lo, 2 * lo - nxt, np.where(nxt > hi, 2 * hi - nxt, nxt))  # reflect off the walls
        frames.append(t_next)
        points.append(np.clip(nxt, lo, hi))
    return waypoint_path(frames, np.array(points), n, sigma=3.0, cuts=cuts)


def room(point: np.ndarray, direction: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> float:
    """How far ``point`` can move along ``direction`` (unit) and stay inside the box [lo, hi]."""
    limits = [((hi[k] if direction[k] > 0 else lo[k]) - point[k]) / direction[k] for k in range(2) if direction[k] != 0]
    return max(0.0, min(limits, default=0.0))


def exit_waypoints(rng: np.random.Generator, pos: np.ndarray, event: Event, size: tuple[int, int],
                    image_sizes: np.ndarray, lens: np.ndarray, lo: np.ndarray, hi: np.ndarray,
                    unit: float) -> tuple[list[int], list[np.ndarray]]:
    """Waypoints that leave through the border nearest to ``pos``, stay out over the event's core frames and come
    back at its end. The hidden points are placed in the image, beyond the border, then mapped back to the scene
    plane through the inverse lens, so the camera cannot bring them back into view."""
    first, last = event.start, event.start + event.length - 1
    limits = np.array(size, dtype=np.float64)
    gaps = np.array([pos[0], limits[0] - pos[0], pos[1], limits[1] - pos[1]])
    side = int(np.argmin(gaps))
    axis, other = side // 2, 1 - side // 2
    outward = -1.0 if side % 2 == 0 else 1.0
    edge = 0.0 if outward < 0 else limits[axis]
    frames, points = [], []
    along = pos[other]
    for frame in (first, last):
        along = np.clip(along + rng.normal(0, 0.1) * limits[other], lo[other], hi[other])
        point = np.empty(2)
        point[other] = along
        point[axis] = edge + outward * (0.75 * image_sizes[frame] + 6 * unit + 0.03 * limits[axis])
        frames.append(frame)
        points.append((np.linalg.inv(lens[frame]) @ np.append(point, 1.0))[:2])
    back = np.empty(2)
    back[other] = along
    back[axis] = np.clip(edge - outward * (0.6 * image_sizes[last] + 10 * unit), lo[axis], hi[axis])
    return [*frames, last + event.after], [*points, back]


def distractor_path(rng: np.random.Generator, target: np.ndarray, sizes: np.ndarray, crossing: int,
                     duration: int, size: tuple[int, int]) -> np.ndarray:
    """(N, 2) path of a look-alike that wanders around the target and crosses it at frame ``crossing``."""
    n = len(target)
    u = rng.normal(0, 1, 2)
    u /= np.linalg.norm(u)
    perp = np.array([-u[1], u[0]]) * rng.uniform(0.3, 0.6) * rng.choice([-1.0, 1.0])
    a, b = max(crossing - duration // 2, 1), min(crossing + duration // 2, n - 2)
    fixed = {
        a: target[a] + u * 2.2 * sizes[a],
        crossing: target[crossing] + perp * sizes[crossing],
        b: target[b] - u * 2.2 * sizes[b],
    }
    wander = set(range(0, n, int(rng.integers(15, 25)))) | {n - 1}
    frames = sorted((wander - set(range(a - 6, b + 7))) | set(fixed))
    points = []
    limits = np.array(size, dtype=np.float64)
    for f in frames:
        if f in fixed:
            points.append(fixed[f])
            continue
        angle = rng.uniform(0, 2 * np.pi)
        offset = np.array([np.cos(angle), np.sin(angle)]) * rng.uniform(1.8, 3.5) * sizes[f]
        points.append(np.clip(target[f] + offset, 0, limits))
    return waypoint_path(frames, np.array(points), n, sigma=3.0)
