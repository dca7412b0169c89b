"""Pools of image-text samples to score and curate, in one row shape:

    {"id", "image", "question", "text", "task", "source"}   (image: a path relative to the image root, or bytes)

Read from CSV (SkyScript / RemoteCLIP style: `filepath`, `title`), JSONL, JSON or parquet files, a folder of
such files, or a `datasets` dataset (folder or Hub id). Column names are detected (`filepath`/`image`/
`image_path`/`filename`; `title`/`text`/`caption`/`answer`) or given. Texts are checked here; images are
opened only when scored (never all held in memory).
"""

from __future__ import annotations

from pathlib import Path

from .io import ROW_FILE_SUFFIXES, Rejects, RowError, read_records


IMAGE_COLUMNS = ("filepath", "image", "image_path", "image_name", "filename", "images")
TEXT_COLUMNS = ("title", "text", "caption", "answer", "response")


def _pick(columns, wanted: str | None, candidates: tuple[str, ...], what: str, required: bool = True) -> str | None:
    if wanted:
        if wanted not in columns:
            raise ValueError(f"the pool has no {what} column {wanted!r}; columns: {sorted(columns)}")
        return wanted
    for name in candidates:
        if name in columns:
            return name
    if required:
        raise ValueError(f"no {what} column found (tried {candidates}); name it with --{what}_column")
    return None


def load_pool(
    path: str,
    *,
    id_column: str | None = None,
    image_column: str | None = None,
    text_column: str | None = None,
    question_column: str | None = None,
    task_column: str | None = None,
    split: str = "train",
    rejects: Rejects | None = None,
    max_rows: int | None = None,
    only_ids: set[str] | None = None,
    duplicate_ids: str = "reject",
) -> list[dict]:
    """Pool rows in file order (the order decides the scoring shards). Rows with no usable text are rejected.

    `only_ids` keeps just those rows (the others are read and passed over, not held: a page of a few rows from a
    large pool). A row whose id was already seen is rejected (`duplicate_ids="reject"`, naming the first row with
    that id) or renamed `<id>#2`, `<id>#3`, ... (`duplicate_ids="suffix"`).
    """
    if duplicate_ids not in ("reject", "suffix"):
        raise ValueError(f"duplicate_ids must be 'reject' or 'suffix', got {duplicate_ids!r}")
    rejects = rejects if rejects is not None else Rejects()
    p = Path(path)
    if p.is_dir() and not (p / "dataset_info.json").exists() and not (p / "dataset_dict.json").exists():
        files = sorted(f for f in p.iterdir() if f.suffix in ROW_FILE_SUFFIXES)
        if not files:
            raise ValueError(f"no pool file in {p}")
        records = (r for f in files for r in read_records(f))
        source_default = p.name
    elif p.is_file():
        records, source_default = read_records(p), p.stem
    elif p.suffix in ROW_FILE_SUFFIXES or str(path).startswith((".", "/", "~")):
        raise FileNotFoundError(f"pool {path!r}: no such file or folder")
    else:
        from datasets import load_dataset, load_from_disk

        dataset = load_from_disk(str(p)) if p.is_dir() else load_dataset(path, split=split)
        dataset = dataset[split] if hasattr(dataset, "keys") else dataset
        records, source_default = iter(dataset), p.name or "hf"

    rows, columns, seen = [], None, {}
    for index, record in enumerate(records):
        if max_rows is not None and len(rows) + len(rejects) >= max_rows:
            break
        if isinstance(record, RowError):
            rejects.add(f"row-{index}", str(record))
            continue
        if columns is None:
            columns = set(record)
            id_col = _pick(columns, id_column, ("id",), "id", required=False)
            image_col = _pick(columns, image_column, IMAGE_COLUMNS, "image")
            text_col = _pick(columns, text_column, TEXT_COLUMNS, "text")
            question_col = _pick(columns, question_column, ("question", "prompt"), "question", required=False)
            task_col = _pick(columns, task_column, ("task",), "task", required=False)
        row_id = (
            str(record[id_col]) if id_col and record.get(id_col) not in (None, "") else f"{source_default}-{index}"
        )
        if row_id in seen:
            seen[row_id][1] += 1
            if duplicate_ids == "reject":
                rejects.add(
                    row_id,
                    f"duplicate id {row_id!r}: row {index} repeats the id of row {seen[row_id][0]} (kept); make ids"
                    " unique, or pass --duplicate_ids suffix to keep it as '<id>#<n>'",
                    row=index,
                )
                continue
            row_id = f"{row_id}#{seen[row_id][1]}"
        seen.setdefault(row_id, [index, 1])
        if only_ids is not None and row_id not in only_ids:
            continue
        text = record.get(text_col)
        image = record.get(image_col)
        if isinstance(image, list):
            image = image[0] if image else None
        if isinstance(image, dict):
            image = image.get("bytes") or image.get("path")
        if not isinstance(text, str):
            rejects.add(row_id, f"text must be a string, got {type(text).__name__}")
            continue
        if not text.strip():
            rejects.add(row_id, "text is empty")
            continue
        if image in (None, ""):
            rejects.add(row_id, "no image")
            continue
        question = record.get(question_col) if question_col else ""
        rows.append(
            {
                "id": row_id,
                "image": image,
                "question": question if isinstance(question, str) else "",
                "text": text,
                "task": (record.get(task_col) if task_col else None) or "caption",
                "source": record.get("source") or source_default,
            }
        )
    return rows
