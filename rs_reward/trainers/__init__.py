"""Thin subclasses of TRL's trainers: what they add is what the base lacks for images, nothing else."""

from .grpo import RSGRPOTrainer
from .resume import CheckpointResumeMixin, load_checkpoint_weights
from .reward import RSRewardTrainer, VisionPreferenceCollator
from .sft import RSSFTTrainer


__all__ = [
    "CheckpointResumeMixin",
    "RSGRPOTrainer",
    "RSRewardTrainer",
    "RSSFTTrainer",
    "VisionPreferenceCollator",
    "load_checkpoint_weights",
]
