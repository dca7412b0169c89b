"""SFT data in the canonical row: `id, images, messages, task, source` (messages with plain string content)."""

from __future__ import annotations

import json
from pathlib import Path

from .images import open_image, rgb_images
from .io import Rejects, RowError, UniqueIds, confine_path


def load_sft_rows(
    path: str, image_root: str | None = None, *, rejects: Rejects | None = None, check_images: bool = True
):
    """A JSONL file of canonical SFT rows as a `datasets.Dataset` whose `images` decode lazily to PIL.

    Image paths are relative to `image_root` (default: the file's folder) and confined to it; rows with a
    missing or unreadable image, or messages that are not user/assistant turns with text, go to `rejects`.
    """
    from datasets import Dataset, Image, List

    rejects = rejects if rejects is not None else Rejects()
    root = Path(image_root) if image_root else Path(path).parent
    rows, ids = [], UniqueIds()
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            row_id = f"line-{number}"
            try:
                row = json.loads(line)
                row_id = str(row.get("id", row_id))
                messages = row.get("messages")
                if not isinstance(messages, list) or not messages:
                    raise RowError("'messages' must be a non-empty list")
                for m in messages:
                    if not isinstance(m, dict) or m.get("role") not in ("system", "user", "assistant"):
                        raise RowError(f"bad message {m!r}")
                    if not isinstance(m.get("content"), str):
                        raise RowError("message content must be a string (images go in the `images` column)")
                if messages[-1]["role"] != "assistant" or not messages[-1]["content"].strip():
                    raise RowError("the last message must be a non-empty assistant turn")
                images = []
                for name in row.get("images") or []:
                    image_path = confine_path(root, name)
                    if check_images:
                        open_image(image_path, verify=True)
                    images.append(str(image_path))
                ids.check(row_id, number)
            except json.JSONDecodeError as error:
                rejects.add(row_id, f"line {number} is not valid JSON ({error.msg})")
                continue
            except RowError as error:
                rejects.add(row_id, str(error))
                continue
            rows.append(
                {
                    "id": row_id,
                    "images": images,
                    "messages": messages,
                    "task": row.get("task", ""),
                    "source": row.get("source", Path(path).stem),
                }
            )
    if not rows:
        raise ValueError(f"no usable SFT row in {path} ({rejects.summary()})")
    return Dataset.from_list(rows).cast_column("images", List(Image())).with_transform(rgb_images)
