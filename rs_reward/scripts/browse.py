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

from dataclasses import dataclass, field


@dataclass
class BrowseArguments:
    """Which scores to show, and how much of them.

    Args:
        scores (`str`): a folder written by `rs-reward score`.
        compare (`str` or `None`, defaults to `None`): a second scores folder of the same pool, shown beside it.
        pool (`str` or `None`, defaults to `None`): the scored pool (default: the one in the scores' manifest).
        image_root (`str` or `None`, defaults to `None`): the pool's image root (default: the pool file's folder).
        truth (`str` or `None`, defaults to `"auto"`): SynthRS `truth.parquet`; `auto` uses one beside the pool.
        fractions (`list[str]`, defaults to `["0.3"]`): keep fractions whose cuts are drawn.
        max_rows (`int`, defaults to 10): rows per table and task.
        sample_rows (`int`, defaults to 40): rows spread over the ranks for the slider view.
        scatter_points (`int`, defaults to 400): points of each task's scatter of the two scores.
        output_dir (`str`, defaults to `"runs/browse"`): folder of `index.html` and `thumbs/`.
        screenshot (`str` or `None`, defaults to `None`): also save a PNG of the page (needs Chromium).
    """

    scores: str = field(default=None, metadata={"help": "A folder written by `rs-reward score`."})
    compare: str | None = field(default=None, metadata={"help": "A second scores folder of the same pool."})
    pool: str | None = field(default=None, metadata={"help": "The pool (default: the scores' manifest's)."})
    image_root: str | None = field(default=None, metadata={"help": "Image root (default: the pool's folder)."})
    truth: str | None = field(default="auto", metadata={"help": "SynthRS truth.parquet; `auto`: beside the pool."})
    fractions: list[str] = field(default_factory=lambda: ["0.3"], metadata={"help": "Keep fractions to draw."})
    max_rows: int = field(default=10, metadata={"help": "Rows per table and task."})
    sample_rows: int = field(default=40, metadata={"help": "Rows spread over the ranks for the slider view."})
    scatter_points: int = field(default=400, metadata={"help": "Points of each task's scatter of two scores."})
    output_dir: str = field(default="runs/browse", metadata={"help": "Folder of index.html and thumbs/."})
    screenshot: str | None = field(default=None, metadata={"help": "Also save a PNG of the page (Chromium)."})

    def __post_init__(self):
        if not self.scores:
            raise ValueError("browse: give --scores, a folder written by `rs-reward score`")
        if min(self.max_rows, self.sample_rows, self.scatter_points) < 1:
            raise ValueError("browse: --max_rows, --sample_rows and --scatter_points must be at least 1")
        if self.truth in ("none", "None", ""):
            self.truth = None


def make_parser():
    """The task's parser: TRL's, over its dataclasses (`--config recipe.yaml`, then flags)."""
    from trl import TrlParser

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
