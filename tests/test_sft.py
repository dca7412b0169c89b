"""SFT on image + messages rows (used by the demo to pre-train the tiny base VLM)."""

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from rs_reward.cli import main
from rs_reward.data.io import Rejects
from rs_reward.data.sft import load_sft_rows


ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def sft_file(tmp_path):
    (tmp_path / "images").mkdir()
    rows = []
    for i in range(6):
        Image.new("RGB", (112, 112), (40 * i, 120, 60)).save(tmp_path / "images" / f"{i}.png")
        rows.append(
            {
                "id": str(i),
                "images": [f"images/{i}.png"],
                "task": "caption",
                "source": "t",
                "messages": [
                    {"role": "user", "content": "Describe this image."},
                    {"role": "assistant", "content": f"farmland with {i} ships"},
                ],
            }
        )
    rows.append({"id": "bad-escape", "images": ["../x.png"], "messages": rows[0]["messages"]})
    rows.append({"id": "bad-turn", "images": [], "messages": [{"role": "user", "content": "hi"}]})
    path = tmp_path / "sft.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_sft_rows_decode_images_lazily_and_reject_bad_rows(sft_file):
    rejects = Rejects()
    dataset = load_sft_rows(str(sft_file), rejects=rejects)
    assert len(dataset) == 6 and dataset[0]["images"][0].size == (112, 112)
    assert {r["id"] for r in rejects.rows} == {"bad-escape", "bad-turn"}


def test_sft_two_steps_train_on_images(sft_file, tmp_path):
    out = tmp_path / "out"
    args = [
        "sft",
        "--config",
        str(ROOT / "recipes/tiny/sft/config_pretrain.yaml"),
        "--model_name_or_path",
        "tiny:qwen2-vl-tiny",
        "--dataset_name",
        str(sft_file),
        "--output_dir",
        str(out),
        "--max_steps",
        "2",
        "--per_device_train_batch_size",
        "3",
    ]
    assert main(args) == 0
    from transformers import Qwen2VLForConditionalGeneration

    from rs_reward.modeling import tiny_model_path

    before = Qwen2VLForConditionalGeneration.from_pretrained(tiny_model_path("qwen2-vl-tiny")).state_dict()
    after = Qwen2VLForConditionalGeneration.from_pretrained(out).state_dict()
    assert after.keys() == before.keys()
    changed = [k for k in after if not torch.equal(after[k], before[k])]
    assert any(".visual." in k for k in changed) and any(".language_model." in k for k in changed)
    assert (out / "processor_config.json").is_file() and (out / "rejects.jsonl").read_text().count("\n") == 2
