"""Evaluation of a reward (score) model on held-out preference pairs.

- pairwise accuracy overall, per task, per source, per answer format (caption, question, multiple choice,
  grounding: `data.chat.answer_format`) and (SynthRS) per corruption operator, alone and by answer format;
- an image-blind control: the same model, every image replaced by a uniform grey image of the same size (so the
  token count is unchanged): how much of the accuracy comes from looking at the image;
- Spearman rank correlation of the score with the true quality of each distinct text (SynthRS);
- a PNG histogram of chosen vs rejected scores;
- the mean and std of all scores, which `store_score_statistics` writes into the model's config;
- `wins_within_groups`: how often the score model ranks an answer a rule accepts above one it rejects for the same
  question (the AUC of GRPO's reward-hacking monitor and of best-of-N's candidates).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image

from ..data.chat import ANSWER_FORMATS, answer_format
from ..data.images import open_image
from ..scoring import RewardModelScorer


def _blank_like(image) -> Image.Image:
    image = open_image(image)
    return Image.new("RGB", image.size, (128, 128, 128))


def pair_scores(scorer: RewardModelScorer, dataset, blind: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Scores of the chosen and rejected texts of every pair (images blanked when `blind`). Each distinct (image
    file, question, text) is scored once: a chosen text is in as many pairs as its item has rejected texts."""
    slots: dict[tuple, int] = {}
    blanks: dict = {}  # one grey image per image, however many of its texts are scored
    images, questions, texts, order = [], [], [], []
    for n, row in enumerate(dataset):
        image = row["images"][0] if row["images"] else None
        question = row["prompt"][-1]["content"]
        image_key = image if image is None or isinstance(image, str) else n  # a decoded image: its row's own
        if blind and image is not None and image_key not in blanks:
            blanks[image_key] = _blank_like(image)
        for side in ("chosen", "rejected"):
            text = row[side][-1]["content"]
            key = (image_key, question, text)
            if key not in slots:
                slots[key] = len(texts)
                images.append(blanks[image_key] if blind and image is not None else image)
                questions.append(question)
                texts.append(text)
            order.append(slots[key])
    scores = scorer.score(images, questions, texts)[np.asarray(order, dtype=np.int64)]
    return scores[0::2], scores[1::2]


def wins_within_groups(ids, accepted, scores, known=None) -> tuple[float, int]:
    """Over the (accepted, rejected) answer pairs that share a question id: how many the accepted one outscores (ties
    count a half), and how many pairs there are; their ratio is the within-question AUC (0.5: the scores ignore
    correctness). `known` masks the answers with a rule verdict (NaN scores are skipped too)."""
    ids, accepted, scores = np.asarray(ids, dtype=object), np.asarray(accepted, bool), np.asarray(scores, float)
    usable = ~np.isnan(scores) & (np.ones(len(ids), bool) if known is None else np.asarray(known, bool))
    wins, pairs = 0.0, 0
    for row_id in np.unique(ids[usable]):
        index = usable & (ids == row_id)
        good, bad = scores[index & accepted], scores[index & ~accepted]
        if good.size and bad.size:
            diff = good[:, None] - bad[None, :]
            wins += float((diff > 0).sum() + 0.5 * (diff == 0).sum())
            pairs += diff.size
    return wins, pairs


def _grouped_accuracy(correct: np.ndarray, labels: list) -> dict[str, float]:
    groups = defaultdict(list)
    for c, label in zip(correct, labels):
        if label is not None:
            groups[label].append(c)
    return {k: float(np.mean(v)) for k, v in sorted(groups.items())}


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    import pandas as pd

    if len(x) < 3:
        return float("nan")
    return float(pd.Series(x).rank().corr(pd.Series(y).rank()))


