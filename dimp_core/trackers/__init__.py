"""Trackers behind one interface (``init``, ``update``, ``info``) and ``build_tracker`` (SPEC section 3).

The registry is a plain dict from name to a builder; each builder imports its tracker module only when
it is called, so ``import dimp_core`` stays fast.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from dimp_core.trackers.base import FLAGS, Tracker, TrackerInputError, replace_params

__all__ = ["FLAGS", "TRACKERS", "Tracker", "TrackerInputError", "build_tracker", "replace_params", "shipped_weights"]

WEIGHTS_DIR = Path(__file__).resolve().parents[2] / "data" / "weights"

# official pytracking files a user can pass for the paper's configurations
OFFICIAL_FILES = {"dimp18": "dimp18.pth", "dimp50": "dimp50.pth", "atom": "atom_default.pth"}


def shipped_weights(name: str) -> Path:
    """The project's trained weights for tracker ``name``; a clear error if none are shipped."""
    path = WEIGHTS_DIR / f"{name}.safetensors"
    if path.exists():
        return path
    hint = (f" Pass weights='path/to/{OFFICIAL_FILES[name]}' (the official pytracking checkpoint)"
            if name in OFFICIAL_FILES else " Train them with `dimp train` and pass weights=PATH")
    raise FileNotFoundError(f"no shipped weights for {name!r} ({path} does not exist).{hint}, "
                            "or weights='random' for an untrained network.")


def _device(device: Any) -> Any:
    import torch

    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _opencv(name: str) -> Callable[..., Tracker]:
    def build(device: Any = None, weights: Any = None, **params: Any) -> Tracker:
        from dimp_core.trackers.opencv import OpenCVTracker

        if weights is not None:
            raise ValueError(f"{name} has no weights; got weights={weights!r}")
        return OpenCVTracker(name.split("-", 1)[1], **params)

    return build


# networks each tracker's online logic can run (the first is its default for weights='random')
COMPATIBLE_NETWORKS = {
    "dimp": ("dimp", "dimp18", "dimp50"), "dimp18": ("dimp18",), "dimp50": ("dimp50",),
    "atom": ("atom_lite0", "atom"), "siamfc": ("siamfc", "siamfc_alexnet"), "siamfc-alexnet": ("siamfc_alexnet",),
    "siamfc_alexnet": ("siamfc_alexnet",),
}


def load_network(name: str, weights: str | Path | None, seed: int = 0) -> Any:
    """The network of learned tracker ``name``.

    ``weights``: None for the shipped weights, ``'random'`` for a seeded untrained network (the tracker's
    default architecture), or a path to a file of ours or an official pytracking checkpoint, whose
    architecture is detected from its keys.
    """
    import torch

    from dimp_core.nets import build_network

    allowed = COMPATIBLE_NETWORKS[name]
    if isinstance(weights, str) and weights == "random":
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return build_network(allowed[0])
    path = shipped_weights(name) if weights is None else Path(weights)
    arch, options = _architecture(path)
    if arch not in allowed:
        raise ValueError(f"{path} holds a {arch!r} network; the {name} tracker runs {', '.join(allowed)}")
    return build_network(arch, weights=path, **options)


def _architecture(path: Path) -> tuple[str, dict[str, Any]]:
    """The network a weights file holds and its options: our metadata's ``architecture`` and
    ``network_options`` (the ablations), else guessed from the keys."""
    from dimp_core import checkpoints

    info = checkpoints.load_checkpoint_info(path)
    if isinstance(info.get("architecture"), str):
        options = info.get("network_options") or {}
        return info["architecture"], dict(options) if isinstance(options, dict) else {}
    return checkpoints.architecture_from_keys(checkpoints.load_state_dict(path)), {}


def _dimp(name: str) -> Callable[..., Tracker]:
    def build(device: Any = None, weights: Any = None, preset: str | None = None, **params: Any) -> Tracker:
        """``preset``: a named parameter set of ``dimp_core.trackers.dimp.PRESETS`` ('reference', 'fast');
        explicit parameters override it."""
        from dimp_core.trackers.dimp import DiMPParams, DiMPTracker, preset_params

        if preset is not None:
            params = {**preset_params(preset), **params}
        p = replace_params(DiMPParams(), params, name)
        return DiMPTracker(load_network(name, weights, p.seed), p, _device(device), name=name)

    return build


def _atom() -> Callable[..., Tracker]:
    def build(device: Any = None, weights: Any = None, **params: Any) -> Tracker:
        from dimp_core.trackers.atom import ATOMParams, ATOMTracker

        p = replace_params(ATOMParams(), params, "atom")
        return ATOMTracker(load_network("atom", weights, p.seed), p, _device(device))

    return build


def _siamfc(name: str) -> Callable[..., Tracker]:
    def build(device: Any = None, weights: Any = None, **params: Any) -> Tracker:
        from dimp_core.trackers.siamfc import SiamFCParams, SiamFCTracker

        p = replace_params(SiamFCParams(), params, name)
        return SiamFCTracker(load_network(name, weights, p.seed), p, _device(device), name=name)

    return build


TRACKERS: dict[str, Callable[..., Tracker]] = {
    "dimp": _dimp("dimp"),
    "dimp18": _dimp("dimp18"),
    "dimp50": _dimp("dimp50"),
    "atom": _atom(),
    "siamfc": _siamfc("siamfc"),
    "siamfc-alexnet": _siamfc("siamfc-alexnet"),
    "opencv-csrt": _opencv("opencv-csrt"),
    "opencv-kcf": _opencv("opencv-kcf"),
}


def build_tracker(name: str, device: Any = None, weights: str | Path | None = None, **params: Any) -> Tracker:
    """Build a tracker by name.

    Args:
        name: one of :data:`TRACKERS` (``dimp``, ``dimp18``, ``dimp50``, ``atom``, ``siamfc``,
            ``opencv-csrt``, ``opencv-kcf``).
        device: torch device for the learned trackers; None picks CUDA when available.
        weights: None for the project's shipped weights, ``'random'`` for an untrained network, or a path
            to a file of ours or an official pytracking checkpoint.
        **params: overrides of the tracker's parameter dataclass, by name; unknown names are an error.
    """
    if name not in TRACKERS:
        raise ValueError(f"unknown tracker {name!r}; choose from {', '.join(TRACKERS)}")
    return TRACKERS[name](device=device, weights=weights, **params)
