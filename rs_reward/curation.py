"""Selection from scores (score once, select many times): fractions or thresholds, global or per task, and the
curated subsets written from a selection (`write_subset`, `keep_histogram`).

`select` turns a keep-fraction into a threshold per group: rows are ranked by score (descending), ties broken by
id (ascending), and the first round(fraction * n) are kept. Deterministic, and it reads only the score column.
"""

from __future__ import annotations

import json
import math
from pathlib import Path


def parse_fractions(spec: str) -> dict[str, float]:
    """`"0.3"` -> {"*": 0.3}; `"caption=0.3,instruction=0.6"` -> per task (`*` for the rest)."""
    out = {}
    for part in str(spec).split(","):
        part = part.strip()
        if not part:
            continue
        task, _, value = part.rpartition("=")
        fraction = float(value)
        if not 0.0 < fraction <= 1.0:
            raise ValueError(f"a keep fraction must be in (0, 1], got {fraction} in {spec!r}")
        out[task or "*"] = fraction
    if not out:
        raise ValueError(f"no fraction in {spec!r}")
    return out


def kept_count(fraction: float, n: int) -> int:
    """Rows a keep fraction keeps of `n`: round(fraction * n), halves up (the one rule `select` and the pages use)."""
    return int(math.floor(fraction * n + 0.5))


def select(scores, fractions: dict[str, float] | None = None, threshold: float | None = None):
    """Boolean mask over the rows of `scores` (a DataFrame with id, score, task) of the rows kept.

    With `fractions`, each task keeps its fraction (`*` applies to the whole pool when it is the only key, else
    to tasks not named); with `threshold`, rows scoring at least the threshold are kept.
    """
    import numpy as np

    if (fractions is None) == (threshold is None):
        raise ValueError("give either fractions or a threshold")
    if threshold is not None:
        return (scores["score"] >= threshold).to_numpy()
    keep = np.zeros(len(scores), dtype=bool)
    if set(fractions) == {"*"}:
        groups = {"*": np.arange(len(scores))}
    else:
        tasks = scores["task"].to_numpy()
        groups = {task: np.flatnonzero(tasks == task) for task in sorted(set(tasks))}
    for task, index in groups.items():
        fraction = fractions.get(task, fractions.get("*"))
        if fraction is None:
            raise ValueError(f"no keep fraction for task {task!r}; give one, or a default as '*=<fraction>' ")
        order = np.lexsort((scores["id"].to_numpy()[index], -scores["score"].to_numpy()[index]))
        k = kept_count(fraction, len(index))
        keep[index[order[:k]]] = True
    return keep


def selection_name(spec: str) -> str:
    """The folder name of a selection: `caption=0.3,instruction=0.6` -> `keep-caption0p3-instruction0p6`."""
    return "keep-" + spec.replace("=", "").replace(",", "-").replace(".", "p").replace("*", "all")


def write_subset(folder: Path, kept_rows: list[dict], image_root: str, caption_prompt: str) -> None:
    """A curated subset: `sft.jsonl` (canonical SFT rows), `clip.csv` (caption rows as filepath, title), `ids.txt`
    and `image_root.txt` (the root the image paths are relative to)."""
    import csv

    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "sft.jsonl").open("w", encoding="utf-8") as f:
        for row in kept_rows:
            user = row["question"] or caption_prompt
            f.write(
                json.dumps(
                    {
                        "id": row["id"],
                        "images": [row["image"]],
                        "task": row["task"],
                        "source": row["source"],
                        "messages": [{"role": "user", "content": user}, {"role": "assistant", "content": row["text"]}],
                    },
                    ensure_ascii=False,
                )
                + "\n"
            )
    with (folder / "clip.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["filepath", "title"])
        writer.writerows([[row["image"], row["text"]] for row in kept_rows if row["task"] == "caption"])
    (folder / "ids.txt").write_text("".join(row["id"] + "\n" for row in kept_rows))
    (folder / "image_root.txt").write_text(str(Path(image_root).resolve()) + "\n")


def keep_histogram(scores, keep, path: Path, title: str) -> float | None:
    """A PNG of all scores and the kept ones, the cut (the lowest kept score, returned) marked."""
    from .report import histogram_plot

    values = scores["score"].to_numpy()
    cut = float(values[keep].min()) if keep.any() else None
    series = {"all scored": (values, "tab:gray", 0.5), "kept": (values[keep], "tab:green", 0.7)}
    histogram_plot(
        series,
        path,
        bins=50,
        ylabel="rows",
        title=title,
        vline=None if cut is None else (cut, f"lowest kept {cut:.3f}"),
    )
    return cut
