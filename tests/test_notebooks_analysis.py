"""Notebooks 04 (baselines) and 06 (training) run headless under papermill with the fast preset; the tests
check the values each notebook records, the figures it writes, and that the committed notebook has no outputs.

The kernels run with one torch/OpenMP thread (``OMP_NUM_THREADS=1``): on a CPU shared with other jobs, two
threads per process make these small-tensor workloads several times slower, not faster.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
EXPERIMENTS = REPO / "experiments"


def execute(name: str, tmp: Path, **extra: object) -> dict:
    import papermill

    parameters = {"preset": "fast", "record_path": str(tmp / "rec.json"), "figures_dir": str(tmp / "fig"), **extra}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OMP_NUM_THREADS", "1")
        papermill.execute_notebook(str(NOTEBOOKS / name), str(tmp / "out.ipynb"), parameters=parameters,
                                   cwd=str(NOTEBOOKS), kernel_name="python3", progress_bar=False)
    return json.loads((tmp / "rec.json").read_text())


def check_committed(name: str) -> None:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code), f"{name} is committed with outputs"
    assert nb.metadata["kernelspec"]["name"] == "python3"
    params = code[0]
    assert "parameters" in params.metadata.get("tags", [])
    for line in ('preset = "fast"', "record_path = ", 'figures_dir = "../figures"'):
        assert line in params.source


# --------------------------------------------------------------------------- 04_baselines


@pytest.fixture(scope="module")
def baselines(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("nb04")
    return execute("04_baselines.ipynb", tmp, results_dir=str(tmp / "results")), tmp


def test_04_committed_without_outputs():
    check_committed("04_baselines.ipynb")


def test_04_every_tracker_is_evaluated_or_skipped_with_a_reason(baselines):
    from dimp_core.trackers import WEIGHTS_DIR

    record, _ = baselines
    assert {"atom", "dimp", "opencv-csrt", "opencv-kcf"} <= set(record["trackers"])
    assert set(record["trackers"]) | set(record["skipped"]) == {"siamfc", "atom", "dimp", "opencv-csrt", "opencv-kcf"}
    if (WEIGHTS_DIR / "siamfc.safetensors").exists():
        assert "siamfc" in record["trackers"]
    else:
        assert "siamfc.safetensors" in record["skipped"]["siamfc"]
    assert set(record["auc"]) == set(record["precision"]) == set(record["attributes"]) == set(record["trackers"])


def test_04_recorded_scores_are_those_of_the_result_files(baselines):
    from dimp_core.data.benchmarks import load_dataset
    from dimp_core.evaluation import evaluate
    from dimp_core.evaluation.runner import read_results, result_path
    from dimp_core.viz.benchmark import subset

    record, tmp = baselines
    dataset = subset(load_dataset("synth-test"), 3, 30)
    assert record["sequences"] == [s.name for s in dataset] and record["frames"] == 90
    for name in record["trackers"]:
        for seq in dataset:
            assert len(read_results(result_path(tmp / "results", name, seq.name))) == len(seq)
    summary = evaluate(dataset, tmp / "results", record["trackers"])
    for name in record["trackers"]:
        assert 0 <= record["auc"][name] <= 100 and 0 <= record["precision"][name] <= 100
        assert record["auc"][name] == pytest.approx(summary["trackers"][name]["auc"])
        assert record["precision"][name] == pytest.approx(summary["trackers"][name]["precision"])
        attributes = {a for s in dataset for a in s.attributes}
        assert set(record["attributes"][name]) == attributes
    ref = record["reference"]
    assert ref == "dimp" and set(record["differences"]) == set(record["trackers"]) - {ref}
    for name, d in record["differences"].items():  # the mean per-sequence difference is the difference of the AUCs
        assert d["mean"] == pytest.approx(record["auc"][ref] - record["auc"][name], abs=1e-6)
        assert d["low"] <= d["mean"] <= d["high"] and 0 <= d["p_higher"] <= 1
    assert "04_ranking.png" in record["figures"]


def test_04_distractor_case(baselines):
    from dimp_core.trackers.atom import ATOMParams

    record, tmp = baselines
    case = record["case"]
    assert case["distance"] < 0.5  # a look-alike within half a target size
    assert case["window"][0] <= case["frame"] < case["window"][1]
    assert case["map_shape"]["dimp"] == [19, 19]
    side = ATOMParams().image_sample_size * ATOMParams().score_upsample_factor
    assert case["map_shape"]["atom"] == [side, side]
    for name in ("atom", "dimp"):
        assert 0 <= case["iou"][name] <= 1 and 0 <= case["mean_iou_after"][name] <= 1
    for png in ("04_success.png", "04_precision.png", "04_attributes.png", "04_distractor_case.png",
                "04_first_frame_model.png", "04_component_swap.png"):
        assert (tmp / "fig" / png).stat().st_size > 10_000, png


def test_04_component_swap_shows_the_recorded_runs(baselines):
    record, _ = baselines
    swap = json.loads((REPO / "experiments" / "component_swap.json").read_text())
    assert record["component_swap"] == {run: row["summary"]["auc"] for run, row in swap["runs"].items()}
    assert len(record["component_swap"]) == len(swap["runs"]) >= 2  # at least synth-val and synth-test


@pytest.mark.parametrize("number", [f"0{i}" for i in range(1, 7)])
def test_committed_notebook_is_its_generators_output(number, monkeypatch):
    """The notebooks are written by tools/notebooks/build_0N.py; an edit made to the .ipynb alone would be lost
    the next time the generator runs."""
    import importlib

    monkeypatch.syspath_prepend(str(REPO / "tools" / "notebooks"))
    nbbuild = importlib.import_module("nbbuild")
    generator = importlib.import_module(f"build_{number}")
    (committed,) = NOTEBOOKS.glob(f"{number}_*.ipynb")
    built = nbformat.writes(nbbuild.build(generator.CELLS, number)) + "\n"
    assert built == committed.read_text(), f"{committed.name} differs from tools/notebooks/build_{number}.py"


def test_04_first_frame_model_is_tested_on_the_case_sequence(baselines):
    record, _ = baselines
    for name in ("atom", "dimp"):
        one_shot = record["one_shot"][name]
        assert one_shot["every"] == 4 and one_shot["frames"] > 10  # every 4th visible frame of the whole case
        assert 0.0 <= one_shot["hit_rate"] <= 1.0 and np.isfinite(one_shot["median_ratio"])


# --------------------------------------------------------------------------- 06_training


@pytest.fixture(scope="module")
def training(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("nb06")
    return execute("06_training.ipynb", tmp), tmp


def test_06_committed_without_outputs():
    check_committed("06_training.ipynb")


def test_06_smoke_run_lowers_the_loss(training):
    record, _ = training
    smoke = record["smoke"]
    assert smoke["steps"] == len(smoke["total"]) == 12
    assert all(np.isfinite(smoke["total"]))
    assert smoke["first3_mean"] == pytest.approx(np.mean(smoke["total"][:3]))
    assert smoke["last3_mean"] == pytest.approx(np.mean(smoke["total"][-3:]))
    assert smoke["last3_mean"] < smoke["first3_mean"]
    assert 0 <= smoke["val_auc"] <= 100


def test_06_shows_which_candidate_ships(training):
    record, _ = training
    selection = json.loads((EXPERIMENTS / "selection.json").read_text())
    assert record["selected"] == {t: e["selected"] for t, e in selection["trackers"].items()}
    assert set(record["selected"]) == {"dimp", "atom"}


def test_06_sampled_frames_are_causal_and_visible(training):
    record, _ = training
    visible = np.asarray(record["sequence"]["visible"], dtype=bool)
    assert len(visible) == record["sequence"]["num_frames"]
    for draw in record["draws"]:
        base, previous, test = draw["train"][0], draw["train"][1:], draw["test"]
        assert len(draw["train"]) == 3 and len(test) == 3
        assert all(i < base for i in previous) and all(i > base for i in test)
        assert visible[draw["train"] + test].all()
    example = record["example"]
    assert example["train_shape"] == example["test_shape"] == [3, 3, 288, 288]
    assert example["label_shape"] == [3, 19, 19]
    assert example["label_peak_error_px"] < 8 * np.sqrt(2) + 1e-6  # the peak cell holds the box centre


def test_06_iteration_losses(training):
    record, tmp = training
    trained, untrained = record["iterate_losses"]["shipped weights"], record["iterate_losses"]["untrained heads"]
    for curve in (trained, untrained):
        assert len(curve["train"]) == len(curve["test"]) == 6  # f_0 and 5 steepest-descent iterates
        assert curve["train"][-1] < curve["train"][0]  # the optimiser lowers its own loss
    # meta-training: every iterate of the trained predictor scores the test frames better than untrained
    assert all(a < b for a, b in zip(trained["test"], untrained["test"], strict=True))
    from dimp_core import checkpoints
    from dimp_core.trackers import WEIGHTS_DIR

    for name in ("dimp", "atom"):
        log = record["shipped_logs"][name]
        assert log["val_auc"] and all(0 <= v <= 100 for v in log["val_auc"])
        # every run of a warm-start chain, first run first (dimp and atom: three runs each since round 6)
        runs = checkpoints.training_runs(checkpoints.load_checkpoint_info(WEIGHTS_DIR / f"{name}.safetensors"))
        steps = [r["config"]["steps"] for r in runs]
        assert log["steps"] == sum(steps) and log["warm_starts"] == np.cumsum(steps)[:-1].tolist()
    for png in ("06_sampling.png", "06_example.png", "06_iterate_losses.png", "06_iterate_scores.png",
                "06_live_run.png", "06_shipped_logs.png"):
        assert (tmp / "fig" / png).stat().st_size > 10_000, png


# --------------------------------------------------------------------------- the helpers behind them (no notebook)


def test_missing_weights_skip_a_tracker_with_the_reason(tmp_path, monkeypatch):
    import dimp_core.trackers as trackers
    from dimp_core.viz.benchmark import available_trackers

    monkeypatch.setattr(trackers, "WEIGHTS_DIR", tmp_path)
    (tmp_path / "dimp.safetensors").write_bytes(b"")
    ok, skipped = available_trackers(["dimp", "atom", "opencv-kcf"])
    assert ok == ["dimp", "opencv-kcf"]
    assert list(skipped) == ["atom"] and str(tmp_path / "atom.safetensors") in skipped["atom"]
    with pytest.raises(ValueError, match="unknown tracker 'dimpp'"):
        available_trackers(["dimpp"])


def test_first_approach_and_subset():
    from dimp_core.data.benchmarks import Dataset, Sequence
    from dimp_core.viz.benchmark import first_approach, subset

    distance = np.array([2.0, 0.4, 0.3, 1.0, 0.1])
    assert first_approach(distance, None) == 1
    assert first_approach(distance, np.array([1, 0, 1, 1, 1], dtype=bool)) == 2  # hidden frames do not count
    assert first_approach(np.array([2.0, 0.9, 1.5]), None) == 1  # none within half a size: the nearest
    seq = Sequence("s", tuple(Path(f"{i}.jpg") for i in range(5)), np.ones((5, 4)), np.ones(5, dtype=bool), ("a",))
    cut = subset(Dataset("d", (seq, seq)), num_sequences=1, num_frames=3)
    assert len(cut) == 1 and len(cut[0]) == 3 and cut[0].visible.shape == (3,) and cut[0].attributes == ("a",)
    with pytest.raises(ValueError, match="at least 2"):
        subset(Dataset("d", (seq,)), num_frames=1)


def test_log_helpers(tmp_path):
    from dimp_core.viz.training import loss_terms, read_log

    log = tmp_path / "log.jsonl"
    log.write_text('{"iou": 0.5, "total": 0.5, "step": 1, "lr": 0.1, "seconds": 1.0}\n{"step": 1, "val_auc": 40.0}\n')
    steps, val = read_log(log)
    assert [e["step"] for e in steps] == [1] and val == [{"step": 1, "val_auc": 40.0}]
    assert loss_terms(steps) == ["iou"]
    dimp = [{"clf_final": 1.0, "clf_init": 1.0, "iou": 1.0, "clf_iter0": 0.1, "total": 3.0, "step": 1}]
    assert loss_terms(dimp) == ["total", "clf_final", "clf_init", "iou"]
    log.write_text('{"step": 1, "val_auc": 40.0}\n')
    with pytest.raises(ValueError, match="no step entries"):
        read_log(log)
    with pytest.raises(FileNotFoundError):
        read_log(tmp_path / "missing.jsonl")


def test_results_older_than_the_weights_are_run_again(tmp_path, monkeypatch):
    import os

    import dimp_core.trackers as trackers
    from dimp_core.data.benchmarks import Dataset, Sequence
    from dimp_core.evaluation.runner import result_path, time_path, write_results
    from dimp_core.viz.benchmark import reusable_results

    monkeypatch.setattr(trackers, "WEIGHTS_DIR", tmp_path / "weights")
    (tmp_path / "weights").mkdir()
    weights = tmp_path / "weights" / "dimp.safetensors"
    weights.write_bytes(b"")
    seqs = tuple(Sequence(n, tuple(Path(f"{i}.jpg") for i in range(3)), np.ones((3, 4))) for n in ("a", "b", "c"))
    out = tmp_path / "eval"
    for seq in seqs[:2]:  # a and b finished, c never ran
        write_results(result_path(out, "dimp", seq.name), np.ones((3, 4)), np.ones(3), time_path(out, "dimp", seq.name))
    old = weights.stat().st_mtime - 100
    os.utime(result_path(out, "dimp", "a"), (old, old))  # a ran before the weights changed
    assert reusable_results(Dataset("d", seqs), out, "dimp") == (["b"], ["a"])
    assert not result_path(out, "dimp", "a").exists() and not time_path(out, "dimp", "a").exists()
    assert result_path(out, "dimp", "b").exists()


def test_a_warm_start_chain_log_needs_the_earlier_runs_log(tmp_path):
    import shutil

    from dimp_core.trackers import WEIGHTS_DIR
    from dimp_core.viz.training import shipped_chain_log

    weights = tmp_path / "weights"
    weights.mkdir()
    for suffix in (".safetensors", ".log.jsonl"):
        shutil.copy(WEIGHTS_DIR / f"dimp{suffix}", weights)
    (tmp_path / "runs").mkdir()  # the 2000-step run that the shipped dimp file continued is not there
    with pytest.raises(FileNotFoundError, match="warm-started from"):
        shipped_chain_log("dimp", weights)
    steps, val, starts = shipped_chain_log("dimp", WEIGHTS_DIR)
    assert [e["step"] for e in steps] == list(range(1, len(steps) + 1))  # numbered on across the runs
    assert starts and all(v["step"] in {e["step"] for e in steps} for v in val)
