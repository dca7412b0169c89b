"""One evaluation harness: VLMs by generation (greedy by default) and CLIP by embeddings.

VLM rows (canonical eval rows, `rs_reward.data.evalsets`) are answered in batches and scored per task:
`cls` / `vqa` strict normalised match, `mc` the extracted option letter, `vg` Acc@IoU >= 0.5 (and mean IoU) with
`parse_box`, `caption` fact precision / recall / Jaccard on SynthRS (facts parsed back from the caption).
CLIP: zero-shot classification with the paper's prompt templates (top-1 / top-5) and image-text retrieval
(R@1 / R@5 / R@10, both directions).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from ..answers import exact_match, extract_choice, iou, parse_box
from ..data.chat import GROUNDING_TEMPLATE, MC_SUFFIX, generation_prompt
from ..data.images import open_image


CLIP_TEMPLATES = ("a satellite photo of {}.", "a satellite image of {}")  # the paper's (SkyScript, ScoreRS)


def load_eval_set(eval_args, output: Path, *, questions: bool) -> tuple[list[dict], list[str] | None]:
    """The rows of `eval_args.eval_data` (any layout `read_eval_rows` reads; `max_rows` per task) and the class
    names of a classification folder; unusable rows go to `output/rejects.jsonl`. `questions`: the rows must
    carry a question (a VLM's eval set; a CLIP's need not)."""
    import logging

    from ..data.evalsets import check_eval_rows, first_per_task, read_eval_rows
    from ..data.io import Rejects

    rejects = Rejects()
    rows, class_names = read_eval_rows(eval_args.eval_data, eval_args.eval_format, rejects)
    rows = check_eval_rows(rows, rejects, questions=questions)
    if eval_args.max_rows is not None:
        rows = first_per_task(rows, eval_args.max_rows)
    rejects.write(output / "rejects.jsonl")
    logging.getLogger(__name__).info("%d eval rows; %s", len(rows), rejects.summary())
    return rows, class_names


def write_eval_result(output: Path, model: str, data: str, metrics: dict, table: str, predictions=()) -> None:
    """`metrics.json` (model, data, metrics), `predictions.jsonl` and `report.md` of an evaluation."""
    import json

    from ..report import write_atomic

    result = {"model": model, "data": data, "metrics": metrics}
    write_atomic(output / "metrics.json", json.dumps(result, indent=2) + "\n")
    write_atomic(output / "predictions.jsonl", "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in predictions))
    write_atomic(output / "report.md", f"# Evaluation of `{model}`\n\nData: `{data}`.\n\n{table}\n")


def vlm_prompt(row: dict, grounding_template: str = GROUNDING_TEMPLATE) -> str:
    if row["task"] == "vg":
        return grounding_template.format(row["question"])
    if row["task"] == "mc" and row.get("choices"):
        return row["question"] + MC_SUFFIX.format(row["choices"])
    return row["question"]


@torch.no_grad()
def generate_answers(
    model,
    processor,
    rows: list[dict],
    *,
    batch_size: int = 16,
    max_new_tokens: int = 64,
    do_sample: bool = False,
    temperature: float = 1.0,
    num_return_sequences: int = 1,
    grounding_template: str = GROUNDING_TEMPLATE,
) -> list[list[str]]:
    """Answers for each row (a list of `num_return_sequences`), batched, left-padded."""
    tokenizer = processor.tokenizer
    side, tokenizer.padding_side = tokenizer.padding_side, "left"
    device = next(model.parameters()).device
    answers = []
    try:
        for start in range(0, len(rows), batch_size):
            batch_rows = rows[start : start + batch_size]
            images = [open_image(r["images"][0]) for r in batch_rows if r.get("images")]
            texts = [
                generation_prompt(processor, vlm_prompt(r, grounding_template), bool(r.get("images")))
                for r in batch_rows
            ]
            inputs = processor(text=texts, images=images or None, padding=True, return_tensors="pt").to(device)
            output = model.generate(
                **inputs,
                max_new_tokens=max_new_tokens,
                do_sample=do_sample,
                temperature=temperature if do_sample else None,
                top_p=None,
                top_k=None,
                num_return_sequences=num_return_sequences,
                pad_token_id=tokenizer.pad_token_id,
            )
            new = tokenizer.batch_decode(output[:, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
            answers += [new[i : i + num_return_sequences] for i in range(0, len(new), num_return_sequences)]
    finally:
        tokenizer.padding_side = side
    return answers


def score_answer(row: dict, prediction: str, scene=None) -> dict:
    """Per-row metric(s) for the row's task."""
    task = row["task"]
    if task in ("cls", "vqa"):
        return {"correct": float(exact_match(prediction, row["answer"]))}
    if task == "mc":
        return {"correct": float(extract_choice(prediction) == row["answer"].strip().rstrip(".").upper())}
    if task == "vg":
        width, height = row.get("size") or open_image(row["images"][0]).size
        value = iou(parse_box(prediction, width, height), row["bbox"])
        return {"correct": float(value >= 0.5), "iou": value}
    if task == "caption":
        if scene is None:
            return {}
        from ..data.synthrs.texts import caption_fact_scores

        return {f"fact_{k}": v for k, v in caption_fact_scores(prediction, scene).items()}
    raise ValueError(f"unknown task {task!r}")


