"""Unpickling a checkpoint without ever running code from the file: a restricted unpickler for ``torch.load``.

The threat
----------
The official pytracking checkpoints (``dimp18.pth``, ``dimp50.pth``, ``atom_default.pth``) are
``torch.save`` pickles of a dict with the keys ``epoch``, ``actor_type``, ``net_type``, ``net`` (the
state dict), ``net_info``, ``constructor`` (a pickled ``ltr.admin.model_constructor.NetConstructor``,
``dlframework.common.utils.model_constructor.NetConstructor`` in the oldest files), ``optimizer`` and
often ``stats`` and ``settings`` (more ``ltr.admin`` objects). pytracking reads them with a full unpickle.
A pickle is a small program: its ``GLOBAL``/``STACK_GLOBAL`` opcodes import any name and its ``REDUCE``
opcode calls it, so a doctored ``.pth`` file runs ``os.system(...)`` the moment it is loaded. A file
downloaded from a mirror must therefore be treated as hostile.

The approach
------------
``torch.load(path, weights_only=False, pickle_module=restricted_pickle_module)``: torch still does the format work
(the zip format, the 2019 legacy format with its magic number, storages read through
``persistent_load``), but every object in the pickle is built by :class:`_RestrictedUnpickler`, a
subclass of the pure-Python ``pickle._Unpickler`` (its opcode table can be overridden, the C one's
cannot). In it:

* ``find_class`` is an allowlist: torch's tensor rebuild helpers (wrapped so that backward hooks in a
  file are dropped and the storage argument is checked), storage classes, dtypes, ``torch.Size``,
  ``torch.device``, ``OrderedDict``/``defaultdict`` and a few builtin containers. Any class under
  ``ltr.``/``dlframework.`` (and ``torch.optim.``, whose objects older trainers pickled as
  ``lr_scheduler``) becomes an inert :class:`PickledObject` that only records its pickled arguments and
  state. Anything else (``posix.system``, ``builtins.eval``, ``subprocess.Popen``, ...) raises
  :class:`UnsafeCheckpointError` naming the global and the file; nothing is imported.
* ``REDUCE``/``NEWOBJ``/``INST``/``OBJ`` may only call allowlisted callables or placeholder classes;
  ``BUILD`` only fills placeholders and the ``_metadata`` of state-dict ``OrderedDict`` s (so nothing can
  overwrite, say, a function's ``__defaults__``); ``APPEND(S)``/``SETITEM(S)``/``ADDITEMS`` only act on
  real lists, dicts and sets; the ``EXT`` opcodes (which read a process-wide cache that bypasses
  ``find_class``) are refused; persistent ids must be torch storage references.

Why not ``torch.load(weights_only=True)`` with ``torch.serialization.safe_globals``? In torch 2.13 it
does read both the zip and the legacy format, but it needs every class name in advance: an ``ltr.*`` name
not listed (and older files hold several) fails the load, so one would have to pre-scan the pickle (torch
only offers that for zip files) or parse error messages and retry, and ``safe_globals`` edits a
process-wide allowlist while it is active. One restricted unpickler with a single allowlist is simpler
to read and to audit, and treats every ``ltr.*`` name the same way.

:mod:`dimp_core.checkpoints` uses this module for every pickled file; our own files are safetensors.
"""

from __future__ import annotations

import _compat_pickle
import pickle
from collections import OrderedDict, defaultdict
from collections.abc import Callable
from typing import Any, ClassVar

import torch

