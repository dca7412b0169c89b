"""The SynthRS foundation: a tiny Qwen2-VL pre-trained until it perceives the world.

The paper starts every stage from Qwen2-VL-7B-Instruct, a model that sees. On a CPU the demo needs a stand-in
that sees SynthRS: this module pre-trains one from the random tiny model, on scenes rendered on the fly (the
stream never repeats, so it cannot be memorised), with two losses in one forward pass:

- the language-model loss on *dense* conversations: one image, many short questions (land cover, presence, and
  per object group its kind, count, colour and position) and a caption, every answer supervised; one vision pass
  feeds a dozen answers, which is where the signal is cheap on two cores;
- an auxiliary perception loss on the merged vision tokens the language model reads (what a real VLM inherits
  from its pre-trained vision encoder): per token the number of object centres in it and their kinds and
  colours, by one head shared by every token, and the land cover. The first `vision_steps` train the vision tower
  and merger on this loss alone (cheap: no language model); the heads are thrown away at the end, and the saved
  model is a plain `Qwen2VLForConditionalGeneration`.

Training resumes from `output_dir/checkpoint` (model, heads, optimizer, step, random state), the model is written
atomically, and `evaluate_perception` measures held-out VQA accuracy by question type on fresh scenes (greedy
generation through the same chat template every later stage uses). The recipes are
`recipes/tiny/foundation/config_vision.yaml` (the vision phase alone), `config.yaml` (the conversation phase from
its model, `first_scene` past the scenes it used), then continuations of it (`config_longer.yaml`, and
`config_isolated*.yaml` with `isolated_turns`: each turn sees the image and its own question only); `make
foundation` runs them in turn.

    >>> from rs_reward.foundation import FoundationConfig, train_foundation
    >>> train_foundation(FoundationConfig(output_dir="runs/foundation", max_steps=100))  # doctest: +SKIP
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .data.chat import ANSWER_MARKER
from .data.synthrs import texts as T
from .data.synthrs.build import make_instruction
from .data.synthrs.world import COLOURS, LAND_COVERS, MAX_COUNT, OBJECT_KINDS, POSITIONS, render, sample_truth


logger = logging.getLogger(__name__)

CAPTION_PROMPT = "Describe this image."
CHECKPOINT = "checkpoint"
MERGED_TOKEN_PX = 28  # patch 14 x merge 2: the side of the image area one merged token (what the LM reads) covers
# Columns of `token_targets`: centres, kinds, colours, then the group's cell and size.
CELL = 1 + len(OBJECT_KINDS) + len(COLOURS)
GROUP_COUNT = CELL + 1
TARGET_COLUMNS = GROUP_COUNT + 1


@dataclass
class FoundationConfig:
    """What `rs-reward foundation` trains.

    > The world (must match the SynthRS recipe of the stages that start from the foundation)

        image_size, object_scale, max_groups, haze_probability

    > Training

        model_name_or_path (the random tiny model), vision_steps, max_steps, batch_size, lm_batch_size,
        learning_rate, vision_learning_rate_scale, warmup_steps, weight_decay, perception_weight,
        grid_weight, kind_weight, caption_probability, presence_of_every_kind, description_checks,
        benchmark_questions, kind_questions_first, isolated_turns, first_scene, seed,
        num_workers

    > Evaluation and saving

        eval_scenes, eval_every, save_every, max_minutes
    """

    output_dir: str = field(default="runs/foundation", metadata={"help": "Folder of the trained foundation."})
    model_name_or_path: str = field(
        default="tiny:qwen2-vl-mini", metadata={"help": "Model to pre-train (a tiny: name or a Qwen2-VL folder)."}
    )
    seed: int = field(default=0, metadata={"help": "Seed of the scene stream, the weights and the sampling."})
    image_size: int = field(default=112, metadata={"help": "SynthRS image side in pixels."})
    object_scale: float = field(default=1.0, metadata={"help": "SynthRS object size factor."})
    max_groups: int = field(default=2, metadata={"help": "SynthRS object groups per scene."})
    haze_probability: float = field(default=0.25, metadata={"help": "SynthRS share of hazy scenes."})
    max_steps: int = field(default=6000, metadata={"help": "Optimizer steps in all (both phases)."})
    vision_steps: int = field(
        default=0,
        metadata={"help": "First steps train the vision tower and merger alone on the perception loss (fast)."},
    )
    batch_size: int = field(default=32, metadata={"help": "Images per step of the vision phase."})
    lm_batch_size: int = field(default=16, metadata={"help": "Conversations (one image each) per step after it."})
    learning_rate: float = field(default=1e-3, metadata={"help": "Peak AdamW learning rate (cosine decay)."})
    vision_learning_rate_scale: float = field(
        default=1.0,
        metadata={
            "help": "Learning rate of the vision tower and merger after the vision phase, as a share of "
            "learning_rate (below 1 keeps what the vision phase learned from being washed out by the new LM loss)."
        },
    )
    warmup_steps: int = field(default=200, metadata={"help": "Linear warm-up steps."})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay."})
    perception_weight: float = field(
        default=1.0, metadata={"help": "Weight of the auxiliary per-token perception loss (0 turns it off)."}
    )
    grid_weight: float = field(
        default=1.0,
        metadata={
            "help": "Weight, inside the perception loss, of the where terms (the token's place, its group's cell "
            "and size) beside the what terms (count, kind, colour, land cover; 1 each)."
        },
    )
    kind_weight: float = field(
        default=1.0,
        metadata={
            "help": "Weight, inside the perception loss, of the object-kind term (the slowest to learn) beside the "
            "other what terms (1 each)."
        },
    )
    caption_probability: float = field(
        default=0.5, metadata={"help": "Share of conversations that end with a caption turn."}
    )
    presence_of_every_kind: bool = field(
        default=False,
        metadata={
            "help": "Ask presence of every kind in each conversation (default: one present and one absent kind, "
            "which lets one answer give the other away)."
        },
    )
    benchmark_questions: int = field(
        default=0,
        metadata={
            "help": "Questions per conversation asked the way the evaluation benchmarks ask them, in turn multiple "
            "choice (answer a letter), grounding (answer a box) and classification (the class list): the answer "
            "formats a pretrained Qwen2-VL-Instruct knows before any SFT."
        },
    )
    description_checks: int = field(
        default=0,
        metadata={
            "help": "Description checks per conversation: is this description (correct, or with one grounded "
            "error) of the image correct? Image-text matching, the read-out a score model builds on."
        },
    )
    kind_questions_first: bool = field(
        default=False,
        metadata={
            "help": "Open each conversation with its kind questions ('What kind of object is in the top left of "
            "the image?'). Asked later, the earlier questions' texts have named the kinds present ('How many "
            "ships are there?'), so most kind answers can be read from the text instead of the image."
        },
    )
    isolated_turns: bool = field(
        default=False,
        metadata={
            "help": "Each turn of a conversation sees the image and its own question only, never the other turns "
            "(packed behind the shared image prefix with a block mask, modeling.shared_prefix): every answer is "
            "then learned as the evaluation asks it, alone, and none can be read from another turn's text."
        },
    )
    first_scene: int = field(
        default=0,
        metadata={
            "help": "Index of the first training scene (a run that starts from another run's model, such as the "
            "conversation phase after a separate vision phase, sets it past the scenes that run used)."
        },
    )
    eval_scenes: int = field(default=300, metadata={"help": "Held-out scenes for the final evaluation."})
    eval_every: int = field(default=1000, metadata={"help": "Steps between quick held-out evaluations (0: never)."})
    save_every: int = field(default=500, metadata={"help": "Steps between resumable checkpoints."})
    max_minutes: float | None = field(
        default=None, metadata={"help": "Stop (and save) after this many minutes of training; resume continues."}
    )
    num_threads: int | None = field(default=None, metadata={"help": "torch CPU threads (default: torch's)."})
    num_workers: int = field(default=1, metadata={"help": "Processes rendering batches ahead of training (0: none)."})

    def __post_init__(self):
        if self.image_size % MERGED_TOKEN_PX:
            raise ValueError(f"image_size must be a multiple of 28 (patch 14 x merge 2), got {self.image_size}")
        if self.batch_size < 1 or self.max_steps < 1:
            raise ValueError("batch_size and max_steps must be >= 1")


# ------------------------------------------------------------------------------------------------ data


def scene_stream_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """Independent streams for training and held-out scenes (never the same scene in both)."""
    return np.random.default_rng([seed, {"train": 11, "test": 12}[split], index])


def make_scene(config: FoundationConfig, split: str, index: int):
    rng = scene_stream_rng(config.seed, split, index)
    scene = sample_truth(rng, f"{split}{index:07d}", config.image_size, config.max_groups)
    image = render(scene, rng, object_scale=config.object_scale, haze_probability=config.haze_probability)
    return scene, image, rng


# The evaluation formats a pretrained instruct model knows: asked in this order by `benchmark_questions`.
BENCHMARK_KINDS = ("mc", "vg", "cls")


def dense_messages(
    scene,
    rng,
    caption_probability: float,
    presence_of_every_kind: bool = False,
    descriptions: int = 0,
    benchmark_questions: int = 0,
    kind_questions_first: bool = False,
) -> list[dict]:
    """One multi-turn conversation about one image: dense closed questions (presence of every kind and
    `descriptions` description checks when asked, `T.dense_training_questions`) and `benchmark_questions` in the
    evaluation's formats (multiple choice, grounding, classification: `make_instruction`, the same wording as the
    benchmarks), in random order (the kind questions first with `kind_questions_first`), then maybe a caption."""
    if presence_of_every_kind or descriptions:
        questions = T.dense_training_questions(scene, rng, descriptions=descriptions)
    else:
        questions = T.dense_questions(scene, rng)
    turns = [(qa.question, qa.answer) for qa in questions]
    if benchmark_questions:
        for i in range(benchmark_questions):
            instruction = make_instruction(scene, rng, BENCHMARK_KINDS[i % len(BENCHMARK_KINDS)])
            turns.append((instruction.question, instruction.answer))
        turns = [turns[i] for i in rng.permutation(len(turns))]
    if kind_questions_first:  # before any text names a kind present; stable, so otherwise in the drawn order
        kind_questions = {qa.question for qa in questions if qa.qtype == "kind"}
        turns.sort(key=lambda turn: turn[0] not in kind_questions)
    if rng.random() < caption_probability:
        turns.append((CAPTION_PROMPT, T.render_text(T.claims_from_scene(scene, rng))))
    messages = []
    for i, (question, answer) in enumerate(turns):
        user = [{"type": "text", "text": question}]
        if i == 0:
            user.insert(0, {"type": "image"})
        messages += [
            {"role": "user", "content": user},
            {"role": "assistant", "content": [{"type": "text", "text": answer}]},
        ]
    return messages


def token_targets(scene) -> tuple[np.ndarray, int]:
    """Per merged token (row-major over the token grid), shape (tokens, TARGET_COLUMNS): how many object centres
    fall in it (capped at MAX_COUNT), which kinds and colours they have (multi-hot), and for a token holding a
    centre the cell of its group (0..8) and the group's size (1..MAX_COUNT; -1 and 0 where it holds none).

    The last two make every token of a group describe the whole group where it lies: the vision tower of Qwen2-VL
    has rotary positions only, so without a target that depends on where a token is, its output says nothing of
    its place (a probe on the first committed foundation read a token's index at 0.14, chance 0.06), and the
    language model, which reads values, not positions, cannot answer "where" (it answered at chance)."""
    side = scene.size // MERGED_TOKEN_PX
    targets = np.zeros((side * side, TARGET_COLUMNS), dtype=np.float32)
    targets[:, CELL] = -1
    for g in scene.groups:
        for obj in g.objects:
            x1, y1, x2, y2 = obj.box
            col = min(side - 1, int((x1 + x2) / 2 // MERGED_TOKEN_PX))
            row = min(side - 1, int((y1 + y2) / 2 // MERGED_TOKEN_PX))
            t = targets[row * side + col]
            t[0] = min(MAX_COUNT, t[0] + 1)
            t[1 + OBJECT_KINDS.index(g.kind)] = 1
            t[1 + len(OBJECT_KINDS) + COLOURS.index(g.colour)] = 1
            if t[CELL] < 0:  # two groups' centres in one token (rare): the first group describes it
                t[CELL], t[GROUP_COUNT] = g.cell, g.count
    return targets, LAND_COVERS.index(scene.land_cover)


def assistant_labels(input_ids: torch.Tensor, tokenizer) -> torch.Tensor:
    """Labels = the tokens of every assistant answer (and its `<|im_end|>`), -100 elsewhere."""
    marker = tokenizer.encode(ANSWER_MARKER, add_special_tokens=False)
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    labels = torch.full_like(input_ids, -100)
    ids = input_ids.tolist()
    for b, row in enumerate(ids):
        i = 0
        while i < len(row):
            if row[i : i + len(marker)] == marker:
                j = i + len(marker)
                k = j
                while k < len(row) and row[k] != end:
                    k += 1
                labels[b, j : k + 1] = input_ids[b, j : k + 1]
                i = k
            i += 1
    return labels


def make_batch(config: FoundationConfig, processor, step: int, with_text: bool = True):
    """The `step`-th training batch: perception targets and either tokenised dense conversations with their
    labels (`with_text`) or the images alone (the vision phase)."""
    images, texts, targets, land, groups = [], [], [], [], []
    # Scene indices of the two phases never overlap: vision steps first, then conversation steps.
    if with_text:
        size = config.lm_batch_size
        first = config.vision_steps * config.batch_size + (step - config.vision_steps) * size
    else:
        size, first = config.batch_size, step * config.batch_size
    for b in range(size):
        scene, image, rng = make_scene(config, "train", config.first_scene + first + b)
        if with_text:
            messages = dense_messages(
                scene,
                rng,
                config.caption_probability,
                config.presence_of_every_kind,
                config.description_checks,
                config.benchmark_questions,
                config.kind_questions_first,
            )
            if config.isolated_turns:  # one single-turn row per question, packed behind the image below
                first_row = len(texts)
                for user, answer in zip(messages[::2], messages[1::2]):
                    question = {"role": "user", "content": [{"type": "image"}, user["content"][-1]]}
                    texts.append(processor.apply_chat_template([question, answer], tokenize=False))
                groups.append(list(range(first_row, len(texts))))
            else:
                texts.append(processor.apply_chat_template(messages, tokenize=False))
        images.append(image)
        c, lc = token_targets(scene)
        targets.append(c)
        land.append(lc)
    if with_text and config.isolated_turns:
        from .modeling.shared_prefix import pack_groups

        rows_images = [images[g] for g, rows in enumerate(groups) for _ in rows]
        rows = processor(text=texts, images=rows_images, padding=True, return_tensors="pt")
        inputs = pack_groups(rows, groups, processor.tokenizer.pad_token_id)
        inputs.pop("score_index")
        inputs["labels"] = assistant_labels(inputs["input_ids"], processor.tokenizer)
    elif with_text:
        inputs = processor(text=texts, images=images, padding=True, return_tensors="pt")
        inputs["labels"] = assistant_labels(inputs["input_ids"], processor.tokenizer)
    else:
        inputs = processor.image_processor(images=images, return_tensors="pt")
    return inputs, torch.from_numpy(np.stack(targets)), torch.tensor(land)  # per-token targets, land cover


class _Batches(torch.utils.data.Dataset):
    def __init__(self, config: FoundationConfig, processor):
        self.config, self.processor = config, processor

    def __len__(self):
        return self.config.max_steps

    def __getitem__(self, step: int):
        return make_batch(self.config, self.processor, step, with_text=step >= self.config.vision_steps)


def answer_loss(model, inputs) -> torch.Tensor:
    """The language-model loss on the labelled (answer) tokens only: the output layer runs on those positions
    alone, not on every token of the long dense conversations."""
    labels = inputs.pop("labels")
    segment_ids = inputs.pop("segment_ids", None)
    if segment_ids is not None:  # isolated turns: each answer sees the image prefix and its own question only
        from .modeling.shared_prefix import shared_prefix_mask, shared_prefix_positions

        implementation = model.config.get_text_config()._attn_implementation
        inputs["position_ids"] = shared_prefix_positions(
            model.model, inputs["input_ids"], segment_ids, inputs.get("mm_token_type_ids"), inputs["image_grid_thw"]
        )
        dtype = model.get_input_embeddings().weight.dtype
        inputs["attention_mask"] = shared_prefix_mask(segment_ids, dtype, implementation)
    hidden = model.model(**inputs).last_hidden_state
    target = labels[:, 1:]
    keep = target != -100
    logits = model.lm_head(hidden[:, :-1][keep])
    return nn.functional.cross_entropy(logits.float(), target[keep])


# ------------------------------------------------------------------------------------------------ model


def _share(hits: torch.Tensor) -> float:
    return hits.float().mean().item() if hits.numel() else float("nan")


class PerceptionHeads(nn.Module):
    """Read-outs of the merged vision tokens, one small head shared by every token (so what is learned at one
    place serves every place): the number of object centres in the token, the kinds and colours present there,
    the cell and size of the group a centre there belongs to, and the token's own place in the grid; and the land
    cover from the mean token."""

    def __init__(self, width: int, tokens: int, hidden: int = 128, grid_weight: float = 1.0, kind_weight: float = 1.0):
        super().__init__()
        self.grid_weight, self.kind_weight = grid_weight, kind_weight
        self.kinds, self.colours = len(OBJECT_KINDS), len(COLOURS)
        self.sizes = (MAX_COUNT + 1, self.kinds + self.colours, len(POSITIONS), MAX_COUNT, tokens)
        self.token_head = nn.Sequential(
            nn.LayerNorm(width), nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, sum(self.sizes))
        )
        self.land_head = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, len(LAND_COVERS)))

    def forward(self, merged: torch.Tensor, targets: torch.Tensor, land: torch.Tensor):
        count_logits, attributes, cell_logits, size_logits, place_logits = self.token_head(merged).split(
            self.sizes, dim=-1
        )
        count = targets[..., 0].long()
        occupied = count > 0
        cell, group_size = targets[..., CELL].long()[occupied], targets[..., GROUP_COUNT].long()[occupied] - 1
        place = torch.arange(merged.shape[1]).expand(merged.shape[:2])
        # Most tokens are empty: the occupied ones weigh as much in all as the empty ones.
        weight = torch.where(occupied, 0.5 / occupied.float().mean().clamp(min=1e-3), 0.5 / (~occupied).float().mean())
        count_loss = nn.functional.cross_entropy(count_logits.flatten(0, 1), count.flatten(), reduction="none")
        attribute_loss = nn.functional.binary_cross_entropy_with_logits(
            attributes, targets[..., 1:CELL], reduction="none"
        )
        land_logits = self.land_head(merged.mean(1))
        # What is there: count, kind and colour (apart, so the slow kinds are not averaged with the fast
        # colours), land cover.
        losses = [
            (count_loss * weight.flatten()).mean(),
            self.kind_weight * (attribute_loss[..., : self.kinds].mean(-1) * weight).mean(),
            (attribute_loss[..., self.kinds :].mean(-1) * weight).mean(),
            nn.functional.cross_entropy(land_logits, land),
        ]
        # Where it is: learned within a few hundred steps even when weighed lightly.
        grid = [nn.functional.cross_entropy(place_logits.flatten(0, 1), place.flatten())]
        if occupied.any():
            grid += [
                nn.functional.cross_entropy(cell_logits[occupied], cell),
                nn.functional.cross_entropy(size_logits[occupied], group_size),
            ]
        with torch.no_grad():
            predicted = attributes > 0
            truth = targets[..., 1:CELL] > 0.5
            kinds_ok = (predicted[..., : self.kinds] == truth[..., : self.kinds]).all(-1)
            colours_ok = (predicted[..., self.kinds :] == truth[..., self.kinds :]).all(-1)

            accuracy = {
                "kind": _share(kinds_ok[occupied]),
                "colour": _share(colours_ok[occupied]),
                "count": _share((count_logits.argmax(-1) == count)[occupied]),
                "empty": _share((count_logits.argmax(-1) == 0)[~occupied]),
                "land_cover": _share(land_logits.argmax(-1) == land),
                "place": _share(place_logits.argmax(-1) == place),
                "cell": _share(cell_logits[occupied].argmax(-1) == cell),
                "group_size": _share(size_logits[occupied].argmax(-1) == group_size),
            }
        return (sum(losses) + self.grid_weight * sum(grid)) / 3, accuracy


class _MergedTokens:
    """Captures the merged vision tokens (what the language model reads) from the vision tower's forward."""

    def __init__(self, visual):
        self.value = None
        self.handle = visual.register_forward_hook(self)

    def __call__(self, module, args, output):
        self.value = output.pooler_output

    def remove(self):
        self.handle.remove()


def _lr_at(step: int, config: FoundationConfig) -> float:
    """Warm-up then cosine decay, once per phase (vision alone, then the whole model)."""
    start, end = (0, config.vision_steps) if step < config.vision_steps else (config.vision_steps, config.max_steps)
    step -= start
    if step < config.warmup_steps:
        return config.learning_rate * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, end - start - config.warmup_steps)
    return config.learning_rate * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


