"""Shared-prefix scoring and reward training (rs_reward.modeling.shared_prefix) against plain rows, one process.

    python bench/bench_prefix.py                 # the demo's score model (tiny:qwen2-vl-synthrs), 2 threads
    python bench/bench_prefix.py --quick         # under a minute on 2 cores (K = 2 and 16; training at K = 3 only)
    python bench/bench_prefix.py --out bench/results

1. Scoring: `RewardModelScorer` with and without `shared_prefix` on groups of K answers to one image and
   question, at 112 px (16 image tokens) and 448 px (256), K = 2, 4, 8, 16; the measured speed-up beside its
   compute limit K (P + A) / (P + K A) for a prefix of P tokens and answers of A (both measured on the rows).
2. Peak memory of one batch of K = 16 answers, grouped vs plain (the same rows, the same batch; ru_maxrss of a
   child process above its level after loading).
3. Reward training: items/s of `VisionPreferenceCollator` + forward + backward + AdamW step with items packed
   (chosen + K - 1 rejected answers behind one prefix) vs the same items as expanded pairs (two rows a pair),
   K = 2 and 3, the demo's recipe (vision tower frozen).
4. The likelihood term (`score_likelihood_weight`, the demo's score model): grouped training items/s with it
   against the paper's head alone.
5. Grouping pairs into items (`rs_reward.data.preference.group_items`, before training) on the demo's number of
   pairs (24,000 pairs of 16,000 items, shuffled and selected as `max_train_pairs` does) against the plain
   `datasets` way, `select` then `add_column` (which rewrites every column of the selected rows).
Prints what it measured (and writes it as JSON with --out); nothing is hard-coded.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import transformers


MODEL = "tiny:qwen2-vl-synthrs"
ANSWERS = [
    "This remote sensing image shows dense forest. We can see two red ships in the top left.",
    "A satellite image of farmland with three white storage tanks in the center.",
    "The image shows water. There is one blue airplane in the bottom right and two vehicles.",
    "Residential area with buildings in the top right and a red vehicle in the bottom left.",
    "Bare land. Four white buildings in the center left.",
    "This remote sensing image shows an industrial area with two blue storage tanks.",
    "We can see three ships on water in the top center of the image.",
    "Forest with one white airplane in the center and two red vehicles in the top left.",
]


def images(n: int, size: int, seed: int = 0):
    from PIL import Image

    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)) for _ in range(n)]


def load(size: int, threads: int):
    from rs_reward.configs import RSModelConfig
    from rs_reward.modeling import model_processor
    from rs_reward.modeling.loading import load_reward_model

    torch.set_num_threads(threads)
    args = RSModelConfig(model_name_or_path=MODEL, min_pixels=size * size, max_pixels=size * size)
    return load_reward_model(args, trainable=False), model_processor(args, padding_side="left")


def group_rows(k: int, groups: int, size: int):
    pictures = images(groups, size)
    rows = [
        (pictures[g], "Describe this image in detail.", ANSWERS[(g + j) % len(ANSWERS)])
        for g in range(groups)
        for j in range(k)
    ]
    return [list(column) for column in zip(*rows)]


def token_counts(processor, rows) -> tuple[float, float]:
    """Mean prefix tokens P and answer tokens A of the rows' packed groups."""
    from rs_reward.data.chat import encode_scored
    from rs_reward.modeling.processing import get_tokenizer
    from rs_reward.modeling.shared_prefix import group_rows as groups_of
    from rs_reward.modeling.shared_prefix import pack_groups

    pics, questions, texts = rows
    groups = groups_of(pics, questions)
    packed = pack_groups(
        encode_scored(processor, pics, questions, texts), groups, get_tokenizer(processor).pad_token_id
    )
    segments = packed["segment_ids"]
    prefix = (segments == 0).sum().item() / len(groups)
    answers = (segments > 0).sum().item() / len(texts)
    return prefix, answers


def rows_per_second(scorer, rows, repeats: int) -> float:
    scorer.score(*rows)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        scorer.score(*rows)
        best = min(best, time.perf_counter() - start)
    return len(rows[2]) / best


