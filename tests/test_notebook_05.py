"""Notebook 05 (FPS profiling) runs headless under papermill with the fast preset; the test checks the values it
records (a live CPU profile, the recorded benchmarks it found, the knob table), its figures, and that the
committed notebook has no outputs. Times are not asserted, only that they were measured.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "05_fps_profiling.ipynb"
STAGES = {"patch_extraction", "backbone", "classification_features", "scoring", "localization", "iou_refinement"}


def _recorded(kind: str) -> bool:
    from dimp_core.viz.profiling import load_recorded

    return load_recorded(REPO / "data" / "benchmarks")[kind] is not None


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    import papermill

    tmp = tmp_path_factory.mktemp("nb05")
    parameters = {"preset": "fast", "record_path": str(tmp / "rec.json"), "figures_dir": str(tmp / "fig")}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OMP_NUM_THREADS", "1")  # a shared CPU: one thread per process is the fair, stable setting
        papermill.execute_notebook(str(NOTEBOOK), str(tmp / "out.ipynb"), parameters=parameters,
                                   cwd=str(NOTEBOOK.parent), kernel_name="python3", progress_bar=False)
    return json.loads((tmp / "rec.json").read_text()), tmp


def test_05_committed_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert "parameters" in code[0].metadata.get("tags", [])
    for line in ('preset = "fast"', "record_path = ", 'figures_dir = "../figures"'):
        assert line in code[0].source


def test_05_live_cpu_profile_has_every_stage(run):
    record, _ = run
    assert record["preset"] == "fast" and record["paper_fps"] == 57.0
    (label, live), = record["live"].items()
    assert "fast" in label and live["device"] == "cpu" and live["frames_timed"] == 19  # 25 frames - init - 5 warm-up
    assert live["fps"] > 0 and live["update_median_ms"] > 0
    assert STAGES <= set(live["stage_medians_ms"])
    assert all(v >= 0 for v in live["stage_medians_ms"].values())


def test_05_recorded_benchmarks_and_knobs(run):
    record, _ = run
    if _recorded("cpu"):
        cpu = record["recorded_cpu"]
        assert {"dimp", "opencv-csrt"} <= set(cpu["fps"])
        labels = {row["label"] for row in record["knobs"]}
        assert {"dimp", "dimp fast", "dimp reference-faithful"} <= labels
        base = next(row for row in record["knobs"] if row["label"] == "dimp")
        assert base["speedup"] == pytest.approx(1.0) and base["delta_auc"] == pytest.approx(0.0)
    else:
        assert record["recorded_cpu"] is None and record["knobs"] == []
    if _recorded("gpu"):
        assert record["recorded_gpu"]["fps"] and "cpu" not in record["recorded_gpu"]["device_name"].lower()
    else:
        assert record["recorded_gpu"] is None


def test_05_figures_are_written(run):
    record, tmp = run
    expected = {"05_stages_cpu.png", "05_fps_vs_paper.png"}
    if _recorded("cpu"):
        expected.add("05_knobs.png")
    if record["gpu_profiles"]:
        expected.add("05_stages_gpu.png")
    assert expected <= set(record["figures"])
    assert all((tmp / "fig" / name).stat().st_size > 10_000 for name in expected)
