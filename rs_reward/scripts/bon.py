"""Best-of-N: sample N answers per question once, pick one by the score model, CLIP score, majority vote, random or
the oracle, for every N in a list, and plot accuracy against N.

Candidates (`candidates.jsonl`) and each selector's scores (`scores-<selector>.json`) are saved with the settings
that made them, so a rerun with other selectors, N list or repeats reuses them without generating again; generation
resumes batch by batch after an interruption.

    rs-reward bon --config recipes/tiny/bon/config_demo.yaml
    rs-reward bon --config recipes/qwen2-vl-7b/bon/config_lhrs_mc.yaml
"""

from __future__ import annotations

from pathlib import Path


def make_parser():
    """The task's parser: TRL's, over its dataclasses (`--config recipe.yaml`, then flags)."""
    from trl import TrlParser

    from rs_reward.configs import BoNArguments, RSModelConfig

    return TrlParser((BoNArguments, RSModelConfig))


def main(args, model_args) -> int:
    from rs_reward.bon import (
        PRIMARY_METRIC,
        SELECTORS,
        best_of_n,
        candidate_metrics,
        load_rows,
        sample_once,
        selector_scores,
        subsample,
        write_results,
    )
    from rs_reward.data.io import Rejects

    from ._common import setup_logging, summary_table

    logger = setup_logging("rs_reward.bon")
    n_list = sorted(set(args.n_list))
    selectors = args.selectors
    unknown = [s for s in selectors if s not in SELECTORS]
    if unknown:
        raise ValueError(f"unknown selectors {unknown}; choose from {', '.join(SELECTORS)}")
    rejects = Rejects()
    rows = load_rows(args, rejects)
    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    rejects.write(output / "rejects.jsonl")
    logger.info("%d eval rows; %s", len(rows), rejects.summary())

    candidates, key = sample_once(rows, n_list[-1], args, model_args, output)
    scores = selector_scores(rows, candidates, selectors, args, key, output)
    metrics = candidate_metrics(rows, candidates, args.truth_scenes)
    result = best_of_n(rows, candidates, metrics, scores, n_list, selectors, seed=args.seed, repeats=args.repeats)
    summary, table = write_results(result, rows, n_list, args, model_args, output)
    if args.browse_max_rows > 0:
        from rs_reward.pages import write_bon_page

        n_shown = n_list[-1]
        tasks = sorted({r["task"] for r in rows})
        summary["page"] = str(
            write_bon_page(
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
