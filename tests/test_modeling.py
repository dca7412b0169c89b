"""The VLM reward model: loading, saving, LoRA, padding, processors, freezing switches, the tiny factory."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoProcessor, Qwen2VLForConditionalGeneration

from rs_reward.configs import RSModelConfig
from rs_reward.data.chat import encode_scored
from rs_reward.modeling import (
    Qwen2_5_VLForSequenceClassification,
    Qwen2VLForSequenceClassification,
    QwenVLImageProcessor,
    build_tiny,
    load_processor,
    tiny_model_path,
)
from rs_reward.modeling.loading import SCORE_CONFIG_FILE, load_reward_model, save_score_config
from rs_reward.modeling.parts import count_parameters, part_of, set_trainable
from rs_reward.modeling.tiny import TINY_VERSION


QUESTIONS = ["", "How many ships are in the image?", "What is the land cover?"]
ANSWERS = ["a harbor with three ships in the top left", "three", "forest with a road crossing the center"]
# Scores of the same row under different batches/padding agree to float32 round-off of attention over pads.
ATOL = 1e-5


def score(model, processor, images, questions=QUESTIONS, answers=ANSWERS):
    batch = encode_scored(processor, images, questions, answers)
    with torch.no_grad():
        return model(**batch).logits.squeeze(-1)


@pytest.fixture(scope="module")
def processor(tiny_generator_path):
    return load_processor(tiny_generator_path)


def test_auto_processor_returns_image_processor_without_torchvision(tiny_generator_path):
    processor = AutoProcessor.from_pretrained(tiny_generator_path)
    assert isinstance(processor, QwenVLImageProcessor)
    assert processor.image_processor is not None
    assert processor.tokenizer.eos_token == "<|im_end|>" and processor.tokenizer.pad_token == "<|endoftext|>"


def test_with_torchvision_our_checkpoints_still_get_an_image_processor(tiny_generator_path, monkeypatch):
    """With torchvision, AutoProcessor returns the bare tokenizer for a checkpoint saved without video processor
    files (every checkpoint rs-reward writes); that would drop the images (seen on a GPU machine). Simulated here."""
    from transformers import AutoTokenizer

    from rs_reward.modeling import processing

    monkeypatch.setattr(processing, "HAS_TORCHVISION", True)
    monkeypatch.setattr(
        processing.AutoProcessor, "from_pretrained", lambda path, **kw: AutoTokenizer.from_pretrained(path)
    )
    processor = processing.load_processor(tiny_generator_path)
    assert isinstance(processor, processing.QwenVLImageProcessor) and processor.image_processor is not None


def test_processor_pixel_budget_limits_image_tokens(tiny_generator_path, scene_images):
    small = load_processor(tiny_generator_path, min_pixels=28 * 28, max_pixels=56 * 56)
    large = load_processor(tiny_generator_path, min_pixels=28 * 28, max_pixels=112 * 112)
    n_small = encode_scored(small, scene_images[:1], [""], ["x"])["pixel_values"].shape[0]
    n_large = encode_scored(large, scene_images[:1], [""], ["x"])["pixel_values"].shape[0]
    assert n_small <= 56 * 56 // (14 * 14) < n_large
    with pytest.raises(ValueError, match="must not exceed"):
        load_processor(tiny_generator_path, min_pixels=10_000, max_pixels=100)


def test_auto_class_registered(tiny_generator_path):
    model = AutoModelForSequenceClassification.from_pretrained(tiny_generator_path, num_labels=1)
    assert isinstance(model, Qwen2VLForSequenceClassification)
    assert model.score.bias is None and model.score.out_features == 1


def test_backbone_loaded_from_generator_checkpoint_is_not_random(tiny_generator_path):
    generator = Qwen2VLForConditionalGeneration.from_pretrained(tiny_generator_path).state_dict()
    reward = load_reward_model(RSModelConfig(model_name_or_path=tiny_generator_path), trainable=False).state_dict()
    backbone = [k for k in reward if not k.startswith("score.")]
    assert len(backbone) > 50
    for key in backbone:
        assert torch.equal(reward[key], generator[key]), key
    assert "score.weight" in reward


def test_score_independent_of_batch_composition_size_and_padding_side(tiny_reward_path, scene_images):
    model = load_reward_model(RSModelConfig(model_name_or_path=tiny_reward_path), trainable=False)
    scores = {}
    for side in ("left", "right"):
        processor = load_processor(tiny_reward_path, padding_side=side)
        scores[side] = score(model, processor, scene_images)
        singles = torch.cat(
            [score(model, processor, [i], [q], [a]) for i, q, a in zip(scene_images, QUESTIONS, ANSWERS)]
        )
        torch.testing.assert_close(scores[side], singles, atol=ATOL, rtol=0)
        reordered = score(model, processor, scene_images[::-1], QUESTIONS[::-1], ANSWERS[::-1])
        torch.testing.assert_close(scores[side], reordered.flip(0), atol=ATOL, rtol=0)
    torch.testing.assert_close(scores["left"], scores["right"], atol=ATOL, rtol=0)
    assert scores["left"].unique().numel() == 3  # distinct rows get distinct scores (no pooling at a pad)


def test_text_only_rows_mix_with_image_rows(tiny_reward_path, processor, scene_images):
    model = load_reward_model(RSModelConfig(model_name_or_path=tiny_reward_path), trainable=False)
    mixed = score(model, processor, [scene_images[0], None, scene_images[2]])
    alone = score(model, processor, [None], [QUESTIONS[1]], [ANSWERS[1]])
    torch.testing.assert_close(mixed[1:2], alone, atol=ATOL, rtol=0)


def test_full_reward_model_save_load_identical_scores(tiny_reward_path, processor, scene_images, tmp_path):
    model = load_reward_model(RSModelConfig(model_name_or_path=tiny_reward_path), trainable=False)
    with torch.no_grad():
        model.score.weight.normal_()  # a head that is not the saved one, so the test sees the head reloaded
    before = score(model, processor, scene_images)
    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").is_file() and not list(tmp_path.glob("*.bin"))
    reloaded = load_reward_model(RSModelConfig(model_name_or_path=str(tmp_path)), trainable=False)
    torch.testing.assert_close(score(reloaded, processor, scene_images), before, atol=0, rtol=0)


def test_likelihood_term_adds_the_generators_mean_answer_log_likelihood(
    tiny_generator_path, processor, scene_images, tmp_path
):
    """`score_likelihood_weight`: the score is the head's value plus the weight times the mean log-probability
    that the generator itself gives the answer's tokens (the end of turn included); it saves and reloads."""
    weight = 3.0
    args = RSModelConfig(model_name_or_path=tiny_generator_path, score_likelihood_weight=weight)
    model = load_reward_model(args, trainable=False)
    generator = Qwen2VLForConditionalGeneration.from_pretrained(tiny_generator_path).eval()
    torch.testing.assert_close(model.lm_head.weight, generator.lm_head.weight, atol=0, rtol=0)
    batch = encode_scored(processor, scene_images, QUESTIONS, ANSWERS)
    marker = processor.tokenizer.encode("<|im_start|>assistant\n", add_special_tokens=False)
    with torch.no_grad():
        log_probs = torch.log_softmax(generator(**batch).logits.float(), -1)
        hidden = generator.model(**batch).last_hidden_state
    expected = []
    for row, ids in enumerate(batch["input_ids"].tolist()):
        last = int(batch["attention_mask"][row].sum()) - 1  # right padding
        start = max(i for i in range(last) if ids[i : i + len(marker)] == marker) + len(marker)
        answer = torch.tensor([log_probs[row, t - 1, ids[t]] for t in range(start, last + 1)])
        head = hidden[row, last] @ model.score.weight[0]
        expected.append(head + weight * answer.mean())
    torch.testing.assert_close(score(model, processor, scene_images), torch.stack(expected), atol=1e-4, rtol=0)

    model.save_pretrained(tmp_path)
    reloaded = load_reward_model(RSModelConfig(model_name_or_path=str(tmp_path)), trainable=False)
    assert reloaded.config.score_likelihood_weight == weight and reloaded.config.score_answer_marker == marker
    torch.testing.assert_close(
        score(reloaded, processor, scene_images), score(model, processor, scene_images), atol=ATOL, rtol=0
    )
    plain = load_reward_model(RSModelConfig(model_name_or_path=tiny_generator_path), trainable=False)
    assert not hasattr(plain, "lm_head")  # the paper's head alone unless asked
    plain.save_pretrained(tmp_path / "plain")  # a reward checkpoint without an output layer cannot take the term
    with pytest.raises(ValueError, match="has no `lm_head.weight`"):
        load_reward_model(RSModelConfig(model_name_or_path=str(tmp_path / "plain"), score_likelihood_weight=weight))


