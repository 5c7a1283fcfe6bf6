"""Tests of dimp_core.checkpoints: official pytracking files load without running code from them."""

from __future__ import annotations

import builtins
import os
import pickle
import subprocess
import sys
import types
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from dimp_core import checkpoints as ck
from dimp_core.safe_pickle import restricted_pickle_module

# ----------------------------------------------------------------------------------------------------
# Official-format files, made with a stand-in pytracking module tree that is removed before loading
# ----------------------------------------------------------------------------------------------------

CONSTRUCTOR_KWDS = {
    "filter_size": 1,
    "optim_iter": 5,
    "backbone_pretrained": True,
    "iou_input_dim": (256, 256),
    "detach_length": float("inf"),
}

MODULE_PATHS = {
    "ltr": {
        "NetConstructor": "ltr.admin.model_constructor",
        "AverageMeter": "ltr.admin.stats",
        "StatValue": "ltr.admin.stats",
        "Settings": "ltr.admin.settings",
        "EnvironmentSettings": "ltr.admin.local",
    },
    # the oldest released files pickled these names
    "dlframework": {
        "NetConstructor": "dlframework.common.utils.model_constructor",
        "AverageMeter": "dlframework.common.utils.stats",
        "StatValue": "dlframework.common.utils.stats",
        "Settings": "dlframework.common.utils.settings",
        "EnvironmentSettings": "dlframework.common.utils.local",
    },
}


def _touch_on_load(self: object, state: dict) -> None:
    # would run if a loader used the real class; the restricted loader must not
    Path(state["_marker"]).touch()
    self.__dict__.update(state)


@contextmanager
def fake_pytracking(root: str) -> Iterator[dict[str, type]]:
    """Register stand-in pytracking modules and classes in sys.modules; remove them afterwards."""
    classes: dict[str, type] = {}
    added: list[str] = []
    for cls_name, mod_name in MODULE_PATHS[root].items():
        parts = mod_name.split(".")
        for i in range(1, len(parts) + 1):
            name = ".".join(parts[:i])
            if name not in sys.modules:
                sys.modules[name] = types.ModuleType(name)
                added.append(name)
        cls = type(cls_name, (), {"__module__": mod_name, "__setstate__": _touch_on_load})
        setattr(sys.modules[mod_name], cls_name, cls)
        classes[cls_name] = cls
    try:
        yield classes
    finally:
        for name in added:
            del sys.modules[name]


def make_state_dict() -> OrderedDict[str, torch.Tensor]:
    """A small state dict with the key layout of DiMP-18 (so the architecture can be recognised)."""
    g = torch.Generator().manual_seed(0)
    sd: OrderedDict[str, torch.Tensor] = OrderedDict()
    sd["feature_extractor.conv1.weight"] = torch.randn(4, 3, 3, 3, generator=g)
    sd["feature_extractor.bn1.running_mean"] = torch.randn(4, generator=g)
    sd["feature_extractor.bn1.num_batches_tracked"] = torch.tensor(123, dtype=torch.long)
    sd["feature_extractor.layer3.0.conv1.weight"] = torch.randn(256, 128, 3, 3, generator=g)
    sd["classifier.feature_extractor.0.conv1.weight"] = torch.randn(8, 8, 3, 3, generator=g)
    sd["bb_regressor.fc3_1r.weight"] = torch.randn(2, 5, generator=g).t()  # non-contiguous
    sd["bb_regressor.iou_predictor.bias"] = torch.randn(1, generator=g, dtype=torch.float64)
    return sd


