"""Reading and writing network weights without ever running code from a file.

Pickled files (the official pytracking ``.pth`` checkpoints) are read with the restricted unpickler of
:mod:`dimp_core.safe_pickle` (its docstring explains the threat and the approach): nothing in a file is ever
imported or called, and objects of the training framework become inert placeholders.

Our own files are safetensors (no code at all) with one JSON metadata entry under the header key
``"dimp_core"`` (architecture, config, seed, git commit, ...).
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from dimp_core.safe_pickle import PickledObject, UnsafeCheckpointError, restricted_pickle_module

__all__ = [
    "METADATA_KEY",
    "CheckpointMismatchError",
    "PickledObject",
    "UnsafeCheckpointError",
    "architecture_from_keys",
    "convert",
    "git_commit",
    "load_checkpoint_info",
    "load_into",
    "load_state_dict",
    "save_safetensors",
]

METADATA_KEY = "dimp_core"
"""The safetensors header key under which our JSON metadata is stored."""

FORMAT_VERSION = 1

PathLike = str | os.PathLike[str]


class CheckpointMismatchError(ValueError):
    """A state dict does not fit a module: missing or unexpected keys, or different shapes."""

    def __init__(
        self,
        message: str,
        missing: list[str],
        unexpected: list[str],
        shape_mismatches: list[tuple[str, tuple[int, ...], tuple[int, ...]]],
    ) -> None:
        super().__init__(message)
        self.missing = missing
        self.unexpected = unexpected
        self.shape_mismatches = shape_mismatches


# ---------------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------------


def _sniff(path: Path) -> str | None:
    """Return 'safetensors', 'torch' or None from the first bytes of an existing file."""
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(9)
        if size > 262:
            f.seek(257)
            tar_magic = f.read(5)
        else:
            tar_magic = b""
    # safetensors: u64 header length, then the JSON header; checked first, as the length's low byte
    # may be 0x80. A torch zip file has a compression method (0x00/0x08) at offset 8, never '{'.
    if len(head) == 9 and head[8:9] == b"{" and 2 <= int.from_bytes(head[:8], "little") <= size - 8:
        return "safetensors"
    if head[:4] == b"PK\x03\x04" or head[:1] == b"\x80" or tar_magic == b"ustar":
        return "torch"  # zip format, legacy pickle format (protocol 2+), or the oldest tar format
    return None


def _existing(path: PathLike) -> Path:
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"checkpoint file not found: {p}")
    return p


def _load_torch(path: Path) -> Any:
    """``torch.load`` through the restricted unpickler; errors name the file."""
    try:
        return torch.load(path, map_location="cpu", weights_only=False, pickle_module=restricted_pickle_module)
    except UnsafeCheckpointError as exc:
        raise UnsafeCheckpointError(f"{path}: {exc}; the file was not loaded") from None
    except (RuntimeError, EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError) as exc:
        raise ValueError(
            f"{path}: could not be read as a torch checkpoint ({type(exc).__name__}: {exc})"
        ) from exc


def _state_dict_of(obj: Any, path: Path) -> dict[str, torch.Tensor]:
    """The plain state dict inside a loaded torch object (the ``net`` entry, or the dict itself)."""
    if not isinstance(obj, Mapping):
        raise ValueError(
            f"{path}: expected a dict (state dict or pytracking checkpoint), got {type(obj).__name__}"
        )
    candidate = obj.get("net") if isinstance(obj.get("net"), Mapping) else obj
    if candidate and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in candidate.items()):
        return {k: v.detach() for k, v in candidate.items()}
    keys = [str(k) for k in candidate]
    non_tensor = [str(k) for k, v in candidate.items() if not isinstance(v, torch.Tensor)]
    raise ValueError(
        f"{path}: no 'net' state dict and not a dict of tensors; keys found: {_preview(keys)}"
        + (f"; not tensors: {_preview(non_tensor)}" if non_tensor and len(non_tensor) < len(keys) else "")
    )


def load_state_dict(path: PathLike) -> dict[str, torch.Tensor]:
    """Load the plain state dict of a checkpoint file, never executing code from it.

    Args:
        path: One of our safetensors files, an official pytracking checkpoint (its ``net`` entry is
            returned) or a torch-saved state dict, in the zip or the legacy format.

    Returns:
        Parameter/buffer name -> CPU tensor, in the dtype stored (fp16 files stay fp16).

    Raises:
        FileNotFoundError: The file does not exist.
        UnsafeCheckpointError: The pickle asks for a global outside the allowlist (e.g. ``os.system``).
        ValueError: The file is neither format, or holds no state dict (the message lists its keys).
    """
    p = _existing(path)
    kind = _sniff(p)
    if kind == "safetensors":
        return dict(load_file(p, device="cpu"))
    if kind == "torch":
        return _state_dict_of(_load_torch(p), p)
    raise ValueError(f"{p}: not a checkpoint; expected a safetensors file or a torch.save file (.pth)")


def _plain(obj: Any) -> Any:
    """Convert loaded checkpoint data to JSON-friendly plain data (placeholders become dicts)."""
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    if isinstance(obj, PickledObject):
        out: dict[str, Any] = {"__class__": obj.pickled_class}
        if obj.args:
            out["args"] = _plain(obj.args)
        if isinstance(obj.state, Mapping):
            out.update({str(k): _plain(v) for k, v in obj.state.items()})
        elif obj.state is not None:
            out["state"] = _plain(obj.state)
        return out
    if isinstance(obj, Mapping):
        return {k if isinstance(k, str | int | float | bool) else str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [_plain(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return obj.tolist() if obj.numel() <= 16 else f"<tensor {tuple(obj.shape)} {obj.dtype}>"
    if isinstance(obj, bytes | bytearray):
        return bytes(obj).decode("latin-1")
    return str(obj)


def _constructor_info(constructor: Any) -> dict[str, Any] | None:
    if constructor is None:
        return None
    state = (
        constructor.state if isinstance(constructor, PickledObject) else getattr(constructor, "__dict__", {})
    )
    state = state if isinstance(state, Mapping) else {}
    return {
        "fun_name": state.get("fun_name"),
        "fun_module": state.get("fun_module"),
        "args": _plain(list(state.get("args") or ())),
        "kwds": _plain(dict(state.get("kwds") or {})),
    }


def _info_of(obj: Any) -> dict[str, Any]:
    data = obj if isinstance(obj, Mapping) else {}
    return {
        "net_type": _plain(data.get("net_type")),
        "constructor": _constructor_info(data.get("constructor")),
        "epoch": _plain(data.get("epoch")),
    }


def load_checkpoint_info(path: PathLike) -> dict[str, Any]:
    """Read a checkpoint's metadata (plain data, no code run).

    Args:
        path: A safetensors file or a torch checkpoint.

    Returns:
        For our safetensors files the JSON metadata stored by :func:`save_safetensors` (a foreign
        safetensors file gives its raw string metadata). For torch files
        ``{'net_type', 'constructor': {'fun_name', 'fun_module', 'args', 'kwds'} | None, 'epoch'}``,
        with None for what a plain state dict lacks.
    """
    p = _existing(path)
    kind = _sniff(p)
    if kind == "safetensors":
        with safe_open(p, framework="pt") as f:
            raw = dict(f.metadata() or {})
        return json.loads(raw[METADATA_KEY]) if METADATA_KEY in raw else raw
    if kind == "torch":
        return _info_of(_load_torch(p))
    raise ValueError(f"{p}: not a checkpoint; expected a safetensors file or a torch.save file (.pth)")


def training_runs(meta: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The training runs behind one of our weights files, first run first.

    A warm-started run (``TrainConfig.init_weights``) records the metadata of the file it started from under
    ``init_weights_meta``, and that file may itself have been warm-started: the chain ends at a run that started
    from the ImageNet backbone alone.
    """
    runs = []
    while meta:
        runs.append(meta)
        meta = meta.get("init_weights_meta") or {}
    return runs[::-1]


