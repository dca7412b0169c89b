"""SynthRS: the renderer draws the truth, operators do what they say, datasets are right, deterministic, disjoint."""

import hashlib
import json
import re

import numpy as np
import pytest
from datasets import load_dataset

from rs_reward.data.io import Rejects
from rs_reward.data.preference import rsrm_pairs
from rs_reward.data.synthrs import CAPTION_OPERATORS, GROUNDED_OPERATORS, SynthRSConfig, build, load_scenes
from rs_reward.data.synthrs import texts as T
from rs_reward.data.synthrs.probes import pairs_from_rsrm, text_only_pair_probe
from rs_reward.data.synthrs.world import render, sample_truth


SMALL = dict(
    caption_pairs_train=24,
    caption_pairs_test=8,
    instruction_pairs_train=24,
    instruction_pairs_test=8,
    pool_size=30,
    pretrain_size=10,
    eval_size=16,
    rl_size=12,
)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("synthrs") / "data"
    return build(SynthRSConfig(output_dir=str(root), **SMALL), progress=False)


def _scene(seed, size=112, **kwargs):
    rng = np.random.default_rng(seed)
    scene = sample_truth(rng, f"s{seed}", size)
    state = rng.bit_generator.state
    image = np.asarray(render(scene, rng, **kwargs), dtype=np.int16)
    rng.bit_generator.state = state
    empty = np.asarray(render(scene, rng, draw_objects=False, **kwargs), dtype=np.int16)
    return scene, image, empty


@pytest.mark.parametrize("seed", range(12))
def test_boxes_cover_the_pixels_drawn_for_their_objects(seed):
    scene, image, empty = _scene(seed)
    changed = np.abs(image - empty).max(-1) > 12
    inside = np.zeros_like(changed)
    for group in scene.groups:
        assert len(group.objects) == group.count
        for obj in group.objects:
            x1, y1, x2, y2 = obj.box
            assert 0 <= x1 < x2 <= scene.size and 0 <= y1 < y2 <= scene.size
            assert changed[y1:y2, x1:x2].mean() > 0.3, "the box holds its object's pixels"
            inside[max(0, y1 - 2) : y2 + 2, max(0, x1 - 2) : x2 + 2] = True  # 2 px for the optional blur
    assert changed.any()
    assert not (changed & ~inside).any(), "nothing is drawn outside the boxes"


@pytest.mark.parametrize("seed", range(12))
def test_object_centres_lie_in_their_group_cell(seed):
    scene, _, _ = _scene(seed)
    cell = scene.size / 3
    for group in scene.groups:
        row, col = divmod(group.cell, 3)
        for obj in group.objects:
            cx, cy = (obj.box[0] + obj.box[2]) / 2, (obj.box[1] + obj.box[3]) / 2
            assert col * cell - 2 <= cx <= (col + 1) * cell + 2 and row * cell - 2 <= cy <= (row + 1) * cell + 2


def test_large_images_render():
    scene, image, _ = _scene(3, size=448, object_scale=1.5)
    assert image.shape == (448, 448, 3)
    assert sum(g.count for g in scene.groups) == sum(len(g.objects) for g in scene.groups)


EXPECTED_CHANGE = {
    "wrong_count": "count",
    "wrong_attribute": "colour",
    "wrong_position": "cell",
    "wrong_land_cover": "land_cover",
    "hallucinated_object": "kind",
}


@pytest.mark.parametrize("operator", CAPTION_OPERATORS)
def test_each_operator_changes_what_it_claims_and_lowers_quality(operator):
    applied = 0
    for seed in range(40):
        rng = np.random.default_rng(seed)
        scene = sample_truth(rng, "s", 112)
        claims = T.claims_from_scene(scene, rng)
        assert T.quality(claims, scene) == 1.0
        corrupted = T.apply_operator(operator, claims, scene, rng)
        if corrupted is None:
            continue
        applied += 1
        assert T.quality(corrupted, scene) < 1.0
        assert T.render_text(corrupted) != T.render_text(claims)
        before, after = T.claimed_facts(claims), T.claimed_facts(corrupted)
        if operator in EXPECTED_CHANGE:
            changed = {f[0] for f in before ^ after}
            assert EXPECTED_CHANGE[operator] in changed
            assert after - T.scene_facts(scene), "a grounded operator claims something false"
        if operator in ("omission", "truncation", "generic"):
            assert after < before, "these only remove facts"
        if operator == "repetition":
            assert after == before
    assert applied >= 20, f"{operator} applied to only {applied} of 40 captions"


