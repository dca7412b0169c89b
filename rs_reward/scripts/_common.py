"""What every entry point shares: parsing a recipe, logging, and the end-of-run summary."""

from __future__ import annotations

import logging
import sys


def parse(dataclass_types, argv: list[str] | None):
    """Parse `--config recipe.yaml` plus flag overrides into the dataclasses (TrlParser semantics: YAML gives
    defaults, flags override, unknown keys are errors)."""
    from trl import TrlParser

    parser = TrlParser(dataclass_types)
    return parser.parse_args_and_config(args=argv)


def setup_logging(name: str) -> logging.Logger:
    logging.basicConfig(
        format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO, stream=sys.stdout
    )
    return logging.getLogger(name)


def summary_table(title: str, rows: dict) -> str:
    """A one-screen summary: a title and aligned `key: value` lines."""
    width = max((len(str(k)) for k in rows), default=0)
    lines = [title, "-" * len(title)] + [f"{str(k):<{width}}  {v}" for k, v in rows.items()]
    return "\n".join(lines)


def finish_trackers() -> None:
    """Close experiment trackers the Trainer leaves open, so their files are complete when the task returns."""
    import sys

    wandb = sys.modules.get("wandb")
    if wandb is not None and getattr(wandb, "run", None) is not None:
        wandb.finish()