# ---------------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------------


def git_commit(cwd: PathLike | None = None) -> str | None:
    """Return the current git commit (``git rev-parse HEAD``), or None outside a repository / without git.

    ``DIMP_LAB_GIT_COMMIT`` overrides it, for copies of a checkout without ``.git`` (e.g. on a remote GPU machine).

    Args:
        cwd: Directory to ask in; defaults to the directory of this package.
    """
    if os.environ.get("DIMP_LAB_GIT_COMMIT"):
        return os.environ["DIMP_LAB_GIT_COMMIT"]
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(cwd) if cwd is not None else Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = result.stdout.strip()
    return commit if result.returncode == 0 and commit else None


def save_safetensors(
    state_dict: Mapping[str, torch.Tensor],
    path: PathLike,
    metadata: Mapping[str, Any] | None = None,
    *,
    half: bool = False,
) -> Path:
    """Save tensors with safetensors and ``metadata`` as JSON under the header key ``"dimp_core"``.

    Args:
        state_dict: Name -> tensor. Aliased or non-contiguous tensors are fine: each is copied.
        path: Output file (written to a temporary file first, then renamed).
        metadata: JSON-friendly fields, e.g. ``architecture``, ``backbone``, ``config``, ``seed``,
            ``git_commit`` (see :func:`git_commit`). ``format_version`` and ``half`` are added.
        half: Store floating tensors as float16 (integer tensors are kept); :func:`load_into` casts back.

    Returns:
        The path written.
    """
    tensors: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise TypeError(f"state dict entries must be str -> Tensor, got {key!r}: {type(value).__name__}")
        t = value.detach().to("cpu")
        if half and t.is_floating_point():
            t = t.to(torch.float16)
        # a fresh contiguous copy each: safetensors refuses tensors that share memory
        tensors[key] = t.clone(memory_format=torch.contiguous_format)
    info = {**_plain(dict(metadata or {})), "format_version": FORMAT_VERSION, "half": bool(half)}
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata={METADATA_KEY: json.dumps(info)})
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return out


