"""Preference data in the canonical row (DESIGN.md): TRL's conversational format plus an `images` column.

    {"id", "images": [image], "prompt": [user msg], "chosen": [assistant msg], "rejected": [assistant msg],
     "task", "source"}  (+ "margin" when the source has one)

Loaders, all into that row, all sending unusable rows to a `Rejects` collector with the reason:
- `rsrm_pairs`: the RSRM layout (one JSON list per source, images in `image_root/<source>/`);
- `table_pairs`: JSONL / JSON / parquet files with image paths relative to an image root, or with image bytes
  (`image` = bytes or `{"bytes", "path"}`, as RSRM's parquet files, whose texts may sit in a `text` JSON string);
- `hf_pairs`: any `datasets` dataset in TRL's preference format (`prompt` / `chosen` / `rejected` / `images`).
A source row with several rejected texts becomes one pair per rejected text (as the paper trains);
`group_items` gathers them back into one row per item, for training behind a shared prefix.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path

from .images import open_image
from .io import ROW_FILE_SUFFIXES, Rejects, RowError, UniqueIds, confine_path, read_records


# Keys that SynthRS (or any source with known quality) records per item; carried into each pair's columns, with
# list values (one per rejected text) split per pair. Used for measurement only, never for training.
MEASUREMENT_KEYS = {
    "rejected_operators": "operator",
    "chosen_quality": "chosen_quality",
    "rejected_quality": "rejected_quality",
}


def preference_row(row_id, image, question, chosen, rejected, task, source, **extra) -> dict:
    """The canonical preference row. `image` is a path, bytes, a PIL image, or None (text-only)."""
    return {
        "id": row_id,
        "images": [image] if image is not None else [],
        "prompt": [{"role": "user", "content": question or ""}],
        "chosen": [{"role": "assistant", "content": chosen}],
        "rejected": [{"role": "assistant", "content": rejected}],
        "task": task,
        "source": source,
        **extra,
    }


def message_text(value, key: str) -> str:
    """The text of a string or of a conversational message list (the last message's text blocks)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and isinstance(value[-1], dict):
        content = value[-1].get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            return "".join(block.get("text") or "" for block in content if isinstance(block, dict))
    raise RowError(f"{key!r} must be a string or a list of messages, got {type(value).__name__}")


def _texts(item: dict) -> tuple[str, str, list]:
    """(question, chosen, rejected list) of an item; RSRM's `text` JSON string may hold them."""
    if "question" not in item and "prompt" not in item and isinstance(item.get("text"), str):
        try:
            item = {**item, **json.loads(item["text"])}
        except json.JSONDecodeError as error:
            raise RowError(f"'text' is not valid JSON ({error.msg})") from None
    question = item.get("question", item.get("prompt", ""))
    question = "" if question is None else message_text(question, "question")
    if "chosen" not in item:
        raise RowError("'chosen' is missing")
    chosen = message_text(item["chosen"], "chosen")
    if not chosen.strip():
        raise RowError("'chosen' is empty")
    rejected = item.get("rejected")
    if isinstance(rejected, str) or (isinstance(rejected, list) and rejected and isinstance(rejected[0], dict)):
        rejected = [rejected]
    if not isinstance(rejected, list) or not rejected:
        raise RowError("'rejected' must be a string or a non-empty list of strings")
    return question, chosen, rejected


def _image_of(item: dict, image_root, check_images: bool):
    """The item's image: a confined absolute path, bytes, or None (text-only)."""
    value = item.get("image_name") or item.get("image_path") or item.get("image")
    if value is None and isinstance(item.get("images"), list) and item["images"]:
        value = item["images"][0]
    if value is None:
        return None
    if isinstance(value, dict) and value.get("bytes"):
        return value["bytes"]
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, dict):
        value = value.get("path")
    if image_root is None:
        raise RowError("the row names an image path but no image root was given")
    path = confine_path(image_root, value)
    if check_images:
        open_image(path, verify=True)  # missing, empty, corrupt, non-image or too large: a RowError naming it
    return str(path)


def item_pairs(
    item, row_id: str, source: str, image_root, *, rejects: Rejects, check_images=True, text_only=False
) -> list[dict]:
    """The canonical pairs of one source item (one per rejected text); unusable parts go to `rejects`."""
    try:
        if not isinstance(item, dict):
            raise RowError(f"item must be an object, got {type(item).__name__}")
        question, chosen, rejected_texts = _texts(item)
        image = None if text_only else _image_of(item, image_root, check_images)
        margin = item.get("margin")
        if margin is not None and not isinstance(margin, (int, float)):
            raise RowError(f"'margin' must be a number, got {type(margin).__name__}")
    except RowError as error:
        rejects.add(row_id, str(error), source=source)
        return []
    task = item.get("task") or ("caption" if not question else "instruction")
    pairs = []
    for j, rejected in enumerate(rejected_texts):
        pair_id = f"{row_id}-r{j}" if len(rejected_texts) > 1 else row_id
        try:
            rejected = message_text(rejected, "rejected")
        except RowError as error:
            rejects.add(pair_id, str(error), source=source)
            continue
        if not rejected.strip():
            rejects.add(pair_id, "'rejected' is empty", source=source)
            continue
        if rejected.strip() == chosen.strip():
            rejects.add(pair_id, "chosen == rejected", source=source)
            continue
        extra = {"margin": float(margin)} if margin is not None else {}
        for key, column in MEASUREMENT_KEYS.items():
            if key in item:
                value = item[key]
                extra[column] = value[j] if isinstance(value, list) and len(value) == len(rejected_texts) else value
        pair = preference_row(pair_id, image, question, chosen, rejected, task, item.get("source") or source, **extra)
        pairs.append(pair)
    return pairs


