"""Named parts of a Qwen-style VLM (vision tower, merger, language model, heads) and switches to freeze them.

The paper trains different parts in each stage (score model: head only, then vision tower + head, then language
model + head; SFT: merger only, then LoRA on the language model + merger). Every stage uses these switches.
"""

from __future__ import annotations

import re
from collections import defaultdict


# Order matters: the first pattern that matches a parameter name decides its part.
PART_PATTERNS = {
    "merger": re.compile(r"(^|\.)visual\.(merger|deepstack_merger_list)\."),
    "vision_tower": re.compile(r"(^|\.)visual\."),
    "language_model": re.compile(r"(^|\.)language_model\."),
    "score_head": re.compile(r"(^|\.)score\."),
    "lm_head": re.compile(r"(^|\.)lm_head\."),
}
PARTS = (*PART_PATTERNS, "other")

# LoRA on the language model's linear layers only ("all-linear" would also hit the vision tower).
LANGUAGE_MODEL_LORA_TARGETS = r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)"


def part_of(parameter_name: str) -> str:
    for part, pattern in PART_PATTERNS.items():
        if pattern.search(parameter_name):
            return part
    return "other"


def set_trainable(model, **trainable: bool) -> None:
    """Set `requires_grad` per part, e.g. `set_trainable(model, vision_tower=False, merger=False)`.

    Parts not named keep their current setting. Raises if a named part has no parameter in the model, so a
    recipe cannot silently freeze nothing.
    """
    unknown = set(trainable) - set(PARTS)
    if unknown:
        raise ValueError(f"Unknown part(s) {sorted(unknown)}; parts are {PARTS}")
    seen = set()
    for name, parameter in model.named_parameters():
        part = part_of(name)
        if part in trainable:
            parameter.requires_grad_(trainable[part])
            seen.add(part)
    missing = set(trainable) - seen
    if missing:
        raise ValueError(f"The model has no parameters in part(s) {sorted(missing)}")


def count_parameters(model) -> dict[str, dict[str, int]]:
    """`{part: {"trainable": n, "total": n}}`, for logs and model cards."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"trainable": 0, "total": 0})
    for name, parameter in model.named_parameters():
        entry = counts[part_of(name)]
        entry["total"] += parameter.numel()
        if parameter.requires_grad:
            entry["trainable"] += parameter.numel()
    return dict(counts)