def write_official(path: Path, *, legacy: bool, root: str = "ltr", marker: Path,
                   state_dict: dict | None = None, fun_name: str = "dimpnet18",
                   fun_module: str = "ltr.models.tracking.dimpnet", net_type: str = "DiMPnet") -> OrderedDict:
    """Write a checkpoint dict the way pytracking's BaseTrainer.save_checkpoint does."""
    sd = make_state_dict() if state_dict is None else OrderedDict(state_dict)
    net = nn.Linear(3, 2)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    net(torch.ones(1, 3)).sum().backward()
    opt.step()
    with fake_pytracking(root) as cls:

        def new(name: str, **attrs: object) -> object:
            obj = cls[name].__new__(cls[name])
            obj.__dict__.update(attrs, _marker=str(marker))
            return obj

        constructor = new(
            "NetConstructor",
            fun_name=fun_name,
            fun_module=fun_module,
            args=(),
            kwds=dict(CONSTRUCTOR_KWDS),
        )
        stats = OrderedDict(
            train=OrderedDict(
                {
                    "Loss/total": new("AverageMeter", val=0.5, avg=0.7, sum=7.0, count=10),
                    "LearningRate/group0": new("StatValue", val=1e-3, history=[1e-3, 2e-3]),
                }
            ),
            val=None,
        )
        settings = new(
            "Settings",
            env=new("EnvironmentSettings", workspace_dir="/ws", lasot_dir=""),
            device=torch.device("cpu"),
            center_jitter_factor={"train": 3, "test": 4.5},
            tags={"a", "b"},
            raw=b"\x00\xffbytes",
            project_path="ltr/dimp/dimp18",
        )
        state = {
            "epoch": 50,
            "actor_type": "DiMPActor",
            "net_type": net_type,
            "net": sd,
            "net_info": None,
            "constructor": constructor,
            "optimizer": opt.state_dict(),
            "stats": stats,
            "settings": settings,
        }
        torch.save(state, path, _use_new_zipfile_serialization=not legacy)
    assert not any(m == root or m.startswith(root + ".") for m in sys.modules)
    return sd


@pytest.mark.parametrize("root", ["ltr", "dlframework"])
@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_official_checkpoint_loads_without_pytracking(tmp_path: Path, legacy: bool, root: str) -> None:
    path = tmp_path / "dimp18.pth"
    marker = tmp_path / "class_code_ran"
    expected = write_official(path, legacy=legacy, root=root, marker=marker)
    assert (path.read_bytes()[:2] == b"PK") is not legacy

    sd = ck.load_state_dict(path)
    assert list(sd) == list(expected)
    for key, value in expected.items():
        assert sd[key].dtype == value.dtype and torch.equal(sd[key], value), key
    assert type(sd) is dict and not any(isinstance(v, nn.Parameter) for v in sd.values())

    info = ck.load_checkpoint_info(path)
    assert info == {
        "net_type": "DiMPnet",
        "constructor": {
            "fun_name": "dimpnet18",
            "fun_module": "ltr.models.tracking.dimpnet",
            "args": [],
            "kwds": {**CONSTRUCTOR_KWDS, "iou_input_dim": [256, 256]},
        },
        "epoch": 50,
    }
    assert not marker.exists()  # no code of the pickled classes ran
    assert not any(m == root or m.startswith(root + ".") for m in sys.modules)  # nothing was imported


def test_pytracking_objects_become_inert_placeholders(tmp_path: Path) -> None:
    path = tmp_path / "ck.pth"
    write_official(path, legacy=False, marker=tmp_path / "marker")
    obj = ck._load_torch(path)
    constructor = obj["constructor"]
    assert isinstance(constructor, ck.PickledObject)
    assert constructor.pickled_class == "ltr.admin.model_constructor.NetConstructor"
    assert constructor.state["fun_name"] == "dimpnet18"
    meter = obj["stats"]["train"]["Loss/total"]
    assert meter.pickled_class == "ltr.admin.stats.AverageMeter" and meter.state["count"] == 10
    settings = obj["settings"]
    assert settings.state["env"].pickled_class == "ltr.admin.local.EnvironmentSettings"
    assert settings.state["device"] == torch.device("cpu")
    assert settings.state["tags"] == {"a", "b"} and settings.state["raw"] == b"\x00\xffbytes"
    assert set(obj["optimizer"]) == {"state", "param_groups"}
    assert torch.is_tensor(obj["optimizer"]["state"][0]["exp_avg"])


