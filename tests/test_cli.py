"""The ``dimp`` command line."""

import subprocess
import sys

from dimp_core import checkpoints
from dimp_core.cli import main


def test_every_subcommand_has_help():
    out = subprocess.run([sys.executable, "-m", "dimp_core.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "convert" in out.stdout
    out = subprocess.run([sys.executable, "-m", "dimp_core.cli", "convert", "--help"], capture_output=True,
                         text=True)
    assert out.returncode == 0 and "restricted unpickler" in out.stdout


def test_convert_official_checkpoint(tmp_path, capsys):
    from test_checkpoints import make_state_dict, write_official

    src, dst = tmp_path / "dimp18.pth", tmp_path / "dimp18.safetensors"
    write_official(src, legacy=True, marker=tmp_path / "marker")
    assert main(["convert", str(src), str(dst)]) == 0
    loaded = checkpoints.load_state_dict(dst)
    for key, value in make_state_dict().items():
        assert loaded[key].dtype == value.dtype and (loaded[key] == value).all(), key
    assert checkpoints.load_checkpoint_info(dst)["constructor"]["fun_name"] == "dimpnet18"
    assert "wrote" in capsys.readouterr().out


def test_convert_missing_file_is_a_clear_error(tmp_path, capsys):
    assert main(["convert", str(tmp_path / "nope.pth"), str(tmp_path / "out.safetensors")]) == 2
    assert "not found" in capsys.readouterr().err
