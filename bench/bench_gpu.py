"""Real-size Qwen2-VL on one GPU with random weights: scoring, LoRA reward training and best-of-N sampling.

    python bench/bench_gpu.py --out bench/results              # needs a CUDA GPU (no download: random weights)
    python bench/bench_gpu.py --presets qwen2-vl-2b --rows 64

For each preset (the published shapes of Qwen2-VL-2B / 7B, `rs_reward.modeling.presets`), in bf16:
1. Scoring a pool (`scoring.RewardModelScorer`, the code `rs-reward score`, GRPO rewards and best-of-N use):
   rows/s batched (length-sorted batches of B) against one row per call, in the same process; peak GPU memory.
2. One reward-model training step (LoRA r=8 on the language model + the score head, the paper's stage-3 style;
   Bradley-Terry loss on pairs, AdamW) with and without gradient checkpointing: seconds per step, pairs/s, peak
   memory, and the memory ratio.
3. Best-of-N sampling (`eval.harness.generate_answers`, N sequences per prompt) against N separate greedy-style
   calls of one sequence: new tokens/s. Random weights rarely emit end-of-sequence, so every sequence runs to
   `max_new_tokens`: this is the cost of the longest case.
Images are SynthRS scenes at 448x448 (256 visual tokens after merging), texts SynthRS captions. The tokenizer is
the tiny offline one (its ids are mapped into the preset config), so token counts differ a little from Qwen's.
Prints what it measured, and writes it as JSON with `--out`.
"""

from __future__ import annotations

import argparse
import gc
import json
import time
from pathlib import Path

import torch


def build(preset: str, reward: bool):
    from transformers import AutoModelForImageTextToText, AutoModelForSequenceClassification

    from rs_reward.modeling.presets import preset_config
    from rs_reward.modeling.reward_model import register_reward_models
    from rs_reward.modeling.tiny import _qwen_token_ids, build_tokenizer, qwen_vl_processor

    register_reward_models()
    tokenizer = build_tokenizer()
    config = preset_config(preset)
    for key, value in _qwen_token_ids(tokenizer).items():
        setattr(config, key, value)
    text = config.get_text_config()
    text.pad_token_id, text.eos_token_id = tokenizer.pad_token_id, tokenizer.eos_token_id
    config.pad_token_id = tokenizer.pad_token_id
    config.num_labels = 1
    torch.manual_seed(0)
    with torch.device("cuda"):
        auto = AutoModelForSequenceClassification if reward else AutoModelForImageTextToText
        model = auto.from_config(config, dtype=torch.bfloat16)
    processor = qwen_vl_processor(tokenizer, min_pixels=448 * 448, max_pixels=448 * 448)
    return model, processor


def synthrs_rows(n: int, tmp: Path) -> list[dict]:
    from rs_reward.data.synthrs import SynthRSConfig
    from rs_reward.data.synthrs import build as build_synthrs

    config = SynthRSConfig.only(
        output_dir=str(tmp / "synthrs"),
        image_size=448,
        caption_pairs_train=n,
        pool_size=n,
        num_workers=8,
    )
    root = build_synthrs(config) / "pool"
    import csv

    with open(root / "pool.csv", newline="") as f:
        rows = list(csv.DictReader(f))[:n]
    from rs_reward.data.images import open_image

    return [{"image": open_image(r["filepath"], root), "question": r["question"], "text": r["title"]} for r in rows]


def peak_gb() -> float:
    return torch.cuda.max_memory_allocated() / 2**30


def timed(fn, repeats: int = 1) -> float:
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats


def bench_scoring(preset: str, rows: list[dict], batch_size: int) -> dict:
    from rs_reward.data.chat import encode_scored
    from rs_reward.scoring import RewardModelScorer

    model, processor = build(preset, reward=True)
    model.eval()
    processor.tokenizer.padding_side = "left"
    scorer = RewardModelScorer(model, processor, batch_size=batch_size)
    images, questions, texts = [r["image"] for r in rows], [r["question"] for r in rows], [r["text"] for r in rows]
    scorer.score(images[:batch_size], questions[:batch_size], texts[:batch_size])  # warm-up
    torch.cuda.reset_peak_memory_stats()
    batched = timed(lambda: scorer.score(images, questions, texts))
    memory = peak_gb()
    naive_rows = rows[: max(8, len(rows) // 4)]

    @torch.no_grad()
    def naive():
        for r in naive_rows:
            batch = encode_scored(processor, [r["image"]], [r["question"]], [r["text"]]).to("cuda")
            model(**batch)

    naive_seconds = timed(naive)
    result = {
        "rows_per_s_batched": len(rows) / batched,
        "rows_per_s_one_per_call": len(naive_rows) / naive_seconds,
        "batch_size": batch_size,
        "peak_gb": memory,
    }
    result["speedup"] = result["rows_per_s_batched"] / result["rows_per_s_one_per_call"]
    return result


def bench_scoring_pipeline(preset: str, rows: list[dict], batch_size: int, workers=(0, 4, 8)) -> dict:
    """Where scoring time goes on a GPU: the processor alone, then the scorer with 0 / K encoding threads, with the
    PIL image processor and (when torchvision is installed) the torchvision one. Ratios against 0 threads + PIL."""
    from rs_reward.data.chat import encode_scored
    from rs_reward.scoring import RewardModelScorer

    model, processor = build(preset, reward=True)
    model.eval()
    processor.tokenizer.padding_side = "left"
    images, questions, texts = [r["image"] for r in rows], [r["question"] for r in rows], [r["text"] for r in rows]
    processors = {"pil": processor}
    try:
        from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor

        from rs_reward.modeling.processing import QwenVLImageProcessor

        fast = Qwen2VLImageProcessor(min_pixels=448 * 448, max_pixels=448 * 448)
        processors["torchvision"] = QwenVLImageProcessor(
            image_processor=fast, tokenizer=processor.tokenizer, chat_template=processor.chat_template
        )
    except Exception as error:  # no torchvision here
        print(f"torchvision image processor unavailable: {error!r}")
    out = {}
    for name, proc in processors.items():
        start = time.perf_counter()
        for i in range(0, len(rows), batch_size):
            encode_scored(proc, images[i : i + batch_size], questions[i : i + batch_size], texts[i : i + batch_size])
        out[f"{name}/processor_only_rows_per_s"] = len(rows) / (time.perf_counter() - start)
        for k in workers:
            scorer = RewardModelScorer(model, proc, batch_size=batch_size, num_workers=k)
            scorer.score(images[:batch_size], questions[:batch_size], texts[:batch_size])
            out[f"{name}/workers{k}_rows_per_s"] = len(rows) / timed(
                lambda s=scorer: s.score(images, questions, texts)
            )
    baseline = out["pil/workers0_rows_per_s"]
    out["ratios_vs_pil_workers0"] = {k: v / baseline for k, v in out.items() if k.endswith("_rows_per_s")}
    return out


def bench_reward_step(preset: str, rows: list[dict], pairs: int) -> dict:
    from peft import get_peft_model

    from rs_reward.configs import RSModelConfig
    from rs_reward.data.chat import encode_scored
    from rs_reward.modeling.loading import reward_lora_config

    model, processor = build(preset, reward=True)
    model = get_peft_model(model, reward_lora_config(RSModelConfig(lora_r=8, lora_alpha=16, use_peft=True)))
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    chosen, rejected = rows[:pairs], rows[pairs : 2 * pairs]
    batch = encode_scored(
        processor,
        [r["image"] for r in chosen + rejected],
        [r["question"] for r in chosen + rejected],
        [r["text"] for r in chosen + rejected],
    ).to("cuda")

    def step():
        scores = model(**batch).logits.squeeze(-1).float()
        loss = -torch.nn.functional.logsigmoid(scores[:pairs] - scores[pairs:]).mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    out = {"pairs_per_step": pairs, "tokens_per_row": int(batch["input_ids"].shape[1])}
    for checkpointing in (False, True):
        if checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            model.enable_input_require_grads()
        step()  # warm-up
        torch.cuda.reset_peak_memory_stats()
        seconds = timed(step, repeats=3)
        name = "checkpointing" if checkpointing else "plain"
        out[name] = {"seconds_per_step": seconds, "pairs_per_s": pairs / seconds, "peak_gb": peak_gb()}
    out["memory_ratio_checkpointing_vs_plain"] = out["checkpointing"]["peak_gb"] / out["plain"]["peak_gb"]
    out["time_ratio_checkpointing_vs_plain"] = (
        out["checkpointing"]["seconds_per_step"] / out["plain"]["seconds_per_step"]
    )
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    out["trainable_parameters"] = trainable
    return out


def bench_sampling(preset: str, rows: list[dict], prompts: int, n: int, max_new_tokens: int) -> dict:
    from rs_reward.eval.harness import generate_answers

    model, processor = build(preset, reward=False)
    model.eval()
    eval_rows = [
        {"images": [r["image"]], "question": r["question"] or "Describe this image.", "task": "caption"}
        for r in rows[:prompts]
    ]
    generate_answers(model, processor, eval_rows[:1], max_new_tokens=4, do_sample=True)  # warm-up
    torch.cuda.reset_peak_memory_stats()

    def together():
        generate_answers(
            model,
            processor,
            eval_rows,
            batch_size=prompts,
            max_new_tokens=max_new_tokens,
            do_sample=True,
            temperature=0.95,
            num_return_sequences=n,
        )

    def separately():
        for _ in range(n):
            generate_answers(
                model,
                processor,
                eval_rows,
                batch_size=prompts,
                max_new_tokens=max_new_tokens,
                do_sample=True,
                temperature=0.95,
                num_return_sequences=1,
            )

    seconds_together = timed(together)
    memory = peak_gb()
    seconds_separately = timed(separately)
    tokens = prompts * n * max_new_tokens
    out = {
        "prompts": prompts,
        "n": n,
        "max_new_tokens": max_new_tokens,
        "new_tokens_per_s_n_per_call": tokens / seconds_together,
        "new_tokens_per_s_one_per_call": tokens / seconds_separately,
        "peak_gb": memory,
    }
    out["speedup"] = out["new_tokens_per_s_n_per_call"] / out["new_tokens_per_s_one_per_call"]
    return out


def main() -> None:
    import tempfile

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", default="qwen2-vl-2b,qwen2-vl-7b")
    parser.add_argument("--rows", type=int, default=128)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--prompts", type=int, default=8)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--max_new_tokens", type=int, default=64)
    parser.add_argument("--out", default=None)
    parser.add_argument("--parts", default="scoring,pipeline,reward_step,sampling", help="Sections to run.")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("bench_gpu.py needs a CUDA GPU")
    results = {"device": torch.cuda.get_device_name(), "torch": torch.__version__}
    with tempfile.TemporaryDirectory() as tmp:
        rows = synthrs_rows(args.rows, Path(tmp))
        for preset in args.presets.split(","):
            print(f"## {preset}", flush=True)
            entry = {}
            for name, fn in (
                ("scoring", lambda preset=preset: bench_scoring(preset, rows, args.batch_size)),
                ("pipeline", lambda preset=preset: bench_scoring_pipeline(preset, rows, args.batch_size)),
                ("reward_step", lambda preset=preset: bench_reward_step(preset, rows, args.pairs)),
                (
                    "sampling",
                    lambda preset=preset: bench_sampling(preset, rows, args.prompts, args.n, args.max_new_tokens),
                ),
            ):
                if name not in args.parts.split(","):
                    continue
                try:
                    entry[name] = fn()
                except torch.OutOfMemoryError as error:
                    entry[name] = {"error": f"out of memory: {str(error)[:200]}"}
                    torch.cuda.empty_cache()
                print(name, json.dumps(entry[name], indent=1), flush=True)
                gc.collect()
                torch.cuda.empty_cache()
            results[preset] = entry
    if args.out:
        path = Path(args.out)
        path.mkdir(parents=True, exist_ok=True)
        (path / "bench_gpu.json").write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
