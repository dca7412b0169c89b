"""Configuration dataclasses. They subclass TRL's, so recipes are TRL recipes with a few more keys.

Shared fields live in mixins, once. Every field has a `help` (shown by `rs-reward <task> --help`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trl import ModelConfig


@dataclass
class RSModelConfig(ModelConfig):
    """TRL's `ModelConfig` plus what a VLM needs.

    > Parameters that control the images

        min_pixels, max_pixels: the processor's pixel budget (the paper: max 1280*28*28).

    > Parameters that choose what trains (full fine-tuning; LoRA trains its adapters and the head)

        freeze_vision_tower, freeze_merger, freeze_language_model, freeze_score_head.

    Example recipe keys (the paper's score-model stage 2: vision tower + head):

        model_name_or_path: Qwen/Qwen2-VL-7B-Instruct
        freeze_language_model: true
        max_pixels: 602112
    """

    trust_remote_code: bool = field(
        default=False, metadata={"help": "Allow custom model code from the Hub. Off unless you trust the repo."}
    )
    min_pixels: int | None = field(
        default=None, metadata={"help": "Smallest image area in pixels after resizing (Qwen image processors)."}
    )
    max_pixels: int | None = field(
        default=None, metadata={"help": "Largest image area in pixels after resizing, e.g. 1280*28*28 = 1003520."}
    )
    freeze_vision_tower: bool = field(default=False, metadata={"help": "Freeze the vision encoder (not the merger)."})
    freeze_merger: bool = field(default=False, metadata={"help": "Freeze the vision-language merger (projector)."})
    freeze_language_model: bool = field(default=False, metadata={"help": "Freeze the language model."})
    freeze_score_head: bool = field(default=False, metadata={"help": "Freeze the scalar score head."})

    def trainable_parts(self) -> dict[str, bool]:
        """The freezing switches as `set_trainable` keyword arguments (only the parts that are frozen)."""
        switches = {
            "vision_tower": self.freeze_vision_tower,
            "merger": self.freeze_merger,
            "language_model": self.freeze_language_model,
            "score_head": self.freeze_score_head,
        }
        return {part: False for part, frozen in switches.items() if frozen}