def rsrm_pairs(
    data_root: str | Path,
    image_root: str | Path | None = None,
    *,
    rejects: Rejects | None = None,
    check_images: bool = True,
) -> Iterator[dict]:
    """Canonical pairs from the RSRM layout: `data_root/<source>.json` lists, images in `image_root/<source>/`.

    A source without an image folder is text-only (as UltraFeedback in the paper's stage 1).
    `data_root/*.parquet` files (RSRM's parquet sources: `image` bytes + `text` JSON) are read too.
    """
    rejects = rejects if rejects is not None else Rejects()
    for path in sorted(Path(data_root).glob("*.json")):
        source = path.stem
        folder = Path(image_root) / source if image_root is not None else None
        text_only = folder is None or not folder.is_dir()
        try:
            items = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            rejects.add(str(path), f"unreadable JSON file: {error}")
            continue
        if not isinstance(items, list):
            rejects.add(str(path), "the file must hold a JSON list of items")
            continue
        ids = UniqueIds()
        for index, item in enumerate(items):
            row_id = str(item.get("id", f"{source}-{index}")) if isinstance(item, dict) else f"{source}-{index}"
            pairs = item_pairs(
                item, row_id, source, folder, rejects=rejects, check_images=check_images, text_only=text_only
            )
            yield from _unique(pairs, ids, row_id, index + 1, source, rejects)
    for path in sorted(Path(data_root).glob("*.parquet")):
        yield from table_pairs(path, image_root, rejects=rejects, check_images=check_images)


def table_pairs(path, image_root=None, *, rejects: Rejects | None = None, check_images: bool = True) -> Iterator[dict]:
    """Canonical pairs from a JSONL / JSON / parquet file of items (image paths relative to `image_root`)."""
    rejects = rejects if rejects is not None else Rejects()
    path = Path(path)
    ids = UniqueIds()
    for index, item in enumerate(read_records(path)):
        row_id = f"{path.stem}-{index}"
        if isinstance(item, RowError):
            rejects.add(row_id, str(item), source=path.stem)
            continue
        if isinstance(item, dict) and item.get("id") is not None:
            row_id = str(item["id"])
        pairs = item_pairs(item, row_id, path.stem, image_root, rejects=rejects, check_images=check_images)
        yield from _unique(pairs, ids, row_id, index + 1, path.stem, rejects)


def _unique(pairs: list[dict], ids: UniqueIds, row_id: str, number: int, source: str, rejects: Rejects) -> list[dict]:
    """An item's pairs, or none (rejected) when a usable item before it in its file has its id."""
    if not pairs:
        return []
    try:
        ids.check(row_id, number)
    except RowError as error:
        rejects.add(row_id, str(error), source=source)
        return []
    return pairs


def hf_pairs(dataset, *, rejects: Rejects | None = None, source: str = "hf"):
    """A `datasets.Dataset` in TRL's preference format, validated and normalised to the canonical row.

    Images stay in the dataset's own column (decoded lazily by `datasets`); rows with unusable text are removed
    and reported.
    """
    rejects = rejects if rejects is not None else Rejects()
    missing = {"chosen", "rejected"} - set(dataset.column_names)
    if missing:
        raise ValueError(f"the dataset lacks the column(s) {sorted(missing)}; columns: {dataset.column_names}")
    text_columns = [
        c
        for c in ("id", "prompt", "question", "chosen", "rejected", "task", "source", "margin")
        if c in dataset.column_names
    ]
    keep, rows = [], []
    for index, item in enumerate(dataset.select_columns(text_columns)):
        row_id = str(item.get("id") or f"{source}-{index}")
        pairs = item_pairs({**item, "image": None}, row_id, source, None, rejects=rejects, text_only=True)
        if len(pairs) != 1:
            if len(pairs) > 1:
                rejects.add(row_id, "a row of a datasets dataset must hold exactly one rejected text", source=source)
            continue
        keep.append(index)
        rows.append(pairs[0])
    subset = dataset.select(keep)
    if "images" not in subset.column_names:
        subset = subset.add_column("images", [[] for _ in keep])
    kept = ["images"] + [c for c in ("operator", "chosen_quality", "rejected_quality") if c in subset.column_names]
    subset = subset.select_columns(kept)
    for column in ("id", "prompt", "chosen", "rejected", "task", "source"):
        subset = subset.add_column(column, [row[column] for row in rows])
    if any("margin" in row for row in rows):
        subset = subset.add_column("margin", [row.get("margin", 0.0) for row in rows])
    return subset