# ----------------------------------------------------------------------------------------------------
# Malicious files
# ----------------------------------------------------------------------------------------------------


class RunsShell:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (os.system, (f"touch {self.marker}",))


class RunsEval:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (builtins.eval, (f"open({str(self.marker)!r}, 'w').close()",))


class RunsPopen:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (subprocess.Popen, (["touch", str(self.marker)],))


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
@pytest.mark.parametrize("where", ["top", "inside_net"])
@pytest.mark.parametrize(
    "payload, refused",
    [
        (RunsShell, f"{os.system.__module__}.system"),
        (RunsEval, "builtins.eval"),
        (RunsPopen, "subprocess.Popen"),
    ],
)
def test_code_executing_pickles_are_refused(
    tmp_path: Path, legacy: bool, where: str, payload: type, refused: str
) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    net = OrderedDict(weight=torch.ones(2))
    if where == "inside_net":
        net["evil"] = payload(marker)
        state: dict = {"epoch": 1, "net": net}
    else:
        state = {"epoch": 1, "net": net, "constructor": payload(marker)}
    torch.save(state, path, _use_new_zipfile_serialization=not legacy)

    for load in (ck.load_state_dict, ck.load_checkpoint_info):
        with pytest.raises(ck.UnsafeCheckpointError) as err:
            load(path)
        assert isinstance(err.value, pickle.UnpicklingError)
        assert refused in str(err.value) and str(path) in str(err.value)
    with pytest.raises(ck.UnsafeCheckpointError):
        ck.convert(path, tmp_path / "out.safetensors")
    assert not marker.exists()
    assert not (tmp_path / "out.safetensors").exists()


def test_placeholder_reduce_and_newobj_only_record(tmp_path: Path) -> None:
    marker = tmp_path / "ran"

    class Sneaky:
        def __reduce__(self) -> tuple:
            # REDUCE on a pytracking class with arguments and a state
            return (fake_cls, ("arg", 3), {"k": 1})

    with fake_pytracking("ltr") as cls:
        fake_cls = cls["Settings"]
        fake_cls.__init__ = lambda self, *a: marker.touch()  # type: ignore[method-assign]
        data = pickle.dumps({"x": Sneaky()}, protocol=2)
    obj = restricted_pickle_module.loads(data)["x"]
    assert isinstance(obj, ck.PickledObject)
    assert obj.args == ("arg", 3) and obj.state == {"k": 1}
    assert not marker.exists()


@pytest.mark.parametrize(
    "data, message",
    [
        (b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n}b.", "BUILD"),  # BUILD on an allowed function
        (b"\x80\x02\x82\x01.", "EXT"),  # copyreg extension code
        (b"\x80\x02ccollections\nOrderedDict\n)RK\x01a.", "APPEND"),  # APPEND to a non-list
        (b"\x80\x02X\x06\x00\x00\x00module\x85Q.", "persistent id"),  # not a storage reference
        (b"\x80\x02cposix\nsystem\nX\x04\x00\x00\x00trueq\x00\x85R.", "posix.system"),
        (b"\x80\x02cbuiltins\ngetattr\n.", "builtins.getattr"),
        (b"\x80\x02ctorch\ndevice\n.", None),  # allowed: just the class
    ],
)
def test_unpickler_hardening(data: bytes, message: str | None) -> None:
    if message is None:
        assert restricted_pickle_module.loads(data) is torch.device
        return
    with pytest.raises(ck.UnsafeCheckpointError, match=message):
        restricted_pickle_module.loads(data)


