"""Resume after a crash: a training killed with SIGKILL right after a checkpoint, rerun with the same command, ends
with the weights of an uninterrupted run (reward model: one process and DDP; SFT: one process)."""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import write_sft_rows
from safetensors.torch import load_file

from rs_reward.data.synthrs import SynthRSConfig, build


ROOT = Path(__file__).resolve().parents[1]

# Run a task with a callback that sends SIGKILL to its own process once the checkpoint of step KILL_AT is saved
# (after a barrier under DDP, so every rank's part of it is on disk): no cleanup, no atexit, as with kill -9.
KILLER = """
import os, signal, sys
import torch.distributed as dist
from transformers import Trainer, TrainerCallback

KILL_AT = int(os.environ.get("KILL_AT", "0"))  # 0: never


class KillAfterCheckpoint(TrainerCallback):
    def on_save(self, args, state, control, **kwargs):
        if state.global_step == KILL_AT:
            if dist.is_available() and dist.is_initialized():
                dist.barrier()
            os.kill(os.getpid(), signal.SIGKILL)


original = Trainer.__init__


def init(self, *args, **kwargs):
    original(self, *args, **kwargs)
    self.add_callback(KillAfterCheckpoint())


Trainer.__init__ = init
from rs_reward.cli import main
raise SystemExit(main(sys.argv[1:]))
"""


@pytest.fixture(scope="module")
def synthrs(tmp_path_factory):
    config = SynthRSConfig.only(
        output_dir=str(tmp_path_factory.mktemp("rs") / "synthrs"),
        caption_pairs_train=12,
        instruction_pairs_train=12,
        caption_pairs_test=4,
        num_workers=1,
    )
    return build(config, progress=False)


@pytest.fixture(scope="module")
def sft_file(tmp_path_factory):
    return write_sft_rows(tmp_path_factory.mktemp("sft"), 8)


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    tensors = {}
    for file in sorted(folder.glob("*.safetensors")):
        tensors.update({f"{file.name}:{k}": v for k, v in load_file(file).items()})
    assert tensors, f"no weights in {folder}"
    return tensors


def _assert_same_weights(a: Path, b: Path):
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    different = [k for k in wa if not torch.allclose(wa[k], wb[k], rtol=0, atol=1e-6)]
    assert not different, f"resumed weights differ from the uninterrupted run's: {different[:5]}"


def _run(command: list[str], out: Path, kill_at: int | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if kill_at is not None:
        env["KILL_AT"] = str(kill_at)
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=600, cwd=out.parent)


def _reward_args(synthrs: Path, out: Path) -> list[str]:
    """Four steps of the tiny reward recipe, a checkpoint every 2 (the same flags for every run compared)."""
    return [
        "--config",
        str(ROOT / "recipes/tiny/reward/config_demo.yaml"),
        "--model_name_or_path",
        "tiny:qwen2-vl-tiny",
        "--dataset_name",
        str(synthrs / "preference" / "train"),
        "--eval_dataset_name",
        str(synthrs / "preference" / "test"),
        "--output_dir",
        str(out),
        "--max_steps",
        "4",
        "--save_strategy",
        "steps",
        "--save_steps",
        "2",
        "--use_cpu",
        "true",
        "--bf16",
        "false",
        "--dtype",
        "float32",
        "--report_to",
        "none",
        "--per_device_train_batch_size",
        "2",
        "--gradient_accumulation_steps",
        "1",
        "--evaluate_after_training",
        "false",
    ]


def _killed_then_resumed(prefix: list[str], task_args, tmp_path: Path):
    """An uninterrupted run, then a run killed after the step-2 checkpoint and the same command rerun."""
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    done = _run([*prefix, *task_args(whole)], whole)
    assert done.returncode == 0, done.stderr[-3000:]

    killed = _run([*prefix, *task_args(resumed)], resumed, kill_at=2)
    assert killed.returncode != 0, "the first run was meant to die at its step-2 checkpoint"
    assert (resumed / "checkpoint-2" / "trainer_state.json").is_file()
    assert not (resumed / "checkpoint-4").exists()

    rerun = _run([*prefix, *task_args(resumed)], resumed)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "resuming from" in rerun.stdout + rerun.stderr and "checkpoint-2" in rerun.stdout + rerun.stderr
    state = json.loads((resumed / "checkpoint-4" / "trainer_state.json").read_text())
    assert state["global_step"] == 4
    return whole, resumed


@pytest.fixture
def killer(tmp_path) -> Path:
    path = tmp_path / "kill_after_checkpoint.py"
    path.write_text(KILLER)
    return path


@pytest.mark.parametrize("lora", [False, True], ids=["full", "lora"])
def test_reward_training_killed_after_a_checkpoint_resumes_to_the_same_weights(synthrs, tmp_path, killer, lora):
    extra = ["--use_peft", "true", "--lora_r", "4", "--lora_alpha", "8"] if lora else []
    whole, resumed = _killed_then_resumed(
        [sys.executable, str(killer), "reward"], lambda out: [*_reward_args(synthrs, out), *extra], tmp_path
    )
    if lora:
        assert (resumed / "checkpoint-2" / "adapter_model.safetensors").is_file()
    _assert_same_weights(whole, resumed)


def test_ddp_reward_training_killed_after_a_checkpoint_resumes_to_the_same_weights(
    synthrs, tmp_path, killer, launch_two_cpu_processes
):
    launch = launch_two_cpu_processes[:-1]  # a script, not `-m module`
    whole, resumed = _killed_then_resumed(
        [*launch, str(killer), "reward"], lambda out: _reward_args(synthrs, out), tmp_path
    )
    assert (resumed / "checkpoint-2" / "rng_state_1.pth").is_file(), "each rank's random state was saved"
    _assert_same_weights(whole, resumed)


def test_sft_killed_after_a_checkpoint_resumes_to_the_same_weights(sft_file, tmp_path, killer):
    def sft_args(out):
        return [
            "--config",
            str(ROOT / "recipes/tiny/sft/config_pretrain.yaml"),
            "--model_name_or_path",
            "tiny:qwen2-vl-tiny",
            "--dataset_name",
            str(sft_file),
            "--output_dir",
            str(out),
            "--max_steps",
            "4",
            "--save_strategy",
            "steps",
            "--save_steps",
            "2",
            "--per_device_train_batch_size",
            "2",
            "--report_to",
            "none",
        ]

    whole, resumed = _killed_then_resumed([sys.executable, str(killer), "sft"], sft_args, tmp_path)
    _assert_same_weights(whole, resumed)


def test_a_checkpoint_cut_short_while_saving_is_skipped(tmp_path, caplog):
    from transformers import TrainingArguments

    from rs_reward.scripts._common import checkpoint_to_resume

    for step in (2, 4):
        (tmp_path / f"checkpoint-{step}").mkdir()
    (tmp_path / "checkpoint-2" / "trainer_state.json").write_text('{"global_step": 2}')
    (tmp_path / "checkpoint-4" / "trainer_state.json").write_text('{"global_st')  # killed while writing it
    args = TrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True)
    with caplog.at_level(logging.INFO):
        assert checkpoint_to_resume(args, logging.getLogger("test")) == str(tmp_path / "checkpoint-2")
    assert "skipping" in caplog.text and "checkpoint-4" in caplog.text
    fresh = TrainingArguments(output_dir=str(tmp_path / "new"), report_to="none", use_cpu=True)
    assert checkpoint_to_resume(fresh, logging.getLogger("test")) is None
