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


def text_only_pair_probe(train_pairs: list[dict], test_pairs: list[dict]) -> dict[str, dict[str, float]]:
    """Pairs: dicts with `question`, `chosen`, `rejected`, `operator`. Pairwise accuracy per operator of a
    linear bag-of-words scorer trained on the chosen-minus-rejected difference (no image)."""
    vocabulary: dict[str, int] = {}
    for pair in train_pairs:
        for side in ("chosen", "rejected"):
            for gram in _ngrams(pair["question"] + " || " + pair[side]):
                vocabulary.setdefault(gram, len(vocabulary))

    def features(pair, side):
        v = np.zeros(len(vocabulary))
        for gram in _ngrams(pair["question"] + " || " + pair[side]):
            if gram in vocabulary:
                v[vocabulary[gram]] += 1
        return v

    # Each pair gives two examples, (c - r, 1) and (r - c, 0), so the scorer cannot use position.
    diffs = np.stack([features(p, "chosen") - features(p, "rejected") for p in train_pairs])
    x = np.concatenate([diffs, -diffs])
    y = np.concatenate([np.ones(len(diffs), int), np.zeros(len(diffs), int)])
    predict = fit_softmax(x, y, 2, l2=1e-2, steps=300)
    by_operator = defaultdict(list)
    for pair in test_pairs:
        correct = predict((features(pair, "chosen") - features(pair, "rejected"))[None])[0] == 1
        by_operator[pair["operator"]].append(float(correct))
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
