"""Package-level promises: a fast, lazy import and the public names."""

import subprocess
import sys

import pytest


def test_import_is_lazy_and_fast():
    code = ("import sys, time; t = time.perf_counter(); import dimp_core; dt = time.perf_counter() - t; "
            "heavy = [m for m in ('torch', 'cv2', 'matplotlib') if m in sys.modules]; print(dt, heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split(" ", 1)
    assert float(out[0]) < 2.0
    assert out[1].strip() == "[]"


def test_public_names_resolve():
    import dimp_core

    assert callable(dimp_core.build_network)
    assert dimp_core.geometry.box_iou is not None
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = dimp_core.nope
