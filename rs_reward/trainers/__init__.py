"""Thin subclasses of TRL's trainers: what they add is what the base lacks for images, nothing else."""

from .grpo import RSGRPOTrainer
from .reward import RSRewardTrainer, VisionPreferenceCollator


__all__ = ["RSGRPOTrainer", "RSRewardTrainer", "VisionPreferenceCollator"]
