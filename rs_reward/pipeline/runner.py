"""Run a task as a stage of a pipeline: skipped when its fingerprint is unchanged, timed; a pool of workers for
stages that run side by side.

A stage is one task (`rs_reward.scripts.<task>`) with one recipe and a few overrides:

    seconds = run_stage("reward", reward, output, recipe="recipes/tiny/reward/config_demo.yaml",
                        model_name_or_path=str(base), output_dir=str(output))

The recipe and overrides become the task's dataclasses through the task's own `make_parser()` (the same parsing,
checks and types as `rs-reward <task> --config recipe.yaml --field value`), and the task's `main(*dataclasses)`
runs. The stage writes `output/stage.json` with its fingerprint: the task, the recipe's text, the overrides, the
package's source, and the keys of what it reads (any override that is a path inside another stage's folder, a
SynthRS build or a model's weights: `folder_key`). A rerun with the same fingerprint skips the stage, so a code
change, a recipe edit, a redone upstream stage, a rebuilt SynthRS or a retrained foundation redoes it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Iterator
from concurrent.futures import Executor, Future
from contextlib import contextmanager
from functools import cache
from pathlib import Path


logger = logging.getLogger("rs_reward.pipeline")

MARKER = "stage.json"


@cache
def source_fingerprint() -> str:
    """A hash of the package's Python source: a code change redoes every stage."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def task_flags(overrides: dict) -> list[str]:
    """`{field: value}` as the task's command-line flags (None: leave the recipe's value; lists: one flag, several
    values; booleans: true/false)."""
    flags = []
    for name, value in overrides.items():
        if value is None:
            continue
        values = value if isinstance(value, list | tuple) else [value]
        flags += [f"--{name}", *(str(v).lower() if isinstance(v, bool) else str(v) for v in values)]
    return flags


def task_configs(task, recipe: str | None = None, **overrides) -> tuple:
    """The dataclasses `task.main` takes, from a recipe and overrides, parsed by the task's own parser."""
    from rs_reward.scripts._common import parse_args

    return parse_args(task.make_parser(), [*(["--config", recipe] if recipe else []), *task_flags(overrides)])


def folder_key(folder: Path) -> str | None:
    """What identifies a folder a stage reads: another stage's fingerprint (`stage.json`), a SynthRS build's
    (`manifest.json`), or the hash of a model's weights (a committed foundation); None for anything else."""
    if (folder / MARKER).is_file():
        return json.loads((folder / MARKER).read_text()).get("key")
    if (folder / "manifest.json").is_file():
        return json.loads((folder / "manifest.json").read_text()).get("fingerprint")
    if (folder / "model.safetensors").is_file():
        return _file_hash(folder / "model.safetensors")
    return None


@cache
def _file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def upstream_keys(overrides: dict, output: Path) -> dict[str, str]:
    """The keys (`folder_key`) of what the overrides' paths name: the nearest folder at or above each path that has
    one, outside this stage's own folder. A redone stage, a rebuilt SynthRS or retrained weights change them."""
    keys = {}
    for value in overrides.values():
        for item in value if isinstance(value, list | tuple) else [value]:
            if not isinstance(item, str | Path) or "/" not in str(item):
                continue
            path = Path(item)
            for folder in (path, *path.parents):
                if folder.resolve() == output.resolve():
                    break
                key = folder_key(folder)
                if key is not None:
                    keys[str(item)] = key
                    break
    return keys


def stage_key(task_name: str, recipe: str | None, overrides: dict, output: Path) -> str:
    """What a stage's result depends on (see the module docstring)."""
    parts = [
        task_name,
        Path(recipe).read_text() if recipe else None,
        {k: v for k, v in overrides.items() if v is not None},
        source_fingerprint(),
        upstream_keys(overrides, output),
    ]
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def run_stage(name: str, task, output: Path, *, force: bool = False, recipe: str | None = None, **overrides) -> float:
    """Run `task.main` on the recipe and overrides unless `output/stage.json` holds the same fingerprint; return the
    seconds it took (the recorded seconds when skipped)."""
    task_name = task.__name__.rsplit(".", 1)[-1]
    key = stage_key(task_name, recipe, overrides, output)
    marker = output / MARKER
    if not force and marker.is_file() and json.loads(marker.read_text()).get("key") == key:
        logger.info("stage %s: up to date in %s, skipped", name, output)
        return json.loads(marker.read_text())["seconds"]
    logger.info("stage %s: rs-reward %s %s", name, task_name, " ".join(task_flags({"config": recipe, **overrides})))
    import torch

    start = time.perf_counter()
    # A recipe's `full_determinism` turns deterministic kernels on for the whole process (transformers'
    # `enable_full_determinism`); the next stage starts as this one did, whatever its recipe said.
    deterministic = torch.are_deterministic_algorithms_enabled()
    try:
        if task.main(*task_configs(task, recipe, **overrides)) != 0:
            raise RuntimeError(f"stage {name} failed")
    finally:
        torch.use_deterministic_algorithms(deterministic)
    seconds = time.perf_counter() - start
    record = {"key": key, "task": task_name, "recipe": recipe, "overrides": overrides, "seconds": seconds}
    output.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps(record, indent=1, default=str) + "\n")
    return seconds


def threads_per_worker(workers: int) -> int:
    """The cores this process may use (a container or taskset may allow fewer than the machine has) / workers."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // workers)


def _init_worker(threads: int) -> None:
    import torch

    from rs_reward.scripts._common import setup_logging

    torch.set_num_threads(threads)
    setup_logging("rs_reward.pipeline")


class InlineExecutor(Executor):
    """`workers=1`: each call runs when it is submitted, in this process, one after the other; a failure (or
    Ctrl-C) is raised there and then, so nothing after it runs."""

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future = Future()
        future.set_result(fn(*args, **kwargs))
        return future


@contextmanager
def worker_pool(workers: int) -> Iterator[Executor]:
    """`workers` spawned processes sharing the cores (`cores // workers` threads each), or this process for 1.

    On a 2-core machine two 1-thread processes train these tiny models ~1.3x faster than one 2-thread process.
    Submitted functions must be module-level; calls start in the order they were submitted as workers free up.
    When the block raises, the calls still queued are cancelled (those running finish).
    """
    if workers <= 1:
        yield InlineExecutor()
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("spawn")
    threads = threads_per_worker(workers)
    pool = ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=(threads,))
    try:
        yield pool
    except BaseException:
        pool.shutdown(cancel_futures=True)  # a failed stage stops the run without waiting for the queued ones
        raise
    pool.shutdown()


@contextmanager
def main_threads(workers: int) -> Iterator[None]:
    """This process's torch threads while `workers` pool processes use the cores (what it runs beside them, the
    probes, the selections and the curation report, takes its share and no more); restored after."""
    import torch

    before = torch.get_num_threads()
    if workers > 1:
        torch.set_num_threads(threads_per_worker(workers))
    try:
        yield
    finally:
        torch.set_num_threads(before)
