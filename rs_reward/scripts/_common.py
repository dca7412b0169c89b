"""What every entry point shares: parsing a recipe, logging, and the end-of-run summary."""

from __future__ import annotations

import logging
import os
import sys


def parse(dataclass_types, argv: list[str] | None):
    """Parse `--config recipe.yaml` plus flag overrides into the dataclasses (TrlParser semantics: YAML gives
    defaults, flags override, unknown keys are errors)."""
    import re

    from trl import TrlParser

    argv = list(sys.argv[1:] if argv is None else argv)
    if "--config" in argv[:-1]:
        config = argv[argv.index("--config") + 1]
        if not os.path.isfile(config):
            raise FileNotFoundError(f"config file {config!r} not found (paths are relative to the current folder)")
    parser = TrlParser(dataclass_types)
    try:
        return parser.parse_args_and_config(args=argv)
    except ValueError as error:
        unknown = re.findall(r"'--([\w.-]+)'", str(error))
        if "Unknown arguments from config" in str(error) and unknown:
            where = f"config {config!r}: unknown field(s)"
        elif "not used by the HfArgumentParser" in str(error) and unknown:
            where = "unknown flag(s)"
        else:
            raise
        raise ValueError(f"{where} {', '.join(unknown)}; `--help` lists the task's fields") from None


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


DEBUG_ENV = "RS_REWARD_DEBUG"


def run_guarded(task: str, main, argv: list[str] | None = None) -> int:
    """Run a task's `main(argv)` as a command: an error is printed as one line naming the task, the error and what
    to do, with exit status 1; `--debug` (anywhere in argv) or `RS_REWARD_DEBUG=1` lets the traceback through.

    Argument errors (argparse) keep their own short usage message and status 2. Library calls of `main` raise.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    argv = [a for a in argv if a != "--debug"]
    if debug:
        return int(main(argv) or 0)
    try:
        return int(main(argv) or 0)
    except KeyboardInterrupt:
        print(f"rs-reward {task}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - the command line boundary: one line, not a traceback
        print(f"rs-reward {task}: error: {describe_error(error)}", file=sys.stderr)
        print(f"  (rerun with --debug or {DEBUG_ENV}=1 to see the traceback)", file=sys.stderr)
        return 1


def describe_error(error: BaseException) -> str:
    """One line for an exception: its message, with its type when it is not a value, runtime or file error."""
    message = " ".join(str(error).split()) or type(error).__name__
    if isinstance(error, FileNotFoundError) and error.filename and str(error.filename) not in message:
        message = f"no such file or folder: {error.filename}"
    if isinstance(error, (ValueError, RuntimeError, OSError)):  # ours and the data's: the message says it all
        return message
    return f"{type(error).__name__}: {message}"
