"""Shared-prefix scoring (rs_reward.modeling.shared_prefix): packed groups score and train exactly like plain rows."""

import pytest
import torch

from rs_reward.configs import RSModelConfig
from rs_reward.data.chat import encode_scored
from rs_reward.modeling import load_processor, tiny_model_path
from rs_reward.modeling import shared_prefix as sp
from rs_reward.modeling.loading import load_reward_model
from rs_reward.modeling.tiny import resolve_model_path


FOUNDATION = "tiny:qwen2-vl-synthrs"
# fp32; packed and plain rows differ only by the order of float sums in attention and matmuls.
ATOL = 1e-4
QUESTIONS = ["", "", "", "How many ships are there?", "How many ships are there?", "What is the land cover?"]
ANSWERS = [
    "A harbour with three ships in the top left.",
    "A harbour with two ships.",
    "Dense forest.",
    "three",
    "There are two ships in the image, both white.",
    "forest",
]


@pytest.fixture(scope="module", params=["qwen2-vl-tiny-reward", "qwen2.5-vl-tiny-reward", "likelihood"])
def scorer(request):
    if request.param == "likelihood":  # the foundation's lm_head kept for the likelihood term
        args = RSModelConfig(model_name_or_path=FOUNDATION, score_likelihood_weight=20.0)
        return load_reward_model(args, trainable=False), load_processor(FOUNDATION)
    path = tiny_model_path(request.param)
    model = load_reward_model(RSModelConfig(model_name_or_path=path), trainable=False)
    return model, load_processor(path)


def rows(scene_images):
    # Rows 0-2 share an image and question (one group), 3-4 another, 5 is alone; and a text-only group.
    a, b, c = scene_images
    images = [a, a, a, b, b, c]
    return images, QUESTIONS, ANSWERS


def plain_and_packed(model, processor, images, questions, answers, groups=None):
    batch = encode_scored(processor, images, questions, answers)
    groups = groups or sp.group_rows(images, questions)
    packed = sp.pack_groups(batch, groups, processor.tokenizer.pad_token_id)
    return model(**batch).logits.squeeze(-1), model(**packed).logits.squeeze(-1), packed


@torch.no_grad()
@pytest.mark.parametrize("padding_side", ["left", "right"])
def test_grouped_scores_equal_plain_scores(scorer, scene_images, padding_side):
    """Three images of different sizes in one batch, groups of K = 3, 2 and 1, either padding side."""
    model, processor = scorer
    previous, processor.tokenizer.padding_side = processor.tokenizer.padding_side, padding_side
    try:
        images, questions, answers = rows(scene_images)
        plain, grouped, packed = plain_and_packed(model, processor, images, questions, answers)
    finally:
        processor.tokenizer.padding_side = previous
    assert packed["input_ids"].shape[0] == 3  # three groups: one vision pass and one prefix each
    torch.testing.assert_close(grouped, plain, atol=ATOL, rtol=0)


@torch.no_grad()
def test_text_only_groups_and_groups_split_by_size(scorer):
    model, processor = scorer
    images = [None] * 4
    questions = ["Is it good?"] * 4
    answers = ["yes", "no, it is not good at all", "maybe", "yes yes"]
    groups = sp.group_rows(images, questions, max_group=3)
    assert groups == [[0, 1, 2], [3]]
    plain, grouped, _ = plain_and_packed(model, processor, images, questions, answers, groups)
    torch.testing.assert_close(grouped, plain, atol=ATOL, rtol=0)


@torch.no_grad()
def test_eager_attention_gives_the_same_scores(scene_images):
    path = tiny_model_path("qwen2-vl-tiny-reward")
    model = load_reward_model(RSModelConfig(model_name_or_path=path, attn_implementation="eager"), trainable=False)
    processor = load_processor(path)
    plain, grouped, _ = plain_and_packed(model, processor, *rows(scene_images))
    torch.testing.assert_close(grouped, plain, atol=ATOL, rtol=0)


