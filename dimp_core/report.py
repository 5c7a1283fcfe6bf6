"""``make report``: run the notebook suite headless and write executed notebooks, HTML and figures.

    python -m dimp_core.report                       # all six notebooks, preset "fast"
    python -m dimp_core.report --preset full         # the full-size runs (see each notebook's parameters cell)
    python -m dimp_core.report --only 02,04          # a subset, by number
    python -m dimp_core.report --out reports         # where the executed notebooks go (default: <repo>/reports)
    python -m dimp_core.report --threads 1           # one OpenMP thread per kernel (a busy, shared CPU)

Each notebook ``notebooks/NN_name.ipynb`` runs under papermill with the working directory ``notebooks/`` and
three parameters (the notebook contract): ``preset``, ``record_path`` = ``<out>/records/NN.json``
(the small JSON of values the notebook's test checks) and ``figures_dir`` = ``<repo>/figures``. The executed
notebook goes to ``<out>/NN_name.ipynb``, its HTML rendering (nbconvert) to ``<out>/NN_name.html``. One line
per notebook reports its name, seconds and outcome; a failing cell is named by its notebook, its position
in the notebook as committed, its first line of source and the exception, and the command exits with 1
once every notebook has run.

The kernel talks to papermill over local TCP sockets. Where jupyter_client and the kernel support it (the
kernelspec's ``supported_encryption``, pyzmq built with CurveZMQ), the kernel manager provisions CurveZMQ keys
(``KernelManager.transport_encryption = "auto"``), so the traffic is encrypted and the kernel has no reason to
print its "running over TCP without encryption" warning; elsewhere the kernel runs, and warns, as before.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = ("01_quickstart", "02_model_predictor", "03_learned_loss", "04_baselines", "05_fps_profiling",
             "06_training")
PRESETS = ("fast", "full")
KERNEL = "python3"
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")


class NotebookError(RuntimeError):
    """A notebook that did not run to the end; the message names the notebook and the failing cell."""


@dataclass(frozen=True)
class FailedCell:
    """Where a notebook stopped: the cell's position in the notebook as committed (1-based, None if unknown),
    its first non-blank source line, and the exception's name and message."""

    number: int | None
    first_line: str
    ename: str
    evalue: str

    def describe(self, notebook: str) -> str:
        where = f"cell {self.number}" if self.number is not None else "a cell"
        return f"{notebook}: {where} (`{self.first_line}`) raised {self.ename}: {self.evalue}"


# --------------------------------------------------------------------------- finding the notebooks


def find_notebooks(folder: str | Path = REPO / "notebooks", only: list[str] | None = None,
                   expected: tuple[str, ...] = NOTEBOOKS) -> list[Path]:
    """The notebooks ``folder/0*.ipynb``, sorted; every one of ``expected`` (or of those picked by ``only``,
    a list of numbers such as ``['02', '04']``) must be there, else a FileNotFoundError names the missing ones."""
    folder = Path(folder)
    found = {p.stem: p for p in folder.glob("0*.ipynb")}
    wanted = list(expected) if only is None else _pick(only, expected, found)
    missing = [name for name in wanted if name not in found]
    if missing:
        raise FileNotFoundError(f"missing notebook(s) in {folder}: {', '.join(f'{m}.ipynb' for m in missing)}")
    extra = [] if only is not None else [name for name in found if name not in wanted]
    return [found[name] for name in sorted(wanted + extra)]


def _pick(only: list[str], expected: tuple[str, ...], found: dict[str, Path]) -> list[str]:
    names = sorted(set(expected) | set(found))
    picked = []
    for number in only:
        matches = [n for n in names if n.split("_", 1)[0] == number.zfill(2)]
        if not matches:
            raise ValueError(f"--only {number}: no notebook numbered {number.zfill(2)}; known: {', '.join(names)}")
        picked += matches
    return picked


# --------------------------------------------------------------------------- running one notebook


def kernel_config() -> Any:
    """The traitlets configuration papermill's kernel manager gets: CurveZMQ transport encryption where this
    jupyter_client has the setting and pyzmq has Curve (``auto`` keeps a plain-TCP kernel for a kernelspec that
    does not declare support), else an empty configuration."""
    import zmq
    from jupyter_client import KernelManager
    from traitlets.config import Config

    if "transport_encryption" in KernelManager.class_trait_names() and zmq.has("curve"):
        return Config({"KernelManager": {"transport_encryption": "auto"}})
    return Config()


def failed_cell(executed: Any, source: Any) -> FailedCell | None:
    """The first cell of the executed notebook holding an error output, located in the committed notebook by its
    cell id (papermill adds an injected-parameters cell and error banners, which shift positions)."""
    for cell in executed.cells:
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        if cell.cell_type != "code" or not errors:
            continue
        ids = [c.get("id") for c in source.cells]
        number = ids.index(cell.get("id")) + 1 if cell.get("id") in ids else None
        lines = [line.strip() for line in cell.source.splitlines() if line.strip()]
        return FailedCell(number, lines[0] if lines else "", errors[0].get("ename", "?"),
                          errors[0].get("evalue", ""))
    return None


def write_html(notebook: Any, path: Path) -> Path:
    """The notebook rendered as a standalone HTML page (nbconvert's default ``lab`` template)."""
    from nbconvert import HTMLExporter

    body, _ = HTMLExporter().from_notebook_node(notebook)
    path.write_text(body, encoding="utf-8")
    return path


