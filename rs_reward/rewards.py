"""Reward functions for GRPO, in one registry usable by name in recipes (`reward_funcs: [format, accuracy]`).

| name | reward of a completion | rows |
|---|---|---|
| `format` | 1 if it is `<think>...</think><answer>...</answer>` and nothing else, else 0 | all |
| `exact_match` | 1 if the answer equals the `solution` after normalisation (strict, `answers.exact_match`) | `em` |
| `multiple_choice` | 1 if the extracted option letter is the `solution` letter | `mc` |
| `iou_graded` | 0.5 / 0.6 / 0.7 / 1.0 above IoU 0.5 / 0.6 / 0.7 / 0.8 with the `solution` box, else 0 | `iou` |
| `score_model` | the score model's raw score of image + question + completion | all |
| `score_vs_reference` | `1 - exp(-beta * (s(pred) - s(ref)))` when the prediction outscores the reference, else 0 | `open` |
| `accuracy` | routed per row by its `reward_type` (`em`, `mc`, `iou`, `open`) to the functions above | all |

A name with a dot (`my_package.rewards.length_penalty`) is imported as a custom reward, as in TRL's GRPO script.

The paper's combination, 0.3 format + 0.7 accuracy and 0 when the format fails, is `reward_funcs: [format,
accuracy]` with `reward_weights: [0.3, 0.7]` and `format_gate: true` (the accuracy of a badly formatted completion
is 0), so TRL logs both components as `rewards/format/mean` and `rewards/accuracy/mean`. A function returns None for
rows it does not apply to (TRL skips them). Each call logs its components (`accuracy/<reward_type>`,
`score_model/score`, ...) through TRL's `log_metric`.

A reward that cannot be computed raises `RewardError` naming the row: an unknown `reward_type`, a missing or
unparseable solution, a score-model failure or a non-finite score. It is never silently 0 (the original code scored
reward-server failures as 0). An empty or malformed *completion* is not a failure: it earns 0.

The score model sees the image: `ScoreModel` reads the prompt's image (the `images` column TRL passes to reward
functions, or the image block of the prompt) and scores it with `scoring.RewardModelScorer`. One instance is shared by
every function that needs it, and `RSGRPOTrainer` moves it to the process's device.
"""

from __future__ import annotations

import json
import math
import re
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .answers import answer_text, exact_match, extract_choice, graded_iou_reward, iou, parse_box
from .data.rl import REWARD_TYPES


DEFAULT_ROUTES = {"em": "exact_match", "mc": "multiple_choice", "iou": "iou_graded", "open": "score_vs_reference"}
THINK_ANSWER_SUFFIX = (
    " Output the thinking process in <think> </think> and the final answer in <answer> </answer> tags."
)
_FORMAT = re.compile(r"^\s*<think>.*?</think>\s*<answer>.*?</answer>\s*$", re.S)


class RewardError(RuntimeError):
    """A reward that could not be computed (never scored as 0)."""


# ----------------------------------------------------------------------------------------- one batch of rows


@dataclass
class RewardBatch:
    """The rows a reward function scores: completion text, question, image and the dataset columns."""

    ids: list[str]
    questions: list[str]
    completions: list[str]
    images: list  # PIL image or None per row
    solutions: list
    reward_types: list

    @classmethod
    def from_trl(cls, prompts, completions, **columns) -> RewardBatch:
        """Build from the arguments TRL passes to a reward function (conversational or plain prompts)."""
        n = len(completions)
        images = columns.get("images")
        if images is None and columns.get("image") is not None:
            images = [[image] for image in columns["image"]]
        return cls(
            ids=[str(i) for i in columns.get("id") or range(n)],
            questions=[_last_user_text(p) for p in prompts],
            completions=[_text(c) for c in completions],
            images=[_first_image(p, images[i] if images else None) for i, p in enumerate(prompts)],
            solutions=list(columns.get("solution") or [None] * n),
            reward_types=list(columns.get("reward_type") or [None] * n),
        )

    def select(self, index: Sequence[int]) -> RewardBatch:
        return RewardBatch(**{k: [getattr(self, k)[i] for i in index] for k in self.__dataclass_fields__})

    def __len__(self) -> int:
        return len(self.completions)