@torch.no_grad()
def test_wrong_answer_positions_change_the_scores(scene_images, monkeypatch):
    """Equal scores would prove little if positions did not matter: restart every answer at zero and the scores
    move (the SynthRS foundation: trained weights, which read positions)."""
    path = resolve_model_path(FOUNDATION)
    model = load_reward_model(RSModelConfig(model_name_or_path=path), trainable=False)
    processor = load_processor(path)
    images, questions, answers = rows(scene_images)
    plain, _, _ = plain_and_packed(model, processor, images, questions, answers)
    original = sp.shared_prefix_positions

    def restarted(backbone, input_ids, segment_ids, *args):
        positions = original(backbone, input_ids, segment_ids, *args)
        for g in range(segment_ids.shape[0]):
            for k in segment_ids[g][segment_ids[g] > 0].unique().tolist():
                where = (segment_ids[g] == k).nonzero().squeeze(-1)
                positions[:, g, where] = torch.arange(len(where))
        return positions

    import rs_reward.modeling.reward_model as reward_model

    monkeypatch.setattr(reward_model, "shared_prefix_positions", restarted)
    _, broken, _ = plain_and_packed(model, processor, images, questions, answers)
    assert (broken - plain).abs().max() > 100 * ATOL


def pair_loss_and_grads(model, inputs):
    """TRL's RewardTrainer loss on a collated batch, and the gradients it leaves."""
    model.zero_grad()
    chosen, rejected = model(**inputs).logits.squeeze(-1).chunk(2)
    loss = -torch.nn.functional.logsigmoid(chosen - rejected).mean()
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_grouped_training_gives_the_pair_loss_and_its_gradients(tiny_reward_path, scene_images, tmp_path):
    """Three pairs of two items: as six rows, as three packed pairs and as two packed items (chosen + every
    rejected answer, `group_items`), the same loss and gradients, for a full, a LoRA and a QLoRA model and a full
    model with gradient checkpointing."""
    from datasets import Dataset

    from rs_reward.data.preference import group_items, preference_row
    from rs_reward.trainers.reward import VisionPreferenceCollator

    processor = load_processor(tiny_reward_path)
    for k, image in enumerate(scene_images[:2]):
        image.save(tmp_path / f"{k}.png")
    pairs = [
        preference_row(
            "a-r0", str(tmp_path / "0.png"), "", "Three ships in the top left.", "Two ships.", "caption", "s"
        ),
        preference_row("b", str(tmp_path / "1.png"), "How many?", "three", "two of them", "instruction", "s"),
        preference_row(
            "a-r1", str(tmp_path / "0.png"), "", "Three ships in the top left.", "A forest.", "caption", "s"
        ),
    ]
    items = group_items(Dataset.from_list(pairs))
    assert len(items) == 2 and [len(r) for r in items["rejected"]] == [2, 1]
    # full, LoRA, QLoRA (bitsandbytes 4-bit runs on CPU), full with gradient checkpointing
    for use_peft, four_bit, checkpointing in (
        (False, False, False),
        (True, False, False),
        (True, True, False),
        (False, False, True),
    ):
        args = RSModelConfig(
            model_name_or_path=tiny_reward_path,
            use_peft=use_peft,
            load_in_4bit=four_bit,
            lora_r=4,
            lora_alpha=8,
            lora_dropout=0.0,
        )
        torch.manual_seed(0)
        model = load_reward_model(args)
        if checkpointing:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            model.train()
        plain = VisionPreferenceCollator(processor, tasks=("caption", "instruction"))
        shared = VisionPreferenceCollator(processor, tasks=("caption", "instruction"), shared_prefix=True)
        plain_batch, pair_batch, item_batch = plain(pairs), shared(pairs), shared(list(items))
        assert item_batch["input_ids"].shape[0] == 2 and pair_batch["input_ids"].shape[0] == 3
        # the per-pair task labels follow the pairs (items list their pairs item by item)
        assert plain_batch["task_index"].tolist() == [0, 1, 0] and item_batch["task_index"].tolist() == [0, 0, 1]
        plain_batch, pair_batch, item_batch = (
            {k: v for k, v in b.items() if k != "task_index"} for b in (plain_batch, pair_batch, item_batch)
        )
        plain_loss, plain_grads = pair_loss_and_grads(model, plain_batch)
        assert plain_grads
        for batch in (pair_batch, item_batch):
            loss, grads = pair_loss_and_grads(model, batch)
            torch.testing.assert_close(loss, plain_loss, atol=1e-5, rtol=0)
            assert grads.keys() == plain_grads.keys()
            for name, grad in plain_grads.items():
                torch.testing.assert_close(grads[name], grad, atol=1e-5, rtol=1e-4, msg=lambda m, n=name: f"{n}: {m}")


