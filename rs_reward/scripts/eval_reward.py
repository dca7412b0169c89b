"""Evaluate a reward model on held-out preference pairs: pairwise accuracy per task, source and operator, the
image-blind control (every image blanked), the rank correlation with true quality on SynthRS, a score histogram.

    rs-reward eval_reward --config recipes/tiny/eval_reward/config_synthrs.yaml
"""

from __future__ import annotations

import json
from pathlib import Path


def make_parser():
    """The task's parser: TRL's, over its dataclasses (`--config recipe.yaml`, then flags)."""
    from trl import TrlParser

    from rs_reward.configs import PreferenceDataArguments, RewardEvalArguments, RSModelConfig

    return TrlParser((RewardEvalArguments, PreferenceDataArguments, RSModelConfig))


def main(eval_args, data_args, model_args) -> int:
    from rs_reward.data.io import Rejects
    from rs_reward.data.preference import load_preference_pairs
    from rs_reward.eval.reward_eval import evaluate_reward_model, format_reward_metrics, store_score_statistics
    from rs_reward.modeling import model_processor
    from rs_reward.modeling.loading import load_reward_model
    from rs_reward.report import write_atomic

    from ._common import setup_logging

    logger = setup_logging("rs_reward.eval_reward")
    name = data_args.eval_dataset_name or data_args.dataset_name
    image_root = data_args.eval_image_root or data_args.image_root
    rejects = Rejects(strict=data_args.strict)
    pairs = load_preference_pairs(name, image_root, split=data_args.dataset_test_split, rejects=rejects)
    if data_args.max_eval_pairs is not None and data_args.max_eval_pairs < len(pairs):
        pairs = pairs.select(range(data_args.max_eval_pairs))
    output = Path(eval_args.output_dir)
    rejects.write(output / "rejects.jsonl")
    logger.info("%d held-out pairs; %s", len(pairs), rejects.summary())

    model = load_reward_model(model_args, trainable=False, trust_remote_code=eval_args.trust_remote_code)
    processor = model_processor(model_args, trust_remote_code=eval_args.trust_remote_code)
    metrics = evaluate_reward_model(
        model,
        processor,
        pairs,
        batch_size=eval_args.batch_size,
        blind_control=eval_args.blind_control,
        histogram_path=output / "figures" / "score_histogram.png",
    )
    metrics["model"] = model_args.model_name_or_path
    metrics["data"] = name
    write_atomic(output / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    table = format_reward_metrics(metrics)
    write_atomic(
        output / "report.md",
        f"# Reward model evaluation\n\nModel `{metrics['model']}` on `{name}`.\n\n{table}\n\n"
        "![score histogram](figures/score_histogram.png)\n",
    )
    if eval_args.store_statistics:
        store_score_statistics(model_args.model_name_or_path, metrics["score_mean"], metrics["score_std"])
    logger.info("\n%s", table)
    return 0


if __name__ == "__main__":
    from ._common import run_task

    raise SystemExit(run_task("eval_reward", make_parser, main))