# ------------------------------------------------------------------------------------------------ evaluation


def perception_rows(config: FoundationConfig, scenes: int) -> list[dict]:
    """Held-out questions on fresh scenes: every question type of `dense_questions` (presence: one present and
    one absent kind), one description check (correct half the time), and one multiple-choice and one grounding
    question in the benchmarks' formats, each with its scene."""
    rows = []
    for index in range(scenes):
        scene, image, rng = make_scene(config, "test", index)
        for qa in [*T.dense_questions(scene, rng), T.description_check(scene, rng)]:
            rows.append({"image": image, "question": qa.question, "answer": qa.answer, "qtype": qa.qtype})
        for kind, qtype in (("mc", "multiple_choice"), ("vg", "grounding")):
            instruction = make_instruction(scene, rng, kind)
            if instruction.kind == kind:  # grounding needs an object a phrase names uniquely
                rows.append(
                    {"image": image, "question": instruction.question, "answer": instruction.answer, "qtype": qtype}
                )
    return rows


def _correct(qtype: str, answer: str, reference: str, size: int) -> bool:
    """Strict match; the letter for multiple choice; IoU >= 0.5 for grounding (boxes in pixels)."""
    from .answers import exact_match, extract_choice, iou, parse_box

    if qtype == "multiple_choice":
        return extract_choice(answer) == reference
    if qtype == "grounding":
        return iou(parse_box(answer, size, size), parse_box(reference, size, size)) >= 0.5
    return exact_match(answer, reference)


