"""Data: benchmarks in their official layouts (``benchmarks``) and the synthetic sequences (``synthetic``)."""

from dimp_core.data.benchmarks import (
    Dataset,
    Sequence,
    load_dataset,
    load_got10k,
    load_image_folder,
    load_lasot,
    load_otb,
    load_trackingnet,
    load_video,
)
from dimp_core.data.synthetic import (
    SyntheticSequence,
    benchmark_plan,
    benchmark_root,
    ensure_benchmark,
    make_sequence,
    write_benchmark,
)

__all__ = [
    "Dataset",
    "Sequence",
    "load_dataset",
    "load_got10k",
    "load_image_folder",
    "load_lasot",
    "load_otb",
    "load_trackingnet",
    "load_video",
    "SyntheticSequence",
    "benchmark_plan",
    "benchmark_root",
    "ensure_benchmark",
    "make_sequence",
    "write_benchmark",
]