def load_preference_pairs(
    path: str,
    image_root: str | None = None,
    *,
    split: str = "train",
    rejects: Rejects | None = None,
    check_images: bool = True,
):
    """Any supported preference source as a `datasets.Dataset` of canonical rows.

    - a folder of RSRM `<source>.json` files (images in `image_root/<source>/`; default `image_root` = the folder
      itself, or its `images/` subfolder when present);
    - a `.jsonl` / `.json` / `.parquet` file (image paths relative to `image_root`, default the file's folder);
    - a folder saved with `datasets.save_to_disk`, a folder of `datasets` parquet files, or a Hub dataset id
      (TRL preference format), read split `split`.
    """
    from datasets import Dataset, load_dataset, load_from_disk

    rejects = rejects if rejects is not None else Rejects()
    p = Path(path)
    if p.is_file():
        rows = list(table_pairs(p, image_root or p.parent, rejects=rejects, check_images=check_images))
        return Dataset.from_list(_uniform_images(rows)) if rows else _empty(path)
    if p.is_dir() and list(p.glob("*.json")):
        root = image_root or (p / "images" if (p / "images").is_dir() else p)
        rows = list(rsrm_pairs(p, root, rejects=rejects, check_images=check_images))
        return Dataset.from_list(_uniform_images(rows)) if rows else _empty(path)
    if p.is_dir() and ((p / "dataset_info.json").is_file() or (p / "dataset_dict.json").is_file()):
        dataset = load_from_disk(str(p))
        dataset = dataset[split] if hasattr(dataset, "keys") else dataset
    elif p.is_dir():
        dataset = load_dataset(str(p), split=split)
    elif p.suffix in ROW_FILE_SUFFIXES or str(path).startswith((".", "/", "~")):
        raise FileNotFoundError(f"preference data {path!r}: no such file or folder")
    else:
        dataset = load_dataset(path, split=split)
    return hf_pairs(dataset, rejects=rejects, source=p.name or "hf")


def _uniform_images(rows: list[dict]) -> list[dict]:
    """Rows whose images mix paths (image files) and bytes (parquet sources) get `{"bytes", "path"}` images, which
    Arrow stores as one struct type; left as they are, the paths would be typed as binary and read as image bytes."""
    kinds = {type(image) for row in rows for image in row["images"]}
    if not ({str, bytes} <= kinds):
        return rows
    for row in rows:
        row["images"] = [
            {"bytes": image, "path": None} if isinstance(image, bytes) else {"bytes": None, "path": image}
            for image in row["images"]
        ]
    return rows


def _empty(path):
    raise ValueError(f"no usable preference pair in {path} (see the rejects file for why)")


def group_items(dataset):
    """Pair rows -> item rows: the pairs of one item (same image, question and chosen answer) become one row whose
    `rejected` is the list of their rejected message lists, in order. Rows with a `margin` stay pairs (a margin
    belongs to a pair); per-pair measurement columns are dropped. Reads the raw columns: no image is decoded."""
    if "margin" in dataset.column_names or not len(dataset):
        return dataset
    import hashlib

    def key_of(images, prompt, chosen):
        raw = json.dumps([images, prompt, chosen], sort_keys=True, default=lambda b: hashlib.sha1(b).hexdigest())
        return hashlib.sha1(raw.encode()).hexdigest()

    import pyarrow as pa
    from datasets import Dataset, DatasetInfo, Features, List

    table = dataset.with_format("arrow")[:]  # the rows as they are (after any select), as one Arrow table
    groups: dict[str, list[int]] = {}
    for i, key in enumerate(map(key_of, *(table.column(c).to_pylist() for c in ("images", "prompt", "chosen")))):
        groups.setdefault(key, []).append(i)
    firsts = pa.array([rows[0] for rows in groups.values()], pa.int64())
    # Each item's rejected answers as one list: the pair rows' `rejected` values, taken in item order and cut into
    # one list per item. Built in Arrow: `Dataset.add_column` after a `select` rewrites every column (images too).
    order = pa.array([i for rows in groups.values() for i in rows], pa.int64())
    offsets = pa.array([0, *itertools.accumulate(len(rows) for rows in groups.values())], pa.int32())
    rejected = pa.ListArray.from_arrays(offsets, table.column("rejected").combine_chunks().take(order))
    kept = [c for c in dataset.column_names if c in {"id", "images", "prompt", "chosen", "task", "source"}]
    items = table.select(kept).take(firsts).append_column("rejected", rejected)
    features = Features({**{c: dataset.features[c] for c in kept}, "rejected": List(dataset.features["rejected"])})
    return Dataset(items, info=DatasetInfo(features=features))
