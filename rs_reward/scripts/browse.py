"""Write a browser page of a scored pool: what each keep fraction keeps and drops, with images, per task.

    rs-reward browse --scores runs/demo/scores/reward_model --output_dir runs/demo/browse
    rs-reward browse --scores runs/demo/scores/reward_model --compare runs/demo/scores/clip \\
        --fractions 0.3 caption=0.3,instruction=0.6 --max_rows 12 --output_dir runs/demo/browse

The page (`<output_dir>/index.html`, thumbnails in `<output_dir>/thumbs/`) opens from disk with no server. Per task:
the score histogram with the cut of each keep fraction, a slider that moves the cut, the top and bottom rows with
image, question, text, score, rank and percentile; with `--compare`, a second scorer beside the first (scatter,
largest rank disagreements); on SynthRS, each row's true quality and corruption operators and the precision of
what is kept. Every view holds at most `--max_rows` rows (a deterministic sample), whatever the pool's size.
"""

from __future__ import annotations


def make_parser():
    """The task's parser: TRL's, over its dataclasses (`--config recipe.yaml`, then flags)."""
    from trl import TrlParser

    from rs_reward.configs import BrowseArguments

    return TrlParser((BrowseArguments,))


def main(args) -> int:
    from rs_reward.pages import write_pool_page

    from ._common import setup_logging, summary_table

    logger = setup_logging("rs_reward.browse")
    page = write_pool_page(
        args.scores,
        args.output_dir,
        pool=args.pool,
        image_root=args.image_root,
        compare=args.compare,
        truth=args.truth,
        fractions=args.fractions,
        max_rows=args.max_rows,
        sample_rows=args.sample_rows,
        scatter_points=args.scatter_points,
    )
    rows = {"page": str(page), "size": f"{page.stat().st_size / 1024:.0f} KiB"}
    if args.screenshot:
        from rs_reward.pages.browser import screenshot

        rows["screenshot"] = str(screenshot(page, args.screenshot))
    logger.info("\n%s", summary_table("browse", rows))
    return 0


if __name__ == "__main__":
    from ._common import run_task

    raise SystemExit(run_task("browse", make_parser, main))
