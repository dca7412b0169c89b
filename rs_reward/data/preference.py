"""Preference data in the canonical row (DESIGN.md): TRL's conversational format plus an `images` column.

    {"id", "images": [image], "prompt": [user msg], "chosen": [assistant msg], "rejected": [assistant msg],
     "task", "source"}

A source row with several rejected texts becomes one pair per rejected text (as the paper trains).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from .io import Rejects, RowError, confine_path, require_text


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


def _rsrm_texts(item: dict) -> tuple[str, str, list[str]]:
    """(question, chosen, rejected list) of an RSRM item; a `text` JSON string may hold them."""
    if "question" not in item and isinstance(item.get("text"), str):
        try:
            item = {**item, **json.loads(item["text"])}
        except json.JSONDecodeError as error:
            raise RowError(f"'text' is not valid JSON ({error.msg})") from None
    question = item.get("question", "")
    if not isinstance(question, str):
        raise RowError(f"'question' must be a string, got {type(question).__name__}")
    chosen = require_text(item, "chosen")
    rejected = item.get("rejected")
    if isinstance(rejected, str):
        rejected = [rejected]
    if not isinstance(rejected, list) or not rejected:
        raise RowError("'rejected' must be a string or a non-empty list of strings")
    return question, chosen, rejected


def rsrm_pairs(
    data_root: str | Path,
    image_root: str | Path | None = None,
    *,
    rejects: Rejects | None = None,
    extra_keys: tuple[str, ...] = (),
    check_images: bool = True,
) -> Iterator[dict]:
    """Canonical pairs from the RSRM layout: `data_root/<source>.json` lists, images in `image_root/<source>/`.

    A source without an image folder is text-only (as UltraFeedback in the paper's stage 1). Image paths are
    absolute paths confined to their folder. `extra_keys` are copied into `pair["extra"]`; a list-valued key
    with one entry per rejected text (e.g. `rejected_operators`) gives each pair its own entry.
    """
    rejects = rejects if rejects is not None else Rejects()
    for json_path in sorted(Path(data_root).glob("*.json")):
        source = json_path.stem
        folder = Path(image_root) / source if image_root is not None else None
        text_only = folder is None or not folder.is_dir()
        try:
            items = json.loads(json_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            rejects.add(str(json_path), f"unreadable JSON file: {error}")
            continue
        if not isinstance(items, list):
            rejects.add(str(json_path), "the file must hold a JSON list of items")
            continue
        for index, item in enumerate(items):
            row_id = str(item.get("id", f"{source}-{index}")) if isinstance(item, dict) else f"{source}-{index}"
            try:
                if not isinstance(item, dict):
                    raise RowError(f"item must be an object, got {type(item).__name__}")
                question, chosen, rejected_texts = _rsrm_texts(item)
                image = None
                if not text_only:
                    name = item.get("image_name") or item.get("image_path")
                    image = confine_path(folder, name)
                    if check_images and not image.is_file():
                        raise RowError(f"missing image file {name!r}")
                    image = str(image)
            except RowError as error:
                rejects.add(row_id, str(error), source=source)
                continue
            task = item.get("task") or ("caption" if not question else "instruction")
            for j, rejected in enumerate(rejected_texts):
                pair_id = f"{row_id}-r{j}" if len(rejected_texts) > 1 else row_id
                if not isinstance(rejected, str) or not rejected.strip():
                    rejects.add(pair_id, "'rejected' text is empty or not a string", source=source)
                    continue
                if rejected.strip() == chosen.strip():
                    rejects.add(pair_id, "chosen == rejected", source=source)
                    continue
                extra = {}
                for key in extra_keys:
                    value = item.get(key)
                    extra[key] = value[j] if isinstance(value, list) and len(value) == len(rejected_texts) else value
                pair = preference_row(pair_id, image, question, chosen, rejected, task, source)
                if extra_keys:
                    pair["extra"] = extra
                yield pair
