"""GRPO of a Qwen2-VL / Qwen2.5-VL policy with image-aware score-model rewards and rule rewards.

The rewards come from the registry (`rs_reward.rewards`) by name; the score model, when a reward or the hacking
monitor needs it, sees each prompt's image. The paper's RS-Zero setting is `reward_funcs: [format, accuracy]`,
`reward_weights: [0.3, 0.7]`, `format_gate: true`: exact match / option letter / graded IoU for closed rows and
`score_vs_reference` for open ones.

    rs-reward grpo --config recipes/tiny/grpo/config_demo.yaml
    accelerate launch --config_file accelerate_configs/zero2.yaml -m rs_reward.scripts.grpo \\
        --config recipes/qwen2-vl-7b/grpo/config_rs_zero.yaml
"""

from __future__ import annotations

import json
from pathlib import Path


def make_parser():
    """The task's parser: TRL's, over its dataclasses (`--config recipe.yaml`, then flags)."""
    from trl import GRPOConfig, TrlParser

    from rs_reward.configs import GRPOScriptArguments, RSModelConfig

    return TrlParser((GRPOScriptArguments, GRPOConfig, RSModelConfig))


def main(script_args, training_args, model_args) -> int:
    import torch
    from transformers import set_seed
    from trl import get_peft_config

    from rs_reward.data.io import Rejects
    from rs_reward.data.rl import image_lookup, load_rl_prompts
    from rs_reward.hub import generator_model_card
    from rs_reward.modeling import model_processor
    from rs_reward.modeling.loading import describe_trainable, load_generator
    from rs_reward.modeling.parts import LANGUAGE_MODEL_LORA_TARGETS
    from rs_reward.rewards import ScoreModel, import_reward, is_registry_reward, parse_routes
    from rs_reward.trainers import RSGRPOTrainer

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

    logger = setup_logging("rs_reward.grpo")
    check_launch(training_args, logger)
    push = take_push_request(training_args)
    parse_routes(script_args.reward_routes)  # a typo in the routes or the reward names fails here, before any
    for name in script_args.reward_funcs:  # model loads
        if not is_registry_reward(name):
            import_reward(name)
    rejects = Rejects(strict=script_args.strict)
    reward_types = tuple(script_args.reward_types) if script_args.reward_types else None
    train = load_rl_prompts(
        script_args.dataset_name,
        script_args.image_root,
        rejects=rejects,
        reward_types=reward_types,
        prompt_suffix=script_args.prompt_suffix,
    )
    if script_args.max_train_rows is not None and script_args.max_train_rows < len(train):
        train = train.shuffle(seed=training_args.seed).select(range(script_args.max_train_rows))
    output_dir = Path(training_args.output_dir)
    if training_args.process_index == 0:
        rejects.write(output_dir / "rejects.jsonl")
    counts = {t: train["reward_type"].count(t) for t in sorted(set(train["reward_type"]))}
    logger.info("%d RL prompts %s; %s", len(train), counts, rejects.summary())

    set_seed(training_args.seed)
    processor = model_processor(model_args, trust_remote_code=training_args.trust_remote_code, padding_side="left")
    model = load_generator(model_args, trust_remote_code=training_args.trust_remote_code)
    peft_config = get_peft_config(model_args)
    if peft_config is not None and model_args.lora_target_modules is None:
        peft_config.target_modules = LANGUAGE_MODEL_LORA_TARGETS
    logger.info("trainable parameters per part:\n%s", describe_trainable(model))

    reward_model_args = script_args.reward_model_args()
    score_model = None
    if reward_model_args is not None:
        device = torch.device(f"cuda:{training_args.local_process_index}" if torch.cuda.is_available() else "cpu")
        score_model = ScoreModel.load(
            reward_model_args,
            batch_size=script_args.reward_batch_size,
            device=device,
            prompt_order=script_args.prompt_order,
            trust_remote_code=training_args.trust_remote_code,
        )
    trainer = RSGRPOTrainer(
        model=model,
        reward_funcs=list(script_args.reward_funcs),
        score_model=score_model,
        reward_routes=script_args.reward_routes,
        format_gate=script_args.format_gate,
        score_beta=script_args.score_beta,
        args=training_args,
        train_dataset=train,
        processing_class=processor,
        peft_config=peft_config,
    )
    result = trainer.train(resume_from_checkpoint=checkpoint_to_resume(training_args, logger))
    trainer.save_model(str(output_dir))
    finish_trackers()
    history = [entry for entry in trainer.state.log_history if "reward" in entry]
    page = None
    if training_args.process_index == 0:
        (output_dir / "reward_history.json").write_text(json.dumps(history, indent=1) + "\n")
        if training_args.log_completions:
            from rs_reward.pages import write_grpo_page

            page = write_grpo_page(
                output_dir / "browse",
                output_dir / "completions",
                image_of=image_lookup(train),
                max_rows=script_args.browse_max_rows,
                title=f"GRPO samples of {output_dir}",
                policy=str(output_dir),
            )
        hyperparameters = card_hyperparameters(
            training_args, model_args, "num_generations", "beta", "max_completion_length", "temperature"
        )
        hyperparameters.update(
            reward_funcs=script_args.reward_funcs,
            score_model=script_args.reward_model_name_or_path,
            score_beta=script_args.score_beta,
        )
        generator_model_card(
            output_dir,
            stage="grpo",
            base_model=model_args.model_name_or_path,
            datasets=[script_args.dataset_name],
            hyperparameters=hyperparameters,
            adapter=(output_dir / "adapter_config.json").is_file(),
        )
        if push:
            push_output(output_dir, training_args, logger)
    last = history[-1] if history else {}
    rows = {
        "output": str(output_dir),
        "prompts": len(train),
        "rejected rows": len(rejects),
        "steps": result.global_step,
        "reward functions": ", ".join(script_args.reward_funcs),
        "score model": script_args.reward_model_name_or_path or "none",
        "reward (first -> last log)": (
            f"{history[0]['reward']:.3f} -> {last['reward']:.3f}" if history else "not logged"
        ),
        "train seconds": round(result.metrics.get("train_runtime", 0.0), 1),
    }
    for key in sorted(k for k in last if k.startswith(("hacking/", "accuracy/"))):
        rows[key] = round(last[key], 3) if isinstance(last[key], float) else last[key]
    if page is not None:
        rows["samples page"] = str(page)
    logger.info("\n%s", summary_table("GRPO", rows))
    return 0


if __name__ == "__main__":
    from ._common import run_task

    raise SystemExit(run_task("grpo", make_parser, main))
