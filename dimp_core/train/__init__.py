"""Offline training of DiMP, ATOM and SiamFC on the synthetic data (one explicit loop, no framework)."""

from dimp_core.train.config import PRESETS, TrainConfig, preset
from dimp_core.train.loop import train

__all__ = ["PRESETS", "TrainConfig", "preset", "train"]