@pytest.mark.parametrize("likelihood_weight", [None, 3.0])
def test_lora_reward_model_save_load_and_merge_identical_scores(
    tiny_generator_path, processor, scene_images, tmp_path, likelihood_weight
):
    args = RSModelConfig(
        model_name_or_path=tiny_generator_path,
        use_peft=True,
        lora_r=4,
        lora_alpha=8,
        score_likelihood_weight=likelihood_weight,
    )
    model = load_reward_model(args)
    lora_names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert any("lora_" in n and "language_model" in n for n in lora_names)
    assert not any("visual" in n for n in lora_names), "LoRA must stay on the language model by default"
    assert any("score" in n for n in lora_names), "the head trains with the adapter"
    with torch.no_grad():  # stand-in for training: move the adapters and the head
        for parameter in model.parameters():
            if parameter.requires_grad:
                parameter.add_(torch.randn_like(parameter) * 0.1)
    model.eval()
    before = score(model, processor, scene_images)
    model.save_pretrained(tmp_path / "adapter")
    save_score_config(model, tmp_path / "adapter")  # the likelihood term, which the adapter files do not hold
    assert (tmp_path / "adapter" / SCORE_CONFIG_FILE).is_file() == bool(likelihood_weight)
    saved = json.loads((tmp_path / "adapter" / "adapter_config.json").read_text())
    assert saved["task_type"] == "SEQ_CLS"
    reloaded = load_reward_model(RSModelConfig(model_name_or_path=str(tmp_path / "adapter")), trainable=False)
    torch.testing.assert_close(score(reloaded, processor, scene_images), before, atol=ATOL, rtol=0)

    merged = reloaded.merge_and_unload()
    assert isinstance(merged, Qwen2VLForSequenceClassification)
    torch.testing.assert_close(score(merged, processor, scene_images), before, atol=ATOL, rtol=0)
    merged.save_pretrained(tmp_path / "merged")
    remerged = load_reward_model(RSModelConfig(model_name_or_path=str(tmp_path / "merged")), trainable=False)
    torch.testing.assert_close(score(remerged, processor, scene_images), before, atol=ATOL, rtol=0)