def run_notebook(path: str | Path, out_dir: str | Path, preset: str = "fast", figures_dir: str | Path | None = None,
                 timeout: float | None = None, threads: int | None = None) -> dict[str, Any]:
    """Execute one notebook with papermill and return the record it wrote.

    Args:
        path: ``NN_name.ipynb``; it runs with its own folder as the working directory.
        out_dir: gets ``NN_name.ipynb`` (executed), ``NN_name.html`` and ``records/NN.json``.
        preset: ``fast`` or ``full``, passed to the notebook.
        figures_dir: passed to the notebook; defaults to ``<repo>/figures``.
        timeout: seconds allowed per cell (None: no limit).
        threads: OpenMP/MKL threads of the kernel (``OMP_NUM_THREADS``, which torch reads at start); None
            leaves the environment as it is.

    Raises:
        NotebookError: a cell raised (or the kernel died, or a cell ran past ``timeout``), or the notebook did
            not write its record. The executed notebook and its HTML are written first, errors included.
    """
    import nbformat
    import papermill

    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose from {', '.join(PRESETS)}")
    path, out_dir = Path(path).resolve(), Path(out_dir).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"notebook {path} does not exist")
    figures = Path(figures_dir).resolve() if figures_dir is not None else REPO / "figures"
    record_path = out_dir / "records" / f"{path.stem.split('_', 1)[0]}.json"
    executed_path = out_dir / path.name
    out_dir.mkdir(parents=True, exist_ok=True)
    record_path.unlink(missing_ok=True)  # a stale record must not pass for this run's
    error: Exception | None = None
    saved = {k: os.environ.get(k) for k in THREAD_VARIABLES}
    try:
        if threads is not None:  # the kernel process inherits this environment
            os.environ.update({k: str(threads) for k in THREAD_VARIABLES})
        papermill.execute_notebook(
            str(path), str(executed_path), kernel_name=KERNEL, cwd=str(path.parent), progress_bar=False,
            parameters={"preset": preset, "record_path": str(record_path), "figures_dir": str(figures)},
            config=kernel_config(),
            **({"execution_timeout": timeout} if timeout is not None else {}))
    except Exception as err:  # noqa: BLE001 - any failure is reported with the notebook's name below
        error = err
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    executed = nbformat.read(executed_path, as_version=4) if executed_path.is_file() else None
    if executed is not None:
        write_html(executed, executed_path.with_suffix(".html"))
    if error is not None:
        cell = failed_cell(executed, nbformat.read(path, as_version=4)) if executed is not None else None
        last = (str(error).strip().splitlines() or [""])[-1]
        message = cell.describe(path.name) if cell is not None else f"{path.name}: {type(error).__name__}: {last}"
        raise NotebookError(f"{message}\n  executed notebook: {executed_path}") from error
    if not record_path.is_file():
        raise NotebookError(f"{path.name} ran but wrote no record at {record_path} (its last cell should)")
    return json.loads(record_path.read_text())


# --------------------------------------------------------------------------- the command


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dimp_core.report", description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=PRESETS, default="fast", help="passed to every notebook (default fast)")
    parser.add_argument("--only", default=None, help="comma-separated notebook numbers, e.g. 02,04")
    parser.add_argument("--out", type=Path, default=REPO / "reports", help="executed notebooks and HTML")
    parser.add_argument("--notebooks", type=Path, default=REPO / "notebooks", help="folder of NN_name.ipynb")
    parser.add_argument("--figures", type=Path, default=REPO / "figures", help="where notebooks save PNGs")
    parser.add_argument("--timeout", type=float, default=None, help="seconds allowed per cell (default: none)")
    parser.add_argument("--threads", type=int, default=None,
                        help="OMP_NUM_THREADS for the kernels (default: unchanged); 1 helps on a busy, shared CPU")
    args = parser.parse_args(argv)
    only = [n.strip() for n in args.only.split(",") if n.strip()] if args.only else None
    expected = NOTEBOOKS if args.notebooks.resolve() == (REPO / "notebooks").resolve() else ()
    try:
        notebooks = find_notebooks(args.notebooks, only, expected)
    except (FileNotFoundError, ValueError) as err:
        print(f"make report: {err}", file=sys.stderr)
        return 2
    if not notebooks:
        print(f"make report: no notebooks in {args.notebooks}", file=sys.stderr)
        return 2

    print(f"make report: {len(notebooks)} notebook(s), preset {args.preset!r} -> {args.out}/, figures -> "
          f"{args.figures}/", flush=True)
    failures = []
    start = time.perf_counter()
    for i, nb in enumerate(notebooks, 1):
        t0 = time.perf_counter()
        try:
            run_notebook(nb, args.out, args.preset, args.figures, args.timeout, args.threads)
            outcome = "ok"
        except NotebookError as err:
            failures.append(str(err))
            outcome = "FAILED"
        print(f"[{i}/{len(notebooks)}] {nb.stem:<20} {time.perf_counter() - t0:6.1f} s  {outcome}", flush=True)
    print(f"make report: {len(notebooks) - len(failures)}/{len(notebooks)} ok in {time.perf_counter() - start:.0f} s",
          flush=True)
    for failure in failures:
        print(f"make report: FAILED {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