def test_items_gather_their_pairs_in_order_after_a_shuffle_and_select():
    """`group_items` on pair rows behind an indices mapping (as after `max_train_pairs`): one row per item in the
    order of its first pair, its rejected answers in pair order, the other columns of the first pair, and the
    rejected feature a list of message lists; a dataset with margins stays pairs."""
    from datasets import Dataset, List

    from rs_reward.data.preference import group_items, preference_row

    rows = [
        preference_row("a-0", "a.png", "", "Two ships.", "One ship.", "caption", "s"),
        preference_row("b-0", "b.png", "How many?", "3", "2", "instruction", "t"),
        preference_row("a-1", "a.png", "", "Two ships.", "A forest.", "caption", "s"),
        preference_row("a-2", "a.png", "", "Three tanks.", "Two tanks.", "caption", "s"),
        preference_row("b-1", "b.png", "How many?", "3", "4", "instruction", "t"),
    ]
    pairs = Dataset.from_list(rows).select([4, 0, 2, 1, 3])  # b-1, a-0, a-1, b-0, a-2
    items = group_items(pairs)
    assert items["id"] == ["b-1", "a-0", "a-2"] and items["source"] == ["t", "s", "s"]
    assert [[r[0]["content"] for r in item] for item in items["rejected"]] == [
        ["4", "2"],
        ["One ship.", "A forest."],
        ["Two tanks."],
    ]
    assert items["images"] == [rows[4]["images"], rows[0]["images"], rows[3]["images"]]
    assert items.features["rejected"] == List(pairs.features["rejected"])
    assert len(group_items(pairs.add_column("margin", [0.0] * 5))) == 5


def test_rows_of_different_images_cannot_share_a_group(tiny_reward_path, scene_images):
    """Images of another size differ in their tokens; images of the same size only in their pixels."""
    processor = load_processor(tiny_reward_path)
    other = scene_images[0].rotate(90)
    for images in (scene_images[:2], [scene_images[0], other]):
        batch = encode_scored(processor, images, ["", ""], ["a", "b"])
        with pytest.raises(ValueError, match="group rows by image and question"):
            sp.pack_groups(batch, [[0, 1]], processor.tokenizer.pad_token_id)


def test_image_key_is_equal_for_equal_pixels(scene_images):
    copy = scene_images[0].copy()
    assert sp.image_key(copy) == sp.image_key(scene_images[0]) != sp.image_key(scene_images[1])
    assert sp.image_key("a/b.png") == "a/b.png" and sp.image_key(None) is None


