"""RL prompts in the canonical row: `id, images, prompt, solution, reward_type` (`em`, `mc`, `iou`, `open`).

`prompt` is a list of messages with plain string content (or a bare question string); images stay in the
`images` column as confined paths, decoded lazily to PIL by `datasets` (TRL's GRPO hands them to the policy and,
through the reward functions, to the score model).
"""

from __future__ import annotations

import json
from pathlib import Path

from ..answers import parse_box
from .chat import MAX_PROMPT_CHARS
from .images import open_image, rgb_images
from .io import Rejects, RowError, UniqueIds, confine_path, read_records


REWARD_TYPES = ("em", "mc", "iou", "open")
"""How an RL row's answer is judged: exact match, option letter, box IoU, or open (by the score model)."""


def _check_solution(reward_type: str, solution) -> str | None:
    if reward_type == "open":
        return None if solution is None else str(solution)
    if solution is None or not str(solution).strip():
        raise RowError(f"reward_type {reward_type!r} needs a non-empty solution")
    if reward_type == "iou":
        box = json.loads(solution) if isinstance(solution, str) and solution.strip().startswith("[") else solution
        if isinstance(box, str):
            if parse_box(box, 1000, 1000) is None:
                raise RowError(f"solution {solution!r} is not a box")
        elif not (isinstance(box, list) and len(box) == 4 and all(isinstance(v, int | float) for v in box)):
            raise RowError(f"solution {solution!r} is not a box [x1, y1, x2, y2]")
        return json.dumps(box) if isinstance(box, list) else box
    return str(solution)


def load_rl_prompts(
    path: str,
    image_root: str | None = None,
    *,
    rejects: Rejects | None = None,
    reward_types: tuple[str, ...] | None = None,
    prompt_suffix: str = "",
    check_images: bool = True,
):
    """A file of canonical RL rows (JSONL / JSON / parquet / CSV) as a `datasets.Dataset` with lazy `images`.

    Rows whose `reward_type` is not in `reward_types` are left out (counted, not rejected); unusable rows (unknown
    reward type, missing solution, a box that does not parse, a missing or escaping image) go to `rejects`.
    `prompt_suffix` is appended to the last user message (e.g. the think/answer instruction of the format reward).
    """
    from datasets import Dataset, Image, List

    rejects = rejects if rejects is not None else Rejects()
    root = Path(image_root) if image_root else Path(path).parent
    rows, skipped, ids = [], 0, UniqueIds()
    for number, row in enumerate(read_records(path), 1):
        row_id = f"line-{number}"
        try:
            if isinstance(row, RowError):
                raise row
            row_id = str(row.get("id", row_id))
            reward_type = row.get("reward_type")
            if reward_type not in REWARD_TYPES:
                raise RowError(f"unknown reward_type {reward_type!r} (known: {', '.join(REWARD_TYPES)})")
            if reward_types and reward_type not in reward_types:
                skipped += 1
                continue
            prompt = row.get("prompt")
            if isinstance(prompt, str):
                prompt = [{"role": "user", "content": prompt}]
            if not isinstance(prompt, list) or not prompt or prompt[-1].get("role") != "user":
                raise RowError("'prompt' must be a question or messages ending with a user turn")
            if not all(isinstance(m.get("content"), str) and m["content"].strip() for m in prompt):
                raise RowError("prompt messages need non-empty string content (images go in `images`)")
            length = sum(len(m["content"]) for m in prompt)
            if length > MAX_PROMPT_CHARS:
                raise RowError(f"prompt of {length} characters is longer than {MAX_PROMPT_CHARS}; shorten it")
            prompt = [*prompt[:-1], {"role": "user", "content": prompt[-1]["content"] + prompt_suffix}]
            solution = _check_solution(reward_type, row.get("solution"))
            images = row.get("images") or ([row["image"]] if row.get("image") else [])
            paths = []
            for name in images:
                image_path = confine_path(root, name)
                if check_images:
                    open_image(image_path, verify=True)
                paths.append(str(image_path))
            ids.check(row_id, number)
        except RowError as error:
            rejects.add(row_id, str(error))
            continue
        rows.append(
            {"id": row_id, "images": paths, "prompt": prompt, "solution": solution, "reward_type": reward_type}
        )
    if not rows:
        raise ValueError(f"no usable RL prompt in {path} ({rejects.summary()}, {skipped} of other reward types)")
    return Dataset.from_list(rows).cast_column("images", List(Image())).with_transform(rgb_images)


def image_lookup(train):
    """`row id -> first image` of the prompt rows, decoding only the rows asked for (the page shows a few)."""
    if "id" not in train.column_names:
        return None
    index = {str(row_id): i for i, row_id in enumerate(train["id"])}

    def image_of(row_id):
        i = index.get(str(row_id))
        return None if i is None else (train[i].get("images") or [None])[0]

    return image_of
