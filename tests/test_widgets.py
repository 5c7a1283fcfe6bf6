"""Widget callbacks without a browser: setting a slider's ``.value`` must redraw the figure and its data."""

import numpy as np
import pytest
import torch

from dimp_core import widgets
from dimp_core.viz import predictor as vp


def _line_data(fig, title_start: str) -> dict[str, np.ndarray]:
    """y data of every labelled line in the axes whose title starts with ``title_start``."""
    ax = next(a for a in fig.axes if a.get_title().startswith(title_start))
    return {line.get_label(): np.asarray(line.get_ydata(), dtype=float) for line in ax.get_lines()}


# --------------------------------------------------------------------------- BoxDrawer (01)


def test_box_drawer_sliders_move_the_box():
    image = np.zeros((120, 160, 3), np.uint8)
    drawer = widgets.BoxDrawer(image)
    assert drawer.box.tolist() == [60.0, 45.0, 40.0, 30.0]  # a quarter of the image, centred
    drawer.x.value, drawer.w.value = 5, 70
    assert drawer.box.tolist() == [5.0, 45.0, 70.0, 30.0]
    assert (drawer._rect.get_x(), drawer._rect.get_width()) == (5.0, 70.0)
    assert "x=5" in drawer._ax.get_title() and "w=70" in drawer._ax.get_title()


def test_box_drawer_clamps_the_initial_box_and_checks_the_image():
    drawer = widgets.BoxDrawer(np.zeros((100, 100, 3), np.uint8), [-20.5, 50.2, 500, 0])
    assert drawer.box.tolist() == [0.0, 50.0, 100.0, 1.0]
    with pytest.raises(ValueError, match="H x W x 3"):
        widgets.BoxDrawer(np.zeros((100, 100), np.uint8))


def test_show_displays_the_controls_and_updates_the_figure_in_place(monkeypatch):
    shown, updates = [], []

    class Handle:
        def update(self, obj):
            updates.append(obj)

    def fake_display(obj, display_id=None):
        shown.append(obj)
        return Handle() if display_id else None

    monkeypatch.setattr("IPython.display.display", fake_display)
    drawer = widgets.BoxDrawer(np.zeros((50, 80, 3), np.uint8))
    drawer.show()
    assert shown == [drawer.controls, drawer.figure]
    drawer.h.value = 7
    assert updates == [drawer.figure]


# --------------------------------------------------------------------------- PredictorExplorer (02)


@pytest.fixture(scope="module")
def explorer():
    from dimp_core.data.synthetic import make_sequence
    from dimp_core.trackers import build_tracker

    torch.set_num_threads(1)
    seq = make_sequence(1, "test", attributes=("distractors",), num_frames=2, image_size=(320, 240))
    first = vp.first_frame(build_tracker("dimp", device="cpu"), seq.frames[0], seq.boxes[0])
    return widgets.PredictorExplorer(first, num_iter=5)


def test_explorer_starts_at_the_learned_settings(explorer):
    c = explorer.comparison
    assert c.reg == pytest.approx(float(explorer.first.optimizer.regularization()), rel=1e-5)
    assert c.mask_factor == 1.0 and c.num_iter == 5
    assert c.sd.losses == pytest.approx([float(v) for v in explorer.first.trace.losses[:6]], rel=1e-5)
    assert len(_line_data(explorer.figure, "Loss per iteration")) >= 5


def test_explorer_sliders_redraw_the_figure_and_its_data(explorer):
    before = explorer.comparison
    lines_before = _line_data(explorer.figure, "Loss per iteration")

    explorer.reg.value = 1.0  # a much stronger regulariser
    c = explorer.comparison
    assert c.reg == pytest.approx(1.0) and c.sd.losses[-1] != pytest.approx(before.sd.losses[-1])
    assert "lambda = 1," in next(a.get_title() for a in explorer.figure.axes if a.get_title().startswith("Loss"))
    lines = _line_data(explorer.figure, "Loss per iteration")
    sd_key = next(k for k in lines if k.startswith("steepest descent"))
    assert np.allclose(lines[sd_key], c.sd.losses)
    assert not np.allclose(lines[sd_key], next(v for k, v in lines_before.items() if k.startswith("steepest")))

    explorer.num_iter.value = 3
    assert len(explorer.comparison.sd.losses) == 4
    lines = _line_data(explorer.figure, "Loss per iteration")
    assert len(lines[next(k for k in lines if k.startswith("steepest descent"))]) == 4

    loss_before_mask = explorer.comparison.sd.losses[-1]
    explorer.mask_factor.value = 0.0  # m = 1/2 everywhere
    assert explorer.comparison.mask_factor == 0.0
    assert explorer.comparison.sd.losses[-1] != pytest.approx(loss_before_mask)
    assert "mask factor = 0)" in next(a.get_title() for a in explorer.figure.axes if a.get_title().startswith("Loss"))