def aggregate(rows: list[dict], scores: list[dict]) -> dict:
    """Mean of every metric per task (and per question type for VQA)."""
    groups = defaultdict(lambda: defaultdict(list))
    for row, score in zip(rows, scores):
        for key, value in score.items():
            groups[row["task"]][key].append(value)
            if row.get("qtype") and row["task"] == "vqa":
                groups[f"vqa/{row['qtype']}"][key].append(value)
    return {
        task: {**{k: float(np.mean(v)) for k, v in metrics.items()}, "rows": len(next(iter(metrics.values())))}
        for task, metrics in sorted(groups.items())
    }


def evaluate_vlm(
    model,
    processor,
    rows: list[dict],
    *,
    scenes: dict | None = None,
    batch_size: int = 16,
    max_new_tokens: int = 64,
    grounding_template: str = GROUNDING_TEMPLATE,
) -> tuple[dict, list[dict]]:
    """(metrics per task, predictions). `scenes` (SynthRS ground truth by scene id) enables caption facts."""
    import os

    rows = dedupe_captions(rows)
    # Rows of one task answer alike (a word, a letter, a box, a caption): generating them together lets a batch
    # of short answers stop after a few tokens instead of waiting for the captions mixed into it.
    order = sorted(range(len(rows)), key=lambda i: rows[i]["task"])
    generated = generate_answers(
        model,
        processor,
        [rows[i] for i in order],
        batch_size=batch_size,
        max_new_tokens=max_new_tokens,
        grounding_template=grounding_template,
    )
    answers = [None] * len(rows)
    for i, answer in zip(order, generated):
        answers[i] = answer
    predictions, scores = [], []
    for row, (answer,) in zip(rows, answers):
        scene = None
        if scenes is not None and row.get("images"):
            scene = scenes.get(os.path.splitext(os.path.basename(row["images"][0]))[0])
        score = score_answer(row, answer, scene)
        scores.append(score)
        predictions.append(
            {
                "id": row["id"],
                "task": row["task"],
                "question": row.get("question"),
                "answer": row["answer"],
                "prediction": answer,
                **score,
            }
        )
    return aggregate(rows, scores), predictions


def dedupe_captions(rows: list[dict]) -> list[dict]:
    seen, out = set(), []
    for row in rows:
        key = (row["task"], row["images"][0] if row.get("images") else row["id"])
        if row["task"] == "caption" and key in seen:
            continue
        seen.add(key)
        out.append(row)
    return out


# ------------------------------------------------------------------------------------------------ CLIP


@torch.no_grad()
def clip_embed(model, processor, images=None, texts=None, batch_size: int = 64) -> torch.Tensor:
    device = next(model.parameters()).device
    out = []
    items = images if images is not None else texts
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        if images is not None:
            pixels = processor(images=[open_image(i) for i in chunk], return_tensors="pt")["pixel_values"].to(device)
            features = model.get_image_features(pixel_values=pixels)
        else:
            max_length = model.config.text_config.max_position_embeddings
            tokens = processor(
                text=chunk, padding=True, truncation=True, max_length=max_length, return_tensors="pt"
            ).to(device)
            features = model.get_text_features(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"])
        features = features if isinstance(features, torch.Tensor) else features.pooler_output
        out.append(torch.nn.functional.normalize(features.float(), dim=-1).cpu())
    return torch.cat(out)


def clip_zero_shot(model, processor, rows: list[dict], class_names: list[str], templates=CLIP_TEMPLATES) -> dict:
    """Top-1 / top-5 accuracy of zero-shot classification (text embeddings averaged over the templates), and top-1
    per class (`top1/<class name>`, classes with images only): an average can hide a class the model cannot name."""
    text = torch.stack(
        [clip_embed(model, processor, texts=[t.format(c) for t in templates]).mean(0) for c in class_names]
    )
    text = torch.nn.functional.normalize(text, dim=-1)
    image = clip_embed(model, processor, images=[r["images"][0] for r in rows])
    ranks = (image @ text.T).argsort(dim=1, descending=True)
    labels = torch.tensor([r["label"] for r in rows])
    k = min(5, len(class_names))
    right = ranks[:, 0] == labels
    per_class = {
        f"top1/{name}": float(right[labels == i].float().mean())
        for i, name in enumerate(class_names)
        if (labels == i).any()
    }
    return {
        "top1": float(right.float().mean()),
        f"top{k}": float((ranks[:, :k] == labels[:, None]).any(1).float().mean()),
        "images": len(rows),
    } | per_class


def clip_retrieval(model, processor, rows: list[dict]) -> dict:
    """R@1/5/10 image->text and text->image; each image has one or more reference captions."""
    captions, owner = [], []
    for i, row in enumerate(rows):
        for caption in row.get("references") or [row["answer"]]:
            captions.append(caption)
            owner.append(i)
    image = clip_embed(model, processor, images=[r["images"][0] for r in rows])
    text = clip_embed(model, processor, texts=captions)
    owner = torch.tensor(owner)
    similarity = image @ text.T
    out = {}
    for k in (1, 5, 10):
        top_text = similarity.topk(min(k, len(captions)), dim=1).indices
        out[f"image_to_text_R@{k}"] = float(
            (owner[top_text] == torch.arange(len(rows))[:, None]).any(1).float().mean()
        )
        top_image = similarity.T.topk(min(k, len(rows)), dim=1).indices
        out[f"text_to_image_R@{k}"] = float((top_image == owner[:, None]).any(1).float().mean())
    return out
