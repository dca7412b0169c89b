"""Qwen-VL processors that work with or without torchvision.

The stock `Qwen2VLProcessor` always builds a video processor, and every video processor needs torchvision, which
has no CPU build matching our torch pin. `QwenVLImageProcessor` is the same processor without the video part. It
is registered with `AutoProcessor` when torchvision is missing, and `load_processor` picks it for any Qwen2-VL or
Qwen2.5-VL checkpoint (including Hub checkpoints whose files name the stock class).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from transformers import AutoConfig, AutoProcessor, Qwen2_5_VLConfig, Qwen2VLConfig

from .qwen_vl_processor import QwenVLImageProcessor
from .tiny import resolve_model_path


HAS_TORCHVISION = importlib.util.find_spec("torchvision") is not None

# Model types whose processor is (image processor, Qwen2 tokenizer, optional video processor).
QWEN_VL_MODEL_TYPES = ("qwen2_vl", "qwen2_5_vl")


def register_processors() -> None:
    """Make `AutoProcessor` return `QwenVLImageProcessor` for Qwen-VL configs when torchvision is missing."""
    if HAS_TORCHVISION:
        return
    for config_class in (Qwen2VLConfig, Qwen2_5_VLConfig):
        AutoProcessor.register(config_class, QwenVLImageProcessor, exist_ok=True)


def _model_type(name_or_path: str, **hub_kwargs) -> str | None:
    """The `model_type` of a checkpoint (folder or Hub id), or None if it has no config."""
    config_file = Path(name_or_path) / "config.json"
    if config_file.is_file():
        return json.loads(config_file.read_text()).get("model_type")
    try:
        return AutoConfig.from_pretrained(name_or_path, **hub_kwargs).model_type
    except (OSError, ValueError):
        return None


def set_pixel_budget(processor, min_pixels: int | None = None, max_pixels: int | None = None):
    """Set the image processor's pixel budget in place (the Qwen image processors resize to fit it)."""
    image_processor = getattr(processor, "image_processor", None)
    if image_processor is None or (min_pixels is None and max_pixels is None):
        return processor
    size = dict(image_processor.size)
    if min_pixels is not None:
        size["shortest_edge"] = min_pixels
    if max_pixels is not None:
        size["longest_edge"] = max_pixels
    if size["shortest_edge"] > size["longest_edge"]:
        raise ValueError(f"min_pixels ({size['shortest_edge']}) must not exceed max_pixels ({size['longest_edge']})")
    image_processor.size = size
    return processor


def load_processor(
    name_or_path: str,
    *,
    min_pixels: int | None = None,
    max_pixels: int | None = None,
    padding_side: str | None = None,
    trust_remote_code: bool = False,
    revision: str = "main",
):
    """Load the processor of a VLM checkpoint (or the tokenizer of a text model), with a pixel budget.

    For Qwen2-VL / Qwen2.5-VL without torchvision this returns `QwenVLImageProcessor`, whatever class the
    checkpoint's files name; with torchvision, the stock processor when the checkpoint has its files, else
    `QwenVLImageProcessor` (with the torchvision image processor). `name_or_path` may be a folder, a Hub id or a
    `tiny:<name>` alias.
    """
    register_processors()
    name_or_path = resolve_model_path(name_or_path)
    kwargs = {"trust_remote_code": trust_remote_code, "revision": revision}
    qwen_vl = _model_type(name_or_path, **kwargs) in QWEN_VL_MODEL_TYPES
    processor = None
    if not (qwen_vl and not HAS_TORCHVISION):
        processor = AutoProcessor.from_pretrained(name_or_path, **kwargs)
    if qwen_vl and not hasattr(processor, "image_processor"):
        # No torchvision, or a checkpoint saved with `QwenVLImageProcessor` (no video processor files): with
        # torchvision installed AutoProcessor then silently returns the bare tokenizer, which would drop the images.
        processor = QwenVLImageProcessor.from_pretrained(name_or_path, **kwargs)
    set_pixel_budget(processor, min_pixels, max_pixels)
    tokenizer = getattr(processor, "tokenizer", processor)
    if padding_side is not None:
        tokenizer.padding_side = padding_side
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return processor


def model_processor(model_args, *, trust_remote_code: bool = False, padding_side: str | None = None):
    """The processor of `model_args.model_name_or_path` with the pixel budget of `model_args` (an RSModelConfig)."""
    return load_processor(
        model_args.model_name_or_path,
        min_pixels=model_args.min_pixels,
        max_pixels=model_args.max_pixels,
        padding_side=padding_side,
        trust_remote_code=trust_remote_code,
        revision=model_args.model_revision,
    )


def get_tokenizer(processor):
    """The tokenizer inside a processor (or the tokenizer itself)."""
    return getattr(processor, "tokenizer", processor)
