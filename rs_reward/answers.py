"""Answer parsing and answer metrics, strict by design: the bottom of the package (it imports nothing of
rs_reward), shared by the data checks, the evaluation harness, the rewards and best-of-N.

- `exact_match`: strict match after normalisation (case, punctuation, articles, whitespace; the content of an
  `<answer>...</answer>` block when there is one). An empty or unparseable answer is wrong. No substring test:
  the original code counted `prediction in answer`, so an empty prediction was always right.
- `extract_choice`: the option letter of a multiple-choice answer ("B", "(B)", "B.", "Answer: B", "The answer is
  B"); None when no single letter is given.
- `parse_box`: a box from model text, in pixels of the image (formats below); None when none parses.
- `iou`, and `graded_iou_reward` (the paper's RL reward: 0.5 / 0.6 / 0.7 / 1.0 above IoU 0.5 / 0.6 / 0.7 / 0.8).

Box formats `parse_box` reads (FORMATS.md "Box conventions"):
| text | meaning |
|---|---|
| `<|box_start|>(x1,y1),(x2,y2)<|box_end|>` or `(x1,y1),(x2,y2)` | Qwen2-VL, integers normalised to [0, 1000) |
| `{"bbox_2d": [x1, y1, x2, y2]}` | Qwen2.5-VL, absolute pixels |
| `[x1, y1, x2, y2]` / `[[x1, y1, x2, y2]]` | `bracket_scale`: "pixels" (DIOR-RSVG ground truth, default), "norm1000" (VHM), "unit" (0-1) |
"""

from __future__ import annotations

import json
import re
import string


_ANSWER_BLOCK = re.compile(r"<answer>(.*?)</answer>", re.S | re.I)
_THINK_BLOCK = re.compile(r"<think>.*?</think>", re.S | re.I)
_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans({c: " " for c in string.punctuation})


def answer_text(prediction: str | None) -> str:
    """The part of a model output that answers: the `<answer>` block if any, without `<think>` blocks."""
    if not isinstance(prediction, str):
        return ""
    block = _ANSWER_BLOCK.search(prediction)
    text = block.group(1) if block else _THINK_BLOCK.sub(" ", prediction)
    return text.strip()


def normalize_answer(text: str | None) -> str:
    text = answer_text(text).lower().translate(_PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(prediction: str | None, reference: str) -> bool:
    """Strict normalised equality; an empty prediction is wrong whatever the reference."""
    predicted = normalize_answer(prediction)
    return bool(predicted) and predicted == normalize_answer(reference)


_CHOICE_PATTERNS = (
    re.compile(r"^\(?([A-Z])\)?(?:[.:)\s]|$)"),  # "B", "B.", "(B)", "B) ...", "B: ..."
    re.compile(r"\b(?:answer|option|choice)\s*(?:is|:)?\s*\(?([A-Z])\)?(?:[.:)\s]|$)", re.I),
)


def extract_choice(prediction: str | None, letters: str = "ABCD") -> str | None:
    """The chosen option letter, or None if the answer names none of `letters`."""
    text = answer_text(prediction)
    for pattern in _CHOICE_PATTERNS:
        match = pattern.search(text)
        if match and match.group(1).upper() in letters:
            return match.group(1).upper()
    return None


_QWEN2 = re.compile(
    r"\(\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*\)\s*,\s*\(\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*\)"
)
_BRACKET = re.compile(
    r"\[\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*,\s*(-?\d+(?:\.\d+)?)\s*\]"
)
_BBOX_2D = re.compile(r'"bbox_2d"\s*:\s*(\[[^\]]*\])')


def parse_box(
    text: str | None, width: int, height: int, bracket_scale: str = "pixels"
) -> tuple[float, float, float, float] | None:
    """A box in pixels `(x1, y1, x2, y2)` (corners sorted) from model text, or None."""
    if not isinstance(text, str) or not text.strip():
        return None
    text = answer_text(text) or text
    if (match := _QWEN2.search(text)) is not None:
        x1, y1, x2, y2 = (float(v) for v in match.groups())
        box = (x1 * width / 1000, y1 * height / 1000, x2 * width / 1000, y2 * height / 1000)
    elif (match := _BBOX_2D.search(text)) is not None:
        try:
            box = tuple(float(v) for v in json.loads(match.group(1)))
        except (ValueError, TypeError):
            return None
        if len(box) != 4:
            return None
    elif (match := _BRACKET.search(text)) is not None:
        x1, y1, x2, y2 = (float(v) for v in match.groups())
        scale = {"pixels": (1, 1), "norm1000": (width / 1000, height / 1000), "unit": (width, height)}[bracket_scale]
        box = (x1 * scale[0], y1 * scale[1], x2 * scale[0], y2 * scale[1])
    else:
        return None
    x1, y1, x2, y2 = box
    return (min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2))


def iou(a, b) -> float:
    """Intersection over union of two (x1, y1, x2, y2) boxes; 0 when either is missing or empty."""
    if a is None or b is None:
        return 0.0
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def graded_iou_reward(value: float) -> float:
    """The paper's grounding reward: 1.0 above IoU 0.8, 0.7 above 0.7, 0.6 above 0.6, 0.5 above 0.5, else 0."""
    for threshold, reward in ((0.8, 1.0), (0.7, 0.7), (0.6, 0.6), (0.5, 0.5)):
        if value > threshold:
            return reward
    return 0.0
