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
- `rule_agreement`: on tasks with a right/wrong metric, how often each scorer ranks a right candidate above a wrong
  one for the same question (the within-question AUC of GRPO's reward-hacking monitor, here on the policy's own
  samples before any RL, from every candidate rather than a few per logging step).
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
from .eval.reward_eval import wins_within_groups


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
    """`{"results": {selector: {N: {task: mean metric, "mean": mean over tasks}}}, "picks": the picks of the first
    repeat, "rule_agreement": rule_agreement(...)}`."""
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
    return {"results": results, "picks": picks, "rule_agreement": rule_agreement(rows, metrics, scores)}


def rule_agreement(rows: list[dict], metrics: list[list[float]], scores: dict[str, list[list[float]]]) -> dict:
    """`{scorer: {task: {"auc", "pairs", "questions", "candidates"}}}` over the tasks whose metric is right or wrong
    (not captions): the share of (right, wrong) candidate pairs of a question that the scorer orders right first (ties
    a half), from the `questions` with both, `candidates` each at most; tasks without such a question are left out."""
    out: dict[str, dict] = {}
    for task in sorted({r["task"] for r in rows} - {"caption"}):
        index = [i for i, row in enumerate(rows) if row["task"] == task]
        ids = [rows[i]["id"] for i in index for _ in metrics[i]]
        accepted = [m > 0 for i in index for m in metrics[i]]
        mixed = sum(len({m > 0 for m in metrics[i]}) == 2 for i in index)
        for scorer, by_row in scores.items():
            wins, pairs = wins_within_groups(ids, accepted, [v for i in index for v in by_row[i]])
            if pairs:
                out.setdefault(scorer, {})[task] = {
                    "auc": wins / pairs,
                    "pairs": pairs,
                    "questions": mixed,
                    "candidates": max(len(metrics[i]) for i in index),
                }
    return out


def agreement_text(agreement: dict) -> str:
    """The report's paragraph on `rule_agreement` ('' when there is none)."""
    from .report import markdown_table

    if not agreement:
        return ""
    rows = [
        [scorer, task, f"{v['auc']:.3f}", v["pairs"], v["questions"], v["candidates"]]
        for scorer, by_task in agreement.items()
        for task, v in by_task.items()
    ]
    return (
        "\nHow often each scorer ranks a right candidate above a wrong one for the same question (AUC over every"
        " (right, wrong) pair of the candidates of the questions with both; 0.5: blind to correctness):\n\n"
        + markdown_table(["scorer", "task", "AUC", "pairs", "questions with both", "candidates each"], rows)
        + "\n"
    )


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


# ------------------------------------------------------------------------------------------------ the bon task


def load_selector_scorer(selector: str, args):
    """The scorer behind a model-based selector: the score model (`args.reward_model_*`) or CLIP score."""
    from .configs import RSModelConfig
    from .scoring import load_scorer

    if selector == "score_model":
        if not args.reward_model_name_or_path:
            raise ValueError("selector score_model needs --reward_model_name_or_path")
        model_args = RSModelConfig(
            model_name_or_path=args.reward_model_name_or_path,
            dtype=args.reward_model_dtype,
            min_pixels=args.reward_min_pixels,
            max_pixels=args.reward_max_pixels,
        )
        return load_scorer(
            "reward_model", model_args, batch_size=args.score_batch_size, prompt_order=args.prompt_order
        )
    if not args.clip_model_name_or_path:
        raise ValueError("selector clip_score needs --clip_model_name_or_path")
    return load_scorer(
        "clip", RSModelConfig(model_name_or_path=args.clip_model_name_or_path), batch_size=args.score_batch_size
    )


def load_rows(args, rejects) -> list[dict]:
    """The eval rows of `args.eval_data` that best-of-N can use (an image each; `tasks`; captions once per image;
    `max_rows` per task), each with its image size; the others go to `rejects`."""
    from .data.evalsets import check_eval_rows, first_per_task, read_eval_rows
    from .data.images import open_image
    from .eval.harness import dedupe_captions

    rows, _ = read_eval_rows(args.eval_data, args.eval_format, rejects)
    rows = check_eval_rows(rows, rejects)
    for row in rows:
        if not row.get("images"):
            rejects.add(row["id"], "best-of-N here needs an image per row")
    rows = [r for r in rows if r.get("images")]
    if args.tasks:
        keep = set(args.tasks)
        rows = [r for r in rows if r["task"] in keep]
    rows = dedupe_captions(rows)
    if args.max_rows is not None:
        rows = first_per_task(rows, args.max_rows)
    if not rows:
        raise ValueError(f"no eval rows left in {args.eval_data} for tasks {args.tasks}")
    for row in rows:
        row.setdefault("size", open_image(row["images"][0]).size)
    return rows


