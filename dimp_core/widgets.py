"""ipywidgets controls for the teaching notebooks; each keeps a plain matplotlib Figure that it redraws.

A widget object builds its sliders and its figure at once and redraws the figure in a slider's ``observe``
callback, so everything works without a browser: setting ``slider.value = ...`` in plain Python (pytest)
runs the callback and changes ``.figure`` and the data behind it. ``show()`` displays the sliders and the
figure in a notebook; the figure goes out as an ordinary image output with a display id, which the callback
updates in place in JupyterLab. A headless run (papermill) therefore keeps a static image of the figure at
its initial values, and nothing depends on a widget front end.

- :class:`BoxDrawer` (notebook 01): place the first box (x, y, w, h) on your own video's first frame.
- :class:`PredictorExplorer` (notebook 02): lambda, the number of iterations and the target-mask factor
  of the model predictor, with the solvers of :mod:`dimp_core.solvers` redrawn on every change.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as widgets
import numpy as np
from matplotlib.figure import Figure

from dimp_core.viz.figures import GT_COLOR
from dimp_core.viz.frames import draw_box
from dimp_core.viz.predictor import FirstFrame, SolverComparison, compare_solvers, plot_comparison


class _LiveFigure:
    """Sliders (``controls``) and a Figure (``figure``) that ``redraw`` brings up to date."""

    controls: widgets.Widget
    figure: Figure
    _handle: Any = None

    def _watch(self, *sliders: widgets.ValueWidget) -> None:
        for slider in sliders:
            slider.observe(self._on_change, names="value")

    def _on_change(self, change: dict[str, Any] | None = None) -> None:
        self.redraw()
        if self._handle is not None:
            self._handle.update(self.figure)

    def redraw(self) -> None:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError

    def show(self) -> None:
        """Display the sliders, then the figure (updated in place when a slider moves)."""
        from IPython.display import display

        display(self.controls)
        self._handle = display(self.figure, display_id=True)


class BoxDrawer(_LiveFigure):
    """Four sliders that place a box (x, y, w, h) on an image, and the image with the box.

    Args:
        image: (H, W, 3) uint8, e.g. the first frame of your video.
        box: the initial box; None puts a box of a quarter of the image's width and height in its centre.
    """

    def __init__(self, image: np.ndarray, box: np.ndarray | list[float] | None = None) -> None:
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"image must be H x W x 3, got shape {image.shape}")
        height, width = image.shape[:2]
        if box is None:
            box = [width * 3 / 8, height * 3 / 8, width / 4, height / 4]
        x, y, w, h = (int(round(float(v))) for v in box)
        style = {"description_width": "initial"}
        self.x = widgets.IntSlider(value=min(max(x, 0), width - 1), min=0, max=width - 1, description="x (left)",
                                   continuous_update=False, style=style)
        self.y = widgets.IntSlider(value=min(max(y, 0), height - 1), min=0, max=height - 1, description="y (top)",
                                   continuous_update=False, style=style)
        self.w = widgets.IntSlider(value=min(max(w, 1), width), min=1, max=width, description="width",
                                   continuous_update=False, style=style)
        self.h = widgets.IntSlider(value=min(max(h, 1), height), min=1, max=height, description="height",
                                   continuous_update=False, style=style)
        self.controls = widgets.VBox([widgets.HBox([self.x, self.y]), widgets.HBox([self.w, self.h])])
        self.figure = Figure(figsize=(6.4, 6.4 * height / width + 0.5), layout="constrained")
        self._ax = self.figure.add_subplot()
        self._ax.imshow(image)
        self._ax.set(xlabel="x (pixels)", ylabel="y (pixels)")
        self._rect = draw_box(self._ax, self.box, GT_COLOR, "first box")
        self._ax.legend(loc="upper right")
        self._watch(self.x, self.y, self.w, self.h)
        self.redraw()

    @property
    def box(self) -> np.ndarray:
        """The box (x, y, w, h) as float64, what ``tracker.init`` takes."""
        return np.array([self.x.value, self.y.value, self.w.value, self.h.value], dtype=np.float64)

    def redraw(self) -> None:
        x, y, w, h = self.box
        self._rect.set_bounds(x, y, w, h)
        self._ax.set_title(f"first box: x={x:.0f}, y={y:.0f}, w={w:.0f}, h={h:.0f} (move the sliders)")


class PredictorExplorer(_LiveFigure):
    """Sliders for lambda, the number of iterations and the target-mask factor; the solvers compared.

    Each change reruns :func:`~dimp_core.viz.predictor.compare_solvers` on the first frame's objective and
    redraws :func:`~dimp_core.viz.predictor.plot_comparison`; ``comparison`` holds the latest numbers.

    Args:
        first: from :func:`~dimp_core.viz.predictor.first_frame`.
        num_iter: initial number of iterations.
        **options: passed on to ``compare_solvers`` (``step_factors``, ``cg_steps_per_gn``, ...).
    """

    def __init__(self, first: FirstFrame, num_iter: int = 10, **options: Any) -> None:
        self.first, self.options = first, options
        learned = float(first.optimizer.regularization())
        style = {"description_width": "initial"}
        self.reg = widgets.FloatLogSlider(value=learned, base=10, min=-4, max=0.5, step=0.05,
                                          description="lambda (filter reg.)", continuous_update=False, style=style)
        self.num_iter = widgets.IntSlider(value=num_iter, min=1, max=30, description="iterations",
                                          continuous_update=False, style=style)
        self.mask_factor = widgets.FloatSlider(value=1.0, min=0.0, max=3.0, step=0.1, description="target-mask factor",
                                               continuous_update=False, style=style)
        self.controls = widgets.HBox([self.reg, self.num_iter, self.mask_factor])
        self.figure = Figure(figsize=(13, 7.2), layout="constrained")
        self.comparison: SolverComparison
        self._watch(self.reg, self.num_iter, self.mask_factor)
        self.redraw()

    def redraw(self) -> None:
        self.comparison = compare_solvers(self.first, reg=self.reg.value, mask_factor=self.mask_factor.value,
                                          num_iter=self.num_iter.value, **self.options)
        plot_comparison(self.comparison, self.first, fig=self.figure)