def evaluate_reward_model(
    model,
    processor,
    dataset,
    *,
    batch_size: int = 16,
    blind_control: bool = True,
    histogram_path: str | Path | None = None,
) -> dict:
    """All the metrics above, as a JSON-ready dict."""
    scorer = RewardModelScorer(model, processor, batch_size=batch_size)
    chosen, rejected = pair_scores(scorer, dataset)
    correct = (chosen > rejected).astype(float)
    columns = dataset.column_names
    metrics = {
        "pairs": len(dataset),
        "accuracy": float(correct.mean()),
        "accuracy_by_task": _grouped_accuracy(correct, dataset["task"]),
        "accuracy_by_source": _grouped_accuracy(correct, dataset["source"]),
    }
    by_task = metrics["accuracy_by_task"]
    metrics["accuracy_task_macro"] = float(np.mean(list(by_task.values()))) if by_task else float("nan")
    formats = [answer_format(prompt[-1]["content"]) for prompt in dataset["prompt"]]
    metrics["accuracy_by_format"] = _grouped_accuracy(correct, formats)
    if "operator" in columns:
        metrics["accuracy_by_operator"] = _grouped_accuracy(correct, dataset["operator"])
        metrics["pairs_by_operator"] = {k: dataset["operator"].count(k) for k in metrics["accuracy_by_operator"]}
        # Each operator by answer format: {operator: {format: [accuracy, pairs]}}.
        by_both = defaultdict(lambda: defaultdict(list))
        for c, op, fmt in zip(correct, dataset["operator"], formats):
            if op is not None:
                by_both[op][fmt].append(c)
        metrics["accuracy_by_operator_and_format"] = {
            op: {fmt: [float(np.mean(v)), len(v)] for fmt, v in sorted(by_fmt.items())}
            for op, by_fmt in sorted(by_both.items())
        }
    if blind_control and any(row["images"] for row in dataset.select_columns(["images"])):
        blind_chosen, blind_rejected = pair_scores(scorer, dataset, blind=True)
        blind_correct = (blind_chosen > blind_rejected).astype(float)
        metrics["image_blind"] = {"accuracy": float(blind_correct.mean())}
        if "operator" in columns:
            metrics["image_blind"]["accuracy_by_operator"] = _grouped_accuracy(blind_correct, dataset["operator"])
    if "chosen_quality" in columns and "rejected_quality" in columns:
        # Each distinct (image, text) once: a chosen text appears in as many pairs as it has rejected texts.
        seen, xs, ys = set(), [], []
        for row, c, r in zip(
            dataset.select_columns(["id", "chosen", "rejected", "chosen_quality", "rejected_quality"]),
            chosen,
            rejected,
        ):
            base = row["id"].rsplit("-r", 1)[0]
            for text, score, quality in (
                (row["chosen"][-1]["content"], c, row["chosen_quality"]),
                (row["rejected"][-1]["content"], r, row["rejected_quality"]),
            ):
                if (base, text) not in seen and quality is not None:
                    seen.add((base, text))
                    xs.append(score)
                    ys.append(quality)
        metrics["spearman_score_vs_true_quality"] = spearman(np.array(xs), np.array(ys))
        metrics["texts_with_true_quality"] = len(xs)
    all_scores = np.concatenate([chosen, rejected])
    metrics["score_mean"] = float(all_scores.mean())
    metrics["score_std"] = float(all_scores.std())
    metrics["margin_mean"] = float((chosen - rejected).mean())
    if histogram_path is not None:
        score_histogram(chosen, rejected, histogram_path, title=f"held-out pairs (accuracy {metrics['accuracy']:.3f})")
    return metrics


def score_histogram(chosen: np.ndarray, rejected: np.ndarray, path: str | Path, title: str = "") -> Path:
    """Chosen and rejected scores on common bins."""
    from ..report import histogram_plot

    bins = np.linspace(min(chosen.min(), rejected.min()), max(chosen.max(), rejected.max()), 40)
    series = {"chosen": (chosen, "tab:green", 0.6), "rejected": (rejected, "tab:red", 0.6)}
    return histogram_plot(series, path, bins=bins, ylabel="texts", title=title)


def store_score_statistics(model_dir: str | Path, mean: float, std: float) -> None:
    """Write `score_mean` / `score_std` into the saved model's (or adapter's base) `config.json`."""
    config_file = Path(model_dir) / "config.json"
    if not config_file.is_file():
        return
    config = json.loads(config_file.read_text())
    config["score_mean"], config["score_std"] = mean, std
    config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def format_reward_metrics(metrics: dict) -> str:
    """A markdown block: overall, per task/source, and per operator with the image-blind control beside."""
    from ..report import markdown_table

    lines = [
        markdown_table(
            ["metric", "value"],
            [
                ["pairs", metrics["pairs"]],
                ["pairwise accuracy", metrics["accuracy"]],
                ["image-blind control accuracy", metrics.get("image_blind", {}).get("accuracy", "n/a")],
                ["Spearman(score, true quality)", metrics.get("spearman_score_vs_true_quality", "n/a")],
                ["score mean / std", f"{metrics['score_mean']:.3f} / {metrics['score_std']:.3f}"],
            ],
        )
    ]
    for key in ("accuracy_by_task", "accuracy_by_source"):
        if metrics.get(key):
            lines += [
                "",
                markdown_table(
                    [key.replace("accuracy_by_", ""), "accuracy"], [[k, v] for k, v in metrics[key].items()]
                ),
            ]
    if metrics.get("accuracy_by_operator"):
        blind = metrics.get("image_blind", {}).get("accuracy_by_operator", {})
        rows = [
            [op, acc, blind.get(op, "n/a"), metrics["pairs_by_operator"][op]]
            for op, acc in metrics["accuracy_by_operator"].items()
        ]
        lines += ["", markdown_table(["operator", "accuracy", "image-blind", "pairs"], rows)]
    if metrics.get("accuracy_by_operator_and_format"):
        lines += ["", operator_format_table(metrics["accuracy_by_operator_and_format"])]
    return "\n".join(lines)


def operator_format_table(by_both: dict) -> str:
    """Accuracy (pairs) per operator and answer format (`answer_format`): where a score model's misses sit."""
    from ..report import markdown_table

    formats = [f for f in ANSWER_FORMATS if any(f in row for row in by_both.values())]
    rows = [
        [op, *(f"{row[f][0]:.3f} ({row[f][1]})" if f in row else "-" for f in formats)] for op, row in by_both.items()
    ]
    return markdown_table(["operator", *(f.replace("_", " ") for f in formats)], rows)
