"""`RSRewardTrainer`: TRL's `RewardTrainer` that sees the images.

TRL 1.16's `RewardTrainer` is text-only: it tokenises `prompt + chosen` / `prompt + rejected` with the tokenizer
and its collator builds `input_ids` alone, so images are silently dropped. This subclass changes exactly that:

- rows stay untokenised (`_prepare_dataset`), and `VisionPreferenceCollator` encodes each batch with the
  processor: chosen rows then rejected rows, in the scored transcript (`rs_reward.data.chat`), with
  `pixel_values`, `image_grid_thw` and `mm_token_type_ids`; images of any size mix in one batch;
- the processor (not only its tokenizer) is saved with every checkpoint;
- accuracy is also logged per task and per source, micro (`accuracy/task/<t>`) and macro (`accuracy/task_macro`).

TRL's loss (`-logsigmoid(r_chosen - r_rejected - margin)`, optional `center_rewards_coefficient`) and its
metrics (`accuracy`, `margin`, `min/mean/max_reward`) are inherited unchanged.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass

import torch
from trl import RewardTrainer

from ..data.chat import encode_scored
from ..data.images import open_image


logger = logging.getLogger(__name__)


@dataclass
class VisionPreferenceCollator:
    """Canonical preference rows -> one processor batch: chosen rows first, then rejected rows.

    Also returns `margin` when rows have one, and `task_index` / `source_index` (positions in `groups`) for the
    trainer's per-group accuracy.
    """

    processor: object
    tasks: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    image_root: str | None = None

    def __call__(self, rows: list[dict]) -> dict:
        images = [open_image(row["images"][0], self.image_root) if row["images"] else None for row in rows]
        questions = [row["prompt"][-1]["content"] for row in rows]
        chosen = [row["chosen"][-1]["content"] for row in rows]
        rejected = [row["rejected"][-1]["content"] for row in rows]
        batch = dict(encode_scored(self.processor, images + images, questions + questions, chosen + rejected))
        if "margin" in rows[0]:
            batch["margin"] = torch.tensor([float(row.get("margin") or 0.0) for row in rows])
        if self.tasks:
            batch["task_index"] = torch.tensor([self.tasks.index(row["task"]) for row in rows])
        if self.sources:
            batch["source_index"] = torch.tensor([self.sources.index(row["source"]) for row in rows])
        return batch


class RSRewardTrainer(RewardTrainer):
    """`trl.RewardTrainer` for VLM reward models (see the module docstring for what it adds).

    Args:
        processing_class: the model's processor (`load_processor`); a plain tokenizer trains text-only.
        Everything else as `trl.RewardTrainer`. Pass a model loaded with `load_reward_model` (full, LoRA or QLoRA).

    Example:
        >>> trainer = RSRewardTrainer(model=model, args=RSRewardConfig(...), train_dataset=pairs, processing_class=processor)
        >>> trainer.train()
    """

    def __init__(self, model, args=None, train_dataset=None, eval_dataset=None, processing_class=None, **kwargs):
        processor = processing_class
        tokenizer = getattr(processor, "tokenizer", processor)
        datasets_ = [train_dataset] + (
            list(eval_dataset.values()) if isinstance(eval_dataset, dict) else [eval_dataset]
        )
        self._tasks = _distinct(datasets_, "task")
        self._sources = _distinct(datasets_, "source")
        if kwargs.get("data_collator") is None:
            kwargs["data_collator"] = VisionPreferenceCollator(processor, self._tasks, self._sources)
        if args is not None:
            args.remove_unused_columns = False  # the collator needs the raw rows
        super().__init__(
            model=model,
            args=args,
            train_dataset=train_dataset,
            eval_dataset=eval_dataset,
            processing_class=tokenizer,
            **kwargs,
        )
        self.processing_class = processor  # saved with the model: image processor + tokenizer + chat template
        self._group_counts = {"train": defaultdict(lambda: [0.0, 0.0]), "eval": defaultdict(lambda: [0.0, 0.0])}

    def _prepare_dataset(self, dataset, processing_class, args, dataset_name):
        # Rows stay as they are: the collator encodes them, images included.
        missing = {"images", "prompt", "chosen", "rejected"} - set(dataset.column_names)
        if missing:
            raise ValueError(
                f"the {dataset_name} dataset lacks column(s) {sorted(missing)} of the canonical preference row"
            )
        return dataset

    def _set_signature_columns_if_needed(self):
        if self._signature_columns is None:
            self._signature_columns = ["images", "prompt", "chosen", "rejected", "margin", "task", "source"]

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        task_index = inputs.pop("task_index", None)
        source_index = inputs.pop("source_index", None)
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch)
        with torch.no_grad():
            rewards_chosen, rewards_rejected = torch.chunk(outputs.logits.squeeze(-1), chunks=2)
            correct = (rewards_chosen > rewards_rejected).float()
            mode = "train" if self.model.training else "eval"
            for kind, index, names in (("task", task_index, self._tasks), ("source", source_index, self._sources)):
                if index is None or len(names) < 2:
                    continue
                # Per group: [correct, count], summed over processes so every rank logs the same numbers.
                one_hot = torch.nn.functional.one_hot(index, len(names)).float()
                totals = self.accelerator.reduce(torch.stack([correct @ one_hot, one_hot.sum(0)]), reduction="sum")
                for g, name in enumerate(names):
                    counts = self._group_counts[mode][f"{kind}/{name}"]
                    counts[0] += totals[0, g].item()
                    counts[1] += totals[1, g].item()
        return (loss, outputs) if return_outputs else loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        mode = "train" if self.model.training else "eval"
        prefix = "eval_" if mode == "eval" else ""
        macro = defaultdict(list)
        for name, (correct, count) in sorted(self._group_counts[mode].items()):
            if count:
                logs[f"{prefix}accuracy/{name}"] = correct / count
                macro[name.split("/")[0]].append(correct / count)
        for kind, values in macro.items():
            logs[f"{prefix}accuracy/{kind}_macro"] = sum(values) / len(values)
        self._group_counts[mode].clear()
        super().log(logs, start_time)


def _distinct(datasets_, column: str) -> tuple[str, ...]:
    names = set()
    for dataset in datasets_:
        if dataset is not None and column in dataset.column_names:
            names.update(dataset.unique(column))
    return tuple(sorted(names))
