"""Non-neural probes that measure what SynthRS makes easy and what it keeps for the image.

- `colour_histogram_probe`: softmax regression on a global colour histogram. Land cover should be learnable
  from it; object counts and positions should not (they need to look at objects, not colours).
- `text_only_pair_probe`: logistic regression on bag-of-words differences of (chosen, rejected) texts, never
  seeing the image. It should be at chance on the grounded operators (the texts are balanced) and near perfect
  on the form operators (repetition, truncation, generic text are visible in the text).
"""

from __future__ import annotations

import re
from collections import defaultdict

import numpy as np


def fit_softmax(x: np.ndarray, y: np.ndarray, n_classes: int, l2: float = 1e-3, steps: int = 500, lr: float = 0.5):
    """Multinomial logistic regression by full-batch gradient descent on standardised features."""
    mean, std = x.mean(0), x.std(0) + 1e-6
    z = (x - mean) / std
    w = np.zeros((z.shape[1], n_classes))
    b = np.zeros(n_classes)
    onehot = np.eye(n_classes)[y]
    for _ in range(steps):
        logits = z @ w + b
        logits -= logits.max(1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(1, keepdims=True)
        grad = p - onehot
        w -= lr * (z.T @ grad / len(z) + l2 * w)
        b -= lr * grad.mean(0)
    return lambda xs: (((xs - mean) / std) @ w + b).argmax(1)


def colour_histogram(image, bins: int = 4) -> np.ndarray:
    pixels = np.asarray(image.convert("RGB"), dtype=np.int64) * bins // 256
    index = (pixels[..., 0] * bins + pixels[..., 1]) * bins + pixels[..., 2]
    return np.bincount(index.ravel(), minlength=bins**3) / index.size


def colour_histogram_probe(train: list[tuple], test: list[tuple]) -> dict[str, dict[str, float]]:
    """`train`/`test`: (PIL image, Scene). Accuracy per target, with the majority-class baseline."""
    from .world import LAND_COVERS, MAX_COUNT

    targets = {
        "land_cover": (lambda s: LAND_COVERS.index(s.land_cover), len(LAND_COVERS)),
        "count (first group)": (lambda s: s.groups[0].count - 1, MAX_COUNT),
        "position (first group)": (lambda s: s.groups[0].cell, 9),
    }
    x_train = np.stack([colour_histogram(i) for i, _ in train])
    x_test = np.stack([colour_histogram(i) for i, _ in test])
    out = {}
    for name, (label, n) in targets.items():
        y_train = np.array([label(s) for _, s in train])
        y_test = np.array([label(s) for _, s in test])
        predict = fit_softmax(x_train, y_train, n)
        majority = np.bincount(y_train, minlength=n).argmax()
        out[name] = {
            "accuracy": float((predict(x_test) == y_test).mean()),
            "majority": float((y_test == majority).mean()),
            "chance": 1.0 / n,
        }
    return out


_TOKEN = re.compile(r"[a-z0-9]+")


def _ngrams(text: str) -> list[str]:
    words = _TOKEN.findall(text.lower())
    return words + [f"{a}_{b}" for a, b in zip(words, words[1:])] + [f"#len{min(len(words) // 4, 10)}"]


def _difference_rows(pairs: list[dict], vocabulary: dict[str, int], grow: bool):
    """Sparse rows (nonzero row, column, value) of the n-gram counts of chosen minus rejected, per pair; the
    vocabulary grows with `grow` (training pairs) and unknown n-grams are dropped otherwise."""
    rows, columns, values = [], [], []
    for r, pair in enumerate(pairs):
        counts: dict[int, float] = defaultdict(float)
        for side, sign in (("chosen", 1.0), ("rejected", -1.0)):
            for gram in _ngrams(pair["question"] + " || " + pair[side]):
                if grow:
                    vocabulary.setdefault(gram, len(vocabulary))
                if gram in vocabulary:
                    counts[vocabulary[gram]] += sign
        for column, value in counts.items():
            if value:
                rows.append(r)
                columns.append(column)
                values.append(value)
    return np.array(rows, dtype=np.int64), np.array(columns, dtype=np.int64), np.array(values)


def text_only_pair_probe(train_pairs: list[dict], test_pairs: list[dict]) -> dict[str, dict[str, float]]:
    """Pairs: dicts with `question`, `chosen`, `rejected`, `operator`. Pairwise accuracy per operator of a
    linear bag-of-words scorer trained on the chosen-minus-rejected difference (no image).

    Each pair is two examples, (c - r, 1) and (r - c, 0), so the scorer cannot use position: `fit_softmax` on
    them, written for the sparse differences (a few n-grams a pair). By that symmetry the features' mean and the
    bias stay 0, and two-class softmax is logistic regression on the difference of its two weight vectors."""
    vocabulary: dict[str, int] = {}
    rows, columns, values = _difference_rows(train_pairs, vocabulary, grow=True)
    n, width = len(train_pairs), len(vocabulary)
    std = np.sqrt(np.bincount(columns, weights=values**2, minlength=width) / n) + 1e-6
    weights, lr, l2 = np.zeros(width), 0.5, 1e-2
    for _ in range(300):
        margin = np.bincount(rows, weights=values * (weights / std)[columns], minlength=n)
        residual = 1.0 / (1.0 + np.exp(-margin)) - 1.0
        gradient = np.bincount(columns, weights=values * residual[rows], minlength=width) / n / std
        weights -= lr * (2.0 * gradient + l2 * weights)
    rows, columns, values = _difference_rows(test_pairs, vocabulary, grow=False)
    margin = np.bincount(rows, weights=values * (weights / std)[columns], minlength=len(test_pairs))
    by_operator = defaultdict(list)
    for pair, m in zip(test_pairs, margin):
        by_operator[pair["operator"]].append(float(m > 0))
    return {op: {"accuracy": float(np.mean(v)), "pairs": len(v)} for op, v in sorted(by_operator.items())}


def pairs_from_rsrm(split_root) -> list[dict]:
    """Flat (question, chosen, rejected, operator, task) pairs of a SynthRS preference split."""
    from ..preference import rsrm_pairs

    pairs = []
    for pair in rsrm_pairs(split_root, split_root / "images", check_images=False):
        pairs.append(
            {
                "question": pair["prompt"][0]["content"],
                "chosen": pair["chosen"][0]["content"],
                "rejected": pair["rejected"][0]["content"],
                "operator": pair["operator"],
                "task": pair["task"],
            }
        )
    return pairs