def _text(content) -> str:
    """Text of a completion / message / content-block list."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return _text(content.get("content") if "content" in content else content.get("text"))
    return "".join(_text(part) for part in content if not (isinstance(part, dict) and part.get("type") == "image"))


def _last_user_text(prompt) -> str:
    if isinstance(prompt, str):
        return prompt
    users = [m for m in prompt if m.get("role") == "user"]
    return _text(users[-1]) if users else ""


def _first_image(prompt, row_images):
    if row_images:
        return row_images[0]
    if isinstance(prompt, list):
        for message in prompt:
            if isinstance(message.get("content"), list):
                for block in message["content"]:
                    if isinstance(block, dict) and block.get("type") == "image" and block.get("image") is not None:
                        return block["image"]
    return None


def _needs_solution(batch: RewardBatch, name: str) -> None:
    for row_id, solution in zip(batch.ids, batch.solutions):
        if solution is None or (isinstance(solution, str) and not solution.strip()):
            raise RewardError(f"{name}: row {row_id} has no solution")


# ------------------------------------------------------------------------------------------ rule rewards


def format_reward(batch: RewardBatch, **_) -> list[float]:
    """1 for `<think>...</think><answer>...</answer>` (non-empty answer, nothing outside), else 0."""
    return [float(bool(_FORMAT.match(c)) and bool(answer_text(c))) for c in batch.completions]


def exact_match_reward(batch: RewardBatch, **_) -> list[float]:
    _needs_solution(batch, "exact_match")
    return [float(exact_match(c, str(s))) for c, s in zip(batch.completions, batch.solutions)]


def multiple_choice_reward(batch: RewardBatch, **_) -> list[float]:
    _needs_solution(batch, "multiple_choice")
    rewards = []
    for row_id, completion, solution in zip(batch.ids, batch.completions, batch.solutions):
        letter = extract_choice(str(solution))
        if letter is None:
            raise RewardError(f"multiple_choice: row {row_id} has solution {solution!r}, not an option letter")
        rewards.append(float(extract_choice(completion) == letter))
    return rewards


def solution_box(solution, width: int, height: int, row_id: str = "?"):
    """The reference box in pixels: a `[x1, y1, x2, y2]` pixel list (JSON text or list) or any `parse_box` text."""
    box = None
    if isinstance(solution, list | tuple) and len(solution) == 4:
        box = tuple(float(v) for v in solution)
    elif isinstance(solution, str):
        box = parse_box(solution, width, height)
    if box is None:
        raise RewardError(f"iou_graded: row {row_id} has solution {solution!r}, not a box")
    return box


def iou_graded_reward(batch: RewardBatch, **_) -> list[float]:
    """The paper's graded IoU; the completion's box is read by `parse_box` in the row image's pixels."""
    _needs_solution(batch, "iou_graded")
    rewards = []
    for row_id, completion, solution, image in zip(batch.ids, batch.completions, batch.solutions, batch.images):
        if image is None:
            raise RewardError(f"iou_graded: row {row_id} has no image to size the boxes")
        width, height = image.size
        reference = solution_box(json.loads(solution) if _is_json_list(solution) else solution, width, height, row_id)
        rewards.append(graded_iou_reward(iou(parse_box(completion, width, height), reference)))
    return rewards


def _is_json_list(value) -> bool:
    return isinstance(value, str) and value.strip().startswith("[") and "(" not in value


# ---------------------------------------------------------------------------------- score-model rewards


