"""Offline by design: no Hub, no telemetry, every cache inside the project tree."""

import os
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("RS_REWARD_CACHE", str(ROOT / ".cache"))
os.environ.setdefault("HF_HOME", str(ROOT / ".cache" / "huggingface"))
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["WANDB_MODE"] = "offline"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
import torch  # noqa: E402


torch.set_num_threads(2)


@pytest.fixture(autouse=True)
def _default_kernels():
    """A recipe's `full_determinism` (the tiny reward recipe sets it) turns deterministic kernels on for the whole
    process when a test calls a task's `main`; every test starts with torch's defaults."""
    yield
    torch.use_deterministic_algorithms(False)


def write_sft_rows(root: Path, rows: int) -> Path:
    """`root/sft.jsonl`: `rows` caption rows, each on its own 56 px image under `root/images/`."""
    import json

    from PIL import Image

    (root / "images").mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(rows):
        Image.new("RGB", (56, 56), (30 * i % 256, 120, 60)).save(root / "images" / f"{i}.png")
        messages = [
            {"role": "user", "content": "Describe this image."},
            {"role": "assistant", "content": f"{i} ships"},
        ]
        lines.append(
            json.dumps({"id": str(i), "images": [f"images/{i}.png"], "task": "caption", "messages": messages})
        )
    path = root / "sft.jsonl"
    path.write_text("".join(line + "\n" for line in lines))
    return path


@pytest.fixture(scope="session")
def tiny_generator_path():
    from rs_reward.modeling import tiny_model_path

    return tiny_model_path("qwen2-vl-tiny")


@pytest.fixture(scope="session")
def tiny_reward_path():
    from rs_reward.modeling import tiny_model_path

    return tiny_model_path("qwen2-vl-tiny-reward")


@pytest.fixture
def scene_images():
    """Three small images of different sizes and contents (the processor resizes them to its budget)."""
    from PIL import Image

    rng = torch.Generator().manual_seed(0)
    sizes = [(112, 112), (140, 84), (84, 112)]
    images = []
    for w, h in sizes:
        pixels = (torch.rand(h, w, 3, generator=rng) * 255).to(torch.uint8).numpy()
        images.append(Image.fromarray(pixels))
    return images


@pytest.fixture
def free_port():
    """A free TCP port on the loopback interface, for torch.distributed rendezvous in multi-process tests."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def launch_two_cpu_processes(free_port):
    """The command prefix that runs a task module in 2 CPU processes under accelerate (torchrun + gloo)."""
    import sys

    config = str(ROOT / "accelerate_configs" / "cpu.yaml")
    return [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        config,
        "--num_processes",
        "2",
        "--main_process_port",
        str(free_port),
        "-m",
    ]


@pytest.fixture
def gpu_recipe_on_cpu():
    """Flags that run a GPU recipe (bf16, gradient checkpointing, real pixel budget) on this CPU with a tiny model."""
    return [
        "--use_cpu",
        "true",
        "--bf16",
        "false",
        "--gradient_checkpointing",
        "false",
        "--dtype",
        "float32",
        "--min_pixels",
        "3136",
        "--max_pixels",
        "12544",
        "--report_to",
        "none",
    ]
