"""Selection from scores (score once, select many times): fractions or thresholds, global or per task.

`select` turns a keep-fraction into a threshold per group: rows are ranked by score (descending), ties broken by
id (ascending), and the first round(fraction * n) are kept. Deterministic, and it reads only the score column.
"""

from __future__ import annotations

import math


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
