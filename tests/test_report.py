"""``python -m dimp_core.report`` on throwaway notebooks: outputs, records, progress lines and failure messages.

The six real notebooks run in their own tests (``test_notebooks_*.py``); here two tiny ones, written by the
test, exercise the runner: one that passes and writes its record and a figure, one that raises.
"""

from __future__ import annotations

import json
import os

import nbformat
import pytest

from dimp_core import report

PARAMETERS = 'preset = "fast"\nrecord_path = "records/00.json"\nfigures_dir = "../figures"'
PASSING = """import json, os, pathlib
os.makedirs(figures_dir, exist_ok=True)
pathlib.Path(figures_dir, "01_tiny.png").write_bytes(b"png")
pathlib.Path(record_path).parent.mkdir(parents=True, exist_ok=True)
pathlib.Path(record_path).write_text(json.dumps({"preset": preset, "cwd": os.getcwd(), "answer": 6 * 7,
                                                "threads": os.environ.get("OMP_NUM_THREADS")}))"""
FAILING = "\n# the line the message should quote\nvalue = {'a': 1}['b']"


def write_notebook(path, cells):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(PARAMETERS)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# A tiny notebook"), params]
    nb.cells += [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


@pytest.fixture
def notebooks(tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    write_notebook(folder / "01_tiny.ipynb", ["x = 1", PASSING])
    write_notebook(folder / "02_broken.ipynb", ["x = 1", FAILING, "never = True"])
    return folder


def test_run_notebook_writes_executed_notebook_html_and_record(notebooks, tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "7")
    out, figures = tmp_path / "reports", tmp_path / "figures"
    record = report.run_notebook(notebooks / "01_tiny.ipynb", out, preset="full", figures_dir=figures, threads=1)
    assert record["preset"] == "full" and record["answer"] == 42
    assert record["threads"] == "1"  # the kernel got the thread count; ours is restored
    assert os.environ["OMP_NUM_THREADS"] == "7"
    assert record["cwd"] == str(notebooks)  # notebooks run in their own folder
    assert json.loads((out / "records" / "01.json").read_text()) == record
    assert (figures / "01_tiny.png").is_file()
    executed = nbformat.read(out / "01_tiny.ipynb", as_version=4)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "preset = \"full\"" in injected[0].source
    assert all(c.execution_count is not None for c in executed.cells if c.cell_type == "code")
    html = (out / "01_tiny.html").read_text()
    assert html.lstrip().lower().startswith("<!doctype html") and "A tiny notebook" in html


def test_the_kernel_runs_encrypted_and_prints_no_transport_warning(tmp_path, capfd):
    config = report.kernel_config()
    if not config:
        pytest.skip("this jupyter_client or pyzmq cannot encrypt the kernel's transport")
    assert config.KernelManager.transport_encryption == "auto"
    nb = write_notebook(tmp_path / "01_quiet.ipynb", ["x = 1", PASSING])
    report.run_notebook(nb, tmp_path / "reports", figures_dir=tmp_path / "figures")
    captured = capfd.readouterr()  # the kernel process writes to this process's stdout and stderr
    assert "without encryption" not in captured.err + captured.out


def test_run_notebook_names_the_failing_cell(notebooks, tmp_path):
    with pytest.raises(report.NotebookError) as info:
        report.run_notebook(notebooks / "02_broken.ipynb", tmp_path / "reports", figures_dir=tmp_path / "figures")
    message = str(info.value)
    # cell 4 of the committed notebook (markdown, parameters, x = 1, the failing cell), its first line, the error
    assert "02_broken.ipynb: cell 4 (`# the line the message should quote`) raised KeyError: 'b'" in message
    assert (tmp_path / "reports" / "02_broken.ipynb").is_file()  # kept, to open and inspect
    assert (tmp_path / "reports" / "02_broken.html").is_file()


def test_run_notebook_without_record_is_an_error(tmp_path):
    nb = write_notebook(tmp_path / "03_silent.ipynb", ["x = 1"])
    with pytest.raises(report.NotebookError, match="wrote no record"):
        report.run_notebook(nb, tmp_path / "reports", figures_dir=tmp_path / "figures")


def test_main_prints_progress_and_exits_nonzero_on_failure(notebooks, tmp_path, capsys):
    out = tmp_path / "reports"
    args = ["--notebooks", str(notebooks), "--out", str(out), "--figures", str(tmp_path / "figures")]
    assert report.main(args) == 1
    captured = capsys.readouterr()
    lines = [line for line in captured.out.splitlines() if line.startswith("[")]
    assert len(lines) == 2
    assert lines[0].startswith("[1/2] 01_tiny") and lines[0].endswith("ok")
    assert lines[1].startswith("[2/2] 02_broken") and lines[1].endswith("FAILED")
    assert "02_broken.ipynb: cell 4" in captured.err and "KeyError" in captured.err
    assert (out / "01_tiny.html").is_file() and (out / "records" / "01.json").is_file()
    # --only runs a subset, by number
    assert report.main(args + ["--only", "1"]) == 0
    assert "[1/1] 01_tiny" in capsys.readouterr().out


def test_missing_and_unknown_notebooks_are_named(tmp_path, capsys):
    (tmp_path / "01_quickstart.ipynb").write_text("{}")
    with pytest.raises(FileNotFoundError, match="02_model_predictor.ipynb.*06_training.ipynb"):
        report.find_notebooks(tmp_path)
    assert report.find_notebooks(tmp_path, only=["01"]) == [tmp_path / "01_quickstart.ipynb"]
    with pytest.raises(FileNotFoundError, match="04_baselines.ipynb"):
        report.find_notebooks(tmp_path, only=["04"])
    with pytest.raises(ValueError, match="no notebook numbered 09"):
        report.find_notebooks(tmp_path, only=["9"])
    assert report.main(["--notebooks", str(tmp_path / "empty")]) == 2
    assert "no notebooks" in capsys.readouterr().err
