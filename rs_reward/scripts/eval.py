"""Evaluate a reward model on held-out pairs, a VLM or CLIP on an eval set, or how scorers curate a pool.

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
        default="reward",
        metadata={
            "help": "`reward` (a reward model), `curation` (scored pools vs truth), `vlm` (a generator) or `clip`."
        },
    )
    eval_data: str | None = field(
        default=None, metadata={"help": "vlm/clip: eval file or folder (format from `eval_format`)."}
    )
    eval_format: str = field(
        default="auto",
        metadata={
            "help": "canonical (eval.jsonl), vhm (VHM JSON), lhrs (LHRS-Bench), imagefolder, karpathy, rsvqa (raw "
            "RSVQA split files), dior_rsvg (DIOR-RSVG XML folder), or auto."
        },
    )
    truth_scenes: str | None = field(
        default=None, metadata={"help": "vlm: SynthRS folder whose truth scores captions by fact."}
    )
    max_rows: int | None = field(default=None, metadata={"help": "vlm: evaluate at most this many rows per task."})
    max_new_tokens: int = field(default=64, metadata={"help": "vlm: tokens generated per answer (greedy)."})
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


def make_parser():
    """The task's parser: TRL's, over its dataclasses (`--config recipe.yaml`, then flags)."""
    from trl import TrlParser

    from rs_reward.configs import PreferenceDataArguments, RSModelConfig

    return TrlParser((EvalArguments, PreferenceDataArguments, RSModelConfig))


def main(eval_args, data_args, model_args) -> int:
    from rs_reward.data.io import Rejects
    from rs_reward.data.preference import load_preference_pairs
    from rs_reward.eval.reward_eval import evaluate_reward_model, format_reward_metrics, store_score_statistics
    from rs_reward.modeling import model_processor
    from rs_reward.modeling.loading import load_reward_model
    from rs_reward.report import write_atomic

    from ._common import setup_logging

    logger = setup_logging("rs_reward.eval")
    if eval_args.kind == "curation":
        return evaluate_curation(eval_args, logger)
    if eval_args.kind in ("vlm", "clip"):
        return evaluate_generator_or_clip(eval_args, model_args, logger)
    if eval_args.kind != "reward":
        raise ValueError(f"unknown kind {eval_args.kind!r}; choose reward, curation, vlm or clip")
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


def evaluate_generator_or_clip(eval_args, model_args, logger) -> int:
    import torch

    from rs_reward.data.evalsets import check_eval_rows, first_per_task, read_eval_rows
    from rs_reward.data.io import Rejects
    from rs_reward.eval.harness import clip_retrieval, clip_zero_shot, evaluate_vlm
    from rs_reward.modeling import model_processor
    from rs_reward.modeling.loading import load_clip, load_generator
    from rs_reward.report import markdown_table, write_atomic

    if not eval_args.eval_data:
        raise ValueError(f"kind={eval_args.kind} needs --eval_data")
    rejects = Rejects()
    rows, class_names = read_eval_rows(eval_args.eval_data, eval_args.eval_format, rejects)
    rows = check_eval_rows(rows, rejects, questions=eval_args.kind == "vlm")
    if eval_args.max_rows is not None:
        rows = first_per_task(rows, eval_args.max_rows)
    output = Path(eval_args.output_dir)
    rejects.write(output / "rejects.jsonl")
    logger.info("%d eval rows; %s", len(rows), rejects.summary())
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if eval_args.kind == "clip":
        model, processor = load_clip(
            model_args.model_name_or_path, dtype=model_args.dtype, trust_remote_code=eval_args.trust_remote_code
        )
    else:
        processor = model_processor(model_args, trust_remote_code=eval_args.trust_remote_code)
        model = load_generator(model_args, trainable=False, trust_remote_code=eval_args.trust_remote_code)
    model = model.to(device).eval()
    if eval_args.kind == "clip":
        metrics = (
            clip_zero_shot(model, processor, rows, class_names)
            if class_names
            else clip_retrieval(model, processor, rows)
        )
        predictions = []
        table = markdown_table(["metric", "value"], [[k, v] for k, v in metrics.items()])
    else:
        from rs_reward.data.synthrs import load_scenes

        scenes = load_scenes(eval_args.truth_scenes, "eval") if eval_args.truth_scenes else None
        metrics, predictions = evaluate_vlm(
            model,
            processor,
            rows,
            scenes=scenes,
            batch_size=eval_args.batch_size,
            max_new_tokens=eval_args.max_new_tokens,
        )
        table = markdown_table(
            ["task", "metric", "value", "rows"],
            [[task, k, v, m["rows"]] for task, m in metrics.items() for k, v in m.items() if k != "rows"],
        )
    result = {"model": model_args.model_name_or_path, "data": eval_args.eval_data, "metrics": metrics}
    write_atomic(output / "metrics.json", json.dumps(result, indent=2) + "\n")
    write_atomic(output / "predictions.jsonl", "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in predictions))
    title = f"# Evaluation of `{model_args.model_name_or_path}`\n\nData: `{eval_args.eval_data}`.\n\n"
    write_atomic(output / "report.md", title + table + "\n")
    logger.info("\n%s", table)
    return 0


def evaluate_curation(eval_args, logger) -> int:
    from rs_reward.eval.curation_eval import compare_scorers, format_curation
    from rs_reward.report import write_atomic

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
    from ._common import run_task

    raise SystemExit(run_task("eval", make_parser, main))
