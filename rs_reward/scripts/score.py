"""Score a pool of image-text samples with a reward model, CLIP or random; sharded, resumable, multi-process.

    rs-reward score --config recipes/tiny/score/config_reward_model.yaml
    accelerate launch --config_file accelerate_configs/ddp.yaml -m rs_reward.scripts.score \
        --config recipes/qwen2-vl-7b/score/config_pool.yaml

Writes `output_dir/shards/scores-<chunk>.parquet` (id, score, scorer, task, source) and `rejects-<chunk>.jsonl`
(id, reason), then `rejects.jsonl` and `manifest.json`. Rerunning the same command resumes where it stopped
(with any number of processes) and never duplicates or drops a row: rows in = rows scored + rows rejected.
"""

from __future__ import annotations

import json
import time
from pathlib import Path


def make_parser():
    """The task's parser: TRL's, over its dataclasses (`--config recipe.yaml`, then flags)."""
    from trl import TrlParser

    from rs_reward.configs import RSModelConfig, ScoreArguments

    return TrlParser((ScoreArguments, RSModelConfig))


def main(args, model_args) -> int:
    from accelerate import PartialState

    from rs_reward.data.io import Rejects
    from rs_reward.data.pool import load_pool
    from rs_reward.report import write_atomic
    from rs_reward.scoring import (
        check_output_folder,
        load_scorer,
        lock_output,
        merge_pool_scores,
        pool_fingerprint,
        score_pool,
    )

    from ._common import setup_logging, summary_table

    logger = setup_logging("rs_reward.score")
    if not args.pool:
        raise ValueError("pool is required")
    import torch

    state = PartialState(cpu=not torch.cuda.is_available())  # without a GPU, several processes use gloo
    output = Path(args.output_dir)
    load_rejects = Rejects()
    rows = load_pool(
        args.pool,
        id_column=args.id_column,
        image_column=args.image_column,
        text_column=args.text_column,
        question_column=args.question_column,
        rejects=load_rejects,
        max_rows=args.max_rows,
        duplicate_ids=args.duplicate_ids,
    )
    if not rows:
        raise ValueError(f"the pool {args.pool} has no row to score ({load_rejects.summary()}); check its columns")
    image_root = args.image_root or (args.pool if Path(args.pool).is_dir() else str(Path(args.pool).parent))
    scorer_id = f"{args.scorer}:{model_args.model_name_or_path if args.scorer != 'random' else args.seed}"
    fingerprint = pool_fingerprint(rows, args.shard_size, scorer_id)
    run_file = output / "run.json"
    if state.is_main_process:
        check_output_folder(output, fingerprint)  # another run's scores are never mixed in (before anything loads)
    scorer = load_scorer(  # a wrong model fails here, before the folder is touched
        args.scorer,
        model_args,
        batch_size=args.batch_size,
        seed=args.seed,
        device=state.device,
        trust_remote_code=args.trust_remote_code,
        num_workers=args.num_workers,
        shared_prefix=args.shared_prefix,
        max_text_tokens=args.max_text_tokens,
        prompt_order=args.prompt_order,
        max_batch_tokens=args.max_batch_tokens,
    )
    if state.is_main_process:
        lock = lock_output(output)  # noqa: F841 - held until this process exits (also when killed)
        run = {"fingerprint": fingerprint, "pool": args.pool, "scorer": scorer_id, "shard_size": args.shard_size}
        write_atomic(run_file, json.dumps(run, indent=2) + "\n")
        load_rejects.write(output / "load_rejects.jsonl")
    state.wait_for_everyone()

    start = time.perf_counter()
    timing = score_pool(
        rows,
        scorer,
        output,
        shard_size=args.shard_size,
        process_index=state.process_index,
        num_processes=state.num_processes,
        image_root=image_root,
        num_workers=args.num_workers,
    )
    seconds = time.perf_counter() - start
    state.wait_for_everyone()
    if state.is_main_process:
        extra = {
            "pool": args.pool,
            "scorer": scorer_id,
            "fingerprint": fingerprint,
            "processes": state.num_processes,
            "duplicate_ids": args.duplicate_ids,
            "seconds_main_process": round(seconds, 2),
        }
        if hasattr(scorer, "truncated"):
            extra["texts_truncated"] = int(scorer.truncated)  # this process's share
        manifest = merge_pool_scores(output, len(rows), args.shard_size, extra, rejected_at_load=len(load_rejects))
        total = timing["open"] + timing["score"]
        rows_out = {
            "output": str(output),
            "scorer": scorer_id,
            "rows in": manifest["rows_in"],
            "rows scored": manifest["rows_scored"],
            "rows rejected": f"{manifest['rows_rejected']} ({len(load_rejects)} when the pool was read)",
            "chunks (resumed)": f"{manifest['chunks']} ({timing['resumed']} already done)",
            "seconds (this process)": round(seconds, 1),
            "share opening images": f"{timing['open'] / total:.0%}" if total else "n/a",
        }
        if "texts_truncated" in extra:
            rows_out["texts truncated (token limit)"] = extra["texts_truncated"]
        logger.info("\n%s", summary_table("pool scoring", rows_out))
    return 0


if __name__ == "__main__":
    from ._common import run_task

    raise SystemExit(run_task("score", make_parser, main))