def test_scorer_groups_rows_by_image_and_question_and_keeps_the_scores(tiny_reward_path, scene_images):
    """Best-of-N-like rows in shuffled order: grouped scoring gives the plain scores, row for row, in fewer rows."""
    from rs_reward.scoring import RewardModelScorer

    model = load_reward_model(RSModelConfig(model_name_or_path=tiny_reward_path), trainable=False)
    processor = load_processor(tiny_reward_path)
    images, questions, answers = rows(scene_images)
    order = [4, 0, 5, 2, 3, 1]
    images, questions, answers = ([x[i] for i in order] for x in (images, questions, answers))
    images = [image.copy() for image in images]  # equal pixels, distinct objects: still one group
    plain = RewardModelScorer(model, processor, batch_size=4, shared_prefix=False)
    grouped = RewardModelScorer(model, processor, batch_size=4, shared_prefix=True)
    sizes = sorted(len(group) for batch in grouped._batches(images, questions, answers) for group in batch)
    assert grouped.shared_prefix and sizes == [1, 2, 3]
    expected = plain.score(images, questions, answers)
    torch.testing.assert_close(
        torch.from_numpy(grouped.score(images, questions, answers)), torch.from_numpy(expected), atol=ATOL, rtol=0
    )


def test_an_image_repeated_in_one_call_is_processed_once_with_the_same_outputs(tiny_reward_path, scene_images):
    processor = load_processor(tiny_reward_path)
    a, b, _ = scene_images
    calls = []
    inner = type(processor.image_processor).__call__

    def counting(self, images, *args, **kwargs):
        calls.append(len(images))
        return inner(self, images, *args, **kwargs)

    questions, answers = ["", "q", "", "q"], ["w", "x", "y", "z"]
    distinct = encode_scored(processor, [a, b, a.copy(), b.copy()], questions, answers)
    type(processor.image_processor).__call__ = counting
    try:
        repeated = encode_scored(processor, [a, b, a, b], questions, answers)
    finally:
        type(processor.image_processor).__call__ = inner
    assert calls == [2]
    assert distinct.keys() == repeated.keys()
    for key in distinct:
        assert torch.equal(distinct[key], repeated[key]), key


@torch.no_grad()
def test_qwen3_vl_grouped_scores_equal_plain_scores():
    """Qwen3-VL (its processor needs torchvision, so the rows are built by hand): a tiny model from a config, one
    image of 4 merged tokens, three answers of different lengths, left padding as the scorer uses."""
    from transformers import Qwen3VLConfig

    from rs_reward.modeling.reward_model import Qwen3VLForSequenceClassification

    image, start, end, pad = 90, 91, 92, 0
    rope = {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3], "mrope_interleaved": True}
    config = Qwen3VLConfig(
        text_config=dict(
            vocab_size=100,
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            head_dim=16,
            pad_token_id=pad,
            rope_parameters=rope,
        ),
        vision_config=dict(
            depth=2,
            hidden_size=32,
            intermediate_size=64,
            num_heads=2,
            patch_size=8,
            out_hidden_size=64,
            num_position_embeddings=64,
            deepstack_visual_indexes=[0],
        ),
        image_token_id=image,
        vision_start_token_id=start,
        vision_end_token_id=end,
        num_labels=1,
    )
    config.text_config._attn_implementation = "sdpa"
    torch.manual_seed(0)
    model = Qwen3VLForSequenceClassification(config).eval()
    assert sp.supports_shared_prefix(model)
    prefix = [5, 6, start] + [image] * 4 + [end, 7, 8]
    rows = [prefix + answer for answer in ([10, 11, 12], [13, 14, 15, 16, 17], [18])]
    width = max(map(len, rows))
    ids, mask = torch.full((3, width), pad), torch.zeros(3, width, dtype=torch.long)
    for r, row in enumerate(rows):
        ids[r, width - len(row) :], mask[r, width - len(row) :] = torch.tensor(row), 1
    batch = {
        "input_ids": ids,
        "attention_mask": mask,
        "mm_token_type_ids": (ids == image).long(),
        "pixel_values": torch.randn(16, 3 * 2 * 8 * 8).repeat(3, 1),  # grid 1 x 4 x 4 patches of 8 px, twice in time
        "image_grid_thw": torch.tensor([[1, 4, 4]] * 3),
    }
    packed = sp.pack_groups(batch, [[0, 1, 2]], pad)
    assert packed["input_ids"].shape == (1, len(prefix) + 9)
    torch.testing.assert_close(model(**packed).logits, model(**batch).logits, atol=ATOL, rtol=0)
