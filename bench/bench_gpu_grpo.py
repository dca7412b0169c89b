"""GRPO steps of a real-size Qwen2-VL policy with the image-aware score-model reward, random weights, bf16.

    python bench/bench_gpu_grpo.py --preset qwen2-vl-2b --steps 4      # one GPU
    python bench/bench_gpu_grpo.py --preset tiny --steps 2              # CPU smoke run of the same code

`RSGRPOTrainer` with `reward_funcs: [format, accuracy]` (weights 0.3 / 0.7, format gate: the paper), the score
model of the same preset reading every completion's image (a forward hook counts the `pixel_values` it receives),
SynthRS RL prompts at 448x448. Prints seconds per step (after the first), peak GPU memory, and the reward-model
calls with pixels. Random weights mean random completions: this measures cost, not learning.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch


VISION_TOKEN_KEYS = ("image_token_id", "video_token_id", "vision_start_token_id", "vision_end_token_id")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="qwen2-vl-2b")
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--num_generations", type=int, default=4)
    parser.add_argument("--prompts_per_step", type=int, default=4)
    parser.add_argument("--max_completion_length", type=int, default=64)
    parser.add_argument("--lora", action="store_true", help="LoRA r=8 on the language model (7B on one GPU).")
    parser.add_argument("--beta", type=float, default=0.0, help="KL weight (the paper: 0.01; needs a reference).")
    parser.add_argument("--checkpointing", action="store_true", help="Gradient checkpointing on the policy.")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    from trl import GRPOConfig

    from rs_reward.data.rl import load_rl_prompts
    from rs_reward.data.synthrs import SynthRSConfig
    from rs_reward.data.synthrs import build as build_synthrs
    from rs_reward.rewards import THINK_ANSWER_SUFFIX, ScoreModel
    from rs_reward.scoring import RewardModelScorer
    from rs_reward.trainers import RSGRPOTrainer

    cuda = torch.cuda.is_available()
    if args.preset == "tiny":
        from transformers import AutoModelForImageTextToText

        from rs_reward.configs import RSModelConfig
        from rs_reward.modeling import load_processor
        from rs_reward.modeling.loading import load_reward_model
        from rs_reward.modeling.tiny import resolve_model_path

        policy = AutoModelForImageTextToText.from_pretrained(resolve_model_path("tiny:qwen2-vl-tiny"))
        processor = load_processor(resolve_model_path("tiny:qwen2-vl-tiny"))
        reward = load_reward_model(RSModelConfig(model_name_or_path="tiny:qwen2-vl-tiny-reward"), trainable=False)
        size = 112
    else:
        sys.path.insert(0, str(Path(__file__).parent))
        from bench_gpu import build

        policy, processor = build(args.preset, reward=False)
        reward, _ = build(args.preset, reward=True)
        reward.eval().requires_grad_(False)
        size = 448
    pixel_calls = []
    reward.register_forward_hook(
        lambda m, a, kw, out: pixel_calls.append(kw.get("pixel_values") is not None), with_kwargs=True
    )
    score_processor = type(processor)(
        image_processor=processor.image_processor, tokenizer=processor.tokenizer, chat_template=processor.chat_template
    )
    score_model = ScoreModel(RewardModelScorer(reward, score_processor, batch_size=32, num_workers=4))
    with tempfile.TemporaryDirectory() as tmp:
        n = args.steps * args.prompts_per_step + 8
        data = build_synthrs(
            SynthRSConfig.only(output_dir=f"{tmp}/synthrs", image_size=size, rl_size=n, num_workers=4)
        )
        train = load_rl_prompts(str(data / "rl" / "prompts.jsonl"), prompt_suffix=THINK_ANSWER_SUFFIX)
        config = GRPOConfig(
            output_dir=f"{tmp}/out",
            max_steps=args.steps,
            per_device_train_batch_size=args.prompts_per_step * args.num_generations,
            num_generations=args.num_generations,
            max_completion_length=args.max_completion_length,
            temperature=0.9,
            learning_rate=1e-6,
            beta=args.beta,
            reward_weights=[0.3, 0.7],
            bf16=cuda,
            use_cpu=not cuda,
            gradient_checkpointing=args.checkpointing,
            logging_steps=1,
            save_strategy="no",
            report_to="none",
            seed=0,
            # random weights emit vision tokens, which breaks the 3-D positions of the next forward; a trained
            # policy does not (suppressing them costs nothing)
            generation_kwargs={"suppress_tokens": [getattr(policy.config, k) for k in VISION_TOKEN_KEYS]},
        )
        lora = None
        if args.lora:
            from peft import LoraConfig

            from rs_reward.modeling.parts import LANGUAGE_MODEL_LORA_TARGETS

            lora = LoraConfig(r=8, lora_alpha=16, target_modules=LANGUAGE_MODEL_LORA_TARGETS, task_type="CAUSAL_LM")
        trainer = RSGRPOTrainer(
            model=policy,
            reward_funcs=["format", "accuracy"],
            score_model=score_model,
            format_gate=True,
            args=config,
            train_dataset=train,
            processing_class=processor,
            peft_config=lora,
        )
        step_times = []
        from transformers import TrainerCallback

        class Timer(TrainerCallback):
            def on_step_begin(self, *a, **k):
                self.start = time.perf_counter()

            def on_step_end(self, *a, **k):
                if cuda:
                    torch.cuda.synchronize()
                step_times.append(time.perf_counter() - self.start)

        trainer.add_callback(Timer())
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        original = trainer._get_per_token_logps_and_entropies

        def checked(model, input_ids, attention_mask, *a, **k):
            try:
                return original(model, input_ids, attention_mask, *a, **k)
            except RuntimeError:
                ids = [getattr(policy.config, key) for key in VISION_TOKEN_KEYS]
                print("vision tokens per row:", [[int((row == i).sum()) for i in ids] for row in input_ids])
                print("mask sums:", attention_mask.sum(1).tolist(), "grid:", k.get("image_grid_thw"))
                print(
                    "mm types:",
                    k.get("mm_token_type_ids").sum(1).tolist() if k.get("mm_token_type_ids") is not None else None,
                    "padding side:",
                    processor.tokenizer.padding_side,
                )
                raise

        trainer._get_per_token_logps_and_entropies = checked
        trainer.train()
    logs = [e for e in trainer.state.log_history if "reward" in e]
    result = {
        "preset": args.preset,
        "lora": args.lora,
        "device": torch.cuda.get_device_name() if cuda else "cpu",
        "completions_per_step": args.prompts_per_step * args.num_generations,
        "max_completion_length": args.max_completion_length,
        "seconds_per_step_after_first": sum(step_times[1:]) / max(1, len(step_times) - 1),
        "first_step_seconds": step_times[0] if step_times else None,
        "peak_gb": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
        "reward_model_forward_calls": len(pixel_calls),
        "reward_model_calls_with_pixels": sum(pixel_calls),
        "last_log": {k: v for k, v in logs[-1].items() if k.startswith(("reward", "hacking", "accuracy"))}
        if logs
        else {},
    }
    print(json.dumps(result, indent=1))
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / f"bench_gpu_grpo_{args.preset}{'_lora' if args.lora else ''}.json").write_text(
            json.dumps(result, indent=1) + "\n"
        )


if __name__ == "__main__":
    main()