# ----------------------------------------------------------------------------------------------------
# Plain torch files and bad inputs
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_plain_state_dict(tmp_path: Path, legacy: bool) -> None:
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    path = tmp_path / "plain.pth"
    torch.save(net.state_dict(), path, _use_new_zipfile_serialization=not legacy)
    sd = ck.load_state_dict(path)
    assert all(torch.equal(sd[k], v) for k, v in net.state_dict().items())
    assert ck.load_checkpoint_info(path) == {"net_type": None, "constructor": None, "epoch": None}


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.pth"
    for fn in (ck.load_state_dict, ck.load_checkpoint_info):
        with pytest.raises(FileNotFoundError, match="nope.pth"):
            fn(path)


def test_text_file_is_not_a_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "notes.pth"
    path.write_text("these are not the weights you are looking for\n")
    with pytest.raises(ValueError, match=r"notes\.pth.*expected a safetensors file or a torch"):
        ck.load_state_dict(path)
    empty = tmp_path / "empty.pth"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty.pth"):
        ck.load_state_dict(empty)


def test_dict_without_net_or_tensors(tmp_path: Path) -> None:
    path = tmp_path / "meta.pth"
    torch.save({"epoch": 3, "comment": "no weights here"}, path)
    with pytest.raises(ValueError, match=r"meta\.pth.*keys found: epoch, comment"):
        ck.load_state_dict(path)


def test_corrupt_zip(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.pth"
    path.write_bytes(b"PK\x03\x04" + b"\x00" * 100)
    with pytest.raises(ValueError, match="corrupt.pth"):
        ck.load_state_dict(path)


# ----------------------------------------------------------------------------------------------------
# safetensors, load_into, convert
# ----------------------------------------------------------------------------------------------------

METADATA = {
    "architecture": "dimp",
    "backbone": "efficientnet_lite0",
    "config": {"filter_size": 4, "scales": (1.0, 2.0)},
    "seed": 7,
    "git_commit": "0123abcd",
}


def test_safetensors_round_trip_with_aliases(tmp_path: Path) -> None:
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    sd = {
        "a.weight": base,
        "tied.weight": base,  # same tensor twice (tied weights)
        "a.view": base[1],  # a view into it
        "a.t": base.t(),  # non-contiguous
        "count": torch.tensor(5, dtype=torch.long),
    }
    path = ck.save_safetensors(sd, tmp_path / "sub" / "w.safetensors", METADATA)
    loaded = ck.load_state_dict(path)
    assert set(loaded) == set(sd)
    for key, value in sd.items():
        assert loaded[key].dtype == value.dtype and torch.equal(loaded[key], value)
    info = ck.load_checkpoint_info(path)
    assert info == {
        **METADATA,
        "config": {"filter_size": 4, "scales": [1.0, 2.0]},
        "format_version": ck.FORMAT_VERSION,
        "half": False,
    }
    assert not list(path.parent.glob("*.tmp"))


def test_safetensors_half_and_load_into(tmp_path: Path) -> None:
    net = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    net[1].running_mean.normal_()
    path = ck.save_safetensors(net.state_dict(), tmp_path / "half.safetensors", METADATA, half=True)
    sd = ck.load_state_dict(path)
    assert sd["0.weight"].dtype == torch.float16
    assert sd["1.num_batches_tracked"].dtype == torch.long
    assert ck.load_checkpoint_info(path)["half"] is True

    fresh = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    ck.load_into(fresh, sd)
    assert fresh[0].weight.dtype == torch.float32
    for key, value in net.state_dict().items():
        assert torch.allclose(fresh.state_dict()[key].double(), value.double(), atol=1e-3), key


def test_foreign_safetensors_metadata(tmp_path: Path) -> None:
    path = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(path), metadata={"format": "pt"})
    assert ck.load_checkpoint_info(path) == {"format": "pt"}
    assert torch.equal(ck.load_state_dict(path)["w"], torch.zeros(2))


