"""The OPE runner, the summary, the plots and ``dimp eval``; the whole pipeline agrees with got10k's ExperimentOTB."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from test_opencv_trackers import moving_square, write_jpegs

from dimp_core.cli import main
from dimp_core.data.benchmarks import load_otb
from dimp_core.evaluation import evaluate, format_table, read_results, run_tracker, save_plots, write_summary
from dimp_core.evaluation.runner import result_path, time_path


def make_square_otb(root: Path) -> Path:
    """Two short moving-square sequences in the OTB layout, with attributes and one occluded frame."""
    for name, seed, n in (("SquareA", 0, 8), ("SquareB", 1, 6)):
        frames, boxes = moving_square(n, seed=seed)
        write_jpegs(root / name / "img", frames)
        np.savetxt(root / name / "groundtruth_rect.txt", boxes, fmt="%d", delimiter=",")
    (root / "SquareB" / "visible.txt").write_text("1\n" * 5 + "0\n")
    (root / "attributes.json").write_text(json.dumps({"SquareA": ["fast_motion"], "SquareB": ["occlusion"]}))
    return root


class Oracle:
    """A tracker that returns the ground truth, shifted by ``offset`` pixels."""

    name = "oracle"

    def __init__(self, boxes: np.ndarray, offset: float = 0.0) -> None:
        self.boxes, self.offset, self.calls = boxes, offset, 0

    def init(self, image: np.ndarray, box: np.ndarray) -> None:
        assert image.dtype == np.uint8 and image.ndim == 3
        np.testing.assert_array_equal(box, self.boxes[0])
        self.k = 0

    def update(self, image: np.ndarray) -> np.ndarray:
        self.k += 1
        self.calls += 1
        return self.boxes[self.k] + [self.offset, 0, 0, 0]


def test_run_tracker_writes_files_and_resumes(tmp_path):
    data = load_otb(make_square_otb(tmp_path / "otb"))
    seq = data["SquareA"]
    factory_calls = []

    def factory():
        factory_calls.append(1)
        return Oracle(np.asarray(seq.ground_truth), offset=0.5)

    folder = run_tracker(factory, [seq], tmp_path / "eval", "oracle", progress=False)
    assert folder == tmp_path / "eval" / "results" / "oracle" and len(factory_calls) == 1
    lines = result_path(tmp_path / "eval", "oracle", "SquareA").read_text().splitlines()
    assert len(lines) == 8 and lines[0] == "15.000,25.000,28.000,28.000" and lines[1] == "18.500,26.000,28.000,28.000"
    times = np.loadtxt(time_path(tmp_path / "eval", "oracle", "SquareA"))
    assert times.shape == (8,) and (times >= 0).all()
    # resume: a complete result file is kept, an incomplete one is redone
    run_tracker(factory, [seq], tmp_path / "eval", "oracle", progress=False)
    assert len(factory_calls) == 1
    result_path(tmp_path / "eval", "oracle", "SquareA").write_text("\n".join(lines[:5]) + "\n")
    run_tracker(factory, [seq], tmp_path / "eval", "oracle", progress=False)
    assert len(factory_calls) == 2 and len(read_results(result_path(tmp_path / "eval", "oracle", "SquareA"))) == 8


def test_evaluate_summary_and_plots(tmp_path):
    data = load_otb(make_square_otb(tmp_path / "otb"))
    out = tmp_path / "eval"
    for seq in data:
        run_tracker(Oracle(np.asarray(seq.ground_truth)), [seq], out, "oracle", progress=False)
    summary = evaluate(data, out, ["oracle"])
    oracle = summary["trackers"]["oracle"]
    # SquareA: every frame passes every threshold but IoU > 1 -> 20/21; SquareB: 5 of 6 frames (one invisible)
    assert oracle["sequences"]["SquareA"]["auc"] == pytest.approx(100 * 20 / 21)
    assert oracle["sequences"]["SquareB"]["auc"] == pytest.approx(100 * 5 / 6 * 20 / 21)
    assert oracle["auc"] == pytest.approx(50 * (20 / 21 + 5 / 6 * 20 / 21))
    assert oracle["precision"] == pytest.approx(50 * (1 + 5 / 6)) and oracle["fps"] > 0
    assert oracle["attributes"]["occlusion"] == {"auc": pytest.approx(100 * 5 / 6 * 20 / 21), "num_sequences": 1}
    path = write_summary(summary, out / "summary.json")
    assert json.loads(path.read_text())["trackers"]["oracle"]["curves"]["success"][0] == pytest.approx(1 - 1 / 12)
    plots = save_plots(summary, out)
    assert [p.name for p in plots] == ["success_plot.png", "precision_plot.png", "norm_precision_plot.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in plots)
    assert "| oracle |" in format_table(summary) and "| occlusion (1) |" in format_table(summary)
    with pytest.raises(FileNotFoundError, match="result file .*SquareA.txt not found"):
        evaluate(data, out, ["nobody"])


def test_pipeline_agrees_with_got10k_experiment_otb(tmp_path):
    """got10k's ExperimentOTB runs our tracker (through the adapter) and reports; we score its files."""
    import matplotlib

    matplotlib.use("Agg")
    from got10k.experiments.otb import ExperimentOTB

    from dimp_core import build_tracker
    from dimp_core.evaluation.got10k_adapter import Got10kTracker

    data = load_otb(make_square_otb(tmp_path / "otb"))
    data = type(data)(data.name, tuple(type(s)(s.name, s.frame_paths, s.ground_truth) for s in data))  # no visibility

    class Got10kView:  # the two things ExperimentOTB reads of its dataset
        seq_names = [s.name for s in data]

        def __len__(self):
            return len(data)

        def __iter__(self):
            return iter([([str(p) for p in s.frame_paths], np.asarray(s.ground_truth)) for s in data])

    experiment = ExperimentOTB.__new__(ExperimentOTB)
    experiment.dataset, experiment.nbins_iou, experiment.nbins_ce = Got10kView(), 21, 51
    experiment.result_dir, experiment.report_dir = str(tmp_path / "eval" / "results"), str(tmp_path / "reports")
    experiment.run(Got10kTracker(build_tracker("opencv-kcf")))
    theirs = experiment.report(["opencv-kcf"])["opencv-kcf"]["overall"]
    for seq in data:  # got10k keeps times in times/; our layout keeps them next to the results
        shutil.copy(tmp_path / "eval" / "results" / "opencv-kcf" / "times" / f"{seq.name}_time.txt",
                    time_path(tmp_path / "eval", "opencv-kcf", seq.name))
    ours = evaluate(data, tmp_path / "eval", ["opencv-kcf"])["trackers"]["opencv-kcf"]
    assert ours["auc"] == pytest.approx(100 * theirs["success_score"], abs=1e-9)
    assert ours["precision"] == pytest.approx(100 * theirs["precision_score"], abs=1e-9)
    assert ours["success_rate"] == pytest.approx(100 * theirs["success_rate"], abs=1e-9)
    assert ours["fps"] == pytest.approx(theirs["speed_fps"], rel=1e-6)
    np.testing.assert_allclose(ours["curves"]["success"], theirs["success_curve"], atol=1e-12)