@pytest.mark.parametrize(
    ("switches", "frozen", "trained"),
    [
        (
            {"freeze_vision_tower": True, "freeze_merger": True, "freeze_language_model": True},
            ["vision_tower", "merger", "language_model"],
            ["score_head"],
        ),
        ({"freeze_language_model": True}, ["language_model"], ["vision_tower", "merger", "score_head"]),
        (
            {"freeze_vision_tower": True, "freeze_merger": True},
            ["vision_tower", "merger"],
            ["language_model", "score_head"],
        ),
    ],
    ids=["stage1-head", "stage2-vision", "stage3-language"],
)
def test_freezing_switches_match_the_paper_stages(tiny_generator_path, switches, frozen, trained):
    model = load_reward_model(RSModelConfig(model_name_or_path=tiny_generator_path, **switches))
    counts = count_parameters(model)
    for part in frozen:
        assert counts[part]["trainable"] == 0 and counts[part]["total"] > 0, part
    for part in trained:
        assert counts[part]["trainable"] == counts[part]["total"] > 0, part


def test_parts_are_named_as_expected():
    assert part_of("model.visual.blocks.0.attn.qkv.weight") == "vision_tower"
    assert part_of("model.visual.merger.mlp.0.weight") == "merger"
    assert (
        part_of("base_model.model.model.language_model.layers.0.self_attn.q_proj.lora_A.default.weight")
        == "language_model"
    )
    assert part_of("score.weight") == "score_head"


