"""``benchmarks/knob_accuracy.py``: the knob table's dimp rows against the defaults, paired bootstrap and verdict."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _module():
    if "knob_accuracy" in sys.modules:
        return sys.modules["knob_accuracy"]
    spec = importlib.util.spec_from_file_location("knob_accuracy", ROOT / "benchmarks" / "knob_accuracy.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["knob_accuracy"] = module
    spec.loader.exec_module(module)
    return module


def test_configurations_are_the_knob_tables_dimp_rows_and_the_anchor():
    ka = _module()
    labels = [c.label for c in ka.knob_configs()]
    assert labels[0] == "opencv-csrt" and "dimp" in labels and "dimp fast" in labels
    assert {"dimp reference-faithful", "dimp +bf16", "dimp refine 3 steps", "dimp update every 40"} <= set(labels)
    assert not {"atom", "siamfc", "opencv-kcf"} & set(labels)
    assert [c.label for c in ka.knob_configs({"dimp fast"})] == ["opencv-csrt", "dimp", "dimp fast"]
    with pytest.raises(ValueError, match="unknown configuration"):
        ka.knob_configs({"dimp turbo"})


def test_verdict_rule():
    ka = _module()
    seqs = [f"s{i}" for i in range(8)]
    base = {s: 50.0 + i for i, s in enumerate(seqs)}

    def row(label, auc):
        return {"label": label, "tracker": "dimp", "knob": "", "auc": auc, "auc_mean": sum(auc.values()) / 8,
                "fps": 20.0, "ratio_to_anchor": 2.0}

    results = [row("dimp", base), row("same", dict(base)), row("worse", {s: v - 3 for s, v in base.items()}),
               row("slightly", {s: v - (0.6 if i % 2 else 0.0) for i, (s, v) in enumerate(base.items())})]
    by_label = {r["label"]: r for r in ka.verdicts(results, resamples=500)}
    assert "verdict" not in by_label["dimp"]
    assert by_label["same"]["verdict"] == "no measurable cost" and by_label["same"]["vs_defaults"]["mean"] == 0
    assert by_label["worse"]["verdict"] == "accuracy cost"
    assert by_label["slightly"]["verdict"] == "accuracy cost"  # -0.3 on average, but never better: high < 0


def test_tiny_run_writes_the_schema(tmp_path):
    import cv2
    import torch

    from dimp_core.data.synthetic import write_benchmark

    root = write_benchmark(tmp_path / "tiny", "test", num_sequences=2, num_frames=6)
    out = tmp_path / "knobs.json"
    threads, cv2_threads = torch.get_num_threads(), cv2.getNumThreads()
    try:
        assert _module().main(["--dataset", f"otb:{root}", "--only", "dimp fast", "--frames", "5", "--warmup", "1",
                               "--resamples", "200", "--out", str(out)]) == 0
    finally:
        torch.set_num_threads(threads)
        cv2.setNumThreads(cv2_threads)
    report = json.loads(out.read_text())
    assert report["schema"] == "dimp-lab/knob-accuracy/1" and not report["partial"]
    assert report["system"]["torch_threads"] == 1 and report["system"]["cv2_threads"] == 1
    assert report["anchor_result"]["fps"] > 0
    rows = {r["label"]: r for r in report["configurations"]}
    assert set(rows) == {"dimp", "dimp fast"}
    fast = rows["dimp fast"]
    assert set(fast["auc"]) == set(report["sequences"]) and fast["ratio_to_anchor"] > 0
    assert fast["verdict"] in ("no measurable cost", "accuracy cost") and fast["vs_defaults"]["sequences"] == 2