def test_closed_answers_wrong_answers_come_from_the_same_space():
    rng = np.random.default_rng(0)
    for _ in range(50):
        scene = sample_truth(rng, "s", 112)
        qa = T.closed_question(scene, rng)
        wrong, operator = T.wrong_answer(qa, rng)
        assert wrong != qa.answer and wrong in qa.space and qa.answer in qa.space
        assert operator in GROUNDED_OPERATORS


def test_chosen_beats_every_rejected(dataset):
    n = 0
    for split in ("train", "test"):
        for source in ("synthrs_caption", "synthrs_instruction"):
            for item in json.loads((dataset / "preference" / split / f"{source}.json").read_text()):
                assert len(item["rejected_quality"]) == len(item["rejected_operators"]) >= 1
                for q in item["rejected_quality"]:
                    assert item["chosen_quality"] > q
                    n += 1
    assert n > 64


def test_rsrm_layout_reads_back_with_the_real_loader(dataset):
    rejects = Rejects()
    pairs = list(
        rsrm_pairs(dataset / "preference" / "train", dataset / "preference" / "train" / "images", rejects=rejects)
    )
    items = [
        i
        for s in ("synthrs_caption", "synthrs_instruction")
        for i in json.loads((dataset / "preference" / "train" / f"{s}.json").read_text())
    ]
    assert len(rejects) == 0
    assert len(pairs) == sum(1 if isinstance(i["rejected"], str) else len(i["rejected"]) for i in items)
    assert any(isinstance(i["rejected"], list) for i in items) and any(isinstance(i["rejected"], str) for i in items)
    assert {p["task"] for p in pairs} == {"caption", "instruction"}
    assert all(p["prompt"][0]["content"] == "" for p in pairs if p["source"] == "synthrs_caption")


def test_preference_parquet_is_a_datasets_dataset_with_images(dataset):
    ds = load_dataset("parquet", data_dir=str(dataset / "preference" / "hf"), split="test")
    row = ds[0]
    assert row["images"][0].size == (112, 112)
    assert row["chosen"][0]["role"] == "assistant" and row["prompt"][0]["role"] == "user"
    assert set(ds.column_names) >= {"id", "images", "prompt", "chosen", "rejected", "task", "source"}


def test_pool_truth_is_stored_apart_and_covers_every_sample(dataset):
    import pandas as pd

    pool = pd.read_csv(dataset / "pool" / "pool.csv", keep_default_na=False)
    truth = pd.read_parquet(dataset / "pool" / "truth.parquet")
    assert "quality" not in pool.columns and "operators" not in pool.columns
    assert list(pool["id"]) == list(truth["id"])
    assert set(pool.columns) >= {"id", "filepath", "title", "question", "task"}
    assert truth["quality"].between(0, 1).all()
    assert (truth.loc[truth["operators"] == "", "quality"] == 1.0).all()
    assert all((dataset / "pool" / f).is_file() for f in pool["filepath"])


def test_eval_splits_in_real_formats(dataset):
    cls = json.loads((dataset / "eval" / "cls_SynthRS.json").read_text())
    assert all((dataset / "eval" / r["image_path"] / r["image"]).is_file() for r in cls)
    assert all(r["conversations"][0]["value"].startswith("<image>\n") for r in cls)
    classes = sorted(p.name for p in (dataset / "eval" / "classification").iterdir() if p.is_dir())
    assert set(classes) <= {"water", "forest", "farmland", "bare_land", "residential", "industrial"}
    mc = json.loads((dataset / "eval" / "mc_SynthRS.json").read_text())
    assert all(q["answer"] in "ABCD" for d in mc["data"] for q in d["qa_pairs"])
    karpathy = json.loads((dataset / "eval" / "dataset_synthrs.json").read_text())
    assert all(len(i["sentences"]) == 2 for i in karpathy["images"])
    vg = json.loads((dataset / "eval" / "VG_SynthRS.json").read_text())
    scenes = load_scenes(dataset, "eval")
    for record in vg:
        box = json.loads(record["conversations"][1]["value"])
        scene = scenes[record["image"].rsplit(".", 1)[0]]
        assert any(list(o.box) == box for g in scene.groups for o in g.objects)