def test_set_trainable_refuses_parts_the_model_lacks(tiny_generator_path):
    model = Qwen2VLForConditionalGeneration.from_pretrained(tiny_generator_path)
    with pytest.raises(ValueError, match="no parameters"):
        set_trainable(model, score_head=False)
    with pytest.raises(ValueError, match="Unknown part"):
        set_trainable(model, encoder=False)


def test_qwen2_5_vl_reward_model(scene_images):
    model, processor = build_tiny("qwen2.5-vl-tiny-reward")
    assert isinstance(model, Qwen2_5_VLForSequenceClassification)
    model.eval()
    scores = score(model, processor, scene_images)
    assert scores.shape == (3,) and torch.isfinite(scores).all()


def test_tiny_models_are_deterministic():
    first, _ = build_tiny("qwen2-vl-tiny")
    second, _ = build_tiny("qwen2-vl-tiny")
    for (name, a), (_, b) in zip(first.state_dict().items(), second.state_dict().items()):
        assert torch.equal(a, b), name


def test_tiny_cache_is_reused(tmp_path):
    path = Path(tiny_model_path("clip-tiny", cache_dir=tmp_path))
    assert path == tmp_path / f"clip-tiny-{TINY_VERSION}"
    stamp = (path / "model.safetensors").stat().st_mtime_ns
    assert Path(tiny_model_path("clip-tiny", cache_dir=tmp_path)) == path
    assert (path / "model.safetensors").stat().st_mtime_ns == stamp
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "no staging folder left behind"


def test_tiny_clip_embeds_images_and_texts(scene_images):
    model, processor = build_tiny("clip-tiny")
    batch = processor(
        text=["a satellite photo of forest.", "ships"], images=scene_images[:2], return_tensors="pt", padding=True
    )
    with torch.no_grad():
        out = model(**batch)
    assert out.logits_per_image.shape == (2, 2)


@pytest.mark.parametrize(
    "name", ["qwen2-vl-2b", "qwen2-vl-7b", "qwen2.5-vl-3b", "qwen2.5-vl-7b", "clip-vit-b16", "clip-vit-l14"]
)
def test_shape_presets_match_published_sizes(name):
    from rs_reward.modeling.presets import PRESETS, build_preset

    model = build_preset(name, device="meta")
    n = sum(p.numel() for p in model.parameters())
    assert abs(n - PRESETS[name][1]) / PRESETS[name][1] < 0.02, f"{name}: {n / 1e9:.3f} B parameters"


def test_reward_preset_has_a_scalar_head():
    from rs_reward.modeling.presets import build_preset

    model = build_preset("qwen2-vl-2b", reward=True, device="meta")
    assert isinstance(model, Qwen2VLForSequenceClassification) and model.score.out_features == 1


