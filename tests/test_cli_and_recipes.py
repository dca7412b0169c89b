"""The command line: `rs-reward --help` lists the tasks, every recipe parses with its task's dataclasses."""

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rs_reward.cli import available_tasks, main


ROOT = Path(__file__).resolve().parent.parent
RECIPES = sorted((ROOT / "recipes").rglob("config*.yaml"))


def test_help_lists_the_tasks(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for task in ("synth", "demo"):
        assert task in out
    assert set(available_tasks()) >= {"synth", "demo"}


def test_console_script_is_installed():
    result = subprocess.run(
        [Path(sys.executable).parent / "rs-reward", "--help"], capture_output=True, text=True, check=True
    )
    assert "synth" in result.stdout


def test_unknown_task_fails_with_usage(capsys):
    assert main(["nope"]) == 2
    assert "unknown task 'nope'" in capsys.readouterr().err


def test_unknown_recipe_key_is_an_error(tmp_path):
    bad = tmp_path / "config.yaml"
    bad.write_text("output_dir: x\nnot_a_field: 1\n")
    with pytest.raises((ValueError, SystemExit)):
        main(["synth", "--config", str(bad)])


@pytest.mark.parametrize("recipe", RECIPES, ids=[str(p.relative_to(ROOT / "recipes")) for p in RECIPES])
def test_every_recipe_parses_with_its_task(recipe):
    from rs_reward.scripts._common import parse_args

    task = recipe.parent.name
    module = importlib.import_module(f"rs_reward.scripts.{task}")
    types = module.make_parser().dataclass_types
    args = ["--config", str(recipe)]
    if any("bf16" in t.__dataclass_fields__ for t in types):
        args += ["--use_cpu", "true", "--bf16", "false"]  # GPU recipes ask for bf16, which TRL validates on this CPU
    parsed = parse_args(module.make_parser(), args)  # as the command line: list fields written as one string fail
    assert all(isinstance(p, t) for p, t in zip(parsed, types))


def test_synth_runs_from_the_command_line(tmp_path):
    out = tmp_path / "synth"
    args = [
        "synth",
        "--config",
        str(ROOT / "recipes/tiny/synth/config_quick.yaml"),
        "--output_dir",
        str(out),
        "--caption_pairs_train",
        "4",
        "--instruction_pairs_train",
        "4",
        "--pool_size",
        "4",
        "--pretrain_size",
        "2",
        "--eval_size",
        "4",
        "--rl_size",
        "4",
        "--caption_pairs_test",
        "2",
        "--instruction_pairs_test",
        "2",
    ]
    assert main(args) == 0
    assert (out / "manifest.json").is_file()


@pytest.mark.parametrize(
    "task, shown, hidden",
    [
        ("eval_clip", ["--eval_data", "--model_name_or_path"], ["--blind_control", "--lora_r", "--scores"]),
        ("eval_vlm", ["--eval_data", "--truth_scenes", "--max_pixels"], ["--blind_control", "--scores"]),
        ("eval_reward", ["--blind_control", "--eval_dataset_name"], ["--eval_data", "--truth_scenes", "--scores"]),
        ("eval_curation", ["--scores", "--truth", "--fractions"], ["--eval_data", "--model_name_or_path"]),
    ],
)
def test_each_evaluation_shows_only_its_own_fields(task, shown, hidden, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([task, "--help"])
    assert exit_info.value.code == 0
    flags = set(re.findall(r"--\w+", capsys.readouterr().out))
    assert set(shown) <= flags, shown
    assert not set(hidden) & flags, hidden


def test_a_task_that_returns_ends_its_process_group():
    """A launched rank that finishes first must not leave gloo's threads to interpreter exit (a rank aborted so in
    CI); a task that fails leaves the group alone, since the other ranks may still be in a collective."""
    import torch.distributed as dist

    from rs_reward.scripts._common import call_main

    class Parser:
        def parse_args_and_config(self, args):
            return (args,)

    def failing(args):
        raise RuntimeError("task failed")

    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        with pytest.raises(RuntimeError):
            call_main(Parser, failing, [])
        assert dist.is_initialized(), "a failed task keeps the group"
        assert call_main(Parser, lambda args: 0, []) == 0
        assert not dist.is_initialized(), "a returned task ends it"
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
