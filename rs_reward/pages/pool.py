"""The page of a scored pool: what a keep fraction keeps and throws away, per task, for one or two scorers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..curation import kept_count, parse_fractions, select
from ..data.pool import load_pool
from ..scoring import read_scores
from ._render import PLOT, Thumbnails, histogram, polyline, render, scale, spread


GOOD_QUALITY = 0.75  # a SynthRS row is "good" when its true quality reaches this (as the curation report)


def _ranked(frame):
    """`frame` (one task) sorted best first (score descending, ties by id) with `rank` 1..n."""
    order = np.lexsort((frame["id"].to_numpy(), -frame["score"].to_numpy()))
    ranked = frame.iloc[order].reset_index(drop=True)
    ranked["rank"] = np.arange(1, len(ranked) + 1)
    return ranked


def _manifest(scores: str | Path) -> dict:
    path = Path(scores) / "manifest.json"
    if not path.is_file():
        raise FileNotFoundError(f"{scores} is not a finished `rs-reward score` folder (no manifest.json)")
    return json.loads(path.read_text())


def _kept(n: int) -> list[int]:
    """Rows kept of `n` at p = 0..100 % (the slider's steps)."""
    return [kept_count(p / 100, n) for p in range(101)]


def _curve(good: np.ndarray) -> list[float | None]:
    """Precision of the top p % for p = 0..100 (`good` in rank order); None where nothing is kept."""
    cumulative = np.concatenate([[0], np.cumsum(good)])
    return [float(cumulative[k] / k) if k else None for k in _kept(len(good))]


def write_pool_page(
    scores: str | Path,
    output_dir: str | Path,
    *,
    pool: str | None = None,
    image_root: str | None = None,
    compare: str | Path | None = None,
    truth: str | None = "auto",
    fractions: list[str] | tuple[str, ...] = ("0.3",),
    max_rows: int = 10,
    sample_rows: int = 40,
    scatter_points: int = 400,
    title: str | None = None,
) -> Path:
    """Write `output_dir/index.html` (and `output_dir/thumbs/`) for the scores folder `scores`.

    Args:
        scores: a folder written by `rs-reward score`.
        output_dir: where the page goes.
        pool: the scored pool (default: the one named in the scores' manifest); image_root: its image root
            (default: the pool file's folder).
        compare: a second scores folder of the same pool, shown side by side (scatter, largest rank changes).
        truth: a SynthRS `truth.parquet` (true quality and corruption operators per id); `"auto"` takes the one
            beside the pool if there is one, None shows none.
        fractions: keep fractions whose cut is drawn on each histogram (`rs-reward filter` syntax, e.g.
            `"caption=0.3,instruction=0.6"`).
        max_rows: rows per table (top, bottom, largest disagreements), per task.
        sample_rows: rows spread evenly over the ranks of each task for the slider's view of the cut.
        scatter_points: points of each task's scatter of the two scores.
    """
    import pandas as pd

    manifest = _manifest(scores)
    frame = read_scores(scores, columns=["id", "score", "task", "source"])
    pool = pool or manifest["pool"]
    root = image_root or str(Path(pool).parent)
    output_dir = Path(output_dir)
    specs = [(spec, parse_fractions(spec)) for spec in fractions]
    if truth == "auto":
        candidate = Path(pool).parent / "truth.parquet"
        truth = str(candidate) if candidate.is_file() else None
    if truth is not None:
        facts = pd.read_parquet(truth, columns=["id", "quality", "operators"])
        frame = frame.merge(facts, on="id", how="left", validate="one_to_one")
    second = None
    if compare is not None:
        second_manifest = _manifest(compare)
        second = read_scores(compare, columns=["id", "score"]).rename(columns={"score": "score_b"})
        frame = frame.merge(second, on="id", how="inner", validate="one_to_one")
    cuts = {spec: select(frame, chosen) for spec, chosen in specs}

    shown: dict[str, list[dict]] = {}
    tasks = []
    for task in sorted(frame["task"].unique()):
        part = frame[frame["task"] == task].reset_index(drop=True)
        keep_masks = {spec: mask[(frame["task"] == task).to_numpy()] for spec, mask in cuts.items()}
        ranked = _ranked(part)
        n = len(ranked)
        if second is not None:
            order = np.lexsort((ranked["id"].to_numpy(), -ranked["score_b"].to_numpy()))
            ranked["rank_b"] = np.empty(n, dtype=int)
            ranked.loc[order, "rank_b"] = np.arange(1, n + 1)
        values = ranked["score"].to_numpy()
        hist = histogram(values)
        cut_lines = []
        for spec, mask in keep_masks.items():
            kept_scores = part["score"].to_numpy()[mask]
            if kept_scores.size:
                low = float(kept_scores.min())
                (x,) = scale([low], hist["lo"], hist["hi"], hist["w"], hist["x0"])
                cut_lines.append({"spec": spec, "score": low, "kept": int(mask.sum()), "x": x})
        kept = _kept(n)
        precision = _curve(ranked["quality"].to_numpy() >= GOOD_QUALITY) if truth else None
        slider = {
            "n": n,
            "kept": kept,
            "threshold": [float(values[k - 1]) if k else None for k in kept],
            "precision": precision,
            "lo": hist["lo"],
            "hi": hist["hi"],
            "x0": hist["x0"],
            "w": hist["w"],
        }
        view = {
            "task": task,
            "n": n,
            "hist": hist,
            "cuts": cut_lines,
            "slider": slider,
            "top": _rows(ranked.head(max_rows), n, shown),
            "bottom": _rows(ranked.tail(max_rows), n, shown),
            "sample": _rows(ranked.iloc[spread(n, sample_rows)], n, shown),
            "curves": None,
            "scatter": None,
            "disagree": None,
        }
        if second is not None:
            view.update(_comparison(ranked, n, max_rows, scatter_points, shown))
        if truth is not None:
            view["curves"] = _precision_curves(ranked, second is not None)
            view["good_share"] = float((ranked["quality"] >= GOOD_QUALITY).mean())
        tasks.append(view)

    thumbs = _fill(shown, pool, root, output_dir, manifest.get("duplicate_ids", "reject"))
    return render(
        "pool.html.jinja",
        output_dir / "index.html",
        thumbs,
        title=title or f"Scores of {manifest.get('scorer')}",
        scorer=manifest.get("scorer"),
        scorer_b=second_manifest.get("scorer") if second is not None else None,
        scores=str(scores),
        compare=str(compare) if compare is not None else None,
        pool=str(pool),
        rows_in=manifest.get("rows_in"),
        rows_rejected=manifest.get("rows_rejected"),
        truth=truth,
        good_quality=GOOD_QUALITY,
        fractions=[spec for spec, _ in specs],
        max_rows=max_rows,
        tasks=tasks,
    )


def _rows(part, n: int, shown: dict) -> list[dict]:
    """Template rows for `part` (ranked rows); pool fields are filled in later by `_fill` (one pool read)."""
    out = []
    for record in part.to_dict("records"):
        row = {
            "id": record["id"],
            "score": float(record["score"]),
            "rank": int(record["rank"]),
            "percentile": 100.0 * record["rank"] / n,
            "source": record["source"],
        }
        if "quality" in record:
            quality = record["quality"]
            row["quality"] = None if quality != quality else float(quality)
            row["operators"] = record.get("operators") or ""
        if "score_b" in record:
            row["score_b"] = float(record["score_b"])
            row["rank_b"] = int(record["rank_b"]) if "rank_b" in record else None
        shown.setdefault(record["id"], []).append(row)
        out.append(row)
    return out


def _comparison(ranked, n: int, max_rows: int, points: int, shown: dict) -> dict:
    """The rows whose two ranks differ most, and the scatter of the two scores."""
    rank_b = ranked["rank_b"].to_numpy()
    gap = np.abs(ranked["rank"].to_numpy() - rank_b)
    disagree = ranked.iloc[np.lexsort((ranked["id"].to_numpy(), -gap))[:max_rows]]
    sample = ranked.iloc[spread(n, points)]
    a, b = sample["score"].to_numpy(), sample["score_b"].to_numpy()
    width, height, pad = PLOT["width"], PLOT["height"], PLOT["pad"]
    xs = scale(a, a.min(), a.max(), width - 2 * pad, pad)
    ys = scale(b, b.min(), b.max(), height - 2 * pad, pad, flip=True)
    good = (sample["quality"].to_numpy() >= GOOD_QUALITY) if "quality" in sample else [None] * len(sample)
    ranks = np.corrcoef(ranked["rank"], rank_b)[0, 1] if n > 1 else float("nan")
    return {
        "disagree": _rows(disagree, n, shown),
        "scatter": [{"x": x, "y": y, "good": g} for x, y, g in zip(xs, ys, good)],
        "scatter_range": [float(a.min()), float(a.max()), float(b.min()), float(b.max())],
        "rank_correlation": float(ranks),
    }


def _precision_curves(ranked, two: bool) -> list[dict]:
    """Precision of the top p % by each scorer (and the pool's share of good rows), as SVG polylines."""
    good = ranked["quality"].to_numpy() >= GOOD_QUALITY
    curves = [("score", good)]
    if two:
        order = np.lexsort((ranked["id"].to_numpy(), -ranked["score_b"].to_numpy()))
        curves.append(("score_b", good[order]))
    out = []
    for name, ordered in curves:
        precision = _curve(ordered)
        xs = [p for p in range(1, 101)]
        ys = [precision[p] if precision[p] is not None else 0.0 for p in xs]
        out.append(
            {
                "name": name,
                "points": polyline(xs, ys, (0, 100), (0, 1)),
                "at30": precision[30],
            }
        )
    return out


def _fill(shown: dict[str, list[dict]], pool: str, root: str, output_dir: Path, duplicate_ids: str) -> Thumbnails:
    """Question, text and thumbnail of every row shown, from one read of the pool."""
    thumbs = Thumbnails(output_dir / "thumbs")
    for row in load_pool(pool, only_ids=set(shown), duplicate_ids=duplicate_ids):
        views = shown[row["id"]]
        image = thumbs.add(row["image"], root)
        for view in views:
            view.update(question=row.get("question") or "", text=row["text"], image=image)
    for views in shown.values():
        for view in views:
            view.setdefault("question", "")
            view.setdefault("text", "")
            view.setdefault("image", {"error": "row not in the pool"})
    return thumbs
