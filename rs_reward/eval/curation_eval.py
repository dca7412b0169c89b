"""How well a scorer curates, measured against the true quality of every pool row (SynthRS `pool/truth.parquet`).

For each scorer and keep fraction: precision of the kept set (share of kept rows whose true quality is at
least `good_quality`), the mean true quality kept, and over the whole pool the Spearman correlation of score
and true quality. Selection is `rs_reward.curation.select`, the same as `rs-reward filter`.
"""

from __future__ import annotations

from pathlib import Path


def curation_metrics(scores, truth, fractions=(0.1, 0.2, 0.3, 0.5), good_quality: float = 0.75) -> dict:
    from ..curation import select
    from .reward_eval import spearman

    merged = scores.merge(truth[["id", "quality"]], on="id", how="inner", validate="one_to_one")
    good = merged["quality"].to_numpy() >= good_quality
    out = {
        "rows": len(merged),
        "good_share_in_pool": float(good.mean()),
        "spearman_score_vs_true_quality": spearman(merged["score"].to_numpy(), merged["quality"].to_numpy()),
        "by_fraction": {},
    }
    for task in sorted(merged["task"].unique()):
        part = merged[merged["task"] == task]
        out[f"spearman_{task}"] = spearman(part["score"].to_numpy(), part["quality"].to_numpy())
    tasks = sorted(merged["task"].unique())
    quality = merged["quality"].to_numpy()

    def kept(keep):
        return {
            "kept": int(keep.sum()),
            "precision": float(good[keep].mean()) if keep.any() else float("nan"),
            "mean_true_quality": float(quality[keep].mean()) if keep.any() else float("nan"),
        }

    # Global: one threshold over the whole pool; per task: each task keeps its own top fraction (the paper
    # selects per task, since the score scales of captions and answers differ).
    out["by_fraction_per_task"] = {}
    for fraction in fractions:
        out["by_fraction"][str(fraction)] = kept(select(merged, {"*": fraction}))
        out["by_fraction_per_task"][str(fraction)] = kept(select(merged, dict.fromkeys(tasks, fraction)))
    return out


def compare_scorers(
    scores_dirs: dict[str, str],
    truth_file: str,
    fractions=(0.1, 0.2, 0.3, 0.5),
    good_quality: float = 0.75,
    plot: str | Path | None = None,
) -> dict:
    import pandas as pd

    from ..scoring import read_scores

    truth = pd.read_parquet(truth_file)
    results = {
        name: curation_metrics(read_scores(d, ["id", "score", "task"]), truth, fractions, good_quality)
        for name, d in scores_dirs.items()
    }
    if plot is not None:
        precision_plot(results, fractions, plot, good_quality)
    return results


def precision_plot(results: dict, fractions, path, good_quality: float) -> Path:
    from ..report import line_plot

    pool_good = next(iter(results.values()))["good_share_in_pool"]
    return line_plot(
        {
            name: ([100 * f for f in fractions], [r["by_fraction"][str(f)]["precision"] for f in fractions])
            for name, r in results.items()
        },
        path,
        xlabel="kept (%)",
        ylabel=f"precision (true quality >= {good_quality})",
        ylim=(0, 1.02),
        hline=(pool_good, "whole pool"),
    )


def format_curation(results: dict, fractions) -> str:
    from ..report import markdown_table

    header = ["scorer", "Spearman(score, quality)"] + [f"precision @ {int(100 * f)} %" for f in fractions]
    rows = [
        [name, r["spearman_score_vs_true_quality"]] + [r["by_fraction"][str(f)]["precision"] for f in fractions]
        for name, r in results.items()
    ]
    per_task_rows = [
        [name, *[r.get(f"spearman_{t}", float("nan")) for t in ("caption", "instruction")]]
        + [r["by_fraction_per_task"][str(f)]["precision"] for f in fractions]
        for name, r in results.items()
        if "by_fraction_per_task" in r
    ]
    quality = [
        [name] + [r["by_fraction"][str(f)]["mean_true_quality"] for f in fractions] for name, r in results.items()
    ]
    pool = next(iter(results.values()))
    return "\n".join(
        [
            f"Pool: {pool['rows']} rows, {pool['good_share_in_pool']:.1%} of them good (true quality >= threshold).",
            "",
            "One threshold over the whole pool:",
            "",
            markdown_table(header, rows),
            "",
            "Each task keeping its own top fraction (the paper's per-task selection):",
            "",
            markdown_table(
                ["scorer", "Spearman (captions)", "Spearman (instructions)"]
                + [f"precision @ {int(100 * f)} % per task" for f in fractions],
                per_task_rows,
            ),
            "",
            "Mean true quality of the kept rows (one threshold):",
            "",
            markdown_table(["scorer"] + [f"{int(100 * f)} %" for f in fractions], quality),
        ]
    )
