"""Supervised fine-tuning of a Qwen2-VL / Qwen2.5-VL on image + messages rows, loss on the answers by default.

TRL's SFTTrainer already feeds images to VLMs through the processor; what this task adds is the loader (confined,
lazily decoded images, rejects), the pixel budget, the freezing switches and a resume that restores the weights
(`rs_reward.trainers.RSSFTTrainer`).

    rs-reward sft --config recipes/tiny/sft/config_pretrain.yaml      # rerun the same command to resume
    accelerate launch --config_file accelerate_configs/zero2.yaml -m rs_reward.scripts.sft --config ...
"""

from __future__ import annotations

from pathlib import Path


def make_parser():
    """The task's parser: TRL's, over its dataclasses (`--config recipe.yaml`, then flags)."""
    from trl import SFTConfig, TrlParser

    from rs_reward.configs import RSModelConfig, SFTScriptArguments

    return TrlParser((SFTScriptArguments, SFTConfig, RSModelConfig))


def main(script_args, training_args, model_args) -> int:
    from transformers import set_seed
    from trl import get_peft_config

    from rs_reward.data.io import Rejects
    from rs_reward.data.sft import load_sft_rows
    from rs_reward.hub import generator_model_card
    from rs_reward.modeling import model_processor
    from rs_reward.modeling.loading import describe_trainable, load_generator
    from rs_reward.modeling.parts import LANGUAGE_MODEL_LORA_TARGETS
    from rs_reward.trainers import RSSFTTrainer

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

    logger = setup_logging("rs_reward.sft")
    check_launch(training_args, logger)
    push = take_push_request(training_args)
    rejects = Rejects(strict=script_args.strict)
    train = load_sft_rows(script_args.dataset_name, script_args.image_root, rejects=rejects)
    if script_args.tasks:
        keep = set(script_args.tasks)
        train = train.filter(lambda task: task in keep, input_columns="task")
        if len(train) == 0:
            raise ValueError(f"no SFT row of tasks {sorted(keep)} in {script_args.dataset_name}")
    if script_args.max_train_rows is not None and script_args.max_train_rows < len(train):
        train = train.shuffle(seed=training_args.seed).select(range(script_args.max_train_rows))
    output_dir = Path(training_args.output_dir)
    if training_args.process_index == 0:
        rejects.write(output_dir / "rejects.jsonl")
    logger.info("%d SFT rows; %s", len(train), rejects.summary())

    processor = model_processor(model_args, trust_remote_code=training_args.trust_remote_code)
    set_seed(training_args.seed)  # before loading, so that anything initialised at load time is seeded
    model = load_generator(model_args, trust_remote_code=training_args.trust_remote_code)
    peft_config = get_peft_config(model_args)
    if peft_config is not None and model_args.lora_target_modules is None:
        peft_config.target_modules = LANGUAGE_MODEL_LORA_TARGETS
    logger.info("trainable parameters per part:\n%s", describe_trainable(model))
    trainer = RSSFTTrainer(
        model=model, args=training_args, train_dataset=train, processing_class=processor, peft_config=peft_config
    )
    result = trainer.train(resume_from_checkpoint=checkpoint_to_resume(training_args, logger))
    trainer.save_model(str(output_dir))
    if trainer.is_world_process_zero():
        generator_model_card(
            output_dir,
            stage="sft",
            base_model=model_args.model_name_or_path,
            datasets=[script_args.dataset_name],
            hyperparameters=card_hyperparameters(training_args, model_args, "max_length"),
            adapter=(output_dir / "adapter_config.json").is_file(),
        )
        if push:
            push_output(output_dir, training_args, logger)
    finish_trackers()
    rows = {
        "output": str(output_dir),
        "rows": len(train),
        "rejected rows": len(rejects),
        "steps": result.global_step,
        "train loss": round(result.training_loss, 4),
        "train seconds": round(result.metrics.get("train_runtime", 0.0), 1),
    }
    logger.info("\n%s", summary_table("SFT", rows))
    return 0


if __name__ == "__main__":
    from ._common import run_task

    raise SystemExit(run_task("sft", make_parser, main))
