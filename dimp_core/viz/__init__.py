"""Figures for the notebooks: one module per notebook topic, each returning matplotlib Figures.

Figures are :class:`matplotlib.figure.Figure` objects (Agg canvas, no pyplot), so building one never
changes a notebook's backend or shows it twice; a notebook displays a figure by ending a cell with it.

- :mod:`dimp_core.viz.figures`: ``savefig`` (PNG into ``figures/``) and the box colours.
- :mod:`dimp_core.viz.frames`: a tracking run, frames with boxes, score maps, confidence over time (01).
- :mod:`dimp_core.viz.predictor`: the first frame's model predictor and its solvers compared (02).
- :mod:`dimp_core.viz.loss`: the learned label, target mask and spatial weight; residual maps (03).
- :mod:`dimp_core.viz.benchmark`: success/precision plots, attribute table, distractor case study (04).
- :mod:`dimp_core.viz.profiling`: per-stage timings and FPS against the paper's claim (05).
- :mod:`dimp_core.viz.training`: frame sampling, per-iterate losses, training curves (06).

Interactive widgets built on these live in :mod:`dimp_core.widgets`.
"""