def sample_once(rows: list[dict], n_max: int, args, model_args, output: Path) -> tuple[list[list[str]], str]:
    """N_max candidates per row, generated once (a finished set of at least N_max candidates made with the same
    settings is reused: smaller N are sub-samples of it); (candidates, their settings key)."""
    import torch

    from .modeling import model_processor
    from .modeling.loading import load_generator
    from .report import write_atomic

    done = load_keyed_json(output / "candidates.done.json", "")
    settings = [
        model_args.model_name_or_path,
        args.eval_data,
        [r["id"] for r in rows],
        args.temperature,
        args.max_new_tokens,
        args.seed,
        model_args.min_pixels,
        model_args.max_pixels,
    ]
    if done is not None and done.get("n", 0) >= n_max and done["key"] == fingerprint(*settings, done["n"]):
        n_max = done["n"]
    key = fingerprint(*settings, n_max)
    sampling = dict(
        batch_size=args.batch_size, max_new_tokens=args.max_new_tokens, temperature=args.temperature, seed=args.seed
    )
    if load_keyed_json(output / "candidates.done.json", key) is not None:
        logger.info("candidates up to date in %s", output / "candidates.jsonl")
        return generate_candidates(None, None, rows, n_max, output / "candidates.jsonl", key, **sampling), key
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    processor = model_processor(model_args, trust_remote_code=args.trust_remote_code)
    model = load_generator(model_args, trainable=False, trust_remote_code=args.trust_remote_code).to(device)
    candidates = generate_candidates(model, processor, rows, n_max, output / "candidates.jsonl", key, **sampling)
    write_atomic(output / "candidates.done.json", json.dumps({"key": key, "n": n_max}) + "\n")
    return candidates, key


def selector_scores(rows, candidates, selectors, args, key: str, output: Path) -> dict[str, list[list[float]]]:
    """Every candidate's score by each model-based selector, saved per selector under a key of its settings."""
    from .report import write_atomic

    scores = {}
    for selector in (s for s in selectors if s in SCORED_SELECTORS):
        model_path = args.reward_model_name_or_path if selector == "score_model" else args.clip_model_name_or_path
        order = args.prompt_order if selector == "score_model" else None
        score_key = fingerprint(key, selector, model_path, args.reward_min_pixels, args.reward_max_pixels, order)
        path = output / f"scores-{selector}.json"
        cached = load_keyed_json(path, score_key)
        if cached is None:
            logger.info("scoring %d candidates with %s", sum(map(len, candidates)), selector)
            scores[selector] = score_candidates(load_selector_scorer(selector, args), rows, candidates)
            write_atomic(path, json.dumps({"key": score_key, "scores": scores[selector]}) + "\n")
        else:
            scores[selector] = cached["scores"]
    return scores


def candidate_metrics(rows, candidates, truth_scenes: str | None) -> list[list[float]]:
    """The primary metric of every candidate (captions by fact against the SynthRS truth when given)."""
    from .eval.harness import score_answer

    scenes = None
    if truth_scenes:
        from .data.synthrs import load_scenes

        scenes = load_scenes(truth_scenes, "eval")
    metrics = []
    for row, row_candidates in zip(rows, candidates):
        scene = scenes.get(Path(row["images"][0]).stem) if scenes is not None else None
        name = PRIMARY_METRIC[row["task"]]
        metrics.append([score_answer(row, c, scene).get(name, 0.0) for c in row_candidates])
    return metrics


def write_results(result: dict, rows, n_list, args, model_args, output: Path) -> tuple[dict, str]:
    """metrics.json, the table and the curves of every selector; (summary, markdown table)."""
    from .report import line_plot, markdown_table, write_atomic

    tasks = sorted({r["task"] for r in rows})
    table_rows = []
    for selector, by_n in result["results"].items():
        for n, values in by_n.items():
            table_rows.append([selector, n, *[values.get(t, float("nan")) for t in tasks], values["mean"]])
    header = ["selector", "N", *[f"{t} ({PRIMARY_METRIC[t]})" for t in tasks], "mean over tasks"]
    table = markdown_table(header, table_rows)
    figures = output / "figures"
    for selector, by_n in result["results"].items():
        line_plot(
            {t: (n_list, [by_n[n][t] for n in n_list]) for t in [*tasks, "mean"]},
            figures / f"bon_{selector}.png",
            xlabel="N (candidates)",
            ylabel="metric of the selected answer",
            title=f"best-of-N, {selector}",
            logx=True,
        )
    line_plot(
        {s: (n_list, [by_n[n]["mean"] for n in n_list]) for s, by_n in result["results"].items()},
        figures / "bon_selectors.png",
        xlabel="N (candidates)",
        ylabel="mean metric over tasks",
        title="best-of-N by selector",
        logx=True,
    )
    summary = {
        "policy": model_args.model_name_or_path,
        "data": args.eval_data,
        "rows": {t: sum(r["task"] == t for r in rows) for t in tasks},
        "n_list": n_list,
        "temperature": args.temperature,
        "repeats": args.repeats,
        "seed": args.seed,
        "results": {s: {str(n): v for n, v in by_n.items()} for s, by_n in result["results"].items()},
        "rule_agreement": result.get("rule_agreement", {}),
    }
    write_atomic(output / "metrics.json", json.dumps(summary, indent=2) + "\n")
    write_atomic(
        output / "report.md",
        f"# Best-of-N of `{model_args.model_name_or_path}`\n\nData `{args.eval_data}`, temperature "
        f"{args.temperature}, {args.repeats} sub-sample draw(s) per N.\n\n{table}\n\n"
        "![selectors](figures/bon_selectors.png)\n"
        + agreement_text(summary["rule_agreement"])
        + (
            "\nEvery candidate with its scores and each selector's pick: [browse/index.html](browse/index.html).\n"
            if args.browse_max_rows > 0
            else ""
        ),
    )
    return summary, table
