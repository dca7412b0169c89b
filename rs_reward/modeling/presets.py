"""The real architectures as configs, for benchmarks at real size with random weights (no download).

    >>> from rs_reward.modeling.presets import preset_config, build_preset
    >>> config = preset_config("qwen2-vl-7b")               # Qwen2VLConfig with the published shapes
    >>> model = build_preset("qwen2-vl-7b", reward=True, dtype=torch.bfloat16, device="cuda")

Shapes follow the published `config.json` of each model (Qwen/Qwen2-VL-2B-Instruct, Qwen/Qwen2-VL-7B-Instruct,
Qwen/Qwen2.5-VL-3B-Instruct, Qwen/Qwen2.5-VL-7B-Instruct, openai/clip-vit-base-patch16,
openai/clip-vit-large-patch14). Token ids are Qwen's; use them with the real tokenizer.
"""

from __future__ import annotations


_QWEN_TOKENS = {
    "image_token_id": 151655,
    "video_token_id": 151656,
    "vision_start_token_id": 151652,
    "vision_end_token_id": 151653,
}


def _qwen_text(hidden, intermediate, layers, heads, kv_heads, vocab, tie):
    return {
        "vocab_size": vocab,
        "hidden_size": hidden,
        "intermediate_size": intermediate,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": kv_heads,
        "max_position_embeddings": 32768,
        "rms_norm_eps": 1e-6,
        "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [16, 24, 24]},
        "bos_token_id": 151643,
        "eos_token_id": 151645,
        "pad_token_id": 151643,
        "tie_word_embeddings": tie,
    }


def _qwen2_vl(hidden, intermediate, layers, heads, kv_heads, vocab, tie):
    from transformers import Qwen2VLConfig

    vision = {
        "depth": 32,
        "embed_dim": 1280,
        "hidden_size": hidden,
        "num_heads": 16,
        "mlp_ratio": 4,
        "patch_size": 14,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
    }
    text = _qwen_text(hidden, intermediate, layers, heads, kv_heads, vocab, tie)
    return Qwen2VLConfig(text_config=text, vision_config=vision, tie_word_embeddings=tie, **_QWEN_TOKENS)


def _qwen2_5_vl(hidden, intermediate, layers, heads, kv_heads, vocab, tie):
    from transformers import Qwen2_5_VLConfig

    vision = {
        "depth": 32,
        "hidden_size": 1280,
        "intermediate_size": 3420,
        "num_heads": 16,
        "out_hidden_size": hidden,
        "patch_size": 14,
        "spatial_merge_size": 2,
        "temporal_patch_size": 2,
        "window_size": 112,
        "fullatt_block_indexes": [7, 15, 23, 31],
        "hidden_act": "silu",
    }
    text = _qwen_text(hidden, intermediate, layers, heads, kv_heads, vocab, tie)
    return Qwen2_5_VLConfig(text_config=text, vision_config=vision, tie_word_embeddings=tie, **_QWEN_TOKENS)


def _clip(text_width, text_heads, vision_width, vision_layers, vision_heads, patch, projection):
    from transformers import CLIPConfig

    text = {
        "hidden_size": text_width,
        "intermediate_size": 4 * text_width,
        "num_hidden_layers": 12,
        "num_attention_heads": text_heads,
        "max_position_embeddings": 77,
        "vocab_size": 49408,
        "bos_token_id": 49406,
        "eos_token_id": 49407,
        "pad_token_id": 1,
    }
    vision = {
        "hidden_size": vision_width,
        "intermediate_size": 4 * vision_width,
        "num_hidden_layers": vision_layers,
        "num_attention_heads": vision_heads,
        "patch_size": patch,
        "image_size": 224,
    }
    return CLIPConfig(text_config=text, vision_config=vision, projection_dim=projection)


PRESETS = {
    # name: (config factory, published parameter count of the generator, for checking)
    "qwen2-vl-2b": (lambda: _qwen2_vl(1536, 8960, 28, 12, 2, 151936, True), 2.21e9),
    "qwen2-vl-7b": (lambda: _qwen2_vl(3584, 18944, 28, 28, 4, 152064, False), 8.29e9),
    "qwen2.5-vl-3b": (lambda: _qwen2_5_vl(2048, 11008, 36, 16, 2, 151936, True), 3.75e9),
    "qwen2.5-vl-7b": (lambda: _qwen2_5_vl(3584, 18944, 28, 28, 4, 152064, False), 8.29e9),
    "clip-vit-b16": (lambda: _clip(512, 8, 768, 12, 12, 16, 512), 1.50e8),
    "clip-vit-l14": (lambda: _clip(768, 12, 1024, 24, 16, 14, 768), 4.28e8),
}


def preset_config(name: str):
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name][0]()


def build_preset(name: str, reward: bool = False, dtype=None, device: str | None = None):
    """A model of the preset's shape with random weights: the generator, the reward model (`reward=True`) or
    CLIP. Built directly on `device` (use "meta" to count parameters without memory)."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoModelForSequenceClassification, CLIPModel

    from .reward_model import register_reward_models

    register_reward_models()
    config = preset_config(name)
    with torch.device(device or "cpu"):
        if name.startswith("clip"):
            model = CLIPModel(config)
        elif reward:
            config.num_labels = 1
            model = AutoModelForSequenceClassification.from_config(config)
        else:
            model = AutoModelForImageTextToText.from_config(config)
    return model.to(dtype) if dtype is not None else model
