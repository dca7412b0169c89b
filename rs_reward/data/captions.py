"""Image-caption pairs for CLIP training: a curated subset CSV (`filepath, title`, what `rs-reward filter` writes)
or canonical SFT JSONL (the caption rows: first image, last assistant turn)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from .images import open_image
from .io import Rejects, RowError, UniqueIds, confine_path


def load_caption_pairs(
    path: str, image_root: str | None = None, *, rejects: Rejects | None = None, check_images: bool = True
) -> list[tuple[str, str]]:
    """`(image path, caption)` pairs, image paths confined to `image_root` (default: the file's folder). A row
    with no caption, a missing, escaping or unreadable image, a repeated id, or a line that is not JSON goes to
    `rejects`; rows
    of other tasks in a JSONL file are left out (not rejected). Raises if no pair is left."""
    rejects = rejects if rejects is not None else Rejects()
    root = Path(image_root) if image_root else Path(path).parent
    if not Path(path).is_file():
        raise FileNotFoundError(f"caption file {path!r} not found")
    records = []  # (row number, row id, image name, caption) or (row number, row id, RowError)
    with open(path, newline="", encoding="utf-8") as f:
        if path.endswith(".csv"):
            for number, row in enumerate(csv.DictReader(f), 1):
                records.append((number, row.get("id") or f"row-{number}", row.get("filepath"), row.get("title")))
        else:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as error:
                    records.append(
                        (number, f"line-{number}", RowError(f"line {number} is not valid JSON ({error.msg})"))
                    )
                    continue
                if row.get("task", "caption") != "caption":
                    continue
                images, messages = row.get("images") or [None], row.get("messages") or [{}]
                records.append((number, str(row.get("id", f"line-{number}")), images[0], messages[-1].get("content")))
    pairs, ids = [], UniqueIds()
    for number, row_id, *fields in records:
        try:
            if isinstance(fields[0], RowError):
                raise fields[0]
            name, caption = fields
            if not isinstance(caption, str) or not caption.strip():
                raise RowError("no caption text")
            if not name:
                raise RowError("no image")
            image_path = confine_path(root, name)
            if check_images:
                open_image(image_path, verify=True)
            ids.check(row_id, number)
        except RowError as error:
            rejects.add(row_id, str(error))
            continue
        pairs.append((str(image_path), caption))
    if not pairs:
        raise ValueError(f"no usable caption pair in {path} ({rejects.summary()})")
    return pairs
