"""One loader for reward models, used by training, evaluation, scoring, GRPO rewards and best-of-N.

    >>> from rs_reward.configs import RSModelConfig
    >>> model = load_reward_model(RSModelConfig(model_name_or_path="tiny:qwen2-vl-tiny", use_peft=True))

`model_name_or_path` may be a generator checkpoint (`...ForConditionalGeneration`: the backbone is loaded, the
head initialised), a reward checkpoint, a LoRA adapter folder (its base is loaded first) or a `tiny:` alias.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..configs import RSModelConfig
from ..data.chat import ANSWER_MARKER
from ..report import write_atomic
from .parts import LANGUAGE_MODEL_LORA_TARGETS, count_parameters, set_trainable
from .processing import get_tokenizer, load_processor
from .reward_model import register_reward_models
from .tiny import resolve_model_path


# The released ScoreRS checkpoints keep the Qwen2-VL backbone in the legacy key layout (handled by the reward
# classes' registered conversion) and name the head `reward_head`; ours is `score`.
SCORERS_HEAD = "reward_head.weight"
SCORERS_KEY_MAPPING = {r"^reward_head\.": "score."}


# A LoRA adapter folder has no config.json: the score settings the base model's config lacks (the likelihood term,
# which the model must know before it is built, and how it reads multiple-choice answers) are written beside the
# adapter (`save_score_config`) and read back when the adapter is loaded.
SCORE_CONFIG_FILE = "score_config.json"
SCORE_CONFIG_KEYS = ("score_likelihood_weight", "score_answer_marker", "score_resolve_choices")


def save_score_config(model, folder: str | Path) -> None:
    """Write the score settings beside a saved adapter (nothing for a full checkpoint or none set)."""
    values = {key: getattr(model.config, key) for key in SCORE_CONFIG_KEYS if getattr(model.config, key, None)}
    if values and (Path(folder) / "adapter_config.json").is_file():
        write_atomic(Path(folder) / SCORE_CONFIG_FILE, json.dumps(values, indent=2) + "\n")


def checkpoint_keys(path: str) -> set[str] | None:
    """Tensor names of a safetensors checkpoint (local folder or Hub id), or None if they cannot be listed."""
    folder = Path(path)
    if folder.is_dir():
        index = folder / "model.safetensors.index.json"
        if index.is_file():
            return set(json.loads(index.read_text())["weight_map"])
        keys = set()
        for file in folder.glob("*.safetensors"):
            from safetensors import safe_open

            with safe_open(str(file), framework="pt") as f:
                keys.update(f.keys())
        return keys or None
    try:
        from huggingface_hub import get_safetensors_metadata

        metadata = get_safetensors_metadata(path)
        return set(metadata.weight_map)
    except Exception:  # offline, no safetensors, or not a Hub id: nothing to detect
        return None


def torch_dtype(name: str | None):
    if name in (None, "auto"):
        return name
    return getattr(torch, name)


def adapter_base(path: str) -> str | None:
    """The base model of a PEFT adapter folder, or None if `path` is not one."""
    config_file = Path(path) / "adapter_config.json"
    if not config_file.is_file():
        return None
    return json.loads(config_file.read_text())["base_model_name_or_path"]


def reward_lora_config(model_args: RSModelConfig):
    """LoRA for a reward model: SEQ_CLS (so the `score` head trains and is saved with the adapter), on the
    language model only unless `lora_target_modules` says otherwise."""
    from peft import LoraConfig

    return LoraConfig(
        task_type="SEQ_CLS",
        r=model_args.lora_r,
        lora_alpha=model_args.lora_alpha,
        lora_dropout=model_args.lora_dropout,
        target_modules=model_args.lora_target_modules or LANGUAGE_MODEL_LORA_TARGETS,
        modules_to_save=model_args.lora_modules_to_save,
        use_rslora=model_args.use_rslora,
        use_dora=model_args.use_dora,
        bias="none",
    )


def load_reward_model(
    model_args: RSModelConfig, *, trainable: bool = True, device_map=None, trust_remote_code: bool = False
):
    """Load a VLM reward model as `model_args` says: full (with freezing switches), LoRA, or QLoRA.

    With `trainable=False` the model is returned in eval mode with gradients off (for scoring).
    """
    from transformers import AutoConfig, AutoModelForSequenceClassification
    from trl import get_quantization_config

    register_reward_models()
    path = resolve_model_path(model_args.model_name_or_path)
    base = adapter_base(path)
    quantization_config = get_quantization_config(model_args)
    if quantization_config is not None and device_map is None:
        from accelerate import PartialState

        device_map = {"": PartialState().local_process_index} if torch.cuda.is_available() else {"": "cpu"}
    source = resolve_model_path(base) if base else path
    saved_file = Path(path) / SCORE_CONFIG_FILE
    saved = json.loads(saved_file.read_text()) if base and saved_file.is_file() else {}
    keys = checkpoint_keys(source)
    # A ScoreRS checkpoint: map its `reward_head` onto our `score` head.
    key_mapping = SCORERS_KEY_MAPPING if keys is not None and SCORERS_HEAD in keys else None
    # The likelihood term keeps the generator's lm_head: the config must say so before the model is built.
    weight = model_args.score_likelihood_weight
    weight = saved.get("score_likelihood_weight") if weight is None else weight
    config = {"num_labels": 1}
    if weight is not None:
        if weight and keys is not None and not any(key.endswith("lm_head.weight") for key in keys):
            raise ValueError(
                f"score_likelihood_weight {weight} reads the answer with the checkpoint's output layer, but "
                f"{source} has no `lm_head.weight` (a model that ties it to the embeddings, such as Qwen2-VL-2B, "
                "is not supported): leave score_likelihood_weight unset for the paper's head alone"
            )
        config = {
            "config": AutoConfig.from_pretrained(
                source, num_labels=1, revision=model_args.model_revision, trust_remote_code=trust_remote_code
            )
        }
        config["config"].score_likelihood_weight = weight
        if saved.get("score_answer_marker"):
            config["config"].score_answer_marker = saved["score_answer_marker"]
    model = AutoModelForSequenceClassification.from_pretrained(
        source,
        **config,
        key_mapping=key_mapping,
        revision=model_args.model_revision,
        dtype=torch_dtype(model_args.dtype),
        attn_implementation=model_args.attn_implementation,
        trust_remote_code=trust_remote_code,
        quantization_config=quantization_config,
        device_map=device_map,
    )
    if model_args.score_activation is not None:
        model.config.score_activation = model_args.score_activation
    resolve = model_args.score_resolve_choices
    resolve = saved.get("score_resolve_choices") if resolve is None else resolve
    if resolve is not None:
        model.config.score_resolve_choices = bool(resolve)
    needs_marker = getattr(model.config, "score_likelihood_weight", 0) and not getattr(
        model.config, "score_answer_marker", None
    )
    if model.config.get_text_config().pad_token_id is None or needs_marker:
        tokenizer = get_tokenizer(load_processor(path, trust_remote_code=trust_remote_code))
        if model.config.get_text_config().pad_token_id is None:
            model.config.get_text_config().pad_token_id = tokenizer.pad_token_id
            model.config.pad_token_id = tokenizer.pad_token_id
        if needs_marker:
            model.config.score_answer_marker = tokenizer.encode(ANSWER_MARKER, add_special_tokens=False)

    if base is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, path, is_trainable=trainable)
    elif model_args.use_peft and trainable:
        from peft import get_peft_model, prepare_model_for_kbit_training

        if quantization_config is not None:
            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
        model = get_peft_model(model, reward_lora_config(model_args))
    elif trainable:
        parts = model_args.trainable_parts()
        if not hasattr(model, "lm_head"):
            parts.pop("lm_head", None)  # a reward model has a score head instead (unless it keeps the likelihood term)
        if parts:
            set_trainable(model, **parts)

    if not trainable:
        model.eval().requires_grad_(False)
    return model


def load_generator(model_args: RSModelConfig, *, trainable: bool = True, trust_remote_code: bool = False):
    """Load the VLM policy / generator (`...ForConditionalGeneration`) as `model_args` says.

    A LoRA adapter folder (SFT or GRPO with `use_peft`) is loaded on its base and merged, so the result is a plain
    model for evaluation, further training or best-of-N. With `trainable=True` the freezing switches apply (LoRA is
    then added by the trainer from `peft_config`); with `trainable=False` it is returned in eval mode, no gradients.
    """
    from transformers import AutoModelForImageTextToText

    path = resolve_model_path(model_args.model_name_or_path)
    base = adapter_base(path)
    model = AutoModelForImageTextToText.from_pretrained(
        resolve_model_path(base) if base else path,
        dtype=torch_dtype(model_args.dtype),
        attn_implementation=model_args.attn_implementation,
        trust_remote_code=trust_remote_code,
        revision=model_args.model_revision,
    )
    if base is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, path).merge_and_unload()
    if not trainable:
        return model.eval().requires_grad_(False)
    parts = model_args.trainable_parts()
    parts.pop("score_head", None)
    if parts:
        set_trainable(model, **parts)
    return model


def load_clip(name_or_path: str, *, dtype: str | None = None, trust_remote_code: bool = False, revision: str = "main"):
    """Load a CLIP / SigLIP dual encoder (a folder, a Hub id or a `tiny:` alias) and its processor: the one loader
    of the CLIP-score baseline, its fine-tuning and its evaluation."""
    from transformers import AutoModel

    path = resolve_model_path(name_or_path)
    kwargs = {"trust_remote_code": trust_remote_code, "revision": revision}
    model = AutoModel.from_pretrained(path, dtype=torch_dtype(dtype), **kwargs)
    return model, load_processor(path, **kwargs)


def describe_trainable(model) -> str:
    """One line per part: trainable / total parameters."""
    rows = [f"{part:>15}: {c['trainable']:>12,} / {c['total']:>12,}" for part, c in count_parameters(model).items()]
    return "\n".join(rows)