def scoring(sizes, ks, rows_per_k: int, threads: int, repeats: int, batch: int) -> list[dict]:
    from rs_reward.scoring import RewardModelScorer

    results = []
    print("## Scoring: grouped (shared prefix) vs plain rows, RewardModelScorer, batch", batch, "answers")
    print(
        f"{'px':>5} {'image tok':>9} {'K':>3} {'P':>6} {'A':>5} {'plain rows/s':>13} {'grouped rows/s':>15} {'ratio':>6} {'limit':>6} {'ratio/limit':>11}"
    )
    for size in sizes:
        model, processor = load(size, threads)
        plain = RewardModelScorer(model, processor, batch_size=batch, shared_prefix=False)
        grouped = RewardModelScorer(model, processor, batch_size=batch, shared_prefix=True, max_group=16)
        for k in ks:
            rows = group_rows(k, max(1, rows_per_k // k), size)
            p, a = token_counts(processor, rows)
            limit = k * (p + a) / (p + k * a)
            slow, fast = rows_per_second(plain, rows, repeats), rows_per_second(grouped, rows, repeats)
            ratio = fast / slow
            tokens = (size // 28) ** 2
            print(
                f"{size:>5} {tokens:>9} {k:>3} {p:>6.1f} {a:>5.1f} {slow:>13.1f} {fast:>15.1f} {ratio:>5.2f}x {limit:>5.2f}x {ratio / limit:>11.2f}"
            )
            results.append(
                {
                    "px": size,
                    "image_tokens": tokens,
                    "k": k,
                    "prefix_tokens": p,
                    "answer_tokens": a,
                    "plain_rows_per_s": slow,
                    "grouped_rows_per_s": fast,
                    "ratio": ratio,
                    "limit": limit,
                }
            )
    return results


def _peak_child(size: int, grouped: bool, threads: int) -> float:
    """MB above the loaded model at the peak of one scoring call (resident memory sampled every millisecond in a
    fresh process, so the other mode's freed memory cannot be reused)."""
    code = f"""
import sys, threading, time, transformers
transformers.logging.set_verbosity_error()
sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})
import bench_prefix as b
from rs_reward.scoring import RewardModelScorer
model, processor = b.load({size}, {threads})
rows = b.group_rows(16, 1, {size})
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096
peak, done = [0], threading.Event()
def sample():
    while not done.is_set():
        peak[0] = max(peak[0], rss())
        time.sleep(0.001)
before = rss()
thread = threading.Thread(target=sample)
thread.start()
RewardModelScorer(model, processor, batch_size=16, shared_prefix={grouped}).score(*rows)
done.set()
thread.join()
print(max(peak[0] - before, 0) / 2**20)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return float(out.strip().splitlines()[-1])


def memory(size: int, threads: int) -> dict:
    plain, grouped = _peak_child(size, False, threads), _peak_child(size, True, threads)
    print(f"\n## Peak memory above the loaded model, one batch of K = 16 answers at {size} px")
    print(f"plain {plain:.1f} MB, grouped {grouped:.1f} MB")
    return {"px": size, "k": 16, "plain_peak_mb": plain, "grouped_peak_mb": grouped}


def training_rows(k: int, items: int):
    """`items` items of one chosen and k - 1 rejected captions each: as expanded pairs and as grouped items."""
    from rs_reward.data.preference import preference_row

    expanded, grouped = [], []
    for i, picture in enumerate(images(items, 112, seed=k)):
        rejected = [ANSWERS[(i + j + 1) % len(ANSWERS)] for j in range(k - 1)]
        pairs = [
            preference_row(f"{i}-{j}", picture, "", ANSWERS[i % len(ANSWERS)], r, "caption", "bench")
            for j, r in enumerate(rejected)
        ]
        item = dict(pairs[0])
        item["rejected"] = [p["rejected"] for p in pairs]
        expanded.extend(pairs)
        grouped.append(item)
    return expanded, grouped


def items_per_second(args, collator, rows, items: int, steps: int) -> float:
    """Median items/s of collate + forward + backward + AdamW step (the first step warms up)."""
    from rs_reward.modeling.loading import load_reward_model

    torch.manual_seed(0)
    model = load_reward_model(args)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    times = []
    for step in range(steps + 1):
        start = time.perf_counter()
        batch = collator(rows)
        chosen, rejected = model(**batch).logits.squeeze(-1).chunk(2)
        (-torch.nn.functional.logsigmoid(chosen - rejected).mean()).backward()
        optimizer.step()
        optimizer.zero_grad()
        if step:
            times.append(time.perf_counter() - start)
    return items / float(np.median(times))


def training_args(**extra):
    from rs_reward.configs import RSModelConfig

    return RSModelConfig(
        model_name_or_path=MODEL, min_pixels=112 * 112, max_pixels=112 * 112, freeze_vision_tower=True, **extra
    )


def training(ks, items: int, steps: int, threads: int) -> list[dict]:
    from rs_reward.modeling import model_processor
    from rs_reward.trainers.reward import VisionPreferenceCollator

    torch.set_num_threads(threads)
    args = training_args()
    processor = model_processor(args)
    results = []
    print(f"\n## Reward training steps, {items} items a step, vision tower frozen (the demo's recipe)")
    print(f"{'K':>3} {'pairs/item':>10} {'expanded items/s':>17} {'grouped items/s':>16} {'ratio':>6}")
    for k in ks:
        expanded, grouped = training_rows(k, items)
        speeds = {
            "expanded": items_per_second(args, VisionPreferenceCollator(processor), expanded, items, steps),
            "grouped": items_per_second(
                args, VisionPreferenceCollator(processor, shared_prefix=True), grouped, items, steps
            ),
        }
        ratio = speeds["grouped"] / speeds["expanded"]
        print(f"{k:>3} {k - 1:>10} {speeds['expanded']:>17.1f} {speeds['grouped']:>16.1f} {ratio:>5.2f}x")
        results.append(
            {
                "k": k,
                "items": items,
                "expanded_items_per_s": speeds["expanded"],
                "grouped_items_per_s": speeds["grouped"],
                "ratio": ratio,
            }
        )
    return results


def likelihood(k: int, items: int, steps: int, threads: int, weight: float = 10.0) -> dict:
    """Grouped training items/s of the demo's score model with its likelihood term (`score_likelihood_weight`)
    against the paper's head alone, same items, same process."""
    from rs_reward.modeling import model_processor
    from rs_reward.trainers.reward import VisionPreferenceCollator

    torch.set_num_threads(threads)
    processor = model_processor(training_args())
    collator = VisionPreferenceCollator(processor, shared_prefix=True)
    _, grouped = training_rows(k, items)
    head = items_per_second(training_args(), collator, grouped, items, steps)
    term = items_per_second(training_args(score_likelihood_weight=weight), collator, grouped, items, steps)
    print(f"\n## The likelihood term (weight {weight}), grouped training, {items} items of K = {k} a step")
    print(f"head alone {head:.1f} items/s, with the term {term:.1f} items/s: {term / head:.2f}x")
    return {"k": k, "items": items, "head_items_per_s": head, "with_term_items_per_s": term, "ratio": term / head}


def grouping(items: int) -> dict:
    """Seconds to group `items` items of 1-2 rejected answers each (as pair rows, shuffled and selected): group_items
    against `select` + `add_column` of the same rejected lists; both give the same rows (checked)."""
    from datasets import Dataset

    from rs_reward.data.preference import group_items, preference_row

    rows = []
    for i in range(items):
        chosen = ANSWERS[i % len(ANSWERS)]
        for j in range(1 + i % 2):
            rejected = ANSWERS[(i + j + 1) % len(ANSWERS)]
            rows.append(preference_row(f"{i}-{j}", f"images/{i}.jpg", "", chosen, rejected, "caption", "bench"))
    pairs = Dataset.from_list(rows).shuffle(seed=0).select(range(len(rows)))  # an indices mapping, as in training

    start = time.perf_counter()
    items_fast = group_items(pairs)
    fast = time.perf_counter() - start

    start = time.perf_counter()
    table = pairs.with_format("arrow")[:]
    keys, firsts, rejected = {}, [], []
    columns = [table.column(c).to_pylist() for c in ("images", "prompt", "chosen", "rejected")]
    for i, (image, prompt, chosen, answer) in enumerate(zip(*columns)):
        key = json.dumps([image, prompt, chosen])
        if key not in keys:
            keys[key] = len(firsts)
            firsts.append(i)
            rejected.append([])
        rejected[keys[key]].append(answer)
    items_plain = pairs.select(firsts).remove_columns(["rejected"]).add_column("rejected", rejected)
    plain = time.perf_counter() - start
    assert items_fast.to_list() == items_plain.select_columns(items_fast.column_names).to_list()
    print(
        f"\ngrouping {len(rows)} pairs into {items} items: group_items {fast:.2f} s, select + add_column "
        f"{plain:.2f} s ({plain / fast:.1f}x)"
    )
    return {"pairs": len(rows), "items": items, "group_items_s": fast, "select_add_column_s": plain}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rows and repeats (under a minute on 2 cores)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=None, help="folder to write bench_prefix_cpu.json to")
    args = parser.parse_args()
    transformers.logging.set_verbosity_error()  # the new score head's load report, once per model
    torch.manual_seed(0)
    if args.quick:
        score = scoring([112, 448], [2, 16], rows_per_k=16, threads=args.threads, repeats=1, batch=16)
        mem = [memory(448, args.threads)]
        train = training([3], items=6, steps=1, threads=args.threads)
        term = likelihood(3, items=6, steps=1, threads=args.threads)
        group = grouping(2000)
    else:
        score = scoring([112, 448], [2, 4, 8, 16], rows_per_k=128, threads=args.threads, repeats=3, batch=32)
        mem = [memory(112, args.threads), memory(448, args.threads)]
        train = training([2, 3], items=11, steps=8, threads=args.threads)
        term = likelihood(3, items=11, steps=8, threads=args.threads)
        group = grouping(16000)
    result = {
        "model": MODEL,
        "threads": args.threads,
        "quick": args.quick,
        "scoring": score,
        "memory": mem,
        "training": train,
        "likelihood_term": term,
        "grouping": group,
    }
    if args.out:
        path = Path(args.out) / "bench_prefix_cpu.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2) + "\n")
        print("\nwrote", path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
