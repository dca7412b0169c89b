"""Run the method end to end on CPU on SynthRS and write runs/demo/report.md, tables and plots included.

    rs-reward demo --config recipes/tiny/demo/config.yaml          # make demo
    rs-reward demo --config recipes/tiny/demo/config_quick.yaml    # the CI-sized sibling

The stages and their order are `rs_reward.pipeline.demo`; each runs its own task with its own recipe (named in the
demo config) and is skipped when its fingerprint (recipe, overrides, code, upstream stages) is unchanged (`--force`
redoes it). README "Pipeline" has the table of stages.
"""

from __future__ import annotations


def make_parser():
    """The task's parser: TRL's, over its dataclasses (`--config recipe.yaml`, then flags)."""
    from trl import TrlParser

    from rs_reward.configs import DemoConfig

    return TrlParser((DemoConfig,))


def main(demo) -> int:
    from rs_reward.pipeline.demo import run_demo
    from rs_reward.pipeline.report import summary_rows

    from ._common import setup_logging, summary_table

    logger = setup_logging("rs_reward.demo")
    results = run_demo(demo)
    logger.info("\n%s", summary_table("rs-reward demo", summary_rows(results)))
    return 0


if __name__ == "__main__":
    from ._common import run_task

    raise SystemExit(run_task("demo", make_parser, main))