def test_cli_eval(tmp_path, capsys):
    import torch

    root = make_square_otb(tmp_path / "otb")
    out = tmp_path / "eval"
    threads = torch.get_num_threads()
    try:
        assert main(["eval", "--trackers", "opencv-kcf,opencv-csrt", "--dataset", f"otb:{root}", "--out", str(out),
                     "--threads", "1"]) == 0
    finally:
        torch.set_num_threads(threads)
    printed = capsys.readouterr().out
    assert "| opencv-kcf |" in printed and "| opencv-csrt |" in printed and "| fast_motion (1) |" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert list(summary["trackers"]) == ["opencv-kcf", "opencv-csrt"] and summary["num_sequences"] == 2
    assert summary["torch_threads"] == 1
    assert summary["trackers"]["opencv-csrt"]["auc"] > 50
    assert (out / "success_plot.png").is_file() and (out / "precision_plot.png").is_file()
    assert (out / "results" / "opencv-csrt" / "SquareB.txt").is_file()


def test_cli_eval_errors(tmp_path, capsys):
    assert main(["eval", "--trackers", "opencv-kfc", "--dataset", str(tmp_path), "--out", str(tmp_path)]) == 2
    assert "unknown tracker(s) opencv-kfc; choose from" in capsys.readouterr().err
    assert main(["eval", "--dataset", "otb2015", "--out", str(tmp_path)]) == 2
    assert "unknown dataset 'otb2015'" in capsys.readouterr().err
    assert main(["eval", "--dataset", "otb2015", "--out", str(tmp_path), "--threads", "0"]) == 2
    assert "--threads must be at least 1, got 0" in capsys.readouterr().err


