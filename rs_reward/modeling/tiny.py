"""Tiny, offline, deterministic models of the real families, built from configs.

Nothing here downloads. Each tiny model is built once from its config with a fixed seed and saved under the
project cache (`$RS_REWARD_CACHE`, default `.cache/` in the working directory); later calls reuse the folder.
Recipes and tests name them with the `tiny:` scheme, which every loader of this package resolves:

    >>> from rs_reward.modeling.tiny import resolve_model_path
    >>> resolve_model_path("tiny:qwen2-vl-tiny")          # builds on first use, then returns the cached folder
    '.cache/tiny-models/qwen2-vl-tiny-v2'

| name | what | params |
|---|---|---|
| `qwen2-vl-tiny` | Qwen2-VL generator, 2 x 64 text, 2 x 64 vision (tests) | ~0.4 M |
| `qwen2-vl-mini` | Qwen2-VL generator, 4 x 128 text, 4 x 128 vision (demo) | ~2.3 M |
| `qwen2.5-vl-tiny` | Qwen2.5-VL generator, 2 x 64 text, 2 x 64 vision | ~0.4 M |
| `qwen2-vl-tiny-reward` | `qwen2-vl-tiny` with a `score` head (same backbone weights) | ~0.4 M |
| `qwen2.5-vl-tiny-reward` | `qwen2.5-vl-tiny` with a `score` head | ~0.4 M |
| `clip-tiny` | CLIP, 2 x 64 text and vision, 112 px, patch 16 | ~0.3 M |
| `qwen2-vl-synthrs` | `qwen2-vl-mini` pre-trained on SynthRS until it perceives it (committed, not built) | ~1.8 M |

The tokenizer is a byte-level BPE trained in a second on a built-in remote-sensing corpus, with the Qwen
special tokens, eos `<|im_end|>` and pad `<|endoftext|>` as in Qwen2-VL-Instruct, and the Qwen2-VL chat template.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import tempfile
from functools import cache
from pathlib import Path


TINY_SCHEME = "tiny:"
TINY_VERSION = "v2"  # bump when a tiny model's recipe changes, so stale caches are not reused

QWEN_SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
]

# Words of the remote-sensing domain (SynthRS and real captions); the BPE learns them as whole tokens.
_RS_WORDS = """
satellite aerial image photo picture scene view top-down remote sensing high resolution overhead shows contains
depicts there is are a an the of in on at with and or no not none some several many few one two three four five
six seven eight nine ten zero how what which where is are does do any more less than fewer same number count
land cover water forest farmland bare land residential industrial desert grassland river lake sea beach harbor
port airport runway road roads highway bridge parking lot building buildings house houses storage tank tanks ship
ships boat boats airplane airplanes plane planes vehicle vehicles car cars truck trucks tree trees field fields
top bottom left right center middle upper lower corner part side edge near next to between above below around
red green blue white black gray grey yellow orange brown dark light large small big tiny long short round square
rectangular circular cloud clouds haze hazy noise bright dim rotated area region located visible dense sparse
answer question yes the image shows we can see this photo of it features consists mostly mainly covered by
located positioned placed distributed scattered cluster group row rows line lines caption describe detail
please provide brief detailed description box coordinates object objects class category type kind classify
"""

_TEMPLATES = [
    "a satellite image of {a} with {n} {o} in the {p}",
    "the aerial photo shows {n} {o} on {a} at the {p}",
    "how many {o} are in the image? answer: {n}",
    "what is the land cover of this scene? {a}",
    "is there a {o} in the {p} of the image? yes",
    "{n} {c} {o} are located in the {p} part of the {a} scene",
    "<think>the image shows {a}</think><answer>{a}</answer>",
    "<box>(12,34),(56,78)</box> [0.12, 0.34, 0.56, 0.78]",
]


def _tokenizer_corpus() -> list[str]:
    words = _RS_WORDS.split()
    land = ["water", "forest", "farmland", "bare land", "residential", "industrial"]
    objects = ["buildings", "storage tanks", "ships", "airplanes", "vehicles", "roads"]
    places = ["top left", "top", "top right", "left", "center", "right", "bottom left", "bottom", "bottom right"]
    numbers = ["one", "two", "three", "four", "five", "1", "2", "3", "4", "5", "0", "6", "7", "8", "9", "10"]
    colours = ["red", "white", "gray", "blue", "dark"]
    corpus = [" ".join(words[i : i + 12]) for i in range(0, len(words), 6)]
    for i, (t, a, o, p, n, c) in enumerate(itertools.product(_TEMPLATES, land, objects, places, numbers[:5], colours)):
        if i % 7 == 0:  # a deterministic thinning keeps training under a second
            corpus.append(t.format(a=a, o=o, p=p, n=n, c=c))
    corpus += [" ".join(numbers)] * 20
    return corpus


def cache_root() -> Path:
    return Path(os.environ.get("RS_REWARD_CACHE", ".cache")).absolute()


def _qwen_chat_template() -> str:
    # The Qwen2-VL-Instruct template, as TRL ships it (TRL recognises it and swaps in its training template).
    import trl

    return (Path(trl.__file__).parent / "chat_templates" / "qwen2_5_vl.jinja").read_text(encoding="utf-8")


@cache
def build_tokenizer(vocab_size: int = 1024):
    """A Qwen2 byte-level BPE tokenizer trained offline on the built-in corpus (deterministic)."""
    from transformers import Qwen2Tokenizer

    tokenizer = Qwen2Tokenizer().train_new_from_iterator(
        _tokenizer_corpus(), vocab_size=vocab_size, new_special_tokens=QWEN_SPECIAL_TOKENS
    )
    tokenizer.eos_token = "<|im_end|>"
    tokenizer.pad_token = "<|endoftext|>"
    tokenizer.chat_template = _qwen_chat_template()
    tokenizer.model_max_length = 4096
    return tokenizer


def _qwen_token_ids(tokenizer) -> dict:
    ids = dict(zip(QWEN_SPECIAL_TOKENS, tokenizer.convert_tokens_to_ids(QWEN_SPECIAL_TOKENS)))
    return {
        "image_token_id": ids["<|image_pad|>"],
        "video_token_id": ids["<|video_pad|>"],
        "vision_start_token_id": ids["<|vision_start|>"],
        "vision_end_token_id": ids["<|vision_end|>"],
    }


def _text_config(tokenizer, hidden: int, layers: int, heads: int) -> dict:
    head_dim = hidden // heads
    half = head_dim // 2  # mrope_section sums to half the head dim: (temporal, height, width)
    section = [half - 2 * (half * 3 // 8), half * 3 // 8, half * 3 // 8]
    return {
        "vocab_size": len(tokenizer),
        "hidden_size": hidden,
        "intermediate_size": 2 * hidden,
        "num_hidden_layers": layers,
        "num_attention_heads": heads,
        "num_key_value_heads": max(1, heads // 2),
        "max_position_embeddings": 4096,
        "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": section},
        "bos_token_id": tokenizer.convert_tokens_to_ids("<|endoftext|>"),
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }


def qwen2_vl_config(tokenizer, hidden: int = 64, layers: int = 2, vision_depth: int = 2, vision_width: int = 64):
    from transformers import Qwen2VLConfig

    return Qwen2VLConfig(
        text_config=_text_config(tokenizer, hidden, layers, heads=4),
        vision_config={
            "depth": vision_depth,
            "embed_dim": vision_width,
            "hidden_size": hidden,  # the merger's output width = the LM's width
            "num_heads": 4,
            "mlp_ratio": 2,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
        },
        **_qwen_token_ids(tokenizer),
        tie_word_embeddings=False,
    )


def qwen2_5_vl_config(tokenizer, hidden: int = 64, layers: int = 2, vision_depth: int = 2, vision_width: int = 64):
    from transformers import Qwen2_5_VLConfig

    return Qwen2_5_VLConfig(
        text_config=_text_config(tokenizer, hidden, layers, heads=4),
        vision_config={
            "depth": vision_depth,
            "hidden_size": vision_width,
            "intermediate_size": 2 * vision_width,
            "num_heads": 4,
            "out_hidden_size": hidden,
            "patch_size": 14,
            "spatial_merge_size": 2,
            "temporal_patch_size": 2,
            "window_size": 112,
            "fullatt_block_indexes": [vision_depth - 1],
        },
        **_qwen_token_ids(tokenizer),
        tie_word_embeddings=False,
    )


def qwen_vl_processor(tokenizer, min_pixels: int = 56 * 56, max_pixels: int = 112 * 112):
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    from .qwen_vl_processor import QwenVLImageProcessor

    image_processor = Qwen2VLImageProcessorPil(min_pixels=min_pixels, max_pixels=max_pixels)
    return QwenVLImageProcessor(
        image_processor=image_processor, tokenizer=tokenizer, chat_template=tokenizer.chat_template
    )


def _build_qwen(kind: str, size: str, reward: bool, seed: int):
    import torch
    from transformers import Qwen2_5_VLForConditionalGeneration, Qwen2VLForConditionalGeneration

    from .reward_model import Qwen2_5_VLForSequenceClassification, Qwen2VLForSequenceClassification

    tokenizer = build_tokenizer()
    dims = {"tiny": {}, "mini": {"hidden": 128, "layers": 4, "vision_depth": 4, "vision_width": 128}}[size]
    config = (qwen2_vl_config if kind == "qwen2-vl" else qwen2_5_vl_config)(tokenizer, **dims)
    torch.manual_seed(seed)
    generator_class = Qwen2VLForConditionalGeneration if kind == "qwen2-vl" else Qwen2_5_VLForConditionalGeneration
    model = generator_class(config)
    if reward:
        reward_class = Qwen2VLForSequenceClassification if kind == "qwen2-vl" else Qwen2_5_VLForSequenceClassification
        config.num_labels = 1
        reward_model = reward_class(config)
        reward_model.model.load_state_dict(model.model.state_dict())
        model = reward_model
    return model, qwen_vl_processor(tokenizer)


# The tiny CLIP's tokenizer, trained once by `train_clip_tokenizer()` and committed: the BPE trainer numbers the
# end-of-word characters in the order of a Rust hash map, which changes from process to process, so a tokenizer
# trained afresh in each clone gave each clone a different CLIP baseline.
CLIP_TOKENIZER_DIR = Path(__file__).parent / "clip_tiny_tokenizer"


def train_clip_tokenizer(output_dir: str | Path = CLIP_TOKENIZER_DIR):
    """Retrain the tiny CLIP tokenizer on the built-in corpus (its ids vary between runs; see above)."""
    from transformers import CLIPTokenizer

    tokenizer = CLIPTokenizer().train_new_from_iterator(_tokenizer_corpus(), vocab_size=1024)
    tokenizer.model_max_length = 77
    tokenizer.save_pretrained(str(output_dir))
    return tokenizer


def _build_clip(seed: int):
    import torch
    from transformers import CLIPConfig, CLIPModel, CLIPProcessor, CLIPTokenizer
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    tokenizer = CLIPTokenizer.from_pretrained(CLIP_TOKENIZER_DIR)
    config = CLIPConfig(
        text_config={
            "vocab_size": len(tokenizer),
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "max_position_embeddings": 77,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
            "pad_token_id": tokenizer.pad_token_id,
        },
        vision_config={
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "image_size": 112,
            "patch_size": 16,
        },
        projection_dim=64,
    )
    torch.manual_seed(seed)
    model = CLIPModel(config)
    image_processor = CLIPImageProcessorPil(size={"shortest_edge": 112}, crop_size={"height": 112, "width": 112})
    return model, CLIPProcessor(image_processor=image_processor, tokenizer=tokenizer)


TINY_MODELS = {
    "qwen2-vl-tiny": lambda: _build_qwen("qwen2-vl", "tiny", reward=False, seed=0),
    "qwen2-vl-mini": lambda: _build_qwen("qwen2-vl", "mini", reward=False, seed=0),
    "qwen2.5-vl-tiny": lambda: _build_qwen("qwen2.5-vl", "tiny", reward=False, seed=0),
    "qwen2-vl-tiny-reward": lambda: _build_qwen("qwen2-vl", "tiny", reward=True, seed=0),
    "qwen2.5-vl-tiny-reward": lambda: _build_qwen("qwen2.5-vl", "tiny", reward=True, seed=0),
    "clip-tiny": lambda: _build_clip(seed=0),
}


def build_tiny(name: str):
    """Build a tiny model and its processor in memory (not cached)."""
    from .reward_model import register_reward_models

    register_reward_models()
    if name not in TINY_MODELS:
        raise ValueError(f"Unknown tiny model {name!r}; choose one of {sorted(TINY_MODELS)}")
    return TINY_MODELS[name]()


def tiny_model_path(name: str, cache_dir: str | os.PathLike | None = None) -> str:
    """Folder of the tiny model `name`, built and saved atomically on first use."""
    root = Path(cache_dir) if cache_dir is not None else cache_root() / "tiny-models"
    target = root / f"{name}-{TINY_VERSION}"
    if (target / "config.json").is_file():
        return str(target)
    model, processor = build_tiny(name)
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=root))
    try:
        model.save_pretrained(staging)
        processor.save_pretrained(staging)
        try:
            staging.rename(target)
        except OSError:  # another process won the race: its copy is identical
            shutil.rmtree(staging, ignore_errors=True)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return str(target)


# The trained SynthRS foundation ships with the package (weights committed; `make foundation` retrains it).
FOUNDATION_NAME = "qwen2-vl-synthrs"
FOUNDATION_DIR = Path(__file__).parent / "foundation" / FOUNDATION_NAME


HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def resolve_model_path(name_or_path: str) -> str:
    """`tiny:<name>` -> cached folder (built on first use), `tiny:qwen2-vl-synthrs` -> the committed foundation;
    a folder or a Hub id (`owner/name`) is returned unchanged. Anything else, an unknown tiny name, or a Hub id that
    is not in the local cache while the Hub is off (`HF_HUB_OFFLINE=1`), raises a ValueError saying what to give,
    before anything is loaded or written."""
    if not isinstance(name_or_path, str) or not name_or_path:
        raise ValueError("no model given: set model_name_or_path to a folder, a Hub id (owner/name) or tiny:<name>")
    if name_or_path.startswith(TINY_SCHEME):
        name = name_or_path[len(TINY_SCHEME) :]
        if name == FOUNDATION_NAME:
            if not (FOUNDATION_DIR / "model.safetensors").is_file():
                raise FileNotFoundError(
                    f"the SynthRS foundation is missing at {FOUNDATION_DIR}; rebuild it with `make foundation`"
                )
            return str(FOUNDATION_DIR)
        if name not in TINY_MODELS:
            raise ValueError(f"unknown tiny model {name!r}: choose one of {', '.join(sorted(TINY_MODELS))}")
        return tiny_model_path(name)
    if os.path.isdir(name_or_path):
        return name_or_path
    if not HUB_ID.match(name_or_path) or name_or_path.startswith((".", "/", "~")):
        raise ValueError(
            f"model {name_or_path!r}: no such folder, and not a Hub id (owner/name); check the path"
            " (relative paths start from the current folder)"
        )
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on"):
        from huggingface_hub import try_to_load_from_cache

        if not isinstance(try_to_load_from_cache(name_or_path, "config.json"), str):
            raise ValueError(
                f"model {name_or_path!r}: no such folder, and the Hub is off (HF_HUB_OFFLINE=1) with no cached copy;"
                " give a local folder, or download it first"
            )
    return name_or_path