class ScoreModel:
    """The image-aware score model behind `score_model` and `score_vs_reference`: one shared instance.

    Wraps a `scoring.RewardModelScorer` (batched, no gradients, bf16 autocast on GPU). A score is kept per (row id,
    question, text), the last `cache_size` of them: a prompt's reference answer is scored once, not once per
    generation and step, and the AUC monitor reuses the scores the reward computed. The row id stands for its image
    (`RLRow` ids are unique). `calls` counts forward batches, for the tests and the logs.
    """

    def __init__(self, scorer, cache_size: int = 65536):
        self.scorer = scorer
        self.calls = 0
        self.cache: OrderedDict[tuple, float] = OrderedDict()
        self.cache_size = cache_size

    @classmethod
    def load(
        cls,
        model_args,
        batch_size: int = 16,
        device=None,
        trust_remote_code: bool = False,
        prompt_order: str = "image_first",
    ) -> ScoreModel:
        from .scoring import load_scorer

        scorer = load_scorer(
            "reward_model",
            model_args,
            batch_size=batch_size,
            device=device,
            trust_remote_code=trust_remote_code,
            prompt_order=prompt_order,
        )
        return cls(scorer)

    def to(self, device) -> ScoreModel:
        self.scorer.model.to(device)
        self.scorer.device = device
        return self

    def __call__(self, images, questions, texts, ids) -> np.ndarray:
        keys = list(zip(ids, questions, texts))
        new = {key: i for i, key in enumerate(keys) if key not in self.cache}  # each unscored key, first row
        if new:
            index = list(new.values())
            self.calls += 1
            try:
                scores = self.scorer.score(
                    [images[i] for i in index], [questions[i] for i in index], [texts[i] for i in index]
                )
                scores = np.asarray(scores, dtype=np.float64)
            except Exception as error:  # a reward that fails must stop training, with the rows named
                raise RewardError(f"score model failed on rows {[ids[i] for i in index][:8]}: {error!r}") from error
            bad = [ids[i] for i, s in zip(index, scores) if not math.isfinite(s)]
            if bad:
                raise RewardError(f"score model gave a non-finite score to rows {bad[:8]}")
            self.cache.update(zip(new, scores.tolist()))
        result = np.asarray([self.cache[key] for key in keys], dtype=np.float64)
        for key in keys:
            self.cache.move_to_end(key)
        while len(self.cache) > self.cache_size:
            self.cache.popitem(last=False)
        return result


def score_model_reward(batch: RewardBatch, *, score_model: ScoreModel | None = None, **_) -> list[float]:
    """The raw score of image + question + completion (the reward the paper's PPO run hacked)."""
    if score_model is None:
        raise RewardError("score_model needs a score model: set reward_model_name_or_path")
    return score_model(batch.images, batch.questions, batch.completions, batch.ids).tolist()


def score_vs_reference_reward(
    batch: RewardBatch, *, score_model: ScoreModel | None = None, score_beta: float = 0.2, **_
) -> list[float]:
    """`1 - exp(-beta * (s(pred) - s(ref)))` when the prediction outscores the reference answer, else 0.

    An empty completion earns 0 without being scored."""
    if score_model is None:
        raise RewardError("score_vs_reference needs a score model: set reward_model_name_or_path")
    _needs_solution(batch, "score_vs_reference")
    n = len(batch)
    scores = score_model(
        batch.images * 2,
        batch.questions * 2,
        [answer_text(c) for c in batch.completions] + list(batch.solutions),
        batch.ids * 2,
    )
    pred, ref = scores[:n], scores[n:]
    return [
        float(1 - math.exp(-score_beta * (p - r))) if p > r and answer_text(c) else 0.0
        for p, r, c in zip(pred, ref, batch.completions)
    ]


RULE_REWARDS = {"exact_match", "multiple_choice", "iou_graded"}
REWARDS: dict[str, Callable[..., list[float]]] = {
    "format": format_reward,
    "exact_match": exact_match_reward,
    "multiple_choice": multiple_choice_reward,
    "iou_graded": iou_graded_reward,
    "score_model": score_model_reward,
    "score_vs_reference": score_vs_reference_reward,
}
APPLIES_TO = {"exact_match": "em", "multiple_choice": "mc", "iou_graded": "iou", "score_vs_reference": "open"}


