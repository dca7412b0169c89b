"""SFT on image + messages rows (used by the demo to pre-train the tiny base VLM)."""

import json
from pathlib import Path

import pytest
from helpers import changed_parameters
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
    """The task's `main` called with dataclasses, as the pipeline and TRL's scripts do (no argv)."""
    from trl import SFTConfig

    from rs_reward.configs import RSModelConfig, SFTScriptArguments
    from rs_reward.scripts import sft

    out = tmp_path / "out"
    script_args = SFTScriptArguments(dataset_name=str(sft_file))
    training_args = SFTConfig(
        output_dir=str(out),
        max_steps=2,
        per_device_train_batch_size=3,
        learning_rate=1e-3,
        assistant_only_loss=True,
        max_length=None,
        use_cpu=True,
        bf16=False,
        save_strategy="no",
        report_to="none",
    )
    model_args = RSModelConfig(model_name_or_path="tiny:qwen2-vl-tiny", dtype="float32")
    assert sft.main(script_args, training_args, model_args) == 0
    from transformers import Qwen2VLForConditionalGeneration

    from rs_reward.modeling import tiny_model_path

    before = Qwen2VLForConditionalGeneration.from_pretrained(tiny_model_path("qwen2-vl-tiny")).state_dict()
    after = Qwen2VLForConditionalGeneration.from_pretrained(out).state_dict()
    assert after.keys() == before.keys()
    changed = changed_parameters(before, after)
    assert any(".visual." in k for k in changed) and any(".language_model." in k for k in changed)
    assert (out / "processor_config.json").is_file() and (out / "rejects.jsonl").read_text().count("\n") == 2


def _paper_sft(recipe, sft_file, out, model, cpu_flags, *extra):
    args = [
        "sft",
        "--config",
        str(ROOT / "recipes/qwen2-vl-7b/sft" / recipe),
        "--model_name_or_path",
        model,
        "--dataset_name",
        str(sft_file),
        "--image_root",
        str(sft_file.parent),
        "--output_dir",
        str(out),
        "--max_steps",
        "2",
        "--per_device_train_batch_size",
        "3",
        "--gradient_accumulation_steps",
        "1",
        "--save_strategy",
        "no",
        "--learning_rate",
        "1e-2",
        *cpu_flags,
        *extra,
    ]
    assert main(args) == 0


def test_paper_sft_stages_train_only_their_parts(sft_file, tmp_path, tiny_generator_path, gpu_recipe_on_cpu):
    """Stage 1 (captions): the merger alone; stage 2 (instructions): LoRA on the language model + the merger."""
    from peft import PeftModel
    from transformers import Qwen2VLForConditionalGeneration

    from rs_reward.modeling.parts import part_of

    stage1 = tmp_path / "stage1"
    _paper_sft("config_stage1_captions.yaml", sft_file, stage1, tiny_generator_path, gpu_recipe_on_cpu)
    before = Qwen2VLForConditionalGeneration.from_pretrained(tiny_generator_path).state_dict()
    after = Qwen2VLForConditionalGeneration.from_pretrained(stage1).state_dict()
    changed = {part_of(k) for k in changed_parameters(before, after)}
    assert changed == {"merger"}

    for recipe in (
        "config_full_data.yaml",
        "config_scorers_p30.yaml",
        "config_scorers_p30s60.yaml",
        "config_clip_p30s60.yaml",
    ):
        out = tmp_path / recipe
        # the test rows are captions: stage 2 keeps `instruction` rows, so ask for the captions here
        _paper_sft(recipe, sft_file, out, str(stage1), gpu_recipe_on_cpu, "--tasks", "caption")
        base = Qwen2VLForConditionalGeneration.from_pretrained(stage1)
        reference = {k: v.clone() for k, v in base.state_dict().items()}
        merged = PeftModel.from_pretrained(base, out).merge_and_unload().state_dict()
        changed = {part_of(k) for k in changed_parameters(reference, merged)}
        assert changed == {"merger", "language_model"}, recipe  # the vision tower and output layer stay frozen


def test_sft_task_filter_refuses_an_empty_selection(sft_file, tmp_path, tiny_generator_path, gpu_recipe_on_cpu):
    with pytest.raises(ValueError, match="no SFT row of tasks"):
        _paper_sft("config_full_data.yaml", sft_file, tmp_path / "x", tiny_generator_path, gpu_recipe_on_cpu)