@torch.no_grad()
def evaluate_perception(model, processor, config: FoundationConfig, scenes: int | None = None) -> dict:
    """Held-out accuracy per question type (greedy answers, strict match) on fresh SynthRS scenes, with chance."""
    from .data.chat import generation_prompt

    was_training = model.training
    model.eval()
    # Boxes last: a batch of short answers stops at their end tokens, long before a box's 16 tokens.
    rows = sorted(perception_rows(config, scenes or config.eval_scenes), key=lambda r: r["qtype"] == "grounding")
    tokenizer = processor.tokenizer
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    hits = defaultdict(list)
    try:
        for start in range(0, len(rows), 64):
            batch = rows[start : start + 64]
            texts = [generation_prompt(processor, r["question"]) for r in batch]
            inputs = processor(text=texts, images=[r["image"] for r in batch], padding=True, return_tensors="pt")
            # A box in pixels is 16 tokens ("[27, 42, 39, 53]"); every other answer stops at its end token.
            output = model.generate(**inputs, max_new_tokens=20, do_sample=False, pad_token_id=tokenizer.pad_token_id)
            answers = tokenizer.batch_decode(output[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
            for row, answer in zip(batch, answers):
                hits[row["qtype"]].append(float(_correct(row["qtype"], answer, row["answer"], config.image_size)))
    finally:
        tokenizer.padding_side = side
        model.train(was_training)
    return {
        qtype: {"accuracy": float(np.mean(v)), "chance": T.QTYPE_CHANCE[qtype], "questions": len(v)}
        for qtype, v in sorted(hits.items())
    }


# ------------------------------------------------------------------------------------------------ training


def _save_atomic(folder: Path, write) -> None:
    staging = folder.with_name(f".{folder.name}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    write(staging)
    old = folder.with_name(f".{folder.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        folder.rename(old)
    staging.rename(folder)
    shutil.rmtree(old, ignore_errors=True)


def _earlier_run(model_name_or_path: str) -> tuple[str, dict] | None:
    """What the foundation run this one starts from did, for the model card and the report: ("started_from",
    its steps, minutes and config) when it was a separate vision phase, ("continued_from", the same, its
    perception and its own `started_from`) when it was a conversation run (a later phase continues it); None when
    the start is not a foundation run (a random tiny model)."""
    from .modeling.tiny import resolve_model_path

    card = Path(resolve_model_path(model_name_or_path)) / "metrics.json"
    if not card.is_file():
        return None
    earlier = json.loads(card.read_text())
    summary = {"model": model_name_or_path, **{k: earlier[k] for k in ("steps", "minutes", "config") if k in earlier}}
    if earlier.get("config", {}).get("vision_steps", 0) >= earlier.get("steps", 0):
        return "started_from", summary
    keep = ("perception", "started_from", "continued_from")
    return "continued_from", {**summary, **{k: earlier[k] for k in keep if k in earlier}}


def foundation_runs(card: dict) -> list[dict]:
    """The runs that made a foundation, oldest first, from its `metrics.json` (the last is the card's own run):
    each with its `steps` (`conversation_steps` of them after its own vision steps), `minutes`, `config`, `model`
    (for an earlier run, the folder the run after it started from) and `what` it trained: "vision steps" (a
    separate vision phase), "conversation steps" (the first conversation run, or one run of both phases), then for
    each continuation "steps in the benchmark formats", "steps with isolated turns", "steps with kind questions
    first" or "more conversation steps"."""
    chain, node = [], card
    while node:
        chain.append(node)
        node = node.get("continued_from")
    chain.reverse()
    runs = [{**chain[0]["started_from"], "what": "vision steps"}] if chain[0].get("started_from") else []
    for i, run in enumerate(chain):
        config = run.get("config", {})
        if i == 0:
            what = "conversation steps"
        elif config.get("benchmark_questions"):
            what = "steps in the benchmark formats"
        elif config.get("isolated_turns"):
            what = "steps with isolated turns"
        elif config.get("kind_questions_first"):
            what = "steps with kind questions first"
        else:
            what = "more conversation steps"
        kept = {k: v for k, v in run.items() if k not in ("continued_from", "started_from")}
        runs.append({**kept, "what": what, "conversation_steps": run["steps"] - config.get("vision_steps", 0)})
    return runs


def train_foundation(config: FoundationConfig) -> dict:
    """Pre-train (or resume) the foundation; return its held-out perception metrics (also in `metrics.json`)."""
    from transformers import Qwen2VLForConditionalGeneration, set_seed

    from .modeling.processing import load_processor
    from .modeling.tiny import resolve_model_path

    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    output = Path(config.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    checkpoint = output / CHECKPOINT
    set_seed(config.seed)
    source = str(checkpoint / "model") if (checkpoint / "state.pt").is_file() else config.model_name_or_path
    earlier = _earlier_run(config.model_name_or_path)
    model = Qwen2VLForConditionalGeneration.from_pretrained(resolve_model_path(source), dtype=torch.float32)
    pixels = config.image_size * config.image_size
    processor = load_processor(resolve_model_path(source), min_pixels=pixels, max_pixels=pixels)
    tokens = (config.image_size // MERGED_TOKEN_PX) ** 2
    heads = PerceptionHeads(
        model.config.text_config.hidden_size, tokens, grid_weight=config.grid_weight, kind_weight=config.kind_weight
    )
    vision = list(model.model.visual.parameters())
    in_vision = {id(p) for p in vision}
    rest = [p for p in model.parameters() if id(p) not in in_vision] + list(heads.parameters())
    params = vision + rest
    optimizer = torch.optim.AdamW(
        [{"params": vision, "vision": True}, {"params": rest, "vision": False}],
        lr=config.learning_rate,
        weight_decay=config.weight_decay,
    )
    step, history, elapsed = 0, [], 0.0
    if (checkpoint / "state.pt").is_file():
        state = torch.load(checkpoint / "state.pt", weights_only=False)
        heads.load_state_dict(state["heads"])
        optimizer.load_state_dict(state["optimizer"])
        step, history, elapsed = state["step"], state["history"], state.get("minutes", 0.0)
        torch.set_rng_state(state["torch_rng"])
        logger.info("resumed from %s at step %d", checkpoint, step)

    def save_checkpoint():
        def write(folder):
            model.save_pretrained(folder / "model")
            processor.save_pretrained(folder / "model")
            state = {
                "heads": heads.state_dict(),
                "optimizer": optimizer.state_dict(),
                "step": step,
                "history": history,
                "torch_rng": torch.get_rng_state(),
                "minutes": elapsed + (time.monotonic() - started) / 60,
            }
            torch.save(state, folder / "state.pt")

        _save_atomic(checkpoint, write)

    merged = _MergedTokens(model.model.visual)
    model.train()
    started = time.monotonic()
    window = defaultdict(list)
    # One worker renders and tokenises the next batches while this process trains (batch k depends only on k).
    batches = torch.utils.data.DataLoader(
        _Batches(config, processor),
        batch_size=None,
        sampler=range(step, config.max_steps),
        num_workers=config.num_workers,
        prefetch_factor=4 if config.num_workers else None,
        persistent_workers=False,
    )
    try:
        for inputs, targets, land in batches:
            vision_phase = step < config.vision_steps
            for group in optimizer.param_groups:
                scale = config.vision_learning_rate_scale if group["vision"] and not vision_phase else 1.0
                group["lr"] = _lr_at(step, config) * scale
            if vision_phase:
                model.model.visual(inputs["pixel_values"], grid_thw=inputs["image_grid_thw"])
                lm_loss = loss = torch.zeros(())
            else:
                lm_loss = loss = answer_loss(model, inputs)
            tokens_of = merged.value.view(len(targets), tokens, -1)
            if vision_phase or config.perception_weight > 0:
                perception_loss, accuracy = heads(tokens_of, targets, land)
                loss = loss + (1.0 if vision_phase else config.perception_weight) * perception_loss
                for k, v in accuracy.items():
                    window[f"probe_{k}"].append(v)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if not vision_phase:
                window["lm_loss"].append(lm_loss.item())
            step += 1
            if step % 50 == 0 or step == config.max_steps:
                record = {"step": step, "minutes": round((time.monotonic() - started) / 60, 2)}
                record.update({k: round(float(np.nanmean(v)), 4) for k, v in window.items()})
                history.append(record)
                window.clear()
                logger.info("foundation %s", json.dumps(record))
            if config.eval_every and step % config.eval_every == 0 and config.vision_steps < step < config.max_steps:
                quick = evaluate_perception(model, processor, config, scenes=60)
                history.append({"step": step, "eval": {k: round(v["accuracy"], 3) for k, v in quick.items()}})
                logger.info("foundation eval at %d: %s", step, history[-1]["eval"])
            if step % config.save_every == 0 and step < config.max_steps:
                save_checkpoint()
            if config.max_minutes is not None and time.monotonic() - started > 60 * config.max_minutes:
                save_checkpoint()
                logger.info("stopped after %.1f minutes at step %d; rerun to resume", config.max_minutes, step)
                return {"stopped_at": step}
    finally:
        merged.remove()

    metrics = evaluate_perception(model, processor, config)
    minutes = elapsed + (time.monotonic() - started) / 60
    result = {
        "perception": metrics,
        **(dict([earlier]) if earlier else {}),
        "steps": step,
        "minutes": round(minutes, 1),
        "parameters": f"{sum(p.numel() for p in model.parameters()) / 1e6:.1f} M",
        "machine": f"{os.cpu_count()} CPU cores" if not torch.cuda.is_available() else torch.cuda.get_device_name(),
        "config": asdict(config),
        "history": history,
    }

    def write_final(folder):
        model.save_pretrained(folder)
        processor.save_pretrained(folder)
        (folder / "metrics.json").write_text(json.dumps(result, indent=1))

    _save_atomic(output / "model", write_final)
    shutil.rmtree(checkpoint, ignore_errors=True)
    return result


__all__ = ["FoundationConfig", "evaluate_perception", "foundation_runs", "train_foundation", "dense_messages"]