def parse_routes(text: str | dict | None) -> dict[str, str | None]:
    """`"em=exact_match,mc=multiple_choice,iou=iou_graded,open=none"` -> routes (`none`: the row earns no accuracy)."""
    routes = dict(DEFAULT_ROUTES)
    if isinstance(text, dict):
        items = text.items()
    else:
        items = [part.split("=", 1) for part in (text or "").split(",") if part.strip()]
    for item in items:
        if len(item) != 2:
            raise ValueError(f"bad reward route {item!r}: write reward_type=function")
        reward_type, name = (s.strip() for s in item)
        if reward_type not in REWARD_TYPES:
            raise ValueError(f"unknown reward_type {reward_type!r} in routes (known: {', '.join(REWARD_TYPES)})")
        if name.lower() == "none":
            routes[reward_type] = None
        elif name not in REWARDS or name == "format":
            raise ValueError(f"unknown accuracy reward {name!r} for {reward_type} (known: {', '.join(APPLIES_TO)})")
        else:
            routes[reward_type] = name
    return routes


# --------------------------------------------------------------------------------- the TRL-facing callables


class RewardMonitor:
    """What the rewards of one reward pass saw, per completion: the row ids, the rule reward (NaN where none) and
    the score-model score (NaN where not scored). Passed to the `RewardFunction`s, which record into it, and to
    the trainer, which reads it after each pass (the hacking metrics, the samples page) and clears it."""

    def __init__(self):
        self.clear()

    def clear(self) -> None:
        self._ids: np.ndarray | None = None
        self._rule: list[np.ndarray] = []
        self._score: list[np.ndarray] = []

    def record(self, ids, rule: np.ndarray, score: np.ndarray) -> None:
        ids = np.asarray(ids, dtype=object)
        if self._ids is not None and not np.array_equal(ids, self._ids):
            raise RewardError("reward functions of one pass were called on different completions")
        self._ids = ids
        self._rule.append(np.asarray(rule, dtype=np.float64))
        self._score.append(np.asarray(score, dtype=np.float64))

    def __bool__(self) -> bool:
        return self._ids is not None

    @property
    def ids(self) -> np.ndarray:
        return self._ids

    @property
    def rule(self) -> np.ndarray:
        """Per completion, the rule reward of whichever function gave one (NaN where none did)."""
        return np.fmax.reduce(self._rule)

    @property
    def score(self) -> np.ndarray:
        """Per completion, the score-model score (NaN where no function scored it)."""
        return np.fmax.reduce(self._score)