def test_zero_shot_class_names_are_the_captions_words(dataset):
    # CLIP's zero-shot prompts ("a satellite photo of {}.") ask for the class names: they must be the words the
    # captions use for the land cover, or the prompts ask a CLIP for a phrase no caption taught it
    names = json.loads((dataset / "eval" / "classification" / "classnames.json").read_text())
    assert {p.name for p in (dataset / "eval" / "classification").iterdir() if p.is_dir()} <= set(names)
    scenes = load_scenes(dataset, "eval")
    karpathy = json.loads((dataset / "eval" / "dataset_synthrs.json").read_text())["images"]
    named = 0
    for image in karpathy:
        scene = scenes[image["filename"].rsplit(".", 1)[0]]
        for sentence in image["sentences"]:
            text = sentence["raw"].lower()
            # the whole noun phrase: "of open water.", "by a residential area." (not "water" or "residential")
            mentioned = [lc for lc, name in names.items() if re.search(rf"\b(of|by|shows|a|an) {name}\.", text)]
            assert mentioned in ([], [scene.land_cover]), (text, mentioned)
            named += bool(mentioned)
    assert named >= len(karpathy)  # most captions open with the land cover


def test_rl_prompts(dataset):
    rows = [json.loads(line) for line in (dataset / "rl" / "prompts.jsonl").open()]
    assert {r["reward_type"] for r in rows} == {"em", "mc", "iou", "open"}
    for r in rows:
        assert r["prompt"][0]["role"] == "user" and r["solution"]
        if r["reward_type"] == "iou":
            assert len(json.loads(r["solution"])) == 4
    # Closed prompts are asked as the evaluation split asks its VQA questions (nothing after the question): an
    # answer-style suffix the policy never saw in SFT once cut its accuracy on them from 0.75 to 0.13
    evaluation = [json.loads(line) for line in (dataset / "eval" / "eval.jsonl").open()]
    endings = {row["question"].rsplit("?", 1)[1] for row in evaluation if row["task"] == "vqa"}
    assert endings == {""}
    closed = [r["prompt"][-1]["content"] for r in rows if r["reward_type"] == "em"]
    assert closed and all(prompt.rsplit("?", 1)[1] in endings for prompt in closed), closed


def test_splits_are_disjoint_by_scene_and_image(dataset):
    seen_ids, seen_images = {}, {}
    for path in sorted((dataset / "truth").glob("scenes_*.jsonl")):
        for line in path.open():
            scene_id = json.loads(line)["id"]
            assert scene_id not in seen_ids, f"{scene_id} in {path.name} and {seen_ids.get(scene_id)}"
            seen_ids[scene_id] = path.name
    for folder in (
        "preference/train/images",
        "preference/test/images",
        "pool/images",
        "pretrain/images",
        "eval/images",
        "rl/images",
    ):
        for image in (dataset / folder).rglob("*.jpg"):
            digest = hashlib.sha256(image.read_bytes()).hexdigest()
            assert seen_images.setdefault(digest, folder) == folder, f"{image} also in {seen_images[digest]}"


def _digests(root):
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "manifest.json"
    }


def test_same_seed_same_bytes_whatever_the_worker_count(tmp_path):
    small = dict(SMALL, caption_pairs_train=6, instruction_pairs_train=6, pool_size=8, pretrain_size=4)
    one = build(SynthRSConfig(output_dir=str(tmp_path / "a"), num_workers=1, **small), progress=False)
    two = build(SynthRSConfig(output_dir=str(tmp_path / "b"), num_workers=2, **small), progress=False)
    other = build(SynthRSConfig(output_dir=str(tmp_path / "c"), seed=1, num_workers=1, **small), progress=False)
    assert _digests(one) == _digests(two)
    assert _digests(one) != _digests(other)