def convert(
    src: PathLike, dst: PathLike, metadata: Mapping[str, Any] | None = None, *, half: bool = False
) -> Path:
    """Convert an official pytracking checkpoint to our safetensors format.

    Args:
        src: The ``.pth`` file (read with the restricted unpickler).
        dst: The safetensors file to write.
        metadata: Extra fields; they override the ones taken from the source.
        half: Store floating tensors as float16.

    Returns:
        The path written. Its metadata holds ``source``, ``source_file``, ``net_type``, ``constructor``,
        ``epoch`` and, when :func:`architecture_from_keys` recognises the keys, ``architecture``.
    """
    p = _existing(src)
    if _sniff(p) != "torch":
        raise ValueError(f"{p}: expected a torch.save checkpoint (.pth) to convert")
    obj = _load_torch(p)
    state = _state_dict_of(obj, p)
    info: dict[str, Any] = {"source": "pytracking", "source_file": p.name, **_info_of(obj)}
    try:
        info["architecture"] = architecture_from_keys(state)
    except ValueError:
        pass
    info.update(metadata or {})
    return save_safetensors(state, dst, info, half=half)


# ---------------------------------------------------------------------------------------------------
# Loading into a module
# ---------------------------------------------------------------------------------------------------


def _preview(keys: Iterable[str], limit: int = 10) -> str:
    keys = list(keys)
    shown = ", ".join(keys[:limit])
    return shown + (f", ... ({len(keys) - limit} more)" if len(keys) > limit else "")


