"""`RSSFTTrainer`: TRL's `SFTTrainer`, which already feeds images to VLMs through the processor; it adds only a
resume that restores the weights (`CheckpointResumeMixin`)."""

from __future__ import annotations

from trl import SFTTrainer

from .resume import CheckpointResumeMixin


class RSSFTTrainer(CheckpointResumeMixin, SFTTrainer):
    pass