def test_a_matching_folder_is_reused_and_force_rebuilds(tmp_path):
    small = dict(
        SMALL, caption_pairs_train=2, instruction_pairs_train=2, pool_size=2, pretrain_size=2, eval_size=2, rl_size=2
    )
    config = SynthRSConfig(output_dir=str(tmp_path / "d"), num_workers=1, **small)
    out = build(config, progress=False)
    stamp = (out / "manifest.json").stat().st_mtime_ns
    assert build(config, progress=False) == out and (out / "manifest.json").stat().st_mtime_ns == stamp
    config.force = True
    build(config, progress=False)
    assert (out / "manifest.json").stat().st_mtime_ns != stamp
    assert not list(tmp_path.glob(".*partial*")), "no staging folder left behind"


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="image_size"):
        SynthRSConfig(image_size=1000)
    with pytest.raises(ValueError, match="unknown caption operators"):
        SynthRSConfig(caption_operators=["typo"])


def test_text_only_scorer_is_at_chance_on_grounded_operators(tmp_path):
    config = SynthRSConfig.only(
        output_dir=str(tmp_path / "p"),
        caption_pairs_train=500,
        instruction_pairs_train=300,
        caption_pairs_test=250,
        instruction_pairs_test=100,
    )
    root = build(config, progress=False)
    result = text_only_pair_probe(
        pairs_from_rsrm(root / "preference" / "train"), pairs_from_rsrm(root / "preference" / "test")
    )

    def pooled(ops):
        n = sum(result[o]["pairs"] for o in ops if o in result)
        return sum(result[o]["accuracy"] * result[o]["pairs"] for o in ops if o in result) / n, n

    grounded, n_grounded = pooled(GROUNDED_OPERATORS)
    form, n_form = pooled(("repetition", "generic", "truncation"))
    assert n_grounded > 150 and n_form > 80
    assert 0.35 < grounded < 0.62, f"text alone should be at chance on grounded operators, got {grounded:.2f}"
    assert form > 0.85, f"form operators should be visible in the text, got {form:.2f}"


@pytest.mark.parametrize("scale", [1.6, 2.5])
def test_large_objects_never_crash_and_counts_match_what_is_drawn(scale):
    for seed in range(40):
        rng = np.random.default_rng(seed)
        scene = sample_truth(rng, "s", 112)
        render(scene, rng, object_scale=scale)
        for group in scene.groups:
            assert 1 <= group.count == len(group.objects) <= 4


@pytest.mark.parametrize("operator", [None, *CAPTION_OPERATORS])
def test_caption_facts_parse_back_what_was_rendered(operator):
    checked = 0
    for seed in range(60):
        rng = np.random.default_rng(seed)
        scene = sample_truth(rng, "s", 112)
        claims = T.claims_from_scene(scene, rng)
        if operator is not None:
            claims = T.apply_operator(operator, claims, scene, rng)
            if claims is None or operator == "truncation":  # a cut sentence may state part of a fact
                continue
        text = T.render_text(claims)
        assert T.parse_caption_facts(text) == T.claimed_facts(claims), text
        scores = T.caption_fact_scores(text, scene)
        expected = T.quality(claims, scene) / (0.5 if "repetition" in claims.form else 1)  # quality has 4 decimals
        assert scores["jaccard"] == pytest.approx(expected, abs=1e-4)
        checked += 1
    assert operator == "truncation" or checked >= 20


def test_any_two_caption_operators_in_a_row_render_and_score():
    """The pool applies 1-2 operators; a truncated caption that then lost a group once crashed the renderer."""
    import itertools

    from rs_reward.data.synthrs.world import sample_truth

    rng = np.random.default_rng(0)
    pairs = [*itertools.product(T.CAPTION_OPERATORS, repeat=2)] + [("truncation", "omission")] * 20
    for first, second in pairs:
        for _ in range(20):
            scene = sample_truth(rng, "s", 112, max_groups=2)
            for group in scene.groups:
                group.objects = []
            claims = T.apply_operator(first, T.claims_from_scene(scene, rng), scene, rng)
            if claims is None:
                continue
            claims = T.apply_operator(second, claims, scene, rng) or claims
            assert isinstance(T.render_text(claims), str)
            assert 0.0 <= T.quality(claims, scene) <= 1.0
