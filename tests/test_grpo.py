"""GRPO with the image-aware score-model reward: 2-step runs of the tiny policy, through the API and the CLI."""

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from helpers import changed_parameters, snapshot
from PIL import Image

from rs_reward.cli import main
from rs_reward.data.io import Rejects
from rs_reward.data.rl import load_rl_prompts


ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def rl_file(tmp_path):
    (tmp_path / "images").mkdir()
    rows = []
    kinds = [
        ("em", "How many ships are there? Answer with one word or number.", "2"),
        ("mc", "How many ships?\nChoices: A. 1 B. 2 C. 3 D. 4", "B"),
        ("iou", "Output the bounding box of <|object_ref_start|>the ship<|object_ref_end|>", "[10, 10, 60, 50]"),
        ("open", "Describe this image.", "Farmland with two ships."),
    ]
    for i in range(8):
        reward_type, question, solution = kinds[i % 4]
        Image.new("RGB", (112, 112), (30 * i, 100, 60)).save(tmp_path / "images" / f"{i}.png")
        rows.append(
            {
                "id": f"rl-{i}",
                "images": [f"images/{i}.png"],
                "prompt": [{"role": "user", "content": question}],
                "solution": solution,
                "reward_type": reward_type,
            }
        )
    rows += [
        {"id": "bad-type", "images": ["images/0.png"], "prompt": "Q?", "solution": "2", "reward_type": "bleu"},
        {"id": "bad-box", "images": ["images/0.png"], "prompt": "Q?", "solution": "[1, 2]", "reward_type": "iou"},
        {"id": "no-solution", "images": ["images/0.png"], "prompt": "Q?", "reward_type": "em"},
        {"id": "escape", "images": ["../0.png"], "prompt": "Q?", "solution": "2", "reward_type": "em"},
    ]
    path = tmp_path / "prompts.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_rl_prompts_load_lazily_and_reject_bad_rows(rl_file):
    rejects = Rejects()
    data = load_rl_prompts(str(rl_file), rejects=rejects, prompt_suffix=" Think first.")
    assert len(data) == 8 and data[0]["images"][0].size == (112, 112)
    assert data[0]["prompt"][-1]["content"].endswith(" Think first.")
    assert {r["id"]: r["reason"].split(" ")[0] for r in rejects.rows} == {
        "bad-type": "unknown",
        "bad-box": "solution",
        "no-solution": "reward_type",
        "escape": "image",
    }
    only_closed = load_rl_prompts(str(rl_file), reward_types=("em", "mc"))
    assert set(only_closed["reward_type"]) == {"em", "mc"}


