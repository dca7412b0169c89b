"""Answer metrics on hand-made cases, including the traps of the original code."""

import pytest

from rs_reward.answers import exact_match, extract_choice, graded_iou_reward, iou, normalize_answer, parse_box


@pytest.mark.parametrize(
    ("prediction", "reference", "expected"),
    [
        ("", "yes", False),  # the original substring test counted an empty answer as right
        (None, "forest", False),
        ("   ", "", False),
        ("no", "not sure", False),  # substring traps
        ("3", "13", False),
        ("yes", "yesterday", False),
        ("Yes.", "yes", True),
        ("The forest", "forest", True),
        ("bare land", "bare_land", True),
        ("<think>it looks green</think><answer> Forest </answer>", "forest", True),
        ("<think>forest?</think>", "forest", False),  # an answer only inside the reasoning is no answer
        ("forest, water", "forest", False),
    ],
)
def test_exact_match(prediction, reference, expected):
    assert exact_match(prediction, reference) is expected


def test_normalisation():
    assert normalize_answer("  The  Top-Left! ") == "top left"


@pytest.mark.parametrize(
    ("prediction", "expected"),
    [
        ("B", "B"),
        ("(C) water", "C"),
        ("D.", "D"),
        ("A: forest", "A"),
        ("The answer is B.", "B"),
        ("<answer>C</answer>", "C"),
        ("", None),
        ("E", None),
        ("I think it is forest", None),
        ("Answer: (D)", "D"),
    ],
)
def test_extract_choice(prediction, expected):
    assert extract_choice(prediction) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<|box_start|>(100,200),(500,600)<|box_end|>", (80.0, 160.0, 400.0, 480.0)),
        ("the ship is at (100,200),(500,600)", (80.0, 160.0, 400.0, 480.0)),
        ('```json\n[{"bbox_2d": [10, 20, 30, 40], "label": "ship"}]\n```', (10.0, 20.0, 30.0, 40.0)),
        ("[30, 40, 10, 20]", (10.0, 20.0, 30.0, 40.0)),
        ("<answer>[[10, 20, 30, 40]]</answer>", (10.0, 20.0, 30.0, 40.0)),
        ("no box here", None),
        ("", None),
    ],
)
def test_parse_box(text, expected):
    assert parse_box(text, width=800, height=800) == expected


def test_bracket_scales():
    assert parse_box("[100, 200, 300, 400]", 800, 400, bracket_scale="norm1000") == (80.0, 80.0, 240.0, 160.0)
    assert parse_box("[0.1, 0.5, 0.2, 1.0]", 800, 400, bracket_scale="unit") == (80.0, 200.0, 160.0, 400.0)


def test_iou_and_graded_reward():
    assert iou((0, 0, 10, 10), (0, 0, 10, 10)) == 1.0
    assert iou((0, 0, 10, 10), (10, 10, 20, 20)) == 0.0
    assert iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(1 / 3)
    assert iou(None, (0, 0, 1, 1)) == 0.0 and iou((0, 0, 0, 0), (0, 0, 0, 0)) == 0.0
    assert [graded_iou_reward(v) for v in (0.5, 0.55, 0.65, 0.75, 0.85, 1.0)] == [0.0, 0.5, 0.6, 0.7, 1.0, 1.0]
