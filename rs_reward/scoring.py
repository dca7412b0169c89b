"""Scorers behind one interface: `scorer.score(images, questions, texts) -> np.ndarray` (one float per row).

`RewardModelScorer` batches rows by length (fewer pad tokens), runs without gradients, under bf16 autocast on
GPU, and reads each score at the row's last token whatever the padding side (the model does that). Images are
opened lazily, per batch.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .data.chat import encode_scored
from .data.images import open_image


class RewardModelScorer:
    """Score (image, question, text) rows with a VLM reward model.

    Example:
        >>> scorer = RewardModelScorer(model, processor, batch_size=32)
        >>> scorer.score([image], [""], ["A satellite image of farmland."])
        array([0.73], dtype=float32)
    """

    name = "reward_model"

    def __init__(self, model, processor, batch_size: int = 16, image_root: str | None = None):
        self.model = model.eval()
        self.processor = processor
        self.batch_size = batch_size
        self.image_root = image_root
        self.device = next(model.parameters()).device

    @torch.no_grad()
    def score(self, images: Sequence, questions: Sequence[str | None], texts: Sequence[str]) -> np.ndarray:
        n = len(texts)
        # Length-aware batching: rows of similar length share a batch (text length stands in for token count).
        order = sorted(range(n), key=lambda i: len(texts[i]) + len(questions[i] or ""))
        scores = np.empty(n, dtype=np.float32)
        autocast = torch.autocast("cuda", dtype=torch.bfloat16) if self.device.type == "cuda" else _null()
        for start in range(0, n, self.batch_size):
            index = order[start : start + self.batch_size]
            batch_images = [open_image(images[i], self.image_root) if images[i] is not None else None for i in index]
            batch = encode_scored(
                self.processor, batch_images, [questions[i] for i in index], [texts[i] for i in index]
            )
            batch = {k: v.to(self.device) for k, v in batch.items()}
            with autocast:
                logits = self.model(**batch).logits.squeeze(-1)
            scores[index] = logits.float().cpu().numpy()
        return scores


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
