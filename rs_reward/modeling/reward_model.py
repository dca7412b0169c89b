"""Sequence-classification (reward / score) heads for the Qwen VL family.

transformers 5.23 has no `...ForSequenceClassification` for Qwen2-VL, Qwen2.5-VL or Qwen3-VL. Each class here
is the backbone (`AutoModel.from_config`, which accepts `pixel_values`, `image_grid_thw` and `mm_token_type_ids`)
plus a bias-free linear `score` head read at the last non-pad token of each row.

`register_reward_models()` does three things the library does not do by itself:
- registers the classes with `AutoModelForSequenceClassification` (silently a no-op without `exist_ok=True`);
- registers the generator's checkpoint key mapping for each class, so that loading the backbone from a
  `...ForConditionalGeneration` checkpoint (saved in the legacy layout) fills every backbone weight instead of
  leaving them random;
- nothing else: the classes are plain `PreTrainedModel`s, so peft, bitsandbytes, DeepSpeed and the Hub work.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import (
    AutoModel,
    AutoModelForSequenceClassification,
    Qwen2_5_VLConfig,
    Qwen2VLConfig,
    Qwen3VLConfig,
)
from transformers.conversion_mapping import get_checkpoint_conversion_mapping, register_checkpoint_conversion_mapping
from transformers.modeling_outputs import SequenceClassifierOutputWithPast
from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import Qwen2_5_VLPreTrainedModel
from transformers.models.qwen2_vl.modeling_qwen2_vl import Qwen2VLPreTrainedModel
from transformers.models.qwen3_vl.modeling_qwen3_vl import Qwen3VLPreTrainedModel

from .shared_prefix import SHARED_PREFIX_ATTENTION, shared_prefix_mask, shared_prefix_positions


def last_token_index(
    input_ids: torch.Tensor | None, attention_mask: torch.Tensor | None, pad_token_id: int | None
) -> torch.Tensor | int:
    """Index of the last real token of each row, correct under left and right padding.

    The attention mask decides when it is given; otherwise the rightmost token that is not `pad_token_id`.
    (Pooling at the first pad token, as the original ScoreRS code did with pad == eos, reads the same position
    for every candidate of a batch.)
    """
    if attention_mask is not None:
        mask = attention_mask
    elif input_ids is not None and pad_token_id is not None:
        mask = input_ids != pad_token_id
    else:
        return -1
    positions = torch.arange(mask.shape[-1], device=mask.device)
    return (positions * mask.to(positions.dtype)).argmax(-1)


class VLMRewardModelMixin:
    """Backbone + scalar `score` head. Mixed into each family's `PreTrainedModel`.

    Config attributes read at forward time (saved with the model):
    - `score_activation`: None (raw score, the paper's choice) or "softplus" (the released ScoreRS code);
    - `score_mean`, `score_std`: statistics of held-out scores, stored by the evaluation for normalisation.
    """

    base_model_prefix = "model"
    _tp_plan = {}
    _pp_plan = {}

    def __init__(self, config):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.model = AutoModel.from_config(config)
        self.score = nn.Linear(config.get_text_config().hidden_size, self.num_labels, bias=False)
        self.post_init()

    def get_input_embeddings(self):
        return self.model.get_input_embeddings()

    def set_input_embeddings(self, value):
        self.model.set_input_embeddings(value)

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        segment_ids: torch.Tensor | None = None,
        score_index: torch.Tensor | None = None,
        **kwargs,
    ) -> SequenceClassifierOutputWithPast:
        """Plain rows, or (with `segment_ids` and `score_index` from `shared_prefix.pack_groups`) packed groups
        of answers sharing a prefix: then one score per answer, read at its own last token."""
        kwargs.pop("use_cache", None)
        if segment_ids is not None:
            implementation = self.config.get_text_config()._attn_implementation
            if implementation not in SHARED_PREFIX_ATTENTION:
                raise ValueError(f"shared-prefix scoring needs sdpa or eager attention, not {implementation!r}")
            kwargs["position_ids"] = shared_prefix_positions(
                self.model,
                input_ids,
                segment_ids,
                kwargs.get("mm_token_type_ids"),
                kwargs.get("image_grid_thw"),
            )
            dtype = self.get_input_embeddings().weight.dtype
            attention_mask = shared_prefix_mask(segment_ids, dtype, implementation)
        outputs = self.model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False, **kwargs)
        hidden_states = outputs.last_hidden_state
        if score_index is not None:
            rows, index = score_index[:, 0], score_index[:, 1]
        else:
            index = last_token_index(input_ids, attention_mask, self.config.get_text_config().pad_token_id)
            rows = torch.arange(hidden_states.shape[0], device=hidden_states.device)
        # Project only the read-out token: the head is linear, so this equals pooling the per-token scores.
        pooled = hidden_states[rows, index]
        logits = self.score(pooled.to(self.score.weight.dtype))
        if getattr(self.config, "score_activation", None) == "softplus":
            logits = nn.functional.softplus(logits)
        loss = None
        if labels is not None:
            loss = nn.functional.mse_loss(logits.squeeze(-1).float(), labels.float())
        return SequenceClassifierOutputWithPast(
            loss=loss, logits=logits, hidden_states=outputs.hidden_states, attentions=outputs.attentions
        )


class Qwen2VLForSequenceClassification(VLMRewardModelMixin, Qwen2VLPreTrainedModel):
    config_class = Qwen2VLConfig


class Qwen2_5_VLForSequenceClassification(VLMRewardModelMixin, Qwen2_5_VLPreTrainedModel):
    config_class = Qwen2_5_VLConfig


class Qwen3VLForSequenceClassification(VLMRewardModelMixin, Qwen3VLPreTrainedModel):
    config_class = Qwen3VLConfig


# (reward class, the generator whose checkpoint layout it shares)
REWARD_MODEL_CLASSES = {
    Qwen2VLConfig: (Qwen2VLForSequenceClassification, "Qwen2VLForConditionalGeneration"),
    Qwen2_5_VLConfig: (Qwen2_5_VLForSequenceClassification, "Qwen2_5_VLForConditionalGeneration"),
    Qwen3VLConfig: (Qwen3VLForSequenceClassification, "Qwen3VLForConditionalGeneration"),
}

_registered = False


def register_reward_models() -> None:
    """Register the reward classes with the Auto API and the generator's key mapping for each. Idempotent."""
    global _registered
    if _registered:
        return
    for config_class, (reward_class, generator_name) in REWARD_MODEL_CLASSES.items():
        AutoModelForSequenceClassification.register(config_class, reward_class, exist_ok=True)
        mapping = get_checkpoint_conversion_mapping(generator_name)
        if mapping is None:
            mapping = get_checkpoint_conversion_mapping(config_class.model_type)
        if mapping is not None:
            register_checkpoint_conversion_mapping(reward_class.__name__, mapping, overwrite=True)
    _registered = True
