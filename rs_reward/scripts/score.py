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
from dataclasses import dataclass, field
from pathlib import Path

from rs_reward.data.chat import prompt_order_field


@dataclass
class ScoreArguments:
    """What to score, with what, and where to write it."""

    pool: str = field(
        default=None, metadata={"help": "The pool: CSV/JSONL/parquet file or folder, or a datasets dataset."}
    )
    image_root: str | None = field(
        default=None, metadata={"help": "Folder image paths are relative to (default: the pool file's)."}
    )
    output_dir: str = field(default="runs/score", metadata={"help": "Folder for shards, rejects and the manifest."})
    scorer: str = field(
        default="reward_model",
        metadata={"help": "reward_model, clip or random.", "choices": ["reward_model", "clip", "random"]},
    )
    batch_size: int = field(default=32, metadata={"help": "Rows per forward pass."})
    shard_size: int = field(default=1024, metadata={"help": "Rows per shard (the unit of resumption)."})
    num_workers: int = field(
        default=0, metadata={"help": "Threads opening images and encoding batches while the model runs."}
    )
    shared_prefix: bool = field(
        default=True,
        metadata={"help": "Score rows of one image and question behind one prefix (reward_model; same scores)."},
    )
    seed: int = field(default=0, metadata={"help": "Seed of the random scorer."})
    max_rows: int | None = field(default=None, metadata={"help": "Score only the first rows of the pool."})
    id_column: str | None = field(
        default=None, metadata={"help": "Column of unique row ids (default `id`, else the row index)."}
    )
    image_column: str | None = field(default=None, metadata={"help": "Image path column (default: detected)."})
    text_column: str | None = field(default=None, metadata={"help": "Text column (default: detected, e.g. `title`)."})
    question_column: str | None = field(
        default=None, metadata={"help": "Question column (default `question` if present)."}
    )
    max_text_tokens: int = field(
        default=1024, metadata={"help": "Questions and texts are cut to this many tokens (counted in the manifest)."}
    )
    max_batch_tokens: int = field(default=32768, metadata={"help": "Text tokens per batch, padded (memory bound)."})
    prompt_order: str = prompt_order_field()
    duplicate_ids: str = field(
        default="reject",
        metadata={"help": "A row repeating an earlier id: `reject` (to load_rejects.jsonl) or `suffix` (`<id>#2`)."},
    )
    trust_remote_code: bool = field(default=False, metadata={"help": "Allow custom model code from the Hub."})


def make_parser():
    """The task's parser: TRL's, over its dataclasses (`--config recipe.yaml`, then flags)."""
    from trl import TrlParser

    from rs_reward.configs import RSModelConfig

    return TrlParser((ScoreArguments, RSModelConfig))


def main(args, model_args) -> int:
    from accelerate import PartialState

    from rs_reward.data.io import Rejects
    from rs_reward.data.pool import load_pool
    from rs_reward.report import write_atomic
    from rs_reward.scoring import load_scorer, merge_pool_scores, pool_fingerprint, score_pool

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
        _check_folder(output, fingerprint)  # another run's scores are never mixed in (before anything loads)
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
        lock = _lock(output)  # noqa: F841 - held until this process exits (also when killed)
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


def _lock(output: Path):
    """An exclusive lock on `output/.lock` for this process's life: a second command scoring into the same folder
    is refused at once instead of doing all the work again. The OS releases it when the process ends."""
    import fcntl

    output.mkdir(parents=True, exist_ok=True)
    handle = (output / ".lock").open("a")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise ValueError(
            f"{output} is being scored by another command; wait for it to finish (then rerun to reuse its scores),"
            " or use another output_dir"
        ) from None
    return handle


def _check_folder(output: Path, fingerprint: str) -> None:
    """Refuse a folder holding scores of another pool, shard size or scorer; a folder whose `run.json` names
    another run (or cannot be read) but holds no scores yet is taken over (nothing would be lost)."""
    run_file = output / "run.json"
    if not run_file.is_file():
        return
    try:
        recorded = json.loads(run_file.read_text()).get("fingerprint")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        recorded = None
    if recorded == fingerprint:
        return
    if any((output / "shards").glob("scores-*.parquet")):
        what = "another pool, shard size or scorer" if recorded else "an unreadable run.json"
        raise ValueError(f"{output} holds scores of {what}; use a new output_dir, or delete {output} to start over")


if __name__ == "__main__":
    from ._common import run_task

    raise SystemExit(run_task("score", make_parser, main))
