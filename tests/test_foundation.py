"""The SynthRS foundation: dense conversations, per-token perception targets, training and resume, and the
committed checkpoint's perception on scenes it has never seen."""

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from rs_reward.data.synthrs import texts as T
from rs_reward.foundation import (
    CELL,
    GROUP_COUNT,
    TARGET_COLUMNS,
    FoundationConfig,
    assistant_labels,
    dense_messages,
    evaluate_perception,
    make_scene,
    token_targets,
    train_foundation,
)
from rs_reward.modeling.processing import load_processor
from rs_reward.modeling.tiny import FOUNDATION_DIR, resolve_model_path


def test_dense_questions_ask_every_type_about_every_group():
    config = FoundationConfig()
    for index in range(20):
        scene, _, rng = make_scene(config, "train", index)
        questions = T.dense_questions(scene, rng)
        types = [q.qtype for q in questions]
        assert types.count("land_cover") == 1 and types.count("presence") == 2
        for qtype in ("kind", "count", "colour", "position"):
            assert types.count(qtype) == len(scene.groups)
        answers = {q.question: q.answer for q in questions}
        for g in scene.groups:
            assert answers[f"How many {T.KIND_NOUN[g.kind][1]} are there in the image?"] == str(g.count)
            where = f"What kind of object is {T.POSITION_PHRASE[g.position]} of the image?"
            assert answers[where] == T.KIND_NOUN[g.kind][0]


def test_training_conversations_ask_presence_of_every_kind_and_check_descriptions():
    config = FoundationConfig()
    answers = {"yes": 0, "no": 0}
    for index in range(40):
        scene, _, rng = make_scene(config, "train", index)
        questions = T.dense_training_questions(scene, rng, descriptions=2)
        presence = {q.question: q.answer for q in questions if q.qtype == "presence"}
        assert len(presence) == len(T.OBJECT_KINDS)  # every kind, so no answer implies another
        for kind in T.OBJECT_KINDS:
            expected = "yes" if scene.group(kind) is not None else "no"
            assert presence[f"Is there any {T.KIND_NOUN[kind][0]} in the image?"] == expected
        for q in (q for q in questions if q.qtype == "description"):
            answers[q.answer] += 1
            text = q.question.split('"')[1]
            # A correct description states exactly the scene's facts; a wrong one does not.
            assert (T.parse_caption_facts(text) == T.scene_facts(scene)) == (q.answer == "yes"), text
    assert min(answers.values()) >= 25, answers  # about half correct, half with one grounded error