def load_into(
    module: torch.nn.Module, state_dict: Mapping[str, torch.Tensor], *, name: str = "network"
) -> None:
    """Strictly load a state dict into a module, with an error that says what does not fit.

    Floating tensors are cast to the dtype of the module's tensor (fp16 files load into fp32 models).
    BatchNorm ``num_batches_tracked`` buffers may be absent (pre-0.4.1 files); torch fills them.

    Args:
        module: The network.
        state_dict: Name -> tensor, e.g. from :func:`load_state_dict`.
        name: What to call the network in error messages.

    Raises:
        CheckpointMismatchError: Missing keys, unexpected keys or shape mismatches, listed (the first
            10 of each, with counts).
    """
    for key, value in state_dict.items():
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"{name}: state dict entry {key!r} is a {type(value).__name__}, not a tensor")
    expected = module.state_dict()
    missing = [k for k in expected if k not in state_dict and k.rpartition(".")[2] != "num_batches_tracked"]
    unexpected = [k for k in state_dict if k not in expected]
    mismatched = [
        (k, tuple(expected[k].shape), tuple(state_dict[k].shape))
        for k in expected
        if k in state_dict and tuple(expected[k].shape) != tuple(state_dict[k].shape)
    ]
    if missing or unexpected or mismatched:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing key(s): {_preview(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s): {_preview(unexpected)}")
        if mismatched:
            shown = [f"{k} (expected {list(e)}, got {list(g)})" for k, e, g in mismatched]
            parts.append(f"{len(mismatched)} shape mismatch(es): {_preview(shown)}")
        raise CheckpointMismatchError(
            f"the checkpoint does not fit the {name}: " + "; ".join(parts), missing, unexpected, mismatched
        )
    cast = {}
    for key, value in state_dict.items():
        target = expected[key]
        if value.is_floating_point() and target.is_floating_point() and value.dtype != target.dtype:
            value = value.to(target.dtype)
        cast[key] = value
    module.load_state_dict(cast, strict=True)


# ---------------------------------------------------------------------------------------------------
# Architecture detection
# ---------------------------------------------------------------------------------------------------


def architecture_from_keys(state_dict: Mapping[str, torch.Tensor]) -> str:
    """Guess the network a state dict belongs to from its keys and a few shapes.

    Rules, first match wins:

    * ``dimp18``: ``classifier.feature_extractor.0.conv1.weight`` (a residual basic block) and a
      ResNet-18 ``feature_extractor.layer3.0.conv1.weight`` (256 out, 128 in, 3x3).
    * ``dimp50``: ``classifier.feature_extractor.0.weight`` with 1024 input channels (ResNet-50 layer3).
    * ``dimp``: our EfficientNet-Lite0 DiMP: ``feature_extractor._conv_stem.weight`` and ``classifier.*``.
    * ``atom_lite0``: ``bb_regressor.*`` and a Lite0 ``feature_extractor._conv_stem.weight``, no ``classifier.*``.
    * ``atom``: ``bb_regressor.*`` and ``feature_extractor.*`` but no ``classifier.*``.
    * ``siamfc_alexnet``: SiamFC keys (below) with the AlexNet ``backbone.conv1.0.weight``.
    * ``siamfc``: every key starts with ``backbone.`` or ``head.`` (so no ``bb_regressor.*``).

    Args:
        state_dict: Name -> tensor.

    Returns:
        One of ``dimp18``, ``dimp50``, ``dimp``, ``atom_lite0``, ``atom``, ``siamfc_alexnet``, ``siamfc``.

    Raises:
        ValueError: None of the rules match; the message shows a few keys.

    Example:
        >>> import torch
        >>> architecture_from_keys({"backbone.conv1.weight": torch.zeros(1), "head.scale": torch.zeros(1)})
        'siamfc'
    """
    keys = list(state_dict)

    def has_prefix(prefix: str) -> bool:
        return any(k.startswith(prefix) for k in keys)

    def shape(key: str) -> tuple[int, ...] | None:
        value = state_dict.get(key)
        return tuple(value.shape) if isinstance(value, torch.Tensor) else None

    layer3 = shape("feature_extractor.layer3.0.conv1.weight")
    if "classifier.feature_extractor.0.conv1.weight" in state_dict and layer3 == (256, 128, 3, 3):
        return "dimp18"
    clf_conv = shape("classifier.feature_extractor.0.weight")
    if clf_conv is not None and len(clf_conv) >= 2 and clf_conv[1] == 1024:
        return "dimp50"
    if "feature_extractor._conv_stem.weight" in state_dict and has_prefix("classifier."):
        return "dimp"
    if has_prefix("bb_regressor.") and has_prefix("feature_extractor.") and not has_prefix("classifier."):
        return "atom_lite0" if "feature_extractor._conv_stem.weight" in state_dict else "atom"
    if keys and all(k.startswith(("backbone.", "head.")) for k in keys):
        return "siamfc_alexnet" if "backbone.conv1.0.weight" in state_dict else "siamfc"
    raise ValueError(
        f"cannot tell the architecture from the keys ({len(keys)} keys, e.g. {_preview(sorted(keys), 6)})"
    )