__all__ = ["PickledObject", "UnsafeCheckpointError", "restricted_pickle_module"]


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint asked for something the restricted unpickler does not allow (e.g. ``os.system``)."""




class PickledObject:
    """Inert stand-in for an object of a pytracking class found in a checkpoint.

    Creating one (through ``REDUCE``, ``NEWOBJ`` or ``INST``) only records the arguments and ``BUILD``
    only records the state: no code of the original class exists here, none runs. One subclass per
    pickled class name is made while unpickling; its ``pickled_class`` says which.

    Attributes:
        args: Positional arguments the pickle passed to the class (usually empty).
        kwargs: Keyword arguments the pickle passed (``NEWOBJ_EX`` only).
        state: What the pickle's ``BUILD`` gave, usually the original object's ``__dict__``.
    """

    pickled_class: ClassVar[str] = "?"

    def __new__(cls, *args: Any, **kwargs: Any) -> PickledObject:
        obj = super().__new__(cls)
        obj.args = args
        obj.kwargs = kwargs
        obj.state = None
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        """Do nothing: ``__new__`` already stored the arguments."""

    def __setstate__(self, state: Any) -> None:
        """Store the pickled state; nothing else."""
        self.state = state

    def __repr__(self) -> str:
        return f"<PickledObject {self.pickled_class} state={self.state!r}>"


# Classes whose objects are replaced by PickledObject placeholders.
_PLACEHOLDER_PREFIXES = ("ltr.", "dlframework.", "torch.optim.")


def _check_storage(storage: Any) -> None:
    if not isinstance(storage, torch.storage.TypedStorage | torch.UntypedStorage):
        raise UnsafeCheckpointError(f"tensor rebuilt from a {type(storage).__name__}, not a storage")


def _rebuild_tensor(storage: Any, storage_offset: int, size: Any, stride: Any) -> torch.Tensor:
    _check_storage(storage)
    return torch._utils._rebuild_tensor(storage, storage_offset, size, stride)


def _rebuild_tensor_v2(
    storage: Any,
    storage_offset: int,
    size: Any,
    stride: Any,
    requires_grad: bool = False,
    backward_hooks: Any = None,
    metadata: Any = None,
) -> torch.Tensor:
    _check_storage(storage)
    if metadata is not None and not isinstance(metadata, dict):
        raise UnsafeCheckpointError("tensor metadata is not a dict")
    # backward hooks in a file are dropped: they could only be callables from this allowlist anyway
    return torch._utils._rebuild_tensor_v2(
        storage, storage_offset, size, stride, bool(requires_grad), OrderedDict(), metadata
    )


def _rebuild_parameter(data: Any, requires_grad: bool, backward_hooks: Any = None) -> torch.nn.Parameter:
    if not isinstance(data, torch.Tensor):
        raise UnsafeCheckpointError("parameter rebuilt from something that is not a tensor")
    return torch._utils._rebuild_parameter(data, bool(requires_grad), OrderedDict())


def _encode(text: str, encoding: str = "utf-8") -> bytes:
    # protocol-2 pickles store ``bytes`` as ``_codecs.encode(str, 'latin1')``
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1", "utf-8", "utf8", "ascii"):
        raise UnsafeCheckpointError(f"_codecs.encode with encoding {encoding!r} is not allowed")
    return text.encode(encoding)


def _safe_callables() -> dict[str, Any]:
    return {
        "collections.OrderedDict": OrderedDict,
        "collections.defaultdict": defaultdict,
        "builtins.dict": dict,
        "builtins.list": list,
        "builtins.set": set,
        "builtins.frozenset": frozenset,
        "builtins.slice": slice,
        "builtins.complex": complex,
        "builtins.bytearray": bytearray,
        "_codecs.encode": _encode,
        "torch.Size": torch.Size,
        "torch.device": torch.device,
        "torch.nn.parameter.Parameter": torch.nn.Parameter,
        "torch._utils._rebuild_tensor": _rebuild_tensor,
        "torch._utils._rebuild_tensor_v2": _rebuild_tensor_v2,
        "torch._utils._rebuild_parameter": _rebuild_parameter,
    }


def _safe_globals() -> dict[str, Any]:
    """Allowlisted globals: the callables above plus dtypes and storage types (never called)."""
    allowed = _safe_callables()
    for name in dir(torch):
        value = getattr(torch, name, None)
        if isinstance(value, torch.dtype):
            allowed[f"torch.{name}"] = value
    for cls in torch._storage_classes:
        # torch's own find_class wrapper resolves most of these first (as torch.serialization does)
        if cls in (torch.storage.TypedStorage, torch.storage.UntypedStorage):
            allowed[f"torch.{cls.__name__}"] = cls
        else:
            allowed[f"torch.{cls.__name__}"] = torch.serialization.StorageType(cls.__name__)
    return allowed


_SAFE_GLOBALS = _safe_globals()
# the only things REDUCE/NEWOBJ/INST/OBJ may call, besides placeholder classes
_SAFE_CALLABLES = frozenset(_safe_callables().values())
_BASE_DISPATCH = pickle._Unpickler.dispatch  # type: ignore[attr-defined]


class _RestrictedUnpickler(pickle._Unpickler):  # type: ignore[name-defined,misc]
    """Pure-Python unpickler that builds only allowlisted objects (see the module docstring)."""

    dispatch = dict(_BASE_DISPATCH)

    def __init__(self, file: Any, **kwargs: Any) -> None:
        super().__init__(file, **kwargs)
        self._placeholders: dict[str, type[PickledObject]] = {}
        self._persistent_load: Callable[[Any], Any] | None = None

    # -- globals ------------------------------------------------------------------------------------
    def find_class(self, module: str, name: str) -> Any:
        """Return an allowlisted global or a placeholder class; refuse everything else."""
        if self.proto < 3 and self.fix_imports:
            if (module, name) in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            elif module in _compat_pickle.IMPORT_MAPPING:
                module = _compat_pickle.IMPORT_MAPPING[module]
        full = f"{module}.{name}"
        if full in _SAFE_GLOBALS:
            return _SAFE_GLOBALS[full]
        if full.startswith(_PLACEHOLDER_PREFIXES):
            if full not in self._placeholders:
                self._placeholders[full] = type(
                    "PickledObject", (PickledObject,), {"pickled_class": full, "__module__": __name__}
                )
            return self._placeholders[full]
        raise UnsafeCheckpointError(f"refused global {full!r}: not on the allowlist of tensor/data types")

    # -- persistent ids: only torch storage references ----------------------------------------------
    @property
    def persistent_load(self) -> Callable[[Any], Any]:  # type: ignore[override]
        def load(pid: Any) -> Any:
            kind = pid[0] if isinstance(pid, tuple) and pid else None
            if isinstance(kind, bytes):
                kind = kind.decode("ascii", "replace")
            if kind != "storage" or self._persistent_load is None:
                raise UnsafeCheckpointError(f"refused persistent id of kind {kind!r}")
            return self._persistent_load(pid)

        return load

    @persistent_load.setter
    def persistent_load(self, function: Callable[[Any], Any]) -> None:
        self._persistent_load = function

    # -- calls ---------------------------------------------------------------------------------------
    @staticmethod
    def _check_callable(func: Any, opcode: str) -> None:
        if isinstance(func, type) and issubclass(func, PickledObject):
            return
        try:
            allowed = func in _SAFE_CALLABLES
        except TypeError:  # unhashable
            allowed = False
        if not allowed:
            raise UnsafeCheckpointError(f"refused {opcode} of {type(func).__name__} {func!r:.80}")

    def load_reduce(self) -> None:
        self._check_callable(self.stack[-2], "REDUCE")
        _BASE_DISPATCH[pickle.REDUCE[0]](self)

    def load_newobj(self) -> None:
        self._check_callable(self.stack[-2], "NEWOBJ")
        _BASE_DISPATCH[pickle.NEWOBJ[0]](self)

    def load_newobj_ex(self) -> None:
        self._check_callable(self.stack[-3], "NEWOBJ_EX")
        _BASE_DISPATCH[pickle.NEWOBJ_EX[0]](self)

    def _instantiate(self, klass: Any, args: list[Any]) -> None:  # INST and OBJ
        self._check_callable(klass, "INST/OBJ")
        super()._instantiate(klass, args)

    # -- state and containers ------------------------------------------------------------------------
    def load_build(self) -> None:
        state = self.stack.pop()
        inst = self.stack[-1]
        if isinstance(inst, PickledObject):
            inst.__setstate__(state)
        elif type(inst) is OrderedDict and isinstance(state, dict) and set(state) <= {"_metadata"}:
            inst._metadata = state.get("_metadata")  # type: ignore[attr-defined]
        else:
            raise UnsafeCheckpointError(f"refused BUILD on a {type(inst).__name__}")

    def _target(self, kinds: tuple[type, ...], opcode: str) -> Any:
        target = self.stack[-1]
        if type(target) not in kinds:
            raise UnsafeCheckpointError(f"refused {opcode} on a {type(target).__name__}")
        return target

    def load_append(self) -> None:
        value = self.stack.pop()
        self._target((list,), "APPEND").append(value)

    def load_appends(self) -> None:
        items = self.pop_mark()
        self._target((list,), "APPENDS").extend(items)

    def load_setitem(self) -> None:
        value = self.stack.pop()
        key = self.stack.pop()
        self._target((dict, OrderedDict, defaultdict), "SETITEM")[key] = value

    def load_setitems(self) -> None:
        items = self.pop_mark()
        target = self._target((dict, OrderedDict, defaultdict), "SETITEMS")
        for i in range(0, len(items), 2):
            target[items[i]] = items[i + 1]

    def load_additems(self) -> None:
        items = self.pop_mark()
        self._target((set,), "ADDITEMS").update(items)

    def load_ext(self) -> None:
        raise UnsafeCheckpointError("refused EXT opcode (copyreg extension registry)")

    for _opcode, _method in [
        (pickle.REDUCE, load_reduce),
        (pickle.NEWOBJ, load_newobj),
        (pickle.NEWOBJ_EX, load_newobj_ex),
        (pickle.BUILD, load_build),
        (pickle.APPEND, load_append),
        (pickle.APPENDS, load_appends),
        (pickle.SETITEM, load_setitem),
        (pickle.SETITEMS, load_setitems),
        (pickle.ADDITEMS, load_additems),
        (pickle.EXT1, load_ext),
        (pickle.EXT2, load_ext),
        (pickle.EXT4, load_ext),
    ]:
        dispatch[_opcode[0]] = _method
    del _opcode, _method


class _RestrictedPickleModule:
    """What ``torch.load`` needs of a ``pickle_module``: ``Unpickler`` and ``load``."""

    __name__ = "dimp_core.safe_pickle.restricted_pickle_module"
    Unpickler = _RestrictedUnpickler
    UnpicklingError = pickle.UnpicklingError

    @staticmethod
    def load(file: Any, **kwargs: Any) -> Any:
        """Unpickle one object from an open binary file."""
        return _RestrictedUnpickler(file, **kwargs).load()

    @staticmethod
    def loads(data: bytes, **kwargs: Any) -> Any:
        """Unpickle one object from bytes."""
        import io

        return _RestrictedUnpickler(io.BytesIO(data), **kwargs).load()


restricted_pickle_module = _RestrictedPickleModule()
"""Pass as ``torch.load(..., weights_only=False, pickle_module=restricted_pickle_module)``."""
