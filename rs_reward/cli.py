"""`rs-reward <task> --config recipe.yaml [--field value ...]`: one entry point, one module per task.

Each task is `rs_reward/scripts/<task>.py` with TRL's shape, `make_parser()` and `main(*dataclasses)`; the same
module runs under `accelerate launch -m rs_reward.scripts.<task> --config ...`. `rs-reward --help` lists the tasks
installed. `main` raises on errors (for code that calls it); `console`, the `rs-reward` command, prints them as one line
(`--debug` or `RS_REWARD_DEBUG=1` for the traceback).
"""

from __future__ import annotations

import importlib
import pkgutil
import sys

from . import scripts


def available_tasks() -> dict[str, str]:
    """`{task: first sentence of its module docstring}` for every module in `rs_reward.scripts`."""
    tasks = {}
    for info in pkgutil.iter_modules(scripts.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{scripts.__name__}.{info.name}")
        paragraph = " ".join((module.__doc__ or "").strip().split("\n\n")[0].split())
        tasks[info.name] = paragraph.split(". ")[0].rstrip(".")
    return tasks


def usage() -> str:
    lines = ["usage: rs-reward <task> --config recipes/<model>/<task>/config_<variant>.yaml [--field value ...]", ""]
    lines.append("tasks:")
    for name, summary in sorted(available_tasks().items()):
        lines.append(f"  {name:<10} {summary}")
    lines += [
        "",
        "`rs-reward <task> --help` lists the task's fields. Multi-GPU:",
        "  accelerate launch --config_file accelerate_configs/<x>.yaml -m rs_reward.scripts.<task> --config ...",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    task, rest = argv[0], argv[1:]
    tasks = available_tasks()
    if task not in tasks:
        print(f"rs-reward: unknown task {task!r}.\n\n{usage()}", file=sys.stderr)
        return 2
    from .scripts._common import call_main

    module = importlib.import_module(f"{scripts.__name__}.{task}")
    return call_main(module.make_parser, module.main, rest)


def console(argv: list[str] | None = None) -> int:
    """The `rs-reward` command: `main` with errors as one line and exit status 1 (see `run_guarded`)."""
    from .scripts._common import run_guarded

    argv = sys.argv[1:] if argv is None else argv
    task = argv[0] if argv and not argv[0].startswith("-") else "rs-reward"
    return run_guarded(task, main, argv)


if __name__ == "__main__":
    sys.exit(console())
