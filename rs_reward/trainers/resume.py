"""`CheckpointResumeMixin`: resuming from a checkpoint restores the weights, not only the optimizer.

transformers 5 writes `save_pretrained` folders, the Trainer's checkpoints included, in the original (published)
key layout of Qwen2-VL (`model.layers.*`, `visual.*`), and `Trainer._load_from_checkpoint` reads a full-model
checkpoint back with a plain `load_state_dict` into the model's own layout (`model.language_model.layers.*`,
`model.visual.*`), so no key matches: the rerun goes on with the optimizer, scheduler and data position of step N
but the weights of step 0, and says so only in a warning (huggingface/transformers#43701, still so in 5.23). The
mixin maps the saved keys back through the model's own conversion (the one `save_pretrained` applied) and refuses
a checkpoint that leaves any weight unset. Adapters (PEFT), DeepSpeed and FSDP checkpoints keep the base path.
"""

from __future__ import annotations

import json
from pathlib import Path

from transformers import PreTrainedModel


def saved_key_names(model: PreTrainedModel) -> dict[str, str]:
    """{key as `save_pretrained` writes it: key in `model.state_dict()`}."""
    from transformers.core_model_loading import revert_weight_conversion

    names = {}
    for key, tensor in model.state_dict().items():
        for saved in revert_weight_conversion(model, {key: tensor}):
            names[saved] = key
    return names


def _weight_files(folder: Path) -> list[Path]:
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        return [folder / name for name in sorted(set(json.loads(index.read_text())["weight_map"].values()))]
    single = folder / "model.safetensors"
    return [single] if single.is_file() else []


def load_checkpoint_weights(model: PreTrainedModel, folder: str | Path) -> None:
    """Load a `save_pretrained` folder's safetensors weights into `model` in place, whatever the key layout; raise
    if a weight of the model is left unset (tied weights count as set)."""
    from safetensors.torch import load_file

    folder = Path(folder)
    names = saved_key_names(model)
    expected = model.state_dict()
    loaded = set()
    for file in _weight_files(folder):
        state = {names.get(k, k): v for k, v in load_file(file).items()}
        unknown = sorted(set(state) - set(expected))
        if unknown:
            raise ValueError(f"{file}: {len(unknown)} weights the model does not have, e.g. {unknown[:3]}")
        model.load_state_dict(state, strict=False)
        loaded |= set(state)
    storage = {expected[k].data_ptr() for k in loaded}
    unset = sorted(k for k in expected if k not in loaded and expected[k].data_ptr() not in storage)
    if unset:
        raise ValueError(
            f"checkpoint {folder} leaves {len(unset)} weights of the model unset, e.g. {unset[:3]}; "
            "it was written for another model (check --model_name_or_path) or is incomplete"
        )


class CheckpointResumeMixin:
    """Put before the TRL trainer in the bases: `class RSRewardTrainer(CheckpointResumeMixin, RewardTrainer)`."""

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        model = self.model if model is None else model
        if (
            isinstance(model, PreTrainedModel)
            and not self.is_deepspeed_enabled
            and not self.is_fsdp_enabled
            and _weight_files(Path(resume_from_checkpoint))
        ):
            load_checkpoint_weights(model, resume_from_checkpoint)
            return
        super()._load_from_checkpoint(resume_from_checkpoint, model)