@pytest.mark.parametrize("activation", [None, "softplus"])
def test_scorers_checkpoint_layout_loads_with_the_same_scores(
    tiny_generator_path, processor, scene_images, tmp_path, activation
):
    """A checkpoint in the released ScoreRS layout: legacy Qwen2-VL keys + `reward_head.weight` (+ softplus)."""
    from safetensors.torch import load_file, save_file

    generator = Qwen2VLForConditionalGeneration.from_pretrained(tiny_generator_path)
    generator.save_pretrained(tmp_path)
    weights = load_file(tmp_path / "model.safetensors")
    assert any(k.startswith("model.layers.") for k in weights) and any(k.startswith("visual.") for k in weights)
    head = torch.randn(1, generator.config.text_config.hidden_size, generator=torch.Generator().manual_seed(0))
    weights["reward_head.weight"] = head
    save_file(weights, tmp_path / "model.safetensors", metadata={"format": "pt"})

    model = load_reward_model(
        RSModelConfig(model_name_or_path=str(tmp_path), score_activation=activation), trainable=False
    )
    torch.testing.assert_close(model.score.weight, head, atol=0, rtol=0)
    batch = encode_scored(processor, scene_images, QUESTIONS, ANSWERS)
    with torch.no_grad():
        hidden = generator.model(**batch).last_hidden_state
        expected = (
            hidden[torch.arange(3), batch["attention_mask"].sum(1) - 1] @ head.T
        )  # right padding: last real token
        if activation == "softplus":
            expected = torch.nn.functional.softplus(expected)
    torch.testing.assert_close(score(model, processor, scene_images), expected.squeeze(-1), atol=ATOL, rtol=0)


@pytest.mark.parametrize("order", ["image_first", "text_first"])
def test_published_layout_scores_in_either_prompt_order_as_the_stock_template_renders_it(
    tiny_generator_path, scene_images, tmp_path, order
):
    """The authors train and score pools with `[image, question]` in the user turn, and their GRPO reward server
    and best-of-N scripts with `[question, image]`. A checkpoint in the released layout (legacy keys, a
    `reward_head`, the extra config fields `ranked_candidate_num` and `pad_token_id`) loads, and the scorer's tokens
    are the stock Qwen2-VL template's, default system prompt included, written out here by hand."""
    import json

    from safetensors.torch import load_file, save_file

    from rs_reward.scoring import RewardModelScorer

    generator = Qwen2VLForConditionalGeneration.from_pretrained(tiny_generator_path)
    generator.save_pretrained(tmp_path)
    load_processor(tiny_generator_path).save_pretrained(tmp_path)
    weights = load_file(tmp_path / "model.safetensors")
    weights["reward_head.weight"] = torch.randn(1, generator.config.text_config.hidden_size)
    save_file(weights, tmp_path / "model.safetensors", metadata={"format": "pt"})
    config = json.loads((tmp_path / "config.json").read_text())
    config.update(ranked_candidate_num=2, pad_token_id=generator.config.text_config.pad_token_id)
    (tmp_path / "config.json").write_text(json.dumps(config))

    model = load_reward_model(RSModelConfig(model_name_or_path=str(tmp_path)), trainable=False)
    processor = load_processor(str(tmp_path))
    scorer = RewardModelScorer(model, processor, prompt_order=order, shared_prefix=False)
    question, answer = "How many ships are in the image?", "three"
    batch = encode_scored(processor, scene_images[:1], [question], [answer], prompt_order=order)
    pads = int(batch["image_grid_thw"][0].prod()) // 4  # merge 2 x 2
    image = "<|vision_start|>" + "<|image_pad|>" * pads + "<|vision_end|>"
    user = image + question if order == "image_first" else question + image
    stock = (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        f"<|im_start|>user\n{user}<|im_end|>\n<|im_start|>assistant\n{answer}<|im_end|>\n"
    )
    expected = processor.tokenizer(stock, add_special_tokens=False)["input_ids"]
    assert batch["input_ids"][0].tolist() == expected
    with torch.no_grad():
        direct = model(**batch).logits.squeeze(-1)
    torch.testing.assert_close(
        torch.as_tensor(scorer.score(scene_images[:1], [question], [answer])), direct, atol=ATOL, rtol=0
    )
    other = "text_first" if order == "image_first" else "image_first"
    moved = RewardModelScorer(model, processor, prompt_order=other, shared_prefix=False)
    assert abs(float(moved.score(scene_images[:1], [question], [answer])[0]) - float(direct[0])) > 1e-4


