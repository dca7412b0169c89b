"""Evaluate a reward model on held-out pairs, or how well scorers curate a pool against its true quality.

Reward models: pairwise accuracy per task/source/operator, an image-blind control, the rank correlation with
true quality on SynthRS, a score histogram. Curation: precision of the kept sets for each scorer.

    rs-reward eval --config recipes/tiny/eval/config_reward.yaml
    rs-reward eval --config recipes/tiny/eval/config_curation.yaml      # reward model vs CLIP vs random on SynthRS
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class EvalArguments:
    """What to evaluate and where to write it."""

    kind: str = field(
        default="reward", metadata={"help": "`reward` (a reward model) or `curation` (scored pools vs truth)."}
    )
    scores: str | None = field(
        default=None, metadata={"help": "curation: `name=folder,...` of `rs-reward score` outputs."}
    )
    truth: str | None = field(
        default=None, metadata={"help": "curation: parquet of `id, quality` (SynthRS pool/truth.parquet)."}
    )
    fractions: str = field(default="0.1,0.2,0.3,0.5", metadata={"help": "curation: keep fractions to measure."})
    good_quality: float = field(default=0.75, metadata={"help": "curation: true quality that counts as good."})
    output_dir: str = field(default="runs/eval", metadata={"help": "Folder for metrics.json, report.md and figures."})
    batch_size: int = field(default=16, metadata={"help": "Rows per forward pass."})
    blind_control: bool = field(default=True, metadata={"help": "Also score with every image blanked."})
    store_statistics: bool = field(
        default=False, metadata={"help": "Write score_mean/score_std into the model's config."}
    )
    trust_remote_code: bool = field(default=False, metadata={"help": "Allow custom model code from the Hub."})


def config_types():
    from rs_reward.configs import PreferenceDataArguments, RSModelConfig

    return (EvalArguments, PreferenceDataArguments, RSModelConfig)


def main(argv: list[str] | None = None) -> int:
    from rs_reward.data.io import Rejects
    from rs_reward.data.preference import load_preference_pairs
    from rs_reward.eval.report import write_atomic
    from rs_reward.eval.reward_eval import evaluate_reward_model, format_reward_metrics, store_score_statistics
    from rs_reward.modeling import load_processor
    from rs_reward.modeling.loading import load_reward_model

    from ._common import parse, setup_logging

    logger = setup_logging("rs_reward.eval")
    eval_args, data_args, model_args = parse(config_types(), argv)
    if eval_args.kind == "curation":
        return evaluate_curation(eval_args, logger)
    if eval_args.kind != "reward":
        raise ValueError(f"kind={eval_args.kind!r} is not implemented yet; use `reward` or `curation`")
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
    processor = load_processor(
        model_args.model_name_or_path,
        min_pixels=model_args.min_pixels,
        max_pixels=model_args.max_pixels,
        trust_remote_code=eval_args.trust_remote_code,
    )
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


def evaluate_curation(eval_args, logger) -> int:
    from rs_reward.eval.curation_eval import compare_scorers, format_curation
    from rs_reward.eval.report import write_atomic

    if not eval_args.scores or not eval_args.truth:
        raise ValueError("kind=curation needs --scores name=folder,... and --truth pool/truth.parquet")
    scores = dict(item.split("=", 1) for item in eval_args.scores.split(","))
    fractions = [float(f) for f in eval_args.fractions.split(",")]
    output = Path(eval_args.output_dir)
    results = compare_scorers(
        scores, eval_args.truth, fractions, eval_args.good_quality, plot=output / "figures" / "precision_vs_kept.png"
    )
    write_atomic(output / "metrics.json", json.dumps(results, indent=2) + "\n")
    table = format_curation(results, fractions)
    write_atomic(
        output / "report.md",
        f"# Curation against true quality\n\n{table}\n\n![precision](figures/precision_vs_kept.png)\n",
    )
    logger.info("\n%s", table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
