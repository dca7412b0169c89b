"""Models: the VLM reward head, processors that work without torchvision, loaders, tiny models, shape presets."""

from .processing import QwenVLImageProcessor, get_tokenizer, load_processor, model_processor, register_processors
from .reward_model import (
    Qwen2_5_VLForSequenceClassification,
    Qwen2VLForSequenceClassification,
    Qwen3VLForSequenceClassification,
    register_reward_models,
)
from .tiny import build_tiny, resolve_model_path, tiny_model_path


register_reward_models()
register_processors()

__all__ = [
    "Qwen2VLForSequenceClassification",
    "Qwen2_5_VLForSequenceClassification",
    "Qwen3VLForSequenceClassification",
    "QwenVLImageProcessor",
    "build_tiny",
    "get_tokenizer",
    "load_processor",
    "model_processor",
    "register_processors",
    "register_reward_models",
    "resolve_model_path",
    "tiny_model_path",
]
