"""``dimp profile`` and ``benchmarks/fps.py`` write JSON of the documented schema (times are not asserted)."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import sys
from pathlib import Path

import pytest

from dimp_core.cli import main

ROOT = Path(__file__).resolve().parents[1]
STAGE_KEYS = {"median_ms", "p90_ms", "mean_per_frame_ms", "frames"}


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory) -> str:
    """Two sequences of synth-test's generator, 6 frames each, as an OTB folder."""
    from dimp_core.data.synthetic import write_benchmark

    root = write_benchmark(tmp_path_factory.mktemp("synth") / "tiny", "test", num_sequences=2, num_frames=6)
    return f"otb:{root}"


def _fps_module():
    if "fps_benchmark" in sys.modules:
        return sys.modules["fps_benchmark"]
    spec = importlib.util.spec_from_file_location("fps_benchmark", ROOT / "benchmarks" / "fps.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["fps_benchmark"] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(("tracker", "clock"), [("dimp", "wall"), ("atom", "thread")])
def test_profile_cli_writes_the_schema(tmp_path, tiny_dataset, tracker, clock, capsys):
    import torch

    out = tmp_path / "profile.json"
    threads = torch.get_num_threads()
    try:
        rc = main(["profile", "--tracker", tracker, "--device", "cpu", "--frames", "5", "--warmup", "1",
                   "--dataset", tiny_dataset, "--sequences", "2", "--json", str(out), "--set",
                   '{"image_sample_size": 160}', "--clock", clock, "--threads", "1"])
    finally:
        torch.set_num_threads(threads)
    assert rc == 0 and "FPS" in capsys.readouterr().out
    report = json.loads(out.read_text())
    assert report["schema"] == "dimp-lab/profile/1" and report["tracker"] == tracker
    assert report["clock"] == clock
    assert report["frames_timed"] == 2 * 3  # 4 updates per sequence, 1 of them warm-up
    for key in ("device_name", "torch", "cv2", "python", "numpy", "torch_threads", "cpu"):
        assert key in report["system"], key
    assert report["params"]["image_sample_size"] == 160
    assert {"median_ms", "p90_ms", "mean_ms", "fps"} <= set(report["update"]) and report["update"]["fps"] > 0
    stages = report["stages"]
    for name in ("decode", "patch_extraction", "backbone", "classification_features", "localization", "other"):
        assert STAGE_KEYS <= set(stages[name]), name
    assert "backbone" in report["init"]["stages"]


def test_profile_rejects_bad_arguments(tiny_dataset):
    from dimp_core.profiling.runner import profile_tracker

    with pytest.raises(ValueError, match="frames must be at least 2"):
        profile_tracker("dimp", "cpu", frames=1, dataset=tiny_dataset, weights="random")
    with pytest.raises(ValueError, match="warmup"):
        profile_tracker("dimp", "cpu", frames=3, warmup=2, dataset=tiny_dataset, weights="random")
    with pytest.raises(ValueError, match="one torch thread"), _threads(2):
        profile_tracker("dimp", "cpu", frames=3, warmup=0, dataset=tiny_dataset, weights="random", clock="thread")


@contextlib.contextmanager
def _threads(n: int):
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def test_fps_benchmark_writes_the_schema_and_the_docs_table(tmp_path, tiny_dataset, capsys):
    fps = _fps_module()
    out = tmp_path / "fps.json"
    rc = fps.main(["--only", "dimp,dimp fast,opencv-kcf", "--dataset", tiny_dataset, "--sequences", "2",
                   "--frames", "5", "--warmup", "1", "--out", str(out)])
    assert rc == 0
    report = json.loads(out.read_text())
    assert report["schema"] == "dimp-lab/fps/1" and report["anchor"] == "opencv-csrt" and not report["partial"]
    labels = [r["label"] for r in report["results"]]
    assert labels == ["opencv-csrt", "opencv-kcf", "dimp", "dimp fast"]  # the anchor always runs
    for r in report["results"]:
        assert r["available"] and r["frames"] == 2 * 3 and r["fps"] > 0 and 0 <= r["auc_mean"] <= 100
        assert set(r["auc"]) == set(report["sequences"]) and r["error_count"] == 0
        assert r["ratio_to_anchor"] > 0
    anchor = report["results"][0]
    assert anchor["ratio_to_anchor"] == pytest.approx(1.0)
    assert report["results"][3]["overrides"]["autocast"] == "'bf16'"

    capsys.readouterr()
    assert fps.main(["--section", str(out)]) == 0
    section = capsys.readouterr().out
    assert section.startswith("<!-- speed-table:start -->") and section.strip().endswith("<!-- speed-table:end -->")
    assert "| `dimp fast` | fast preset |" in section


def test_gpu_suite_configurations_cover_the_knobs():
    fps = _fps_module()
    labels = {c.label for c in fps.gpu_configs()}
    for knob in ("reference-faithful", "+inference_mode", "+channels_last", "+bf16", "-cuda_graphs", "fast",
                 "refine per box"):
        assert any(knob in label and label.startswith("dimp18") for label in labels), knob
    assert {"dimp", "atom", "opencv-csrt"} <= labels
    assert all(c.weights == "random" for c in fps.gpu_configs() if c.tracker == "dimp18")
    reference = next(c for c in fps.gpu_configs() if c.label == "dimp18 reference-faithful")
    assert reference.params["cuda_graphs"] is False  # the reference-faithful path runs eagerly


def test_docs_gpu_speed_table_is_generated_from_the_recorded_gpu_json():
    fps = _fps_module()
    repo = Path(__file__).resolve().parents[1]
    recorded = sorted((repo / "data" / "benchmarks").glob("gpu-*.json"))
    assert recorded, "benchmarks/gpu.sh ran on an H200 and its JSON is kept in data/benchmarks/"
    section = fps.doc_section(json.loads(recorded[-1].read_text()))
    assert section.startswith("<!-- gpu-speed-table:start -->")
    assert "| `dimp18 fast` (random weights) | fast preset |" in section
    stale = "the GPU table in docs/speed.md is stale: python benchmarks/fps.py --section"
    assert section in (repo / "docs" / "speed.md").read_text(), stale
