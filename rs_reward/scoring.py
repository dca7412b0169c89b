"""Scorers behind one interface, and scoring a pool at scale.

Every scorer has `score(images, questions, texts, ids) -> np.ndarray` (one float per row; images are PIL):
- `RewardModelScorer`: a VLM reward model reading the scored transcript (`rs_reward.data.chat`);
- `ClipScorer`: cosine of image and text embeddings of any transformers CLIP or SigLIP model (texts longer than
  the model's limit are truncated, and counted);
- `RandomScorer`: a uniform score derived from the row id and a seed (the same whatever the order or sharding).

`score_pool` scores a pool in fixed chunks of rows: chunk c is rows [c*S, (c+1)*S), handled by process
c mod K, written as `shards/scores-<c>.parquet` (id, score, scorer, task, source) and `shards/rejects-<c>.jsonl`
(id, reason), each atomically. A rerun skips finished chunks, with any number of processes; the merged result
is the same for every K, and rows in = rows scored + rows rejected.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch

from .data.chat import PROMPT_ORDERS, encode_scored, resolves_choices, truncate_texts
from .data.images import open_image
from .data.io import RowError
from .modeling.processing import get_tokenizer
from .modeling.shared_prefix import group_rows, pack_groups, supports_shared_prefix


def _autocast(device):
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()


class RewardModelScorer:
    """Score (image, question, text) rows with a VLM reward model: batches of similar length, no gradients,
    bf16 autocast on GPU, the score read at each row's last token whatever the padding side.

    With `shared_prefix` (the default) rows with the same image and question (best-of-N candidates, GRPO
    completions, a pair's two answers, several captions of one image) are packed behind one copy of the prefix
    (`rs_reward.modeling.shared_prefix`): the same scores, one vision pass and one prefix per group. A batch then
    holds at most `batch_size` answers and a group at most `max_group` of them.

    Memory is bounded by tokens, not only rows: every question and answer is cut to `max_text_tokens` tokens
    (counted in `truncated`), and a batch holds at most `max_batch_tokens` text tokens (rows x its longest row).

    `prompt_order` places the image in the user turn: "image_first" (`[image, question]`, as the authors train
    and score pools) or "text_first" (`[question, image]`, as their GRPO reward server and best-of-N scripts).

    Example:
        >>> scorer = RewardModelScorer(model, processor, batch_size=32)
        >>> scorer.score([image], [""], ["A satellite image of farmland."])
        array([0.73], dtype=float32)
    """

    name = "reward_model"

    def __init__(
        self,
        model,
        processor,
        batch_size: int = 16,
        image_root: str | None = None,
        num_workers: int = 0,
        shared_prefix: bool = True,
        max_group: int = 16,
        max_text_tokens: int | None = 1024,
        max_batch_tokens: int = 32768,
        prompt_order: str = "image_first",
    ):
        if prompt_order not in PROMPT_ORDERS:
            raise ValueError(f"prompt_order must be one of {PROMPT_ORDERS}, got {prompt_order!r}")
        self.prompt_order = prompt_order
        self.resolve_choices = resolves_choices(model)  # as the model trained (its config)
        self.model = model.eval()
        self.max_text_tokens = max_text_tokens
        self.max_batch_tokens = max_batch_tokens
        self.truncated = 0
        self.processor = processor
        self.batch_size = batch_size
        self.image_root = image_root
        self.num_workers = num_workers
        self.shared_prefix = shared_prefix and supports_shared_prefix(model)
        self.max_group = max(1, min(max_group, batch_size))
        self.device = next(model.parameters()).device

    def _encode(self, images, questions, texts, groups):
        index = [i for group in groups for i in group]
        opened = {}  # a group's rows share one image: open it once
        batch_images = []
        for i in index:
            if images[i] is None:
                batch_images.append(None)
                continue
            key = images[i] if isinstance(images[i], str) else id(images[i])
            if key not in opened:
                opened[key] = open_image(images[i], self.image_root)
            batch_images.append(opened[key])
        batch = encode_scored(
            self.processor,
            batch_images,
            [questions[i] for i in index],
            [texts[i] for i in index],
            prompt_order=self.prompt_order,
            resolve_choices=self.resolve_choices,
        )
        if any(len(group) > 1 for group in groups):
            local, start = [], 0
            for group in groups:
                local.append(list(range(start, start + len(group))))
                start += len(group)
            batch = pack_groups(batch, local, get_tokenizer(self.processor).pad_token_id)
        if self.device.type == "cuda":
            batch = {k: v.pin_memory() for k, v in batch.items()}
        return index, batch

    def _batches(self, images, questions, texts, tokens=None) -> list[list[list[int]]]:
        """Batches of groups of row indices: length-aware (sorted by text length), at most `batch_size` rows and,
        given each row's token count, at most `max_batch_tokens` tokens once padded to the longest row."""
        singles = [[i] for i in range(len(texts))]
        groups = group_rows(images, questions, self.max_group) if self.shared_prefix else singles
        groups.sort(key=lambda g: max(len(texts[i]) for i in g) + len(questions[g[0]] or ""))
        tokens = tokens if tokens is not None else [0] * len(texts)
        batches, current, size, longest = [], [], 0, 0
        for group in groups:
            group_longest = max(tokens[i] for i in group)
            too_many = size + len(group) > self.batch_size
            too_long = (size + len(group)) * max(longest, group_longest) > self.max_batch_tokens
            if current and (too_many or too_long):
                batches.append(current)
                current, size, longest = [], 0, 0
            current.append(group)
            size += len(group)
            longest = max(longest, group_longest)
        return batches + ([current] if current else [])

    @torch.no_grad()
    def score(self, images: Sequence, questions: Sequence[str | None], texts: Sequence[str], ids=None) -> np.ndarray:
        """One score per row. With `num_workers` > 0 the next batches are opened and encoded in threads while the
        model runs (on a GPU the image processor, not the model, is otherwise the bottleneck: bench/bench_gpu.py)."""
        scores = np.empty(len(texts), dtype=np.float32)
        tokenizer = get_tokenizer(self.processor)
        texts, text_tokens, cut = truncate_texts(tokenizer, texts, self.max_text_tokens)
        questions = [q or "" for q in questions]
        questions, question_tokens, cut_questions = truncate_texts(tokenizer, questions, self.max_text_tokens)
        self.truncated += cut + cut_questions
        tokens = [a + b for a, b in zip(text_tokens, question_tokens)]
        batches = self._batches(images, questions, texts, tokens)

        def encoded():
            if self.num_workers <= 0:
                yield from (self._encode(images, questions, texts, groups) for groups in batches)
                return
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(self.num_workers) as pool:
                yield from pool.map(lambda groups: self._encode(images, questions, texts, groups), batches)

        for index, batch in encoded():
            batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
            with _autocast(self.device):
                logits = self.model(**batch).logits.squeeze(-1)
            scores[index] = logits.float().cpu().numpy()
        return scores


class ClipScorer:
    """Cosine similarity of image and text embeddings (CLIP or SigLIP). The question, if any, precedes the text."""

    name = "clip"

    def __init__(self, model, processor, batch_size: int = 64):
        self.model = model.eval()
        self.processor = processor
        self.batch_size = batch_size
        self.device = next(model.parameters()).device
        self.tokenizer = getattr(processor, "tokenizer", processor)
        self.max_length = model.config.text_config.max_position_embeddings
        self.truncated = 0

    @staticmethod
    def _features(output) -> torch.Tensor:
        return output if isinstance(output, torch.Tensor) else output.pooler_output

    @torch.no_grad()
    def score(self, images, questions, texts, ids=None) -> np.ndarray:
        full = [f"{q} {t}".strip() if q else t for q, t in zip(questions, texts)]
        lengths = [len(x) for x in self.tokenizer(full, add_special_tokens=True)["input_ids"]]
        self.truncated += sum(length > self.max_length for length in lengths)
        scores = np.empty(len(full), dtype=np.float32)
        for start in range(0, len(full), self.batch_size):
            end = start + self.batch_size
            batch = self.processor(
                text=full[start:end],
                images=[open_image(i) for i in images[start:end]],
                padding=True,
                truncation=True,
                max_length=self.max_length,
                return_tensors="pt",
            )
            batch = {k: v.to(self.device) for k, v in batch.items()}
            with _autocast(self.device):
                image = self._features(self.model.get_image_features(pixel_values=batch["pixel_values"]))
                text_inputs = {k: v for k, v in batch.items() if k in ("input_ids", "attention_mask")}
                text = self._features(self.model.get_text_features(**text_inputs))
            image = torch.nn.functional.normalize(image.float(), dim=-1)
            text = torch.nn.functional.normalize(text.float(), dim=-1)
            scores[start:end] = (image * text).sum(-1).cpu().numpy()
        return scores


class RandomScorer:
    """A uniform [0, 1) score from sha256(seed, id): deterministic, independent of order and sharding."""

    name = "random"

    def __init__(self, seed: int = 0):
        self.seed = seed

    def score(self, images, questions, texts, ids) -> np.ndarray:
        if ids is None:
            raise ValueError("RandomScorer needs the row ids")
        digests = (hashlib.sha256(f"{self.seed}:{i}".encode()).digest() for i in ids)
        return np.array([int.from_bytes(d[:8], "big") / 2**64 for d in digests], dtype=np.float64)


def load_scorer(
    kind: str,
    model_args=None,
    *,
    batch_size: int = 16,
    seed: int = 0,
    device=None,
    trust_remote_code: bool = False,
    num_workers: int = 0,
    shared_prefix: bool = True,
    max_text_tokens: int | None = 1024,
    max_batch_tokens: int = 32768,
    prompt_order: str = "image_first",
):
    """Build a scorer: `reward_model` (any folder/Hub id/adapter `load_reward_model` reads; `shared_prefix`,
    `max_text_tokens`, `max_batch_tokens` and `prompt_order` as in `RewardModelScorer`), `clip` (any transformers CLIP/SigLIP;
    texts cut to the model's own limit), or `random`."""
    if kind == "random":
        return RandomScorer(seed)
    from .modeling import model_processor

    device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if kind == "reward_model":
        from .modeling.loading import load_reward_model

        model = load_reward_model(model_args, trainable=False, trust_remote_code=trust_remote_code).to(device)
        processor = model_processor(model_args, trust_remote_code=trust_remote_code, padding_side="left")
        return RewardModelScorer(
            model,
            processor,
            batch_size=batch_size,
            num_workers=num_workers,
            shared_prefix=shared_prefix,
            max_text_tokens=max_text_tokens,
            max_batch_tokens=max_batch_tokens,
            prompt_order=prompt_order,
        )
    if kind == "clip":
        from .modeling.loading import load_clip

        model, processor = load_clip(
            model_args.model_name_or_path, dtype=model_args.dtype, trust_remote_code=trust_remote_code
        )
        return ClipScorer(model.to(device), processor, batch_size=batch_size)
    raise ValueError(f"unknown scorer {kind!r}: choose reward_model, clip or random")


# ----------------------------------------------------------------------------------- scoring a pool at scale


def pool_fingerprint(rows: list[dict], shard_size: int, scorer_id: str) -> str:
    digest = hashlib.sha256(f"{shard_size}|{scorer_id}|{len(rows)}".encode())
    for row in rows:
        digest.update(row["id"].encode() + b"\0")
    return digest.hexdigest()[:16]


def _write_atomic(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    write(tmp)
    os.replace(tmp, path)


def _open_chunk(rows: list[dict], image_root, num_workers: int, verify_only: bool = False):
    """Open the chunk's images (in worker threads when asked): [(row, image or RowError)]. With `verify_only`
    the files are checked but not decoded (a scorer that does not look at images still rejects the same rows)."""

    def one(row):
        try:
            return row, open_image(row["image"], image_root, verify=verify_only)
        except RowError as error:
            return row, error

    if num_workers > 0:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(num_workers) as pool:
            return list(pool.map(one, rows))
    return [one(row) for row in rows]


def score_chunk(
    scorer, rows: list[dict], image_root=None, num_workers: int = 0
) -> tuple[list[dict], list[dict], dict]:
    """Score one chunk: (scored rows, rejected rows, seconds spent opening images / scoring)."""
    start = time.perf_counter()
    opened = _open_chunk(rows, image_root, num_workers, verify_only=isinstance(scorer, RandomScorer))
    open_seconds = time.perf_counter() - start
    rejected = [{"id": row["id"], "reason": str(image)} for row, image in opened if isinstance(image, RowError)]
    good = [(row, image) for row, image in opened if not isinstance(image, RowError)]
    start = time.perf_counter()
    scores = (
        scorer.score(
            [i for _, i in good],
            [r["question"] for r, _ in good],
            [r["text"] for r, _ in good],
            ids=[r["id"] for r, _ in good],
        )
        if good
        else []
    )
    score_seconds = time.perf_counter() - start
    scored = []
    for (row, _), value in zip(good, scores):
        if not math.isfinite(float(value)):
            rejected.append({"id": row["id"], "reason": f"non-finite score {value}"})
            continue
        scored.append(
            {
                "id": row["id"],
                "score": float(value),
                "scorer": scorer.name,
                "task": row["task"],
                "source": row["source"],
            }
        )
    return scored, rejected, {"open": open_seconds, "score": score_seconds}


def score_pool(
    rows: list[dict],
    scorer,
    output_dir: str | Path,
    *,
    shard_size: int = 1024,
    process_index: int = 0,
    num_processes: int = 1,
    image_root=None,
    num_workers: int = 0,
    progress: bool = True,
) -> dict:
    """Score this process's chunks of `rows` into `output_dir/shards/`, skipping finished chunks."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from tqdm.auto import tqdm

    shards = Path(output_dir) / "shards"
    shards.mkdir(parents=True, exist_ok=True)
    n_chunks = math.ceil(len(rows) / shard_size)
    mine = [c for c in range(n_chunks) if c % num_processes == process_index]
    todo = [c for c in mine if not (shards / f"scores-{c:06d}.parquet").is_file()]
    timing = {"open": 0.0, "score": 0.0, "chunks": len(todo), "resumed": len(mine) - len(todo)}
    schema = pa.schema(
        [
            ("id", pa.string()),
            ("score", pa.float64()),
            ("scorer", pa.string()),
            ("task", pa.string()),
            ("source", pa.string()),
        ]
    )
    bar = tqdm(
        total=sum(min(shard_size, len(rows) - c * shard_size) for c in todo),
        unit="row",
        desc=f"scoring ({scorer.name})",
        disable=not progress or process_index != 0,
    )
    for c in todo:
        chunk = rows[c * shard_size : (c + 1) * shard_size]
        scored, rejected, seconds = score_chunk(scorer, chunk, image_root, num_workers)
        timing["open"] += seconds["open"]
        timing["score"] += seconds["score"]

        def write_rejects(path, rejected=rejected):
            path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rejected), encoding="utf-8")

        _write_atomic(shards / f"rejects-{c:06d}.jsonl", write_rejects)
        # The scores file is written last: its presence marks the chunk done.
        _write_atomic(
            shards / f"scores-{c:06d}.parquet",
            lambda path, scored=scored: pq.write_table(pa.Table.from_pylist(scored, schema=schema), path),
        )
        bar.update(len(chunk))
    bar.close()
    return timing


def merge_pool_scores(
    output_dir: str | Path, n_rows: int, shard_size: int, extra: dict | None = None, rejected_at_load: int = 0
) -> dict:
    """Check every chunk is there, count rows, write `rejects.jsonl` and `manifest.json`; return the manifest.

    `n_rows` rows were scored or rejected in the chunks; `rejected_at_load` more were refused when the pool was read
    (`load_rejects.jsonl`). The manifest counts both: rows_in = rows_scored + rows_rejected."""
    import pyarrow.parquet as pq

    output_dir = Path(output_dir)
    shards = output_dir / "shards"
    n_chunks = math.ceil(n_rows / shard_size)
    missing = [c for c in range(n_chunks) if not (shards / f"scores-{c:06d}.parquet").is_file()]
    if missing:
        raise RuntimeError(f"{len(missing)} chunks are not scored yet (first: {missing[0]}); rerun to finish")
    scored = sum(pq.ParquetFile(shards / f"scores-{c:06d}.parquet").metadata.num_rows for c in range(n_chunks))
    rejects = "".join((shards / f"rejects-{c:06d}.jsonl").read_text(encoding="utf-8") for c in range(n_chunks))
    _write_atomic(output_dir / "rejects.jsonl", lambda p: p.write_text(rejects, encoding="utf-8"))
    rejected = rejects.count("\n")
    if scored + rejected != n_rows:
        raise RuntimeError(f"rows in ({n_rows}) != scored ({scored}) + rejected ({rejected})")
    manifest = {
        "rows_in": n_rows + rejected_at_load,
        "rows_scored": scored,
        "rows_rejected": rejected + rejected_at_load,
        "rows_rejected_at_load": rejected_at_load,
        "chunks": n_chunks,
        "shard_size": shard_size,
        **(extra or {}),
    }
    _write_atomic(output_dir / "manifest.json", lambda p: p.write_text(json.dumps(manifest, indent=2) + "\n"))
    return manifest


def read_scores(output_dir: str | Path, columns: list[str] | None = None):
    """The scores of a finished `rs-reward score` folder as one pandas DataFrame (shards in chunk order)."""
    import pyarrow.parquet as pq

    files = sorted((Path(output_dir) / "shards").glob("scores-*.parquet"))
    if not files:
        raise FileNotFoundError(f"no score shards in {output_dir}/shards")
    return pq.ParquetDataset(files).read(columns=columns).to_pandas()


def lock_output(output: Path):
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


def check_output_folder(output: Path, fingerprint: str) -> None:
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
