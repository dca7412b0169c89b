"""Evaluate how well each scorer curates a pool against its true quality (SynthRS): the precision of the kept
rows (true quality >= `good_quality`) at each keep fraction, globally and per task, and Spearman(score, quality).

    rs-reward eval_curation --config recipes/tiny/eval_curation/config_synthrs.yaml
"""

from __future__ import annotations

import json
from pathlib import Path


def make_parser():
    """The task's parser: TRL's, over its dataclasses (`--config recipe.yaml`, then flags)."""
    from trl import TrlParser

    from rs_reward.configs import CurationEvalArguments

    return TrlParser((CurationEvalArguments,))


def main(eval_args) -> int:
    from rs_reward.eval.curation_eval import compare_scorers, format_curation
    from rs_reward.report import write_atomic

    from ._common import setup_logging

    logger = setup_logging("rs_reward.eval_curation")
    scores = dict(item.split("=", 1) for item in eval_args.scores)
    output = Path(eval_args.output_dir)
    results = compare_scorers(
        scores,
        eval_args.truth,
        eval_args.fractions,
        eval_args.good_quality,
        plot=output / "figures" / "precision_vs_kept.png",
    )
    write_atomic(output / "metrics.json", json.dumps(results, indent=2) + "\n")
    table = format_curation(results, eval_args.fractions)
    write_atomic(
        output / "report.md",
        f"# Curation against true quality\n\n{table}\n\n![precision](figures/precision_vs_kept.png)\n",
    )
    logger.info("\n%s", table)
    return 0


if __name__ == "__main__":
    from ._common import run_task

    raise SystemExit(run_task("eval_curation", make_parser, main))
