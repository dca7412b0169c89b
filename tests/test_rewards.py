"""GRPO reward functions on hand-made completions: right answers, empty, malformed and reward-hacking ones."""

import json
import math

import numpy as np
import pytest
from PIL import Image

from rs_reward.rewards import (
    RewardError,
    RewardFunction,
    RewardMonitor,
    ScoreModel,
    build_reward_funcs,
    import_reward,
    parse_routes,
)
from rs_reward.trainers.grpo import hacking_metrics, pool_score_rule_auc


IMAGE = Image.new("RGB", (200, 100), (90, 120, 60))


def call(name, completions, reward_types, solutions, questions=None, **kwargs):
    n = len(completions)
    questions = questions or ["How many ships are there?"] * n
    prompts = [[{"role": "user", "content": q}] for q in questions]
    function = kwargs.pop("function", None) or RewardFunction(name, **kwargs)
    logged = {}
    rewards = function(
        prompts,
        [[{"role": "assistant", "content": c}] for c in completions],
        images=[[IMAGE]] * n,
        solution=solutions,
        reward_type=reward_types,
        id=[f"r{i}" for i in range(n)],
        log_metric=lambda k, v: logged.__setitem__(k, v),
    )
    return rewards, logged, function


def test_format_accepts_only_think_then_answer():
    completions = [
        "<think>two ships near the dock</think><answer>2</answer>",
        "  <think>\nmulti\nline\n</think>\n<answer>B</answer>\n",
        "2",
        "<answer>2</answer>",
        "<think>x</think><answer></answer>",
        "<think>x</think><answer>2</answer> and a great answer it is!",  # text outside the tags
        "",
    ]
    rewards, _, _ = call("format", completions, [None] * 7, [None] * 7)
    assert rewards == [1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0]


