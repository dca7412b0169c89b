"""`QwenVLImageProcessor`: the Qwen2-VL processor without its video part, so it works without torchvision.

The stock `Qwen2VLProcessor` always builds a video processor, and every video processor needs torchvision, which
has no CPU build matching our torch pin. This module imports nothing of rs_reward: the tiny-model builder
(`tiny.py`) and the loader (`processing.load_processor`) both build on it.
"""

from __future__ import annotations

import numpy as np
import torch
from transformers import Qwen2VLProcessor
from transformers.image_utils import make_flat_list_of_images
from transformers.processing_utils import ProcessorMixin


class QwenVLImageProcessor(Qwen2VLProcessor):
    """`Qwen2VLProcessor` with only an image processor and a tokenizer (no torchvision needed), which processes an
    image repeated in one call once (the same outputs).

    Example:
        >>> processor = QwenVLImageProcessor(image_processor=Qwen2VLImageProcessorPil(), tokenizer=tokenizer)
        >>> batch = processor(text=["<|vision_start|><|image_pad|><|vision_end|>a harbor"], images=[image])
    """

    def __init__(self, image_processor=None, tokenizer=None, chat_template=None, **kwargs):
        # Same attributes as Qwen2VLProcessor.__init__, which we cannot call: it passes a video processor.
        self.image_token = getattr(tokenizer, "image_token", "<|image_pad|>")
        self.video_token = getattr(tokenizer, "video_token", "<|video_pad|>")
        self.image_token_id = getattr(tokenizer, "image_token_id", None) or tokenizer.convert_tokens_to_ids(
            self.image_token
        )
        self.video_token_id = getattr(tokenizer, "video_token_id", None) or tokenizer.convert_tokens_to_ids(
            self.video_token
        )
        ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template, **kwargs)

    def _process_images(self, images, **kwargs):
        """The stock step, each distinct image object processed once: a scored group (a pair, best-of-N candidates,
        GRPO completions) repeats one image, and resizing it is most of the CPU work of a batch."""
        flat = make_flat_list_of_images(images)
        position: dict[int, int] = {}  # id of an image -> its place among the distinct images
        distinct, index = [], []
        for image in flat:
            if id(image) not in position:
                position[id(image)] = len(distinct)
                distinct.append(image)
            index.append(position[id(image)])
        if len(distinct) == len(flat):
            return super()._process_images(images, **kwargs)
        processed, replacements = super()._process_images(distinct, **kwargs)
        grid = processed["image_grid_thw"]
        ends = np.cumsum([int(torch.as_tensor(g).prod()) for g in grid])
        starts = np.concatenate([[0], ends[:-1]])
        pixels = processed["pixel_values"]
        parts = [pixels[starts[u] : ends[u]] for u in index]
        processed["pixel_values"] = torch.cat(parts) if isinstance(pixels, torch.Tensor) else np.concatenate(parts)
        processed["image_grid_thw"] = grid[index] if isinstance(grid, torch.Tensor) else np.asarray(grid)[index]
        return processed, [replacements[u] for u in index]
