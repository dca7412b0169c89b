"""Pool scoring: batched scorer vs a naive one-row-at-a-time loop, memory at 2,000 vs 20,000 rows, image share.

    python bench/bench_scoring.py               # builds a small SynthRS pool in a temp folder
    python bench/bench_scoring.py --rows 512 --model tiny:qwen2-vl-mini

1. Samples/s of `RewardModelScorer` (length-sorted batches, processor once per batch) against the way the
   original best-of-N scripts scored: one sample per plain model call. Same model, same rows, same process.
2. Peak RSS of `rs-reward score` (in a subprocess) on a pool of N and 10 N rows: images are opened per chunk
   and never all held, so memory should barely grow.
3. The share of scoring time spent opening and resizing images, with 0 and 2 loader threads.
Prints what it measured; nothing is hard-coded.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch


def naive_scores(model, processor, rows, root):
    """One sample per forward pass, as the original scripts did (processor and model per row)."""
    from rs_reward.data.chat import encode_scored
    from rs_reward.data.images import open_image

    out = []
    with torch.no_grad():
        for row in rows:
            batch = encode_scored(processor, [open_image(row["image"], root)], [row["question"]], [row["text"]])
            out.append(model(**batch).logits.item())
    return out


def peak_rss_mb(command: list[str]) -> float:
    """Peak resident memory of a child process, in MB (ru_maxrss of the finished child)."""
    code = (
        "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, "
        "stderr=subprocess.DEVNULL); print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    result = subprocess.run([sys.executable, "-c", code, *command], capture_output=True, text=True, check=True)
    return int(result.stdout.strip().splitlines()[-1]) / 1024


def memory_comparison(pool_file: Path, rows: int, tmp: Path) -> None:
    print(f"## Peak memory of `rs-reward score` (CLIP-tiny scorer: decodes every image), {rows} vs {10 * rows} rows")
    big = pd.read_csv(pool_file, keep_default_na=False)
    big = pd.concat([big.assign(id=big["id"] + f"-copy{k}") for k in range(10)], ignore_index=True)
    big.to_csv(pool_file.parent / "pool_x10.csv", index=False)
    recipe = Path(__file__).resolve().parent.parent / "recipes/tiny/score/config_clip.yaml"
    peaks = {}
    for name in ("pool.csv", "pool_x10.csv"):
        out = tmp / f"scores-{name}"
        command = [
            sys.executable,
            "-m",
            "rs_reward.scripts.score",
            "--config",
            str(recipe),
            "--pool",
            str(pool_file.parent / name),
            "--output_dir",
            str(out),
            "--model_name_or_path",
            "tiny:clip-tiny",
            "--shard_size",
            "512",
        ]
        start = time.perf_counter()
        peaks[name] = peak_rss_mb(command)
        manifest = json.loads((out / "manifest.json").read_text())
        print(f"{manifest['rows_in']:>6} rows: peak RSS {peaks[name]:.0f} MB, {time.perf_counter() - start:.0f} s")
    print(f"memory growth for 10x the rows: {peaks['pool_x10.csv'] / peaks['pool.csv'] - 1:+.1%}\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=256, help="Rows for the speed comparison.")
    parser.add_argument("--model", default="tiny:qwen2-vl-mini", help="Generator to put a reward head on.")
    parser.add_argument("--memory_rows", type=int, default=2000, help="N for the N vs 10 N memory comparison.")
    parser.add_argument("--skip_memory", action="store_true", help="Skip the memory comparison.")
    args = parser.parse_args()

    from rs_reward.configs import RSModelConfig
    from rs_reward.data.pool import load_pool
    from rs_reward.data.synthrs import SynthRSConfig, build
    from rs_reward.modeling import load_processor
    from rs_reward.modeling.loading import load_reward_model
    from rs_reward.scoring import RewardModelScorer

    torch.set_num_threads(2)
    tmp = Path(tempfile.mkdtemp(prefix="bench-scoring-"))
    try:
        empty = dict(
            caption_pairs_train=0,
            caption_pairs_test=0,
            instruction_pairs_train=0,
            instruction_pairs_test=0,
            pretrain_size=0,
            eval_size=0,
            rl_size=0,
        )
        data = build(
            SynthRSConfig(output_dir=str(tmp / "synthrs"), pool_size=args.memory_rows, **empty), progress=False
        )
        pool_file = data / "pool" / "pool.csv"
        rows = load_pool(str(pool_file))[: args.rows]
        root = str(pool_file.parent)
        model = load_reward_model(RSModelConfig(model_name_or_path=args.model), trainable=False)
        processor = load_processor(args.model, min_pixels=112 * 112, max_pixels=112 * 112, padding_side="left")

        print(f"## Batched vs naive scoring ({args.rows} SynthRS pool rows, {args.model} + score head, CPU threads=2)")
        naive_scores(model, processor, rows[:8], root)  # warm-up
        start = time.perf_counter()
        naive = naive_scores(model, processor, rows, root)
        naive_s = time.perf_counter() - start
        results = {}
        for batch_size in (8, 32, 64):
            scorer = RewardModelScorer(model, processor, batch_size=batch_size, image_root=root)
            start = time.perf_counter()
            batched = scorer.score(
                [r["image"] for r in rows], [r["question"] for r in rows], [r["text"] for r in rows]
            )
            results[batch_size] = time.perf_counter() - start
        diff = max(abs(a - b) for a, b in zip(naive, batched))
        print("| method | rows/s | speed-up |\n|---|---|---|")
        print(f"| naive (1 row per call) | {args.rows / naive_s:.1f} | 1.00x |")
        for batch_size, seconds in results.items():
            print(f"| batched, batch {batch_size} | {args.rows / seconds:.1f} | {naive_s / seconds:.2f}x |")
        print(f"largest score difference batched vs naive: {diff:.2e}\n")

        if not args.skip_memory:
            memory_comparison(pool_file, args.memory_rows, tmp)
        print("## Share of time opening and resizing images (reward model, 512 rows)")
        from rs_reward.scoring import score_chunk

        chunk = load_pool(str(pool_file))[:512]
        scorer = RewardModelScorer(model, processor, batch_size=32)
        for workers in (0, 2):
            start = time.perf_counter()
            _, _, seconds = score_chunk(scorer, chunk, root, num_workers=workers)
            total = time.perf_counter() - start
            print(
                f"loader threads {workers}: opening {seconds['open']:.2f} s of {total:.2f} s "
                f"({seconds['open'] / total:.1%}); {len(chunk) / total:.1f} rows/s"
            )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