class RewardFunction:
    """A registry reward as TRL calls it: `f(prompts, completions, **columns) -> list[float | None]`.

    `accuracy` routes each row by its `reward_type`; a rule reward named directly applies to its own
    `reward_type` (None elsewhere) when the data has that column. With `format_gate`, a completion that fails the
    format earns 0 (every reward but the raw `score_model`, which can be negative). With a `monitor`, each call
    records its per-row rule rewards and score-model scores there (`RewardMonitor`).
    """

    def __init__(
        self,
        name: str,
        *,
        score_model: ScoreModel | None = None,
        routes: dict[str, str | None] | None = None,
        format_gate: bool = False,
        score_beta: float = 0.2,
        monitor: RewardMonitor | None = None,
        monitor_scores: bool = False,
    ):
        if name != "accuracy" and name not in REWARDS:
            raise ValueError(f"unknown reward {name!r}; known: accuracy, {', '.join(REWARDS)}")
        self.__name__ = name
        self.score_model = score_model
        self.routes = routes or dict(DEFAULT_ROUTES)
        self.format_gate = format_gate
        self.score_beta = score_beta
        self.monitor = monitor
        self.monitor_scores = monitor_scores and score_model is not None
        needs_model = {name} if name != "accuracy" else {r for r in self.routes.values() if r}
        if needs_model & {"score_model", "score_vs_reference"} and score_model is None:
            raise ValueError(f"reward {name!r} needs a score model: set reward_model_name_or_path")

    def __repr__(self) -> str:
        return f"RewardFunction({self.__name__!r})"

    def __call__(self, prompts, completions, log_metric=None, **columns) -> list[float | None]:
        batch = RewardBatch.from_trl(prompts, completions, **columns)
        n = len(batch)
        rewards = np.full(n, np.nan)
        rule = np.full(n, np.nan)
        groups = self._groups(batch)
        for name, index in groups.items():
            if name is None:
                continue
            values = np.asarray(
                REWARDS[name](batch.select(index), score_model=self.score_model, score_beta=self.score_beta),
                dtype=np.float64,
            )
            rewards[index] = values
            if name in RULE_REWARDS:
                rule[index] = values
        # The gate zeroes non-negative rewards only: a raw score can be negative, and zeroing it would pay a
        # badly formatted completion more than a well formatted one.
        if self.format_gate and self.__name__ not in ("format", "score_model"):
            rewards = np.where(np.isnan(rewards), rewards, rewards * np.asarray(format_reward(batch)))
        scores = np.full(n, np.nan)
        if self.__name__ == "score_model":
            scores = rewards.copy()
        elif self.monitor_scores and self.monitor is not None:
            scores = self.score_model(
                batch.images, batch.questions, [answer_text(c) for c in batch.completions], batch.ids
            )
        if self.monitor is not None:
            self.monitor.record(batch.ids, rule, scores)
        if log_metric is not None:
            self._log(log_metric, batch, rewards, scores)
        return [None if math.isnan(r) else float(r) for r in rewards]

    def _groups(self, batch: RewardBatch) -> dict[str | None, list[int]]:
        """Function name -> row indices. Unknown reward types raise; rows not covered get None."""
        groups: dict[str | None, list[int]] = {}
        for i, (row_id, reward_type) in enumerate(zip(batch.ids, batch.reward_types)):
            if reward_type is not None and reward_type not in REWARD_TYPES:
                raise RewardError(
                    f"row {row_id}: unknown reward_type {reward_type!r} (known: {', '.join(REWARD_TYPES)})"
                )
            if self.__name__ == "accuracy":
                if reward_type is None:
                    raise RewardError(f"row {row_id}: `accuracy` needs a reward_type column")
                name = self.routes[reward_type]
            elif self.__name__ in APPLIES_TO and reward_type is not None:
                name = self.__name__ if APPLIES_TO[self.__name__] == reward_type else None
            else:
                name = self.__name__
            groups.setdefault(name, []).append(i)
        return groups

    def _log(self, log_metric, batch: RewardBatch, rewards: np.ndarray, scores: np.ndarray) -> None:
        types = np.asarray([t or "all" for t in batch.reward_types])
        for reward_type in sorted(set(types)):
            values = rewards[(types == reward_type) & ~np.isnan(rewards)]
            if values.size:
                log_metric(f"{self.__name__}/{reward_type}", float(values.mean()))
        if not np.isnan(scores).all():
            log_metric("score_model/score", float(np.nanmean(scores)))


def import_reward(path: str) -> Callable:
    """A custom reward by dotted path (`my_package.rewards.length_penalty`), as TRL's GRPO script allows: any
    callable `f(prompts, completions, **columns) -> list[float | None]`."""
    import importlib

    module_name, _, attribute = path.rpartition(".")
    if not module_name:
        raise ValueError(f"unknown reward {path!r}; known: accuracy, {', '.join(REWARDS)}, or a module.function path")
    try:
        function = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as error:
        raise ValueError(f"reward {path!r}: cannot import it ({error})") from None
    if not callable(function):
        raise ValueError(f"reward {path!r} is not callable")
    return function


def is_registry_reward(name: str) -> bool:
    return name == "accuracy" or name in REWARDS


def build_reward_funcs(
    names: Sequence[str],
    *,
    score_model: ScoreModel | None = None,
    routes: str | dict | None = None,
    format_gate: bool = False,
    score_beta: float = 0.2,
    monitor: RewardMonitor | None = None,
) -> list[RewardFunction]:
    """The reward callables of a recipe's `reward_funcs`, sharing one score model and one `monitor`. The
    monitor's score-model scores of every completion are computed by the `score_model` function, or else by the
    last function."""
    if not names:
        raise ValueError("reward_funcs is empty")
    routes = parse_routes(routes)
    funcs = [
        RewardFunction(
            name,
            score_model=score_model,
            routes=routes,
            format_gate=format_gate,
            score_beta=score_beta,
            monitor=monitor,
        )
        for name in names
    ]
    if monitor is not None and score_model is not None:
        scoring = [f for f in funcs if f.__name__ == "score_model"]
        (scoring or [funcs[-1]])[0].monitor_scores = True
    return funcs