def test_token_targets_count_object_centres_and_name_their_group_per_merged_token():
    scene, _, _ = make_scene(FoundationConfig(), "train", 3)
    targets, land = token_targets(scene)
    assert targets.shape == (16, TARGET_COLUMNS) == (16, 1 + 5 + 3 + 2)
    assert targets[:, 0].sum() == min(sum(g.count for g in scene.groups), 4 * 16)
    assert land == T.LAND_COVERS.index(scene.land_cover)
    occupied = targets[:, 0] > 0
    # A token holding a centre names its group's cell and size; an empty one names none.
    assert (targets[~occupied, CELL] == -1).all() and (targets[~occupied, GROUP_COUNT] == 0).all()
    groups = {(g.cell, g.count) for g in scene.groups}
    assert {(int(c), int(n)) for c, n in targets[occupied][:, [CELL, GROUP_COUNT]]} <= groups
    for g in scene.groups:
        kind_column = 1 + T.OBJECT_KINDS.index(g.kind)
        assert targets[:, kind_column].sum() >= 1
        # Every token that holds an object of the group (and no other group's) carries the group's place and size.
        for obj in g.objects:
            x1, y1, x2, y2 = obj.box
            t = targets[min(3, int((y1 + y2) / 2 // 28)) * 4 + min(3, int((x1 + x2) / 2 // 28))]
            if t[1 : 1 + 5].sum() == 1:
                assert (t[CELL], t[GROUP_COUNT]) == (g.cell, g.count)


def test_the_perception_heads_learn_where_each_token_is():
    """The Qwen2-VL vision tower has rotary positions only: the place targets are what gives its tokens a place.
    Fitting the heads alone on fixed random features cannot read a token's index; with the features trained it
    can (a few dozen steps of the tiny tower)."""
    from rs_reward.foundation import PerceptionHeads

    torch.manual_seed(0)
    scenes = [make_scene(FoundationConfig(), "train", i)[0] for i in range(8)]
    targets = torch.from_numpy(np.stack([token_targets(s)[0] for s in scenes]))
    land = torch.tensor([token_targets(s)[1] for s in scenes])
    heads = PerceptionHeads(width=16, tokens=16)
    same_everywhere = torch.randn(8, 1, 16).expand(8, 16, 16)  # features that do not depend on the place
    _, accuracy = heads(same_everywhere, targets, land)
    assert accuracy["place"] == pytest.approx(1 / 16)  # one answer for every token
    placed = torch.nn.Parameter(torch.randn(1, 16, 16))  # features that do
    optimizer = torch.optim.Adam([placed, *heads.parameters()], lr=3e-2)
    for _ in range(60):
        loss, accuracy = heads(placed.expand(8, 16, 16), targets, land)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert accuracy["place"] == 1.0


def test_kind_weight_scales_the_object_kind_term_alone():
    """`kind_weight` multiplies the kind term of the perception loss and nothing else (data card row 12)."""
    from rs_reward.foundation import PerceptionHeads

    scenes = [make_scene(FoundationConfig(), "train", i)[0] for i in range(4)]
    targets = torch.from_numpy(np.stack([token_targets(s)[0] for s in scenes]))
    land = torch.tensor([token_targets(s)[1] for s in scenes])
    features = torch.randn(4, 16, 16, generator=torch.Generator().manual_seed(0))
    losses = {}
    for weight in (0.0, 1.0, 5.0):
        torch.manual_seed(0)
        heads = PerceptionHeads(width=16, tokens=16, kind_weight=weight)
        losses[weight] = heads(features, targets, land)[0].item()
    kind_term = losses[1.0] - losses[0.0]
    assert kind_term > 0
    assert losses[5.0] - losses[0.0] == pytest.approx(5 * kind_term, rel=1e-4)


def test_benchmark_questions_ask_in_the_evaluation_formats():
    """`benchmark_questions` (config_formats.yaml): multiple choice answered by the letter of the true value,
    grounding answered by the object's box, classification from the class list, worded as the evaluation asks."""
    from rs_reward.answers import extract_choice
    from rs_reward.data.chat import MC_SUFFIX

    seen = set()
    for index in range(20):
        scene, _, rng = make_scene(FoundationConfig(), "train", index)
        messages = dense_messages(scene, rng, caption_probability=0.0, benchmark_questions=3)
        turns = list(zip(messages[::2], messages[1::2]))
        plain = dense_messages(*make_scene(FoundationConfig(), "train", index)[::2], caption_probability=0.0)
        assert len(turns) == len(plain) // 2 + 3
        for user, assistant in turns:
            question, answer = user["content"][-1]["text"], assistant["content"][0]["text"]
            if "Choices:" in question:
                seen.add("mc")
                assert question.endswith(MC_SUFFIX.format("")[-50:]) and extract_choice(answer) == answer
                chosen = question.split(f"{answer}. ")[1].split(" ")[0]
                assert any(q == question.split("\nChoices:")[0] and chosen in a for q, a in _plain_answers(plain))
            elif question.startswith("Output the bounding box"):
                seen.add("vg")
                expression = question.split("<|object_ref_start|>")[1].split("<|object_ref_end|>")[0]
                assert [list(box) for e, box in T.grounding_targets(scene) if e == expression] == [json.loads(answer)]
            elif question.startswith("Classify the image"):
                seen.add("cls")
                assert answer == T.LAND_COVER_NAME[scene.land_cover]
    assert seen == {"mc", "vg", "cls"}


def _plain_answers(messages):
    return [(u["content"][-1]["text"], a["content"][0]["text"]) for u, a in zip(messages[::2], messages[1::2])]


def test_perception_scores_letters_and_boxes_in_their_formats():
    from rs_reward.foundation import _correct, perception_rows

    rows = perception_rows(FoundationConfig(), scenes=6)
    types = {r["qtype"] for r in rows}
    assert {"multiple_choice", "grounding", "count", "kind"} <= types
    mc = next(r for r in rows if r["qtype"] == "multiple_choice")
    assert _correct("multiple_choice", f"{mc['answer']}.", mc["answer"], 112)
    assert not _correct("multiple_choice", "E" if mc["answer"] != "E" else "A", mc["answer"], 112)
    box = json.loads(next(r for r in rows if r["qtype"] == "grounding")["answer"])
    near = [box[0] + 1, box[1], box[2] + 1, box[3]]
    far = [v + 40 for v in box]
    assert _correct("grounding", json.dumps(near), json.dumps(box), 112)
    assert not _correct("grounding", json.dumps(far), json.dumps(box), 112)
    assert not _correct("grounding", "airplane", json.dumps(box), 112)


def test_only_the_answers_are_labelled():
    processor = load_processor(resolve_model_path("tiny:qwen2-vl-tiny"))
    scene, image, rng = make_scene(FoundationConfig(), "train", 0)
    messages = dense_messages(scene, rng, caption_probability=1.0)
    text = processor.apply_chat_template(messages, tokenize=False)
    inputs = processor(text=[text], images=[image], return_tensors="pt")
    labels = assistant_labels(inputs["input_ids"], processor.tokenizer)[0]
    labelled = processor.tokenizer.decode(labels[labels != -100])
    answers = [m["content"][0]["text"] for m in messages if m["role"] == "assistant"]
    assert labelled == "".join(a + "<|im_end|>" for a in answers)


def _weights(folder):
    return load_file(str(folder / "model.safetensors"))


def test_training_changes_the_model_and_a_resumed_run_ends_where_an_uninterrupted_one_does(tmp_path):
    common = dict(
        model_name_or_path="tiny:qwen2-vl-tiny",
        vision_steps=2,
        max_steps=4,
        batch_size=2,
        lm_batch_size=2,
        warmup_steps=1,
        eval_scenes=2,
        eval_every=0,
        num_workers=0,
        presence_of_every_kind=True,  # the conversations of config_continue.yaml
        description_checks=1,
    )
    whole = train_foundation(FoundationConfig(output_dir=str(tmp_path / "whole"), **common))
    assert whole["steps"] == 4 and set(whole["perception"]) >= {"land_cover", "count", "kind"}
    assert json.loads((tmp_path / "whole" / "model" / "metrics.json").read_text())["steps"] == 4
    stopped = train_foundation(FoundationConfig(output_dir=str(tmp_path / "resumed"), max_minutes=0, **common))
    assert stopped == {"stopped_at": 1}
    assert (tmp_path / "resumed" / "checkpoint" / "state.pt").is_file()
    resumed = train_foundation(FoundationConfig(output_dir=str(tmp_path / "resumed"), **common))
    assert resumed["steps"] == 4
    assert not (tmp_path / "resumed" / "checkpoint").exists(), "the checkpoint is removed once the model is saved"
    start = _weights(Path(resolve_model_path("tiny:qwen2-vl-tiny")))
    a, b = _weights(tmp_path / "whole" / "model"), _weights(tmp_path / "resumed" / "model")
    assert any(not torch.equal(start[k], a[k]) for k in a if "visual" in k), "the vision tower trained"
    assert any(not torch.equal(start[k], a[k]) for k in a if k.startswith("model.layers")), (
        "the language model trained"
    )
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6, msg=key)


def test_first_scene_moves_a_run_past_the_scenes_another_run_trained_on():
    """A conversation phase started from a separate vision run's model (`first_scene`) reads the scenes that a
    single run would have read after its vision phase, none of the vision run's."""
    from rs_reward.foundation import make_batch

    processor = load_processor(resolve_model_path("tiny:qwen2-vl-tiny"), min_pixels=112 * 112, max_pixels=112 * 112)
    single = FoundationConfig(vision_steps=3, max_steps=5, batch_size=2, lm_batch_size=2)
    split = FoundationConfig(vision_steps=0, max_steps=2, batch_size=2, lm_batch_size=2, first_scene=3 * 2)
    a, targets_a, _ = make_batch(single, processor, 3)
    b, targets_b, _ = make_batch(split, processor, 0)
    torch.testing.assert_close(a["pixel_values"], b["pixel_values"])
    assert torch.equal(targets_a, targets_b)
    _, targets_0, _ = make_batch(FoundationConfig(vision_steps=0, max_steps=2, lm_batch_size=2), processor, 0)
    assert not torch.equal(targets_0, targets_b)


def test_each_foundation_phase_names_the_runs_before_it_in_its_card(tmp_path):
    """The three-recipe foundation (`make foundation`): a vision-phase run, a conversation run from its model, then
    the benchmark-format run from that; each one's metrics and model card say what the runs before it did."""
    from rs_reward.hub import foundation_model_card

    common = dict(batch_size=2, lm_batch_size=2, warmup_steps=1, eval_scenes=2, eval_every=0, num_workers=0)
    vision = FoundationConfig(
        output_dir=str(tmp_path / "vision"), model_name_or_path="tiny:qwen2-vl-tiny", vision_steps=2, max_steps=2
    )
    train_foundation(FoundationConfig(**{**vision.__dict__, **common}))
    talk = FoundationConfig(
        output_dir=str(tmp_path / "talk"),
        model_name_or_path=str(tmp_path / "vision" / "model"),
        vision_steps=0,
        max_steps=1,
        first_scene=4,
        **common,
    )
    result = train_foundation(talk)
    assert result["started_from"]["steps"] == 2 and result["started_from"]["config"]["vision_steps"] == 2
    card = foundation_model_card(tmp_path / "talk" / "model", recipe="r.yaml", commit="abc", result=result)
    text = card.read_text()
    assert (
        "2 runs, each from the model the one before made: the vision phase (`" in text
        and "steps: 2 vision steps" in text
        and "training scene 4" in text
    )
    assert "then 1 conversation steps" in text
    # The third phase (config_formats.yaml) continues the conversation run: its card names all three runs and
    # shows the perception before it beside the perception after it.
    formats = FoundationConfig(
        **{
            **talk.__dict__,
            "output_dir": str(tmp_path / "formats"),
            "model_name_or_path": str(tmp_path / "talk" / "model"),
            "first_scene": 9,
            "benchmark_questions": 3,
        }
    )
    third = train_foundation(formats)
    assert "started_from" not in third and third["continued_from"]["steps"] == 1
    assert third["continued_from"]["started_from"]["steps"] == 2
    assert third["continued_from"]["perception"] == result["perception"]
    assert {"multiple_choice", "grounding"} <= set(third["perception"])
    text = foundation_model_card(
        tmp_path / "formats" / "model", recipe="f.yaml", commit="abc", result=third
    ).read_text()
    assert (
        "3 runs, each from the model the one before made: the vision phase" in text
        and "from training scene 9, with 3 turns" in text
    )
    assert "| before this run |" in text and "recipe: `f.yaml`, the last of the 3" in text
    assert "steps: 2 vision steps (batch 2)" in text and "minutes; then 1 conversation steps (batch 2)" in text
    from rs_reward.pipeline.report import foundation_training

    assert foundation_training(third) == (
        f"2 vision steps ({third['continued_from']['started_from']['minutes']} min), then 1 conversation steps"
        f" ({third['continued_from']['minutes']} min), then 1 steps in the benchmark formats ({third['minutes']} min)"
    )
    # However long the chain (config_isolated.yaml is the fourth), the card and the report name every run.
    isolated = FoundationConfig(
        **{
            **formats.__dict__,
            "output_dir": str(tmp_path / "isolated"),
            "model_name_or_path": str(tmp_path / "formats" / "model"),
            "benchmark_questions": 0,
            "isolated_turns": True,
        }
    )
    fourth = train_foundation(isolated)
    assert fourth["continued_from"]["continued_from"]["perception"] == result["perception"]
    text = foundation_model_card(
        tmp_path / "isolated" / "model", recipe="i.yaml", commit="abc", result=fourth
    ).read_text()
    assert "4 runs, each from the model the one before made: the vision phase" in text
    assert "a run of steps in the benchmark formats (`" in text and "then this run (steps with isolated turns" in text
    assert foundation_training(fourth).endswith(
        f"then 1 steps in the benchmark formats ({third['minutes']} min), then 1 steps with isolated turns"
        f" ({fourth['minutes']} min)"
    )


def test_the_config_refuses_an_image_size_off_the_token_grid():
    with pytest.raises(ValueError, match="multiple of 28"):
        FoundationConfig(image_size=100)


def test_the_committed_foundation_perceives_scenes_it_has_never_seen():
    """Fresh scenes (a seed the recipe never used): the checkpoint must stay far above chance on every question
    type; this fails if the weights stop seeing (e.g. a random or image-blind model)."""
    from transformers import Qwen2VLForConditionalGeneration

    card = json.loads((FOUNDATION_DIR / "metrics.json").read_text())
    world = {k: card["config"][k] for k in ("image_size", "object_scale", "max_groups", "haze_probability")}
    config = FoundationConfig(seed=987, **world)
    path = resolve_model_path("tiny:qwen2-vl-synthrs")
    model = Qwen2VLForConditionalGeneration.from_pretrained(path, dtype=torch.float32)
    pixels = config.image_size**2
    processor = load_processor(path, min_pixels=pixels, max_pixels=pixels)
    metrics = evaluate_perception(model, processor, config, scenes=40)
    accuracy = {t: m["accuracy"] for t, m in metrics.items()}
    # Margins under what the committed weights reached on 300 held-out scenes (land cover 1.00, colour 0.99,
    # position 0.98, presence 0.93, count 0.82, comparison 0.91, kind 0.84 against chance 0.17 / 0.33 / 0.11 /
    # 0.50 / 0.25 / 0.50 / 0.20), wide enough for 40 scenes; an image-blind or random model is at chance on each.
    assert accuracy["land_cover"] >= 0.9, accuracy
    assert accuracy["colour"] >= 0.85, accuracy
    assert accuracy["position"] >= T.QTYPE_CHANCE["position"] + 0.6, accuracy
    assert accuracy["count"] >= T.QTYPE_CHANCE["count"] + 0.35, accuracy
    assert accuracy["kind"] >= T.QTYPE_CHANCE["kind"] + 0.4, accuracy
    assert accuracy["presence"] >= T.QTYPE_CHANCE["presence"] + 0.25, accuracy
    # Over the question types it was trained on (not the description checks and benchmark formats, also asked).
    assert np.mean([accuracy[t] - metrics[t]["chance"] for t in T.CLOSED_QTYPES]) >= 0.35, accuracy


def test_kind_questions_first_come_before_any_text_names_a_kind():
    """`kind_questions_first` (data card row 16): asked later, a kind question's answer is in the earlier turns'
    texts ("How many ships are there?"), so the kind questions open the conversation; the rest keep their order."""
    nouns = [n for pair in T.KIND_NOUN.values() for n in pair]
    kind_turns = leaked = 0
    for index in range(100):
        scene, _, rng = make_scene(FoundationConfig(), "train", index)
        default = _plain_answers(dense_messages(scene, rng, caption_probability=0.0))
        scene, _, rng = make_scene(FoundationConfig(), "train", index)
        first = _plain_answers(dense_messages(scene, rng, caption_probability=0.0, kind_questions_first=True))
        is_kind = [q.startswith("What kind of object") for q, _ in first]
        assert is_kind == sorted(is_kind, reverse=True) and sum(is_kind) == len(scene.groups)
        assert not any(n in first[0][0] for n in nouns)
        rest = [t for t, kind in zip(first, is_kind) if not kind]
        assert rest == [t for t in default if not t[0].startswith("What kind of object")]
        for position, (question, _) in enumerate(default):
            if question.startswith("What kind of object"):
                kind_turns += 1
                leaked += any(n in q for q, _ in default[:position] for n in nouns)
    assert leaked > 0.8 * kind_turns, "in the drawn order most kind questions follow a text that names a kind"


def test_isolated_turns_learn_each_answer_as_if_asked_alone():
    """`isolated_turns` (config_isolated.yaml): the turns of a conversation are packed behind one image, and the
    loss is the one of the same questions asked one per sequence, as the evaluation asks them (so no answer can be
    read from another turn), while the image passes through the vision tower once per conversation."""
    from transformers import AutoModelForImageTextToText

    from rs_reward.foundation import answer_loss, make_batch

    path = resolve_model_path("tiny:qwen2-vl-synthrs")  # a model that reads the turns (a random one is uniform)
    model = AutoModelForImageTextToText.from_pretrained(path).eval()
    processor = load_processor(path)
    config = FoundationConfig(lm_batch_size=2, isolated_turns=True, caption_probability=1.0, object_scale=1.3)
    packed, targets, _ = make_batch(config, processor, step=0)
    assert len(packed["input_ids"]) == len(packed["image_grid_thw"]) == len(targets) == 2

    texts, images = [], []
    for index in range(2):
        scene, image, rng = make_scene(config, "train", index)
        messages = dense_messages(scene, rng, caption_probability=1.0)
        for user, answer in zip(messages[::2], messages[1::2]):
            question = {"role": "user", "content": [{"type": "image"}, user["content"][-1]]}
            texts.append(processor.apply_chat_template([question, answer], tokenize=False))
            images.append(image)
    alone = processor(text=texts, images=images, padding=True, return_tensors="pt")
    alone["labels"] = assistant_labels(alone["input_ids"], processor.tokenizer)
    assert (packed["labels"] != -100).sum() == (alone["labels"] != -100).sum()
    with torch.no_grad():
        assert answer_loss(model, dict(packed)).item() == pytest.approx(answer_loss(model, dict(alone)).item(), 1e-4)
        conversation = make_batch(replace(config, isolated_turns=False), processor, step=0)[0]
        assert abs(answer_loss(model, conversation).item() - answer_loss(model, dict(alone)).item()) > 0.02