def test_make_eval_table_rewrites_only_the_marked_section(tmp_path, monkeypatch):
    import importlib.util
    import sys
    import types

    tools = Path(__file__).parents[1] / "tools"
    monkeypatch.syspath_prepend(str(tools))  # the scripts import their sibling doc_section
    spec = importlib.util.spec_from_file_location("make_eval_table", tools / "make_eval_table.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    root = make_square_otb(tmp_path / "synth")
    fake = types.ModuleType("dimp_core.data.synthetic")
    fake.ensure_benchmark = lambda split: root
    monkeypatch.setitem(sys.modules, "dimp_core.data.synthetic", fake)
    readme = tmp_path / "README.md"
    readme.write_text("# title\n\ntext\n\n<!-- eval-table:start -->\nold table\n<!-- eval-table:end -->\n\nafter\n")
    import torch

    threads = torch.get_num_threads()
    try:
        assert tool.main(["--trackers", "opencv-kcf", "--out", str(tmp_path / "eval"), "--readme", str(readme)]) == 0
    finally:
        torch.set_num_threads(threads)
    text = readme.read_text()
    assert text.startswith("# title\n\ntext\n\n<!-- eval-table:start -->\n## Results")
    assert text.endswith("<!-- eval-table:end -->\n\nafter\n")
    assert "old table" not in text and "| opencv-kcf |" in text and "--threads 1`" in text
    from doc_section import replace_section

    with pytest.raises(ValueError, match="exactly one"):
        replace_section("no markers", "eval-table", "body")


def test_ablation_collect_reads_logs_and_summaries_and_keeps_earlier_rows(tmp_path, tool):
    import json

    ablations = tool("ablations")
    run = tmp_path / "fixed-step"
    (run / "eval-val").mkdir(parents=True)
    log = [{"total": 2.0, "step": 1, "seconds": 0.5}, {"step": 1, "val_auc": 40.0},
           {"total": 1.0, "step": 2, "seconds": 1.0}, {"step": 2, "final": True, "val_auc": 45.0}]
    (run / "log.jsonl").write_text("".join(json.dumps(e) + "\n" for e in log))
    (run / "eval-val" / "summary.json").write_text(json.dumps({"trackers": {"fixed-step": {
        "auc": 51.5, "sequences": {"a": {"auc": 50.0}, "b": {"auc": 53.0}}}}}))
    base = tmp_path / "dimp"  # the reference run: each variant's difference to it, with a bootstrap interval
    (base / "eval-val").mkdir(parents=True)
    (base / "log.jsonl").write_text("".join(json.dumps(e) + "\n" for e in log))
    (base / "eval-val" / "summary.json").write_text(json.dumps({"trackers": {"dimp": {
        "auc": 48.5, "sequences": {"a": {"auc": 47.0}, "b": {"auc": 50.0}}}}}))
    earlier = {"hardware": "an earlier call", "variants": {"resnet18-scratch": {
        "what": "scratch", "steps": 2, "steps_done": 1, "stopped_early": True, "val_auc": {"1": 10.0},
        "test_auc": 12.0, "test_precision": 19.0}}}
    data = ablations.collect(tmp_path, "smoke", "this call", keep=earlier)
    row = data["variants"]["fixed-step"]
    assert row["steps_done"] == 2 and row["val_auc"] == {"1": 40.0, "2": 45.0} and row["run"] == "this call"
    assert row["synth_val_auc"] == 51.5 and row["test_auc"] is None  # not scored on synth-test
    assert data["variants"]["resnet18-scratch"]["run"] == "an earlier call"
    table = ablations.table(data)
    assert "training val AUC @1" in table  # the last step every run reached
    assert row["synth_val_vs_dimp"] == {"mean": 3.0, "low": 3.0, "high": 3.0, "p_higher": 1.0}
    row = ("| `fixed-step` | plain gradient descent, one learned fixed step size | 2/12 | 40.0 | 45.0 "
           "| 51.5 (+3.0 [+3.0, +3.0]) | - | - |")
    assert row in table
    assert "| `resnet18-scratch` | scratch | 1/2 (time limit) | 10.0 | 10.0 | - | 12.0 | 19.0 |" in table
