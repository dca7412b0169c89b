"""Keep the top fraction of a scored pool (globally or per task) and write the curated subsets.

    rs-reward filter --config recipes/tiny/filter/config_demo.yaml
    rs-reward filter --config ... --fractions 0.1 0.2 0.3 0.5                   # several subsets, one scoring pass
    rs-reward filter --config ... --fractions caption=0.3,instruction=0.6       # the paper's P30S60

Each subset is a folder with `sft.jsonl` (canonical SFT rows), `clip.csv` (filepath, title), `ids.txt`, and a
data card `README.md` (scorer, fraction, counts per task and source, a score histogram with the cut marked).
`<output_dir>/browse/index.html` shows what each selection keeps and drops, with images (`rs-reward browse`).
`--push_to_hub true --hub_dataset_id you/name` pushes each subset as a Hub dataset repo: its rows as parquet with
the images embedded, the data card with Hub metadata and the score histogram (staged in `<output_dir>/_hub/`).
"""

from __future__ import annotations

import json
from pathlib import Path


def make_parser():
    """The task's parser: TRL's, over its dataclasses (`--config recipe.yaml`, then flags)."""
    from trl import TrlParser

    from rs_reward.configs import FilterArguments

    return TrlParser((FilterArguments,))


def main(args) -> int:
    from rs_reward.curation import keep_histogram, parse_fractions, select, selection_name, write_subset
    from rs_reward.data.pool import load_pool
    from rs_reward.report import markdown_table, write_atomic
    from rs_reward.scoring import read_scores

    from ._common import setup_logging, summary_table

    logger = setup_logging("rs_reward.filter")
    if not args.scores or not args.pool:
        raise ValueError("filter: give --scores (a folder written by `rs-reward score`) and --pool (the pool scored)")
    specs = [None] if args.threshold is not None else list(dict.fromkeys(args.fractions))
    selections = {spec: None if spec is None else parse_fractions(spec) for spec in specs}  # all checked first
    scores = read_scores(args.scores, columns=["id", "score", "task", "source"])
    manifest = json.loads((Path(args.scores) / "manifest.json").read_text())
    pool = {row["id"]: row for row in load_pool(args.pool, duplicate_ids=manifest.get("duplicate_ids", "reject"))}
    missing = [i for i in scores["id"] if i not in pool]
    if missing:
        raise ValueError(f"{len(missing)} scored ids are not in the pool (first: {missing[0]}): wrong pool?")
    image_root = args.image_root or str(Path(args.pool).parent)
    keeps = {  # every selection made (and checked) before anything is written
        spec: select(scores, threshold=args.threshold) if spec is None else select(scores, selections[spec])
        for spec in specs
    }
    summary = {}
    for spec in specs:
        name = f"threshold-{args.threshold}" if spec is None else selection_name(spec)
        keep = keeps[spec]
        kept = scores[keep]
        folder = Path(args.output_dir) / name
        write_subset(folder, [pool[i] for i in kept["id"]], image_root, args.caption_prompt)
        keep_histogram(scores, keep, folder / "score_histogram.png", name)
        counts = []
        for column in ("task", "source"):
            for value, group in scores.groupby(column):
                kept_scores = group["score"][keep[group.index]]
                lowest = f"{kept_scores.min():.4f}" if len(kept_scores) else "-"
                counts.append(
                    [column, value, len(group), len(kept_scores), f"{len(kept_scores) / len(group):.1%}", lowest]
                )
        card = "\n".join(
            [
                f"# Curated subset `{name}`",
                "",
                f"Selected from `{args.pool}` by `{manifest.get('scorer')}` scores (`{args.scores}`): "
                + (
                    f"rows scoring >= {args.threshold}."
                    if spec is None
                    else f"keep fractions `{spec}`, per task when named, ranked by score, ties broken by id."
                ),
                f"{int(keep.sum())} of {len(scores)} scored rows kept (the pool had {manifest['rows_in']} rows;"
                f" {manifest['rows_rejected']} could not be scored, each with its reason in"
                f" `{args.scores}/rejects.jsonl` and `load_rejects.jsonl`).",
                "",
                markdown_table(["by", "value", "scored", "kept", "share", "lowest kept score"], counts),
                "",
                "![score histogram](score_histogram.png)",
                "",
                "Files: `sft.jsonl` (canonical SFT rows; images relative to the path in `image_root.txt`), `clip.csv`"
                " (caption rows, `filepath,title`), `ids.txt`."
                + (
                    " What was kept and dropped, with images: [`../browse/index.html`](../browse/index.html)."
                    if args.browse
                    else ""
                ),
                "",
            ]
        )
        write_atomic(folder / "README.md", card)
        summary[name] = f"{int(keep.sum())} / {len(scores)} kept -> {folder}"
    if args.push_to_hub:
        from rs_reward.hub import push_folder, stage_curated_dataset

        for name in summary:
            staged = stage_curated_dataset(
                Path(args.output_dir) / name, Path(args.output_dir) / "_hub" / name, scorer=manifest.get("scorer")
            )
            base = args.hub_dataset_id or f"rs-reward-{Path(args.output_dir).name}"
            repo_id = base if len(summary) == 1 else f"{base}-{name}"
            summary[name] += (
                f" -> pushed to {push_folder(staged, repo_id, repo_type='dataset', private=args.hub_private_repo)}"
            )
    if args.browse:
        from rs_reward.pages import write_pool_page

        page = write_pool_page(
            args.scores,
            Path(args.output_dir) / "browse",
            pool=args.pool,
            image_root=image_root,
            fractions=[s for s in specs if s is not None],
            max_rows=args.browse_max_rows,
        )
        summary["page"] = str(page)
    logger.info("\n%s", summary_table("curation", summary))
    return 0


if __name__ == "__main__":
    from ._common import run_task

    raise SystemExit(run_task("filter", make_parser, main))
