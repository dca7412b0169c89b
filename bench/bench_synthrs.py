"""SynthRS: generation speed (2 workers vs 1, same process) and learnability probes.

    python bench/bench_synthrs.py                  # 10,000 scenes per timing, probes on the demo-size data
    python bench/bench_synthrs.py --scenes 2000    # faster

Prints what it measured; nothing is hard-coded. The numbers in data_cards/synth_rs.md come from this script.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from PIL import Image

from rs_reward.data.synthrs import GROUNDED_OPERATORS, SynthRSConfig, build, load_scenes
from rs_reward.data.synthrs.probes import colour_histogram_probe, pairs_from_rsrm, text_only_pair_probe


def time_generation(scenes: int, workers: int, root: Path) -> float:
    config = SynthRSConfig.only(output_dir=str(root / f"speed{workers}"), num_workers=workers, pool_size=scenes)
    start = time.perf_counter()
    build(config, progress=False)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-synthrs-"))
    try:
        print(
            f"## SynthRS generation ({args.scenes} pool scenes: render + texts + JPEG + writing, cpus={os.cpu_count()})"
        )
        one = time_generation(args.scenes, 1, root)
        two = time_generation(args.scenes, 2, root)
        print("| workers | seconds | scenes/s |\n|---|---|---|")
        print(f"| 1 | {one:.1f} | {args.scenes / one:.0f} |")
        print(f"| 2 | {two:.1f} | {args.scenes / two:.0f} |")
        print(
            f"speed-up 2 vs 1 workers: {one / two:.2f}x; 10,000 scenes with 2 workers: {10_000 * two / args.scenes:.1f} s\n"
        )

        data = build(
            SynthRSConfig(output_dir=str(root / "demo"), seed=args.seed, pool_size=0, rl_size=0, eval_size=0),
            progress=False,
        )
        scenes = list(load_scenes(data, "pretrain").values())
        images = [(Image.open(data / "pretrain" / "images" / f"{s.id}.jpg"), s) for s in scenes]
        cut = int(0.8 * len(images))
        print(
            f"## Colour-histogram probe (64-bin RGB histogram + softmax regression; {cut} train / {len(images) - cut} test scenes)"
        )
        print("| target | accuracy | majority class | chance |\n|---|---|---|---|")
        for target, r in colour_histogram_probe(images[:cut], images[cut:]).items():
            print(f"| {target} | {r['accuracy']:.3f} | {r['majority']:.3f} | {r['chance']:.3f} |")

        train = pairs_from_rsrm(data / "preference" / "train")
        test = pairs_from_rsrm(data / "preference" / "test")
        print(
            f"\n## Text-only pair probe (bag of words + bigrams, no image; {len(train)} train / {len(test)} test pairs)"
        )
        print("| operator | kind | pairwise accuracy | test pairs |\n|---|---|---|---|")
        result = text_only_pair_probe(train, test)
        for op, r in result.items():
            kind = "grounded" if op in GROUNDED_OPERATORS else "form"
            print(f"| {op} | {kind} | {r['accuracy']:.3f} | {r['pairs']} |")
        for kind, ops in (
            ("grounded", GROUNDED_OPERATORS),
            ("form", [o for o in result if o not in GROUNDED_OPERATORS]),
        ):
            n = sum(result[o]["pairs"] for o in ops if o in result)
            acc = sum(result[o]["accuracy"] * result[o]["pairs"] for o in ops if o in result) / n
            print(f"pooled {kind}: {acc:.3f} over {n} pairs")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