def test_grpo_two_steps_score_model_sees_pixels(rl_file, tmp_path, tiny_generator_path, tiny_reward_path, monkeypatch):
    from transformers import AutoModelForImageTextToText
    from trl import GRPOConfig

    from rs_reward.configs import RSModelConfig
    from rs_reward.modeling import load_processor
    from rs_reward.rewards import ScoreModel
    from rs_reward.trainers import RSGRPOTrainer

    score_model = ScoreModel.load(RSModelConfig(model_name_or_path=tiny_reward_path), batch_size=8)
    calls = []
    score_model.scorer.model.register_forward_hook(
        lambda module, args, kwargs, out: calls.append(
            (kwargs.get("pixel_values") is not None, kwargs["input_ids"].shape[0])
        ),
        with_kwargs=True,
    )
    policy = AutoModelForImageTextToText.from_pretrained(tiny_generator_path)
    before = snapshot(policy)
    processor = load_processor(tiny_generator_path)
    processor.tokenizer.padding_side = "right"  # the trainer must switch it: TRL left-pads only its own processor
    config = GRPOConfig(
        output_dir=str(tmp_path / "out"),
        max_steps=2,
        per_device_train_batch_size=8,
        num_generations=4,
        max_completion_length=8,
        learning_rate=1e-3,
        use_cpu=True,
        bf16=False,
        report_to="none",
        save_strategy="no",
        logging_steps=1,
        reward_weights=[0.7, 0.3],
        seed=0,
    )
    # a random policy never earns a rule reward; the raw score varies, so the policy gets a gradient; a custom
    # reward named by dotted path runs beside the registry's
    (tmp_path / "custom_rewards.py").write_text(
        "def brevity(prompts, completions, **columns):\n    return [1.0 / (1 + len(str(c))) for c in completions]\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    config.reward_weights = [0.7, 0.3, 0.1]
    trainer = RSGRPOTrainer(
        model=policy,
        reward_funcs=["accuracy", "score_model", "custom_rewards.brevity"],
        score_model=score_model,
        args=config,
        train_dataset=load_rl_prompts(str(rl_file)),
        processing_class=processor,
    )
    assert processor.tokenizer.padding_side == "left"
    trainer.train()
    assert calls and all(with_pixels for with_pixels, _ in calls), "the score model must receive pixel_values"
    logs = [e for e in trainer.state.log_history if "reward" in e]
    assert len(logs) == 2
    assert {
        "rewards/score_model/mean",
        "rewards/accuracy/mean",
        "rewards/brevity/mean",
        "hacking/length_drift",
        "hacking/score_rule_pairs",
        "score_model/score",
    } <= set(logs[0])
    assert not any("hacking/score_rule_wins" in e for e in logs)  # pooled into the AUC at each log
    print("MONITOR", {k: v for e in logs for k, v in e.items() if k.startswith("hacking/")})
    changed = changed_parameters(before, dict(policy.named_parameters()))
    assert changed, "two GRPO steps changed no weight"


def _grpo(recipe, out, data, model, reward, *extra):
    args = [
        "grpo",
        "--config",
        str(ROOT / "recipes" / recipe),
        "--model_name_or_path",
        model,
        "--reward_model_name_or_path",
        reward,
        "--dataset_name",
        str(data),
        "--output_dir",
        str(out),
        "--max_steps",
        "2",
        "--max_completion_length",
        "8",
        *extra,
    ]
    assert main(args) == 0, recipe


def test_grpo_recipes_run_two_steps_from_the_command_line(
    rl_file, tmp_path, tiny_generator_path, tiny_reward_path, gpu_recipe_on_cpu
):
    out = tmp_path / "grpo"
    _grpo(
        "tiny/grpo/config_demo.yaml",
        out,
        rl_file,
        tiny_generator_path,
        tiny_reward_path,
        "--per_device_train_batch_size",
        "8",
        "--logging_steps",
        "1",
    )
    assert (out / "model.safetensors").is_file() and (out / "rejects.jsonl").is_file()
    history = json.loads((out / "reward_history.json").read_text())
    assert len(history) == 2 and "rewards/accuracy/mean" in history[0]
    # TRL's completion logs carry each completion's row id, rule reward and score; the samples page shows them
    logged = pd.read_parquet(out / "completions" / "completions_00002.parquet")
    assert {"id", "rule", "score", "accuracy", "advantage"} <= set(logged.columns)
    assert set(logged["id"]) <= {f"rl-{i}" for i in range(8)} and logged["score"].notna().any()
    page = (out / "browse" / "index.html").read_text()
    shown = set(re.findall(r"<b>(rl-\d+)</b>", page))
    assert shown and shown <= set(logged["id"]) | set(
        pd.read_parquet(out / "completions" / "completions_00001.parquet")["id"]
    )
    assert page.count('<img src="thumbs/') == page.count('class="card prompt"') > 0
    assert len(list((out / "browse" / "thumbs").glob("*.jpg"))) >= 1
    # the 7B recipes (paper hyper-parameters) run the same code: parse them and take 2 tiny steps
    for recipe in ("config_rs_zero.yaml", "config_no_score_model.yaml"):
        _grpo(
            f"qwen2-vl-7b/grpo/{recipe}",
            tmp_path / recipe,
            rl_file,
            tiny_generator_path,
            tiny_reward_path,
            "--use_vllm",
            "false",
            "--per_device_train_batch_size",
            "10",
            "--reward_model_dtype",
            "float32",
            *gpu_recipe_on_cpu,
        )


def test_a_typo_in_the_reward_routes_fails_before_loading(rl_file, tmp_path):
    with pytest.raises(ValueError, match="unknown accuracy reward"):
        main(
            [
                "grpo",
                "--config",
                str(ROOT / "recipes/tiny/grpo/config_demo.yaml"),
                "--dataset_name",
                str(rl_file),
                "--reward_routes",
                "em=exact",
                "--output_dir",
                str(tmp_path / "x"),
            ]
        )


def test_the_tiny_recipes_sample_whole_descriptions():
    """A description cut at `max_completion_length` ends mid-sentence, which the score model judges as a truncation:
    at 32 tokens half the demo policy's descriptions were cut, and GRPO taught it to stop after one object group
    (recipes/tiny/grpo/README.md). Every SynthRS description, end of turn included, fits the tiny recipes' cap."""
    import numpy as np
    import yaml
    from transformers import AutoTokenizer

    from rs_reward.data.synthrs.texts import claims_from_scene, render_text
    from rs_reward.data.synthrs.world import sample_truth
    from rs_reward.modeling.tiny import resolve_model_path

    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path("tiny:qwen2-vl-synthrs"))
    rng = np.random.default_rng(0)
    texts = [render_text(claims_from_scene(sample_truth(rng, f"s{i}", 112), rng)) for i in range(2000)]
    longest = max(len(ids) for ids in tokenizer(texts)["input_ids"]) + 1  # + the end of the turn
    assert longest > 32, "the old cap of 32 tokens would cut the longest descriptions"
    for recipe in ("config_demo.yaml", "config_no_score_model.yaml"):
        cap = yaml.safe_load((ROOT / "recipes/tiny/grpo" / recipe).read_text())["max_completion_length"]
        assert longest <= cap, f"{recipe}: descriptions run to {longest} tokens, the recipe samples {cap}"
