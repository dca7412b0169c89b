"""Sequence-classification (reward / score) heads for the Qwen VL family.

transformers 5.23 has no `...ForSequenceClassification` for Qwen2-VL, Qwen2.5-VL or Qwen3-VL. Each class here
is the backbone (`AutoModel.from_config`, which accepts `pixel_values`, `image_grid_thw` and `mm_token_type_ids`)
plus a bias-free linear `score` head read at the last non-pad token of each row, and optionally (config
`score_likelihood_weight` > 0) the generator's own `lm_head` kept beside it: the score then adds that weight times
the mean log-likelihood of the answer's tokens given the image and question (`answer_log_likelihood`). That term
judges each claim at the token where it is written; the last-token head must learn to carry a wrong word to the end.

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


def _answer_start(ids: list[int], marker: list[int], end: int) -> int:
    """The position after the last `marker` in `ids[:end]` (1 when there is none: every token but the first)."""
    width = len(marker)
    for start in range(end - width, -1, -1):
        if ids[start : start + width] == marker:
            return start + width
    return 1


def answer_log_likelihood(
    lm_head: nn.Module,
    hidden_states: torch.Tensor,
    input_ids: torch.Tensor,
    segment_ids: torch.Tensor | None,
    rows: torch.Tensor,
    index: torch.Tensor,
    marker: list[int],
) -> torch.Tensor:
    """Mean log-probability of each scored answer's tokens (from the answer marker to its last token, the end of
    turn included), one value per (row, index) read-out, for plain rows and for shared-prefix packed groups alike.

    In a packed group an answer's tokens are the prefix's tokens after the marker (the start the answers share)
    and its own segment; the first token of the segment is predicted from the prefix's last token, as when the
    answer is scored alone, so a packed answer gets the value its plain row gets."""
    ids = input_ids.tolist()
    rows_at, predictors_at, targets_at, answer_of = [], [], [], []
    for answer, (row, last) in enumerate(zip(rows.tolist(), index.tolist())):
        if segment_ids is None:
            start = _answer_start(ids[row], marker, last + 1)
            targets = torch.arange(start, last + 1, device=input_ids.device)
            predictors = targets - 1
        else:
            segments = segment_ids[row]
            prefix_end = int((segments == 0).sum())
            start = _answer_start(ids[row], marker, prefix_end)
            shared = torch.arange(start, prefix_end, device=input_ids.device)
            own = (segments == segments[last]).nonzero().squeeze(-1)
            targets = torch.cat([shared, own])
            predictors = torch.cat([shared - 1, own.new_full((1,), prefix_end - 1), own[:-1]])
        rows_at.append(torch.full_like(predictors, row))
        predictors_at.append(predictors)
        targets_at.append(targets)
        answer_of.append(torch.full_like(predictors, answer))
    rows_at, predictors_at, answer_of = torch.cat(rows_at), torch.cat(predictors_at), torch.cat(answer_of)
    targets_at = torch.cat(targets_at)
    # The output layer runs on the predicting positions only (not on the image and the question).
    log_probs = torch.log_softmax(lm_head(hidden_states[rows_at, predictors_at]).float(), dim=-1)
    token_log_probs = log_probs.gather(1, input_ids[rows_at, targets_at].unsqueeze(-1)).squeeze(-1)
    answers = len(index)
    total = token_log_probs.new_zeros(answers).index_add(0, answer_of, token_log_probs)
    return total / torch.bincount(answer_of, minlength=answers).to(total.dtype)


class VLMRewardModelMixin:
    """Backbone + scalar `score` head. Mixed into each family's `PreTrainedModel`.

    Config attributes read at forward time (saved with the model):
    - `score_activation`: None (raw score, the paper's choice) or "softplus" (the released ScoreRS code);
    - `score_mean`, `score_std`: statistics of held-out scores, stored by the evaluation for normalisation;
    - `score_likelihood_weight` (0 or absent: the paper's head alone) and `score_answer_marker` (the token ids that
      open the answer, `<|im_start|>assistant\n` in the Qwen template): the likelihood term and where it reads.
    """

    base_model_prefix = "model"
    _tp_plan = {}
    _pp_plan = {}

    def __init__(self, config):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.model = AutoModel.from_config(config)
        text = config.get_text_config()
        self.score = nn.Linear(text.hidden_size, self.num_labels, bias=False)
        if getattr(config, "score_likelihood_weight", 0):
            self.lm_head = nn.Linear(text.hidden_size, text.vocab_size, bias=False)
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
        weight = getattr(self.config, "score_likelihood_weight", 0)
        if weight:
            likelihood = answer_log_likelihood(
                self.lm_head,
                hidden_states,
                input_ids,
                segment_ids,
                rows,
                index,
                self.config.score_answer_marker,
            )
            logits = logits + weight * likelihood.unsqueeze(-1).to(logits.dtype)
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
