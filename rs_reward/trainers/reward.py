"""`RSRewardTrainer`: TRL's `RewardTrainer` that sees the images.

TRL 1.16's `RewardTrainer` is text-only: it tokenises `prompt + chosen` / `prompt + rejected` with the tokenizer
and its collator builds `input_ids` alone, so images are silently dropped. This subclass changes exactly that:

- rows stay untokenised (`_prepare_dataset`), and `VisionPreferenceCollator` encodes each batch with the
  processor: chosen rows then rejected rows, in the scored transcript (`rs_reward.data.chat`), with
  `pixel_values`, `image_grid_thw` and `mm_token_type_ids`; images of any size mix in one batch;
- with `shared_prefix` (the default) each pair becomes one packed row, the image and question once and both
  answers behind them (`rs_reward.modeling.shared_prefix`): the same scores, loss and gradients, one vision pass;
  with `group_rejected` (the default) an item's pairs (same image, question and chosen answer) become one row,
  the chosen and every rejected answer behind one prefix (`per_device_train_batch_size` then counts items);
- the processor (not only its tokenizer) is saved with every checkpoint;
- accuracy is also logged per task and per source, micro (`accuracy/task/<t>`) and macro (`accuracy/task_macro`).

TRL's loss (`-logsigmoid(r_chosen - r_rejected - margin)`, optional `center_rewards_coefficient`) and its
metrics (`accuracy`, `margin`, `min/mean/max_reward`) are inherited unchanged.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from trl import RewardTrainer

from ..data.chat import encode_scored, resolves_choices, truncate_texts
from ..data.images import open_image
from ..data.preference import group_items
from ..modeling.processing import get_tokenizer
from ..modeling.shared_prefix import pack_groups, supports_shared_prefix
from .resume import CheckpointResumeMixin


logger = logging.getLogger(__name__)


@dataclass
class VisionPreferenceCollator:
    """Canonical preference rows -> one processor batch whose model output is chosen scores, then rejected scores.

    A row is a pair (`rejected`: one message list) or an item (`rejected`: a list of them, `group_items`); an item
    counts as one pair per rejected answer. Plainly each pair is two rows (chosen rows first, then rejected rows);
    with `shared_prefix` each row becomes one packed sequence (image and question once, then the chosen and every
    rejected answer) and `score_index` reads the chosen answer once per pair, so TRL's loss (the mean over pairs)
    is the expanded-pair loss. Also returns, per pair, `margin` when rows have one and `task_index` /
    `source_index` (positions in `tasks` / `sources`) for the trainer's per-group accuracy.
    """

    processor: object
    tasks: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    image_root: str | None = None
    shared_prefix: bool = False
    max_text_tokens: int | None = None  # each question and answer cut to this many tokens (`truncated` counts them)
    resolve_choices: bool = False  # multiple-choice answers read with their option (the model's config says)
    truncated: int = 0

    def __call__(self, rows: list[dict]) -> dict:
        images = [open_image(row["images"][0], self.image_root) if row["images"] else None for row in rows]
        questions = self._cut([row["prompt"][-1]["content"] for row in rows])
        chosen = self._cut([row["chosen"][-1]["content"] for row in rows])
        rejected = [self._cut(rejected_texts(row)) for row in rows]
        pairs = [(i, k) for i, texts in enumerate(rejected) for k in range(len(texts))]
        if self.shared_prefix:
            starts = [0]
            for texts in rejected:
                starts.append(starts[-1] + 1 + len(texts))
            answers = [text for c, texts in zip(chosen, rejected) for text in (c, *texts)]
            expand = [i for i, texts in enumerate(rejected) for _ in range(1 + len(texts))]
            batch = dict(
                encode_scored(
                    self.processor,
                    [images[i] for i in expand],
                    [questions[i] for i in expand],
                    answers,
                    resolve_choices=self.resolve_choices,
                )
            )
            groups = [list(range(starts[i], starts[i + 1])) for i in range(len(rows))]
            batch = pack_groups(batch, groups, get_tokenizer(self.processor).pad_token_id)
            read = [starts[i] for i, _ in pairs] + [starts[i] + 1 + k for i, k in pairs]
            batch["score_index"] = batch["score_index"][read]
        else:
            index = [i for i, _ in pairs]
            batch = dict(
                encode_scored(
                    self.processor,
                    [images[i] for i in index] * 2,
                    [questions[i] for i in index] * 2,
                    [chosen[i] for i in index] + [rejected[i][k] for i, k in pairs],
                    resolve_choices=self.resolve_choices,
                )
            )
        if "margin" in rows[0]:
            batch["margin"] = torch.tensor([float(rows[i].get("margin") or 0.0) for i, _ in pairs])
        if self.tasks:
            batch["task_index"] = torch.tensor([self.tasks.index(rows[i]["task"]) for i, _ in pairs])
        if self.sources:
            batch["source_index"] = torch.tensor([self.sources.index(rows[i]["source"]) for i, _ in pairs])
        return batch

    def _cut(self, texts: list[str]) -> list[str]:
        if self.max_text_tokens is None:
            return texts
        texts, _, cut = truncate_texts(get_tokenizer(self.processor), texts, self.max_text_tokens)
        self.truncated += cut
        return texts


def rejected_texts(row: dict) -> list[str]:
    """The rejected answers of a pair row (one) or of an item row (`group_items`: several)."""
    value = row["rejected"]
    if value and isinstance(value[0], list):
        return [messages[-1]["content"] for messages in value]
    return [value[-1]["content"]]


class RSRewardTrainer(CheckpointResumeMixin, RewardTrainer):
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
            shared = bool(getattr(args, "shared_prefix", False))
            if shared and not supports_shared_prefix(model):
                logger.warning("shared_prefix needs sdpa or eager attention: each pair is scored as two rows")
                shared = False
            kwargs["data_collator"] = VisionPreferenceCollator(
                processor,
                self._tasks,
                self._sources,
                shared_prefix=shared,
                max_text_tokens=getattr(args, "max_length", None),  # TRL's RewardConfig.max_length, per text here
                resolve_choices=resolves_choices(model),
            )
        collator = kwargs["data_collator"]
        packed = isinstance(collator, VisionPreferenceCollator) and collator.shared_prefix
        self._group_items = packed and bool(getattr(args, "group_rejected", False))
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
        # Rows stay untokenised: the collator encodes them, images included. With shared_prefix and
        # group_rejected, an item's pairs become one row (its chosen and every rejected answer).
        missing = {"images", "prompt", "chosen", "rejected"} - set(dataset.column_names)
        if missing:
            raise ValueError(
                f"the {dataset_name} dataset lacks column(s) {sorted(missing)} of the canonical preference row"
            )
        if self._group_items:
            pairs = len(dataset)
            dataset = group_items(dataset)
            logger.info(
                "%s: %d pairs grouped into %d items (chosen + rejected answers)", dataset_name, pairs, len(dataset)
            )
        return dataset

    def _set_signature_columns_if_needed(self):
        if self._signature_columns is None:
            self._signature_columns = ["images", "prompt", "chosen", "rejected", "margin", "task", "source"]

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        task_index = inputs.pop("task_index", None)
        source_index = inputs.pop("source_index", None)
        if self._group_items and self.accelerator.num_processes > 1:
            # Items hold 1..K pairs, so ranks hold different numbers of pairs: TRL's gather of the per-pair rewards
            # needs equal sizes, and DDP's mean over ranks must weigh each rank by its pairs to stay the mean over
            # all pairs (as with expanded pairs).
            with _gather_of_unequal_sizes(self.accelerator):
                loss, outputs = super().compute_loss(model, inputs, return_outputs=True)
            pairs = torch.tensor(float(len(outputs.logits) // 2), device=loss.device)
            loss = loss * pairs * self.accelerator.num_processes / self.accelerator.reduce(pairs.clone(), "sum")
        else:
            loss, outputs = super().compute_loss(
                model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch
            )
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


@contextmanager
def _gather_of_unequal_sizes(accelerator):
    """`accelerator.gather` that accepts tensors whose first dimension differs across processes: padded with NaN
    rows to the largest, gathered, and the padding dropped (the rewards themselves are finite)."""
    gather = accelerator.gather

    def padded(tensor):
        full = gather(accelerator.pad_across_processes(tensor, dim=0, pad_index=float("nan")))
        real = ~torch.isnan(full.reshape(len(full), -1)).all(-1)
        return full[real]

    accelerator.gather = padded
    try:
        yield
    finally:
        accelerator.gather = gather


def _distinct(datasets_, column: str) -> tuple[str, ...]:
    names = set()
    for dataset in datasets_:
        if dataset is not None and column in dataset.column_names:
            names.update(dataset.unique(column))
    return tuple(sorted(names))
