"""The page of a best-of-N run: per question, the image, the N candidates, their scores and each selector's pick."""

from __future__ import annotations

from pathlib import Path

from ._render import Thumbnails, render, spread


def write_bon_page(
    output_dir: str | Path,
    *,
    rows: list[dict],
    candidates: list[list[str]],
    metrics: list[list[float]],
    scores: dict[str, list[list[float]]],
    picks: dict[str, list[int]],
    results: dict[str, dict],
    metric_names: dict[str, str],
    n: int,
    drawn: list[list[int]] | None = None,
    max_rows: int = 10,
    title: str = "Best-of-N candidates",
    policy: str | None = None,
) -> Path:
    """Write `output_dir/index.html`: up to `max_rows` questions per task (spread evenly over the rows).

    `picks[selector][r]` is the candidate index that selector took for row r among its first `n` candidates
    (the sub-sample of `rs_reward.bon.subsample`); a pick is right when its metric equals the best metric among
    the candidates it chose from (`drawn[r]`, default all).
    """
    output_dir = Path(output_dir)
    thumbs = Thumbnails(output_dir / "thumbs")
    tasks = []
    for task in sorted({row["task"] for row in rows}):
        index = [r for r, row in enumerate(rows) if row["task"] == task]
        questions = []
        for r in (index[i] for i in spread(len(index), max_rows)):
            row = rows[r]
            by_candidate: dict[int, list[str]] = {}
            verdicts = []
            for selector, chosen in picks.items():
                c = chosen[r]
                by_candidate.setdefault(c, []).append(selector)
                verdicts.append({"selector": selector, "candidate": c, "metric": metrics[r][c]})
            pool = drawn[r] if drawn is not None else range(len(candidates[r]))
            best = max((metrics[r][c] for c in pool), default=None)
            for verdict in verdicts:
                verdict["right"] = best is not None and verdict["metric"] >= best
            questions.append(
                {
                    "id": row["id"],
                    "image": thumbs.add((row.get("images") or [None])[0]),
                    "question": row.get("question") or "",
                    "answer": row.get("answer") or "",
                    "verdicts": verdicts,
                    "candidates": [
                        {
                            "index": c,
                            "text": text,
                            "metric": metrics[r][c],
                            "scores": {s: values[r][c] for s, values in scores.items()},
                            "picked_by": by_candidate.get(c, []),
                            "drawn": c in set(pool),
                        }
                        for c, text in enumerate(candidates[r])
                    ],
                }
            )
        tasks.append(
            {"task": task, "metric": metric_names.get(task, "metric"), "rows": len(index), "questions": questions}
        )
    ns = sorted({int(k) for by_n in results.values() for k in by_n})
    table = [
        {"selector": selector, "means": [(by_n.get(k) or by_n.get(str(k)) or {}).get("mean") for k in ns]}
        for selector, by_n in results.items()
    ]
    return render(
        "bon.html.jinja",
        output_dir / "index.html",
        thumbs,
        title=title,
        policy=policy,
        n=n,
        ns=ns,
        table=table,
        scorers=list(scores),
        tasks=tasks,
        max_rows=max_rows,
    )
