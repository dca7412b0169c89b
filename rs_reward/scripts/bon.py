"""Best-of-N: sample N answers per question once, pick one by the score model, CLIP score, majority vote, random or
the oracle, for every N in a list, and plot accuracy against N.

Candidates (`candidates.jsonl`) and each selector's scores (`scores-<selector>.json`) are saved with the settings
that made them, so a rerun with other selectors, N list or repeats reuses them without generating again; generation
resumes batch by batch after an interruption.

    rs-reward bon --config recipes/tiny/bon/config_demo.yaml
    rs-reward bon --config recipes/qwen2-vl-7b/bon/config_lhrs_mc.yaml
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from rs_reward.data.chat import prompt_order_field


@dataclass
class BoNArguments:
    """What to sample, how to select, where to write."""

    eval_data: str = field(default=None, metadata={"help": "Eval rows (any layout `rs-reward eval` reads)."})
    eval_format: str = field(default="auto", metadata={"help": "canonical, vhm, lhrs, karpathy or auto."})
    truth_scenes: str | None = field(default=None, metadata={"help": "SynthRS folder: caption rows scored by fact."})
    tasks: str | None = field(default=None, metadata={"help": "Comma-separated tasks to keep (default: all)."})
    max_rows: int | None = field(default=None, metadata={"help": "At most this many rows per task."})
    n_list: str = field(default="1,2,4,8,16", metadata={"help": "The N values; the largest is generated."})
    temperature: float = field(default=0.95, metadata={"help": "Sampling temperature (the paper: 0.95)."})
    max_new_tokens: int = field(default=64, metadata={"help": "Tokens per candidate."})
    batch_size: int = field(default=8, metadata={"help": "Prompts per generate call (x N sequences)."})
    selectors: str = field(
        default="score_model,clip_score,majority_vote,random,oracle",
        metadata={"help": "Selectors: score_model, clip_score, majority_vote, random, oracle."},
    )
    reward_model_name_or_path: str | None = field(default=None, metadata={"help": "Score model of `score_model`."})
    reward_model_dtype: str = field(default="auto", metadata={"help": "dtype of the score model."})
    reward_min_pixels: int | None = field(default=None, metadata={"help": "Score model's smallest image area."})
    reward_max_pixels: int | None = field(default=None, metadata={"help": "Score model's largest image area."})
    clip_model_name_or_path: str | None = field(default=None, metadata={"help": "CLIP / SigLIP of `clip_score`."})
    score_batch_size: int = field(default=32, metadata={"help": "Candidates per scoring forward pass."})
    prompt_order: str = prompt_order_field()
    repeats: int = field(default=4, metadata={"help": "Sub-sample draws averaged per N."})
    seed: int = field(default=0, metadata={"help": "Seed of sampling, sub-sampling and the random selector."})
    output_dir: str = field(default="runs/bon", metadata={"help": "Folder for candidates, scores, table and plots."})
    browse_max_rows: int = field(
        default=8, metadata={"help": "Questions per task on the page `<output_dir>/browse/index.html` (0: no page)."}
    )
    trust_remote_code: bool = field(default=False, metadata={"help": "Allow custom model code from the Hub."})


def make_parser():
    """The task's parser: TRL's, over its dataclasses (`--config recipe.yaml`, then flags)."""
    from trl import TrlParser

    from rs_reward.configs import RSModelConfig

    return TrlParser((BoNArguments, RSModelConfig))


def load_selector_scorer(selector: str, args: BoNArguments):
    """The scorer behind a model-based selector: the score model or CLIP score."""
    from rs_reward.configs import RSModelConfig
    from rs_reward.scoring import load_scorer

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


def main(args, model_args) -> int:
    import torch

    from rs_reward.bon import (
        PRIMARY_METRIC,
        SCORED_SELECTORS,
        SELECTORS,
        best_of_n,
        fingerprint,
        generate_candidates,
        load_keyed_json,
        score_candidates,
    )
    from rs_reward.data.evalsets import check_eval_rows, first_per_task, read_eval_rows
    from rs_reward.data.images import open_image
    from rs_reward.data.io import Rejects
    from rs_reward.eval.harness import dedupe_captions, score_answer
    from rs_reward.modeling import model_processor
    from rs_reward.modeling.loading import load_generator
    from rs_reward.report import line_plot, markdown_table, write_atomic

    from ._common import setup_logging, summary_table

    logger = setup_logging("rs_reward.bon")
    n_list = sorted({int(n) for n in args.n_list.split(",")})
    selectors = [s.strip() for s in args.selectors.split(",") if s.strip()]
    unknown = [s for s in selectors if s not in SELECTORS]
    if unknown:
        raise ValueError(f"unknown selectors {unknown}; choose from {', '.join(SELECTORS)}")
    rejects = Rejects()
    rows, _ = read_eval_rows(args.eval_data, args.eval_format, rejects)
    rows = check_eval_rows(rows, rejects)
    for row in rows:
        if not row.get("images"):
            rejects.add(row["id"], "best-of-N here needs an image per row")
    rows = [r for r in rows if r.get("images")]
    if args.tasks:
        keep = {t.strip() for t in args.tasks.split(",")}
        rows = [r for r in rows if r["task"] in keep]
    rows = dedupe_captions(rows)
    if args.max_rows is not None:
        rows = first_per_task(rows, args.max_rows)
    if not rows:
        raise ValueError(f"no eval rows left in {args.eval_data} for tasks {args.tasks}")
    for row in rows:
        row.setdefault("size", open_image(row["images"][0]).size)
    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    rejects.write(output / "rejects.jsonl")
    logger.info("%d eval rows; %s", len(rows), rejects.summary())
    n_max = n_list[-1]

    # 1. Candidates, generated once for the largest N
    # (a finished set of at least N_max candidates per row is reused: N values are sub-samples of it)
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
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    sampling = dict(
        batch_size=args.batch_size, max_new_tokens=args.max_new_tokens, temperature=args.temperature, seed=args.seed
    )
    if load_keyed_json(output / "candidates.done.json", key) is None:
        processor = model_processor(model_args, trust_remote_code=args.trust_remote_code)
        model = load_generator(model_args, trainable=False, trust_remote_code=args.trust_remote_code).to(device)
        candidates = generate_candidates(model, processor, rows, n_max, output / "candidates.jsonl", key, **sampling)
        del model
        write_atomic(output / "candidates.done.json", json.dumps({"key": key, "n": n_max}) + "\n")
    else:
        logger.info("candidates up to date in %s", output / "candidates.jsonl")
        candidates = generate_candidates(None, None, rows, n_max, output / "candidates.jsonl", key, **sampling)

    # 2. Scores of the model-based selectors, saved per selector
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

    # 3. Metric of every candidate, selection for every N, table and curves
    scenes = None
    if args.truth_scenes:
        from rs_reward.data.synthrs import load_scenes

        scenes = load_scenes(args.truth_scenes, "eval")
    metrics = []
    for row, row_candidates in zip(rows, candidates):
        scene = None
        if scenes is not None:
            scene = scenes.get(Path(row["images"][0]).stem)
        name = PRIMARY_METRIC[row["task"]]
        metrics.append([score_answer(row, c, scene).get(name, 0.0) for c in row_candidates])
    result = best_of_n(rows, candidates, metrics, scores, n_list, selectors, seed=args.seed, repeats=args.repeats)
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
    }
    write_atomic(output / "metrics.json", json.dumps(summary, indent=2) + "\n")
    if args.browse_max_rows > 0:
        from rs_reward.bon import subsample
        from rs_reward.pages import write_bon_page

        n_shown = n_list[-1]
        page = write_bon_page(
            output / "browse",
            rows=rows,
            candidates=candidates,
            metrics=metrics,
            scores=scores,
            picks={s: chosen[n_shown] for s, chosen in result["picks"].items()},
            drawn=[subsample(len(c), n_shown, row["id"], args.seed, 0) for row, c in zip(rows, candidates)],
            results=result["results"],
            metric_names={t: PRIMARY_METRIC[t] for t in tasks},
            n=n_shown,
            max_rows=args.browse_max_rows,
            title=f"Best-of-N candidates of {model_args.model_name_or_path}",
            policy=model_args.model_name_or_path,
        )
        summary["page"] = str(page)
    write_atomic(
        output / "report.md",
        f"# Best-of-N of `{model_args.model_name_or_path}`\n\nData `{args.eval_data}`, temperature "
        f"{args.temperature}, {args.repeats} sub-sample draw(s) per N.\n\n{table}\n\n"
        "![selectors](figures/bon_selectors.png)\n"
        + (
            "\nEvery candidate with its scores and each selector's pick: [browse/index.html](browse/index.html).\n"
            if args.browse_max_rows > 0
            else ""
        ),
    )
    logger.info("\n%s", table)
    rows_summary = {
        f"{s} @ N={n_list[-1]} (mean)": round(by_n[n_list[-1]]["mean"], 3) for s, by_n in result["results"].items()
    }
    rows_summary["N=1 (any selector, mean)"] = round(next(iter(result["results"].values()))[n_list[0]]["mean"], 3)
    rows_summary["report"] = str(output / "report.md")
    if "page" in summary:
        rows_summary["page"] = summary["page"]
    logger.info("\n%s", summary_table("best-of-N", rows_summary))
    return 0


if __name__ == "__main__":
    from ._common import run_task

    raise SystemExit(run_task("bon", make_parser, main))