def test_exact_match_is_strict_and_empty_is_wrong():
    completions = ["2", "<think>hm</think><answer>Two.</answer>", "", "2 ships", "It is 2", "The answer: 2."]
    rewards, logged, _ = call("exact_match", completions, ["em"] * 6, ["2"] * 6)
    # "Two." is not "2" (no number-word equivalence); substrings do not count
    assert rewards == [1.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    assert logged["exact_match/em"] == pytest.approx(1 / 6)


def test_multiple_choice_reads_the_letter():
    completions = ["B", "(B) four", "The answer is B.", "A", "B or C", "", "b"]
    rewards, _, _ = call("multiple_choice", completions, ["mc"] * 7, ["B"] * 7)
    assert rewards == [1.0, 1.0, 1.0, 0.0, 1.0, 0.0, 0.0]  # "B or C" starts with B; lower-case "b" is no letter


def test_iou_graded_steps_and_bad_boxes():
    # image 200 x 100; reference box in pixels
    reference = json.dumps([20, 10, 120, 60])
    completions = [
        "(100,100),(600,600)",  # Qwen2-VL normalised 0-1000 -> (20,10,120,60): IoU 1
        '{"bbox_2d": [20, 10, 110, 60]}',  # IoU 0.9
        "[20, 10, 95, 60]",  # IoU 0.75
        "[20, 10, 87, 60]",  # IoU 0.67
        "[20, 10, 75, 60]",  # IoU 0.55
        "[60, 10, 160, 60]",  # IoU 0.33
        "no box here",
        "",
    ]
    rewards, _, _ = call("iou_graded", completions, ["iou"] * 8, [reference] * 8)
    assert rewards == [1.0, 1.0, 0.7, 0.6, 0.5, 0.0, 0.0, 0.0]


def test_accuracy_routes_by_reward_type_and_format_gate():
    completions = [
        "<think>t</think><answer>2</answer>",
        "2",  # right answer, wrong format
        "<think>t</think><answer>C</answer>",
        "<think>t</think><answer>(100,100),(600,600)</answer>",
    ]
    types = ["em", "em", "mc", "iou"]
    solutions = ["2", "2", "C", json.dumps([20, 10, 120, 60])]
    gated, logged, _ = call(
        "accuracy", completions, types, solutions, format_gate=True, routes=parse_routes("open=none")
    )
    assert gated == [1.0, 0.0, 1.0, 1.0]
    assert set(logged) >= {"accuracy/em", "accuracy/mc", "accuracy/iou"}
    ungated, _, _ = call("accuracy", completions, types, solutions, routes=parse_routes("open=none"))
    assert ungated == [1.0, 1.0, 1.0, 1.0]
    # the paper's total 0.3 format + 0.7 accuracy, 0 when the format fails
    fmt, _, _ = call("format", completions, types, solutions)
    total = [0.3 * f + 0.7 * a for f, a in zip(fmt, gated)]
    assert total == pytest.approx([1.0, 0.0, 1.0, 1.0])


def test_rule_reward_is_none_on_rows_of_other_types():
    rewards, _, _ = call("exact_match", ["2", "B"], ["em", "mc"], ["2", "B"])
    assert rewards == [1.0, None]


@pytest.mark.parametrize(
    "name,types,solutions,message",
    [
        ("accuracy", ["xx"], ["2"], "unknown reward_type"),
        ("accuracy", [None], ["2"], "needs a reward_type"),
        ("exact_match", ["em"], [None], "has no solution"),
        ("multiple_choice", ["mc"], ["four"], "not an option letter"),
        ("iou_graded", ["iou"], ["somewhere"], "not a box"),
    ],
)
def test_a_reward_that_cannot_be_computed_raises(name, types, solutions, message):
    with pytest.raises(RewardError, match=message):
        call(name, ["2"], types, solutions, routes=parse_routes("open=none"))


class KeywordScorer:
    """A stand-in score model: +1 per word of the image's truth, -0.5 per other word, and it records its inputs."""

    def __init__(self, truth=("two", "ships", "harbor")):
        self.truth = set(truth)
        self.seen = []

    def score(self, images, questions, texts):
        self.seen.append((list(images), list(questions), list(texts)))
        return np.array([sum(1 if w in self.truth else -0.5 for w in t.lower().split()) for t in texts], float)


def test_score_vs_reference_follows_the_paper_formula_and_sees_the_image():
    scorer = KeywordScorer()
    model = ScoreModel(scorer)
    completions = ["two ships harbor", "two ships", "", "two ships harbor harbor harbor"]
    rewards, logged, _ = call(
        "score_vs_reference", completions, ["open"] * 4, ["two ships"] * 4, score_model=model, score_beta=0.2
    )
    # s(ref) = 2; s = 3, 2, (empty: 0 without scoring), 5
    assert rewards[0] == pytest.approx(1 - math.exp(-0.2 * 1))
    assert rewards[1] == 0.0  # equal to the reference: not better
    assert rewards[2] == 0.0
    assert rewards[3] == pytest.approx(1 - math.exp(-0.2 * 3))
    images, questions, _ = scorer.seen[0]
    assert all(image is IMAGE for image in images) and questions[0] == "How many ships are there?"


def test_the_score_model_scores_a_row_and_text_once_and_keeps_a_bounded_number_of_scores():
    scorer = KeywordScorer()
    model = ScoreModel(scorer, cache_size=4)
    texts = ["two ships", "two ships", "cat", "two ships", "two ships"]
    got = model([IMAGE] * 5, ["q"] * 4 + ["another q"], texts, ["a", "a", "a", "b", "b"])
    assert got.tolist() == [2.0, 2.0, -0.5, 2.0, 2.0]
    # ("a", "two ships") once; the same text of another row, or of another question, is scored on its own
    assert scorer.seen[-1][2] == ["two ships", "cat", "two ships", "two ships"] and model.calls == 1
    again = model([IMAGE] * 2, ["q"] * 2, ["cat", "harbor"], ["a", "a"])
    assert again.tolist() == [-0.5, 1.0] and scorer.seen[-1][2] == ["harbor"] and model.calls == 2
    assert len(model.cache) == 4 and ("a", "q", "cat") in model.cache  # the least recently used score went


def test_reward_hacking_completions_are_not_paid_by_rules():
    # repeating the question and padding with praise: no rule reward pays for it
    question = "How many ships are there?"
    hacks = [question, question + " " + question, "Great question! Excellent image! The best answer!", "2 2 2 2"]
    em, _, _ = call("exact_match", hacks, ["em"] * 4, ["2"] * 4, questions=[question] * 4)
    mc, _, _ = call("multiple_choice", ["A B C D", "Answer: A, B, C or D"], ["mc"] * 2, ["B"] * 2)
    fmt, _, _ = call("format", [f"<think>{h}</think>" for h in hacks], [None] * 4, [None] * 4)
    assert em == [0.0] * 4 and fmt == [0.0] * 4
    assert mc == [0.0, 0.0]  # the first letter found is A


def test_score_model_failures_raise_never_zero():
    class Broken:
        def score(self, *args):
            raise RuntimeError("CUDA error: device-side assert")

    class NaN:
        def score(self, images, questions, texts):
            return np.full(len(texts), np.nan)

    for scorer, message in ((Broken(), "score model failed on rows"), (NaN(), "non-finite score")):
        with pytest.raises(RewardError, match=message):
            call("score_model", ["two ships"], ["open"], ["x"], score_model=ScoreModel(scorer))


def test_score_model_rewards_need_a_model():
    with pytest.raises(ValueError, match="needs a score model"):
        build_reward_funcs(["accuracy"])  # default routes send open rows to score_vs_reference
    assert [f.__name__ for f in build_reward_funcs(["format", "accuracy"], routes="open=none")] == [
        "format",
        "accuracy",
    ]
    with pytest.raises(ValueError, match="unknown reward"):
        build_reward_funcs(["accurracy"], routes="open=none")
    with pytest.raises(ValueError, match="unknown reward_type"):
        parse_routes("opn=none")


def test_monitor_flags_a_score_model_that_prefers_wrong_answers():
    ids = ["a"] * 4 + ["b"] * 4
    rule = [1, 0, 0, 0, 1, 1, 0, 0]
    honest = [3.0, 1.0, 0.5, 0.0, 2.0, 2.5, 0.1, 0.2]  # right answers score higher
    hacked = [0.0, 3.0, 2.0, 2.5, 0.1, 0.2, 3.0, 2.0]  # wrong answers score higher
    good, bad = hacking_metrics(ids, rule, honest), hacking_metrics(ids, rule, hacked)
    assert good["hacking/score_rule_auc"] == 1.0 and bad["hacking/score_rule_auc"] == 0.0
    assert good["hacking/high_score_rule_fail"] == 0.0 and bad["hacking/high_score_rule_fail"] == 1.0
    assert "hacking/score_rule_auc" not in hacking_metrics(ids, [np.nan] * 8, honest)
    assert (good["hacking/score_rule_wins"], good["hacking/score_rule_pairs"]) == (7.0, 7.0)  # a: 1 x 3, b: 2 x 2


def test_the_monitor_auc_is_pooled_over_the_pairs_of_a_logging_interval():
    # three steps: 1 pair won, none, 9 of 10 won: 10 / 11 pooled (a mean of per-step ratios would say 0.95)
    metrics = {"hacking/score_rule_wins": [1.0, 0.0, 9.0], "hacking/score_rule_pairs": [1.0, 0.0, 10.0]}
    pool_score_rule_auc(metrics)
    assert metrics == {"hacking/score_rule_pairs": [1.0, 0.0, 10.0], "hacking/score_rule_auc": [10 / 11]}
    metrics = {"hacking/score_rule_wins": [0.0, 0.0], "hacking/score_rule_pairs": [0.0, 0.0]}
    pool_score_rule_auc(metrics)
    assert metrics == {"hacking/score_rule_pairs": [0.0, 0.0]}  # no pair in the interval: no AUC


def test_the_format_gate_never_pays_a_bad_format_through_a_negative_raw_score():
    scorer = KeywordScorer()
    rewards, _, _ = call(
        "score_model",
        ["pink pink", "<think>t</think><answer>pink pink</answer>"],
        ["open"] * 2,
        ["x"] * 2,
        score_model=ScoreModel(scorer),
        format_gate=True,
    )
    assert rewards == [-1.0, -1.0]  # raw scores, not gated to 0 for the badly formatted one


def test_reward_monitor_collects_rule_rewards_and_scores_of_every_function():
    class Length:
        def score(self, images, questions, texts):
            return np.asarray([float(len(t)) for t in texts])

    monitor = RewardMonitor()
    funcs = build_reward_funcs(["format", "accuracy"], score_model=ScoreModel(Length()), monitor=monitor)
    assert not monitor
    completions = ["<think>x</think><answer>2</answer>", "<think>x</think><answer>3</answer>", "2", ""]
    for function in funcs:
        call(None, completions, ["em", "em", "em", "open"], ["2", "2", "2", "a reference"], function=function)
    assert list(monitor.ids) == ["r0", "r1", "r2", "r3"]
    # rule reward: the exact-match result where a rule applies, NaN on the open row (no rule)
    assert monitor.rule[:3].tolist() == [1.0, 0.0, 1.0] and math.isnan(monitor.rule[3])
    # the last function scored every completion's answer for the monitor (lengths of "2", "3", "2", "")
    assert monitor.score.tolist() == [1.0, 1.0, 1.0, 0.0]
    monitor.clear()
    assert not monitor


def test_custom_rewards_by_dotted_path(tmp_path, monkeypatch):
    (tmp_path / "my_rewards.py").write_text(
        "def short(prompts, completions, **columns):\n    return [1.0 / (1 + len(str(c))) for c in completions]\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    function = import_reward("my_rewards.short")
    assert function(None, ["a", "abc"]) == [0.5, 0.25]
    with pytest.raises(ValueError, match="unknown reward 'shrt'"):
        import_reward("shrt")
    with pytest.raises(ValueError, match="cannot import it"):
        import_reward("my_rewards.long")
