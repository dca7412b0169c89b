"""Train a VLM reward (score) model on preference pairs: full, LoRA or QLoRA, with the paper's freezing stages.

    # CPU, SynthRS (make demo)
    rs-reward reward --config recipes/tiny/reward/config_demo.yaml
    # the paper's stage 2 (vision tower + head) on 8 GPUs with ZeRO-2
    accelerate launch --config_file accelerate_configs/zero2.yaml -m rs_reward.scripts.reward \
        --config recipes/qwen2-vl-7b/reward/config_stage2.yaml
    # LoRA on one GPU
    accelerate launch --config_file accelerate_configs/single_gpu.yaml -m rs_reward.scripts.reward \
        --config recipes/qwen2-vl-7b/reward/config_lora.yaml

Writes `output_dir/`: the model (or adapter) with its processor, `README.md` (model card), `rejects.jsonl`,
`eval_metrics.json` and `figures/score_histogram.png`. A rerun resumes from the last checkpoint in `output_dir`.
"""

from __future__ import annotations

import json
from pathlib import Path


def make_parser():
    """The task's parser: TRL's, over its dataclasses (`--config recipe.yaml`, then flags)."""
    from trl import TrlParser

    from rs_reward.configs import RewardScriptArguments, RSModelConfig, RSRewardConfig

    return TrlParser((RewardScriptArguments, RSRewardConfig, RSModelConfig))


def load_pairs(script_args, training_args, logger):
    """Training and held-out pairs as canonical `datasets`, with the rejects written and counted."""
    from rs_reward.data.io import Rejects
    from rs_reward.data.preference import load_preference_pairs

    rejects = Rejects(strict=script_args.strict)
    rejects.context = {"split": "train"}  # the same folder may be both sets: each reject says which load saw it
    train = load_preference_pairs(
        script_args.dataset_name, script_args.image_root, split=script_args.dataset_train_split, rejects=rejects
    )
    if script_args.max_train_pairs is not None and script_args.max_train_pairs < len(train):
        train = train.shuffle(seed=training_args.seed).select(range(script_args.max_train_pairs))
    held_out = None
    if script_args.eval_dataset_name:
        rejects.context = {"split": "held_out"}
        held_out = load_preference_pairs(
            script_args.eval_dataset_name,
            script_args.eval_image_root,
            split=script_args.dataset_test_split,
            rejects=rejects,
        )
        if script_args.max_eval_pairs is not None and script_args.max_eval_pairs < len(held_out):
            held_out = held_out.shuffle(seed=training_args.seed).select(range(script_args.max_eval_pairs))
    if training_args.process_index == 0:
        rejects.write(Path(training_args.output_dir) / "rejects.jsonl")
    logger.info("pairs: %d train, %s held-out; %s", len(train), len(held_out) if held_out else 0, rejects.summary())
    return train, held_out, rejects


def main(script_args, training_args, model_args) -> int:
    from transformers import set_seed

    from rs_reward.eval.reward_eval import evaluate_reward_model, format_reward_metrics, store_score_statistics
    from rs_reward.hub import reward_model_card
    from rs_reward.modeling import model_processor
    from rs_reward.modeling.loading import describe_trainable, load_reward_model, save_score_config
    from rs_reward.trainers import RSRewardTrainer

    from ._common import (
        card_hyperparameters,
        check_launch,
        checkpoint_to_resume,
        finish_trackers,
        push_output,
        setup_logging,
        summary_table,
        take_push_request,
    )

    logger = setup_logging("rs_reward.reward")
    check_launch(training_args, logger)
    push = take_push_request(training_args)
    if not script_args.dataset_name:
        raise ValueError("dataset_name is required (an RSRM folder, a JSONL/parquet file or a datasets dataset)")
    output_dir = Path(training_args.output_dir)
    train, held_out, rejects = load_pairs(script_args, training_args, logger)

    processor = model_processor(model_args, trust_remote_code=training_args.trust_remote_code)
    set_seed(training_args.seed)  # before loading: a new head is initialised from the global RNG
    model = load_reward_model(model_args, trust_remote_code=training_args.trust_remote_code)
    logger.info("trainable parameters per part:\n%s", describe_trainable(model))

    trainer = RSRewardTrainer(
        model=model, args=training_args, train_dataset=train, eval_dataset=held_out, processing_class=processor
    )
    result = trainer.train(resume_from_checkpoint=checkpoint_to_resume(training_args, logger))
    trainer.save_model(str(output_dir))
    if trainer.is_world_process_zero():
        save_score_config(trainer.model, output_dir)

    metrics, metrics_md = {}, None
    if held_out is not None and script_args.evaluate_after_training and trainer.is_world_process_zero():
        metrics = evaluate_reward_model(
            trainer.model,
            processor,
            held_out,
            batch_size=training_args.per_device_eval_batch_size,
            histogram_path=output_dir / "figures" / "score_histogram.png",
        )
        metrics_md = format_reward_metrics(metrics)
        (output_dir / "eval_metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        store_score_statistics(output_dir, metrics["score_mean"], metrics["score_std"])
        logger.info("held-out evaluation:\n%s", metrics_md)

    is_adapter = (output_dir / "adapter_config.json").is_file()
    if trainer.is_world_process_zero():
        hyperparameters = card_hyperparameters(training_args, model_args, "center_rewards_coefficient", "max_length")
        datasets = [d for d in (script_args.dataset_name, script_args.eval_dataset_name) if d]
        reward_model_card(
            output_dir,
            base_model=model_args.model_name_or_path,
            datasets=datasets,
            hyperparameters=hyperparameters,
            metrics=metrics,
            metrics_markdown=metrics_md,
            adapter=is_adapter,
        )
        if script_args.save_merged and is_adapter:
            merged = trainer.model.merge_and_unload()
            merged.save_pretrained(output_dir / "merged")
            processor.save_pretrained(output_dir / "merged")
            if metrics:
                store_score_statistics(output_dir / "merged", metrics["score_mean"], metrics["score_std"])
    if push and trainer.is_world_process_zero():
        push_output(output_dir, training_args, logger)
    finish_trackers()

    rows = {
        "output": str(output_dir),
        "train pairs": len(train),
        "rejected rows": len(rejects),
        "steps": result.global_step,
        "train loss": round(result.training_loss, 4),
        "train seconds": round(result.metrics.get("train_runtime", 0.0), 1),
        # each text over max_length is cut where it is batched (so counted once per epoch it is seen in)
        f"texts cut to {training_args.max_length} tokens": getattr(trainer.data_collator, "truncated", 0),
    }
    if metrics:
        rows["held-out accuracy"] = round(metrics["accuracy"], 4)
        if "image_blind" in metrics:
            rows["image-blind accuracy"] = round(metrics["image_blind"]["accuracy"], 4)
    logger.info("\n%s", summary_table("reward model", rows))
    return 0


if __name__ == "__main__":
    from ._common import run_task

    raise SystemExit(run_task("reward", make_parser, main))