def test_load_into_reports_mismatches() -> None:
    net = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3))
    sd = dict(net.state_dict())
    del sd["0.bias"]
    sd["extra.weight"] = torch.zeros(1)
    sd["0.weight"] = torch.zeros(3, 5)
    with pytest.raises(ck.CheckpointMismatchError) as err:
        ck.load_into(net, sd, name="dimp18")
    msg = str(err.value)
    assert "dimp18" in msg
    assert "1 missing key(s): 0.bias" in msg
    assert "1 unexpected key(s): extra.weight" in msg
    assert "0.weight (expected [3, 4], got [3, 5])" in msg
    assert err.value.missing == ["0.bias"] and err.value.unexpected == ["extra.weight"]
    assert isinstance(err.value, ValueError)


def test_load_into_lists_first_ten_with_counts() -> None:
    net = nn.Sequential(*[nn.Linear(2, 2) for _ in range(8)])  # 16 keys
    with pytest.raises(ck.CheckpointMismatchError) as err:
        ck.load_into(net, {f"other.{i}": torch.zeros(1) for i in range(12)})
    msg = str(err.value)
    assert "16 missing key(s)" in msg and "(6 more)" in msg
    assert "12 unexpected key(s)" in msg and "(2 more)" in msg


def test_load_into_tolerates_missing_num_batches_tracked() -> None:
    net = nn.BatchNorm2d(3)
    sd = {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    ck.load_into(nn.BatchNorm2d(3), sd)


def test_convert_round_trip(tmp_path: Path) -> None:
    src = tmp_path / "dimp18.pth"
    expected = write_official(src, legacy=True, marker=tmp_path / "marker")
    dst = ck.convert(src, tmp_path / "dimp18.safetensors", {"seed": 1, "source": "mirror"}, half=False)
    sd = ck.load_state_dict(dst)
    assert set(sd) == set(expected)
    assert all(sd[k].dtype == v.dtype and torch.equal(sd[k], v) for k, v in expected.items())
    info = ck.load_checkpoint_info(dst)
    assert info["constructor"] == ck.load_checkpoint_info(src)["constructor"]
    assert info["constructor"]["fun_name"] == "dimpnet18"
    assert info["net_type"] == "DiMPnet" and info["epoch"] == 50
    assert info["architecture"] == "dimp18"
    assert info["source_file"] == "dimp18.pth"
    assert info["seed"] == 1 and info["source"] == "mirror"  # given metadata wins
    assert not (tmp_path / "marker").exists()


# ----------------------------------------------------------------------------------------------------
# Architecture detection and git
# ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "state, arch",
    [
        (
            {
                "feature_extractor.layer3.0.conv1.weight": torch.zeros(256, 128, 3, 3),
                "classifier.feature_extractor.0.conv1.weight": torch.zeros(1),
                "bb_regressor.x": torch.zeros(1),
            },
            "dimp18",
        ),
        (
            {
                "feature_extractor.layer3.0.conv1.weight": torch.zeros(256, 512, 1, 1),
                "classifier.feature_extractor.0.weight": torch.zeros(512, 1024, 3, 3),
            },
            "dimp50",
        ),
        (
            {"feature_extractor._conv_stem.weight": torch.zeros(1), "classifier.filter": torch.zeros(1)},
            "dimp",
        ),
        (
            {"feature_extractor.conv1.weight": torch.zeros(1), "bb_regressor.fc.weight": torch.zeros(1)},
            "atom",
        ),
        ({"backbone.features.0.weight": torch.zeros(1)}, "siamfc"),
        ({"backbone.x": torch.zeros(1), "head.bn.weight": torch.zeros(1)}, "siamfc"),
    ],
)
def test_architecture_from_keys(state: dict, arch: str) -> None:
    assert ck.architecture_from_keys(state) == arch


def test_architecture_unknown() -> None:
    with pytest.raises(ValueError, match="fc.weight"):
        ck.architecture_from_keys({"fc.weight": torch.zeros(1), "fc.bias": torch.zeros(1)})


def test_git_commit_outside_a_repository(tmp_path: Path) -> None:
    assert ck.git_commit(tmp_path / "does-not-exist") is None