def test_tiny_clip_is_identical_when_built_in_two_processes(tmp_path):
    """Fresh clones must get the same CLIP baseline (the BPE trainer's ids varied between processes)."""
    import subprocess
    import sys

    code = "from rs_reward.modeling.tiny import resolve_model_path; print(resolve_model_path('tiny:clip-tiny'))"
    built = []
    for name in ("a", "b"):
        env = {**os.environ, "RS_REWARD_CACHE": str(tmp_path / name), "HF_HUB_OFFLINE": "1"}
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
        built.append(Path(result.stdout.strip().splitlines()[-1]))
    for file in ("tokenizer.json", "model.safetensors", "config.json"):
        assert (built[0] / file).read_bytes() == (built[1] / file).read_bytes(), file


def test_score_resolve_choices_reads_the_named_option_everywhere_and_is_saved_with_the_model(
    tiny_generator_path, processor, scene_images, tmp_path
):
    """`score_resolve_choices`: a multiple-choice answer is read with the option its letter names written after
    it, by the scorer (and so GRPO rewards and best-of-N) and by the reward trainer's collator; the setting is
    saved with a full checkpoint and beside a LoRA adapter, so later uses read as the model trained."""
    from rs_reward.data.chat import MC_SUFFIX, parse_choices, resolve_choice, resolves_choices
    from rs_reward.scoring import RewardModelScorer
    from rs_reward.trainers.reward import VisionPreferenceCollator

    question = "What is the land cover?" + MC_SUFFIX.format("A. forest B. bare soil C. water D. farmland")
    assert parse_choices(question) == {"A": "forest", "B": "bare soil", "C": "water", "D": "farmland"}
    assert resolve_choice(question, "B") == "B (bare soil)"
    assert resolve_choice(question, "The answer is D.") == "The answer is D. (farmland)"
    assert resolve_choice(question, "E") == "E" and resolve_choice(question, "") == ""  # no listed letter
    assert resolve_choice("What is the land cover?", "B") == "B" and parse_choices("") == {}

    model = load_reward_model(
        RSModelConfig(model_name_or_path=tiny_generator_path, score_resolve_choices=True), trainable=False
    )
    assert resolves_choices(model)
    image = scene_images[:1] * 2
    resolved = RewardModelScorer(model, processor).score(image, [question] * 2, ["B", "C"])
    model.config.score_resolve_choices = False  # the letter alone: the same model reads what it is given
    plain_scorer = RewardModelScorer(model, processor)
    written = plain_scorer.score(image, [question] * 2, ["B (bare soil)", "C (water)"])
    letters = plain_scorer.score(image, [question] * 2, ["B", "C"])
    model.config.score_resolve_choices = True
    np.testing.assert_allclose(resolved, written, atol=ATOL)
    assert not np.allclose(resolved, letters, atol=1e-3)

    row = {
        "images": [],
        "prompt": [{"role": "user", "content": question}],
        "chosen": [{"role": "assistant", "content": "B"}],
        "rejected": [{"role": "assistant", "content": "C"}],
    }
    for shared in (False, True):
        batch = VisionPreferenceCollator(processor, shared_prefix=shared, resolve_choices=True)([row])
        text = " ".join(processor.tokenizer.batch_decode(batch["input_ids"]))
        assert "B (bare soil)" in text and "C (water)" in text, shared
    model.save_pretrained(tmp_path / "full")
    assert resolves_choices(
        load_reward_model(RSModelConfig(model_name_or_path=str(tmp_path / "full")), trainable=False)
    )
    lora = load_reward_model(
        RSModelConfig(model_name_or_path=tiny_generator_path, use_peft=True, lora_r=4, score_resolve_choices=True)
    )
    lora.save_pretrained(tmp_path / "adapter")
    save_score_config(lora, tmp_path / "adapter")
    reloaded = load_reward_model(RSModelConfig(model_name_or_path=str(tmp_path / "adapter")), trainable=False)
    assert resolves_choices(reloaded)
    plain = load_reward_model(RSModelConfig(model_name_or_path=tiny_generator_path), trainable=False)
    assert not resolves_choices(plain)  # the paper's layout unless asked
