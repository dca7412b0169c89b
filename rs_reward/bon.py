"""Best-of-N: generate N candidates per prompt once, then select with any selector for every N <= N_max.

- `generate_candidates`: N_max sampled answers per eval row (`eval.harness.generate_answers`, batched, left
  padded), each batch seeded by (seed, batch index) so a resumed run gives the same candidates; appended to a JSONL
  file batch by batch under a key of the settings (`fingerprint`), so an interrupted run resumes.
- `score_candidates`: every candidate scored by a scorer (`scoring.load_scorer`) on image + question + answer.
- `subsample`: the candidates seen at N are the first N of a per-row permutation, so the sets are nested (N=2 is
  inside N=4) and the same for every selector; `repeats` draws average over several permutations.
- Selectors (`SELECTORS`): `score_model` and `clip_score` (highest score), `majority_vote` (the most frequent
  normalised answer: option letter for multiple choice, normalised text for classification / VQA, the exact box for
  grounding, where votes rarely agree), `random` and `oracle` (the best candidate by the metric itself: the ceiling).
  Ties go to the earliest candidate in the sub-sample.
- `best_of_n`: the harness metric of the selected candidate, per task and N, averaged over rows and repeats.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from pathlib import Path

import numpy as np

from .answers import answer_text, extract_choice, normalize_answer, parse_box
from .eval.harness import generate_answers, vlm_prompt


logger = logging.getLogger(__name__)


SELECTORS = ("score_model", "clip_score", "majority_vote", "random", "oracle")
SCORED_SELECTORS = ("score_model", "clip_score")
PRIMARY_METRIC = {"cls": "correct", "vqa": "correct", "mc": "correct", "vg": "correct", "caption": "fact_jaccard"}


def _rng(*parts) -> np.random.Generator:
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "big"))


def subsample(n_total: int, n: int, row_id: str, seed: int = 0, repeat: int = 0) -> list[int]:
    """The first `n` of a permutation of `range(n_total)` fixed by (seed, row id, repeat): nested in `n`."""
    if not 1 <= n <= n_total:
        raise ValueError(f"N={n} is outside 1..{n_total} (the candidates generated)")
    return _rng(seed, row_id, repeat).permutation(n_total)[:n].tolist()


def vote_key(task: str, candidate: str, size: tuple[int, int] | None = None) -> str | None:
    """What a candidate votes for; None when it gives no answer (it then cannot win a vote)."""
    if task == "mc":
        return extract_choice(candidate)
    if task == "vg":
        box = parse_box(candidate, *(size or (1000, 1000)))
        return None if box is None else ",".join(f"{v:.0f}" for v in box)
    return normalize_answer(candidate) or None


def select(
    selector: str,
    indices: list[int],
    *,
    task: str = "vqa",
    candidates: list[str] | None = None,
    scores=None,
    metrics=None,
    size=None,
    rng_key: tuple = (),
) -> int:
    """The index (into the row's candidates) that `selector` picks among `indices`."""
    if selector in SCORED_SELECTORS or selector == "oracle":
        values = metrics if selector == "oracle" else scores
        if values is None:
            raise ValueError(f"selector {selector} needs {'metrics' if selector == 'oracle' else 'scores'}")
        best = max(values[i] for i in indices)
        return next(i for i in indices if values[i] == best)
    if selector == "majority_vote":
        keys = {i: vote_key(task, candidates[i], size) for i in indices}
        counts = Counter(k for k in keys.values() if k is not None)
        if not counts:
            return indices[0]
        top = max(counts.values())
        return next(i for i in indices if keys[i] is not None and counts[keys[i]] == top)
    if selector == "random":
        return indices[int(_rng("random", *rng_key).integers(len(indices)))]
    raise ValueError(f"unknown selector {selector!r}; choose from {', '.join(SELECTORS)}")


def best_of_n(
    rows: list[dict],
    candidates: list[list[str]],
    metrics: list[list[float]],
    scores: dict[str, list[list[float]]],
    n_list: list[int],
    selectors: list[str],
    *,
    seed: int = 0,
    repeats: int = 1,
) -> dict:
    """`{selector: {N: {task: mean metric, "mean": mean over tasks}}}` plus the picks of the first repeat."""
    results, picks = {}, {}
    for selector in selectors:
        results[selector] = {}
        for n in n_list:
            per_task: dict[str, list[float]] = {}
            for r, row in enumerate(rows):
                for repeat in range(repeats):
                    indices = subsample(len(candidates[r]), n, row["id"], seed, repeat)
                    chosen = select(
                        selector,
                        indices,
                        task=row["task"],
                        candidates=candidates[r],
                        scores=scores.get(selector, [None] * len(rows))[r],
                        metrics=metrics[r],
                        size=row.get("size"),
                        rng_key=(seed, row["id"], n, repeat),
                    )
                    per_task.setdefault(row["task"], []).append(metrics[r][chosen])
                    if repeat == 0:
                        picks.setdefault(selector, {}).setdefault(n, []).append(chosen)
            table = {task: float(np.mean(v)) for task, v in sorted(per_task.items())}
            table["mean"] = float(np.mean(list(table.values())))
            results[selector][n] = table
    return {"results": results, "picks": picks}


def fingerprint(*parts) -> str:
    """A short key of JSON-able settings: saved files carry it, and a rerun reuses them only when it matches."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def load_keyed_json(path: Path, key: str):
    """The JSON at `path` if its `key` matches (any key when `key` is empty), else None."""
    if path.is_file():
        data = json.loads(path.read_text())
        if not key or data.get("key") == key:
            return data
    return None


def generate_candidates(
    model,
    processor,
    rows: list[dict],
    n: int,
    path: Path,
    key: str,
    *,
    batch_size: int = 8,
    max_new_tokens: int = 64,
    temperature: float = 0.95,
    seed: int = 0,
) -> list[list[str]]:
    """`n` sampled candidates per row, appended to the JSONL `path` batch by batch (resumed when its key matches;
    `model` may be None when every row is already there)."""
    import torch
    from tqdm.auto import tqdm

    done: dict[str, list[str]] = {}
    if path.is_file():
        lines = path.read_text(encoding="utf-8").splitlines()
        if lines and json.loads(lines[0]).get("key") == key:
            for line in lines[1:]:
                try:
                    item = json.loads(line)
                except json.JSONDecodeError:  # a line cut by an interruption
                    break
                done[item["id"]] = item["candidates"]
    if len(done) < len(rows):
        with path.open("w" if not done else "a", encoding="utf-8") as f:
            if not done:
                f.write(json.dumps({"key": key}) + "\n")
            for b, start in enumerate(tqdm(range(0, len(rows), batch_size), desc="best-of-N sampling")):
                batch = rows[start : start + batch_size]
                if all(r["id"] in done for r in batch):
                    continue
                torch.manual_seed(seed * 1_000_003 + b)
                answers = generate_answers(
                    model,
                    processor,
                    batch,
                    batch_size=len(batch),
                    max_new_tokens=max_new_tokens,
                    do_sample=True,
                    temperature=temperature,
                    num_return_sequences=n,
                )
                for row, candidates in zip(batch, answers):
                    done[row["id"]] = candidates
                    f.write(json.dumps({"id": row["id"], "candidates": candidates}, ensure_ascii=False) + "\n")
                f.flush()
    else:
        logger.info("candidates up to date in %s", path)
    return [done[r["id"]] for r in rows]


def score_candidates(scorer, rows: list[dict], candidates: list[list[str]]) -> list[list[float]]:
    """Every candidate of every row scored by `scorer` (image + question + the answer part of the candidate)."""
    images, questions, texts = [], [], []
    for row, row_candidates in zip(rows, candidates):
        for candidate in row_candidates:
            images.append(row["images"][0])
            questions.append(vlm_prompt(row))
            texts.append(answer_text(candidate))
    flat = np.asarray(scorer.score(images, questions, texts), dtype=float).tolist()
    out, start = [], 0
    for row_candidates in candidates:
        out.append(flat[start : start + len(row_candidates)])
        start += len(row_candidates)
    return out
