"""Row-level input handling shared by every loader: confined image paths, row errors and rejects files.

A row that cannot be used never crashes a job and is never dropped silently: it goes to a `Rejects` collector
with its id and the reason, which is printed as counts and written as a JSONL file (or, in strict mode, raises
at once naming the row).
"""

from __future__ import annotations

import csv
import json
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path


class RowError(ValueError):
    """A row that cannot be used; the message says why (it becomes the reject reason)."""


def confine_path(root: str | os.PathLike, relative: str) -> Path:
    """`root / relative`, refusing absolute paths and paths that escape `root` (`..`, symlinks)."""
    if not isinstance(relative, str) or not relative:
        raise RowError(f"image path must be a non-empty string, got {relative!r}")
    if os.path.isabs(relative):
        raise RowError(f"image path {relative!r} is absolute; paths are relative to the image root")
    root_resolved = Path(root).resolve()
    path = (root_resolved / relative).resolve()
    if root_resolved != path and root_resolved not in path.parents:
        raise RowError(f"image path {relative!r} escapes the image root")
    return path


ROW_FILE_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json", ".parquet")


def read_records(path: str | os.PathLike) -> Iterator[dict | RowError]:
    """The rows of a CSV / TSV / JSONL / JSON (a list) / parquet file, streamed where the format allows.

    A JSONL line that is not valid JSON is yielded as a `RowError` (the caller rejects it and goes on).
    """
    path = Path(path)
    if path.suffix in (".csv", ".tsv"):
        with path.open(newline="", encoding="utf-8") as f:
            yield from csv.DictReader(f, delimiter="\t" if path.suffix == ".tsv" else ",")
    elif path.suffix == ".jsonl":
        with path.open(encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if line.strip():
                    try:
                        yield json.loads(line)
                    except json.JSONDecodeError as error:
                        yield RowError(f"line {number} is not valid JSON ({error.msg})")
    elif path.suffix == ".json":
        rows = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(rows, list):
            raise ValueError(f"{path} must hold a JSON list of rows")
        yield from rows
    elif path.suffix == ".parquet":
        import pyarrow.parquet as pq

        for batch in pq.ParquetFile(path).iter_batches(batch_size=4096):
            yield from batch.to_pylist()
    else:
        raise ValueError(f"unsupported file {path} (use one of {', '.join(ROW_FILE_SUFFIXES)})")


class Rejects:
    """Collects `(id, reason)` for unusable rows. `strict=True` raises on the first one instead."""

    def __init__(self, strict: bool = False):
        self.strict = strict
        self.rows: list[dict] = []
        self.context: dict = {}  # added to every reject, e.g. {"split": "train"} while the training set loads

    def add(self, row_id: str, reason: str, **context) -> None:
        if self.strict:
            raise RowError(f"row {row_id}: {reason}")
        self.rows.append({"id": row_id, "reason": reason, **self.context, **context})

    def __len__(self) -> int:
        return len(self.rows)

    def counts(self) -> Counter:
        return Counter(r["reason"].split(":")[0] for r in self.rows)

    def write(self, path: str | os.PathLike) -> None:
        """Write the rejects as JSONL, atomically (also when there are none: an empty file says so)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        with tmp.open("w", encoding="utf-8") as f:
            for row in self.rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
        tmp.replace(path)

    def summary(self) -> str:
        if not self.rows:
            return "0 rows rejected"
        reasons = ", ".join(f"{n} {reason}" for reason, n in self.counts().most_common())
        return f"{len(self.rows)} rows rejected ({reasons})"


class UniqueIds:
    """The ids seen so far in one file (or one `scope`, e.g. a source whose ids are numbered per file): `check`
    raises `RowError` for a repeat, naming the row that keeps the id (ids key rejects, scores and subsets, so two
    rows may not share one). Call it once a row is otherwise usable, so the first *usable* row keeps its id."""

    def __init__(self):
        self.first: dict[tuple, int] = {}

    def check(self, row_id: str, number: int, scope: str | None = None) -> None:
        key = (scope, str(row_id))
        if key in self.first:
            raise RowError(
                f"duplicate id: row {number} repeats the id of row {self.first[key]} (kept); make ids unique"
            )
        self.first[key] = number
