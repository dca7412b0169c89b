"""The page of a GRPO run: sampled completions with their image, reward components and advantage, from the
completion logs TRL writes with `log_completions: true` (`<output_dir>/completions/completions_<step>.parquet`)."""

from __future__ import annotations

from pathlib import Path

from ._render import Thumbnails, render, spread


NOT_REWARDS = ("step", "prompt", "completion", "advantage", "id")


def _text(messages) -> str:
    """The text of a logged prompt or completion (a string, or chat messages whose content may be parts)."""
    if isinstance(messages, str):
        return messages
    out = []
    for message in messages if messages is not None else []:
        content = message.get("content") if isinstance(message, dict) else message
        if isinstance(content, str):
            out.append(content)
        elif content is not None:
            out.extend(part.get("text") or "" for part in content if isinstance(part, dict))
    return "\n".join(t for t in out if t)


def _last_user(messages) -> str:
    if isinstance(messages, str):
        return messages
    users = [m for m in (messages if messages is not None else []) if isinstance(m, dict) and m.get("role") == "user"]
    return _text(users[-1:]) if users else _text(messages)


def write_grpo_page(
    output_dir: str | Path,
    completions_dir: str | Path,
    *,
    image_of=None,
    steps: int = 3,
    max_rows: int = 8,
    title: str = "GRPO samples",
    policy: str | None = None,
) -> Path | None:
    """Write `output_dir/index.html` from the logged completions, or return None when none were logged.

    Args:
        completions_dir: the folder of TRL's `completions_<step>.parquet` files.
        image_of: `row id -> image` (path, bytes or PIL; a dict's `get` will do) for the thumbnails; rows are
            matched by the `id` column `RSGRPOTrainer` logs beside each completion.
        steps: logged steps shown (spread from the first to the last).
        max_rows: prompts per step (each with all its completions).
    """
    import pandas as pd

    files = sorted(Path(completions_dir).glob("completions_*.parquet"))
    if not files:
        return None
    output_dir = Path(output_dir)
    thumbs = Thumbnails(output_dir / "thumbs")
    image_of = image_of or (lambda row_id: None)
    sections = []
    for path in (files[i] for i in spread(len(files), steps)):
        frame = pd.read_parquet(path)
        rewards = [c for c in frame.columns if c not in NOT_REWARDS]
        frame["question"] = [_last_user(p) for p in frame["prompt"]]
        key = "id" if "id" in frame.columns else "question"
        groups = list(dict.fromkeys(frame[key]))
        prompts = []
        for name in (groups[i] for i in spread(len(groups), max_rows)):
            part = frame[frame[key] == name]
            first = part.iloc[0]
            prompts.append(
                {
                    "id": first.get("id", ""),
                    "question": first["question"],
                    "image": thumbs.add(image_of(first.get("id"))),
                    "completions": [
                        {
                            "text": _text(row["completion"]),
                            "rewards": {r: _number(row[r]) for r in rewards},
                            "advantage": _number(row["advantage"]),
                        }
                        for _, row in part.iterrows()
                    ],
                }
            )
        step = int(frame["step"].iloc[0]) if len(frame) else int(path.stem.split("_")[-1])
        sections.append({"step": step, "rewards": rewards, "prompts": prompts, "logged": len(frame)})
    return render(
        "grpo.html.jinja",
        output_dir / "index.html",
        thumbs,
        title=title,
        policy=policy,
        sections=sections,
        logged_steps=len(files),
        max_rows=max_rows,
    )


def _number(value):
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if value != value else value
