"""Best-of-N: sub-sampling and selection are right and deterministic; the task reuses its candidates."""

import json
import re
from pathlib import Path

import pytest
from PIL import Image

from rs_reward.bon import best_of_n, rule_agreement, select, subsample, vote_key
from rs_reward.cli import main


ROOT = Path(__file__).resolve().parent.parent


def test_subsample_is_nested_deterministic_and_per_row():
    for row_id in ("a", "b"):
        sets = [subsample(16, n, row_id, seed=3) for n in (1, 2, 4, 8, 16)]
        for small, large in zip(sets, sets[1:]):
            assert large[: len(small)] == small  # N=2 is inside N=4, ...
        assert sorted(sets[-1]) == list(range(16))
        assert subsample(16, 4, row_id, seed=3) == sets[2]
    assert subsample(16, 8, "a", seed=3) != subsample(16, 8, "b", seed=3)
    assert subsample(16, 8, "a", seed=3) != subsample(16, 8, "a", seed=4)
    assert subsample(16, 8, "a", seed=3, repeat=1) != subsample(16, 8, "a", seed=3, repeat=0)
    with pytest.raises(ValueError, match="outside"):
        subsample(4, 8, "a")


def test_selectors_pick_what_they_say():
    candidates = ["B", "the answer is C", "C", "", "C."]
    scores = [0.1, 0.9, 0.5, 0.9, 0.2]
    metrics = [0.0, 1.0, 1.0, 0.0, 1.0]
    indices = [3, 0, 1, 2, 4]
    assert select("score_model", indices, scores=scores) == 3  # tie 0.9 -> earliest in the sub-sample
    assert select("clip_score", [0, 1, 2], scores=scores) == 1
    assert select("oracle", indices, metrics=metrics) == 1
    assert select("majority_vote", indices, task="mc", candidates=candidates) == 1  # C x3 (empty cannot vote)
    assert select("majority_vote", [3, 0], task="mc", candidates=candidates) == 0
    assert select("majority_vote", [3], task="mc", candidates=candidates) == 3  # nothing votes: first
    assert vote_key("vqa", "Two.") == vote_key("vqa", "two") == "two"
    assert vote_key("vg", "(100,100),(600,600)", (200, 100)) == vote_key("vg", "[20, 10, 120, 60]", (200, 100))
    picks = {select("random", indices, rng_key=("s", i)) for i in range(40)}
    assert picks == set(indices)
    assert select("random", indices, rng_key=("s", 1)) == select("random", indices, rng_key=("s", 1))
    with pytest.raises(ValueError, match="unknown selector"):
        select("vibes", indices)


def test_best_of_n_tables_are_deterministic_and_ordered():
    rows = [{"id": f"r{i}", "task": "vqa" if i % 2 else "mc"} for i in range(6)]
    candidates = [[f"c{j}" for j in range(8)] for _ in rows]
    metrics = [[float((i + j) % 3 == 0) for j in range(8)] for i in range(6)]
    scores = {"score_model": [[m + 0.01 * j for j, m in enumerate(row)] for row in metrics]}  # a perfect scorer
    args = dict(n_list=[1, 2, 4, 8], selectors=["score_model", "random", "oracle"], seed=0, repeats=3)
    first = best_of_n(rows, candidates, metrics, scores, **args)
    assert first == best_of_n(rows, candidates, metrics, scores, **args)
    results = first["results"]
    # N=1: every selector takes the same (only) candidate
    assert results["score_model"][1] == results["random"][1] == results["oracle"][1]
    # a perfect scorer equals the oracle, which never falls as N grows
    for n in (1, 2, 4, 8):
        assert results["score_model"][n] == results["oracle"][n]
    oracle = [results["oracle"][n]["mean"] for n in (1, 2, 4, 8)]
    assert oracle == sorted(oracle) and oracle[-1] == 1.0


def test_rule_agreement_is_the_within_question_auc():
    rows = [{"id": "q0", "task": "vqa"}, {"id": "q1", "task": "vqa"}, {"id": "q2", "task": "vqa"}]
    rows.append({"id": "c0", "task": "caption"})
    metrics = [[1.0, 0.0, 0.0], [1.0, 1.0, 0.0], [1.0, 1.0, 1.0], [0.4, 0.9, 0.1]]  # q2: nothing wrong to rank
    scores = {
        "perfect": [[3.0, 1.0, 2.0], [5.0, 4.0, -1.0], [0.0, 0.0, 0.0], [0.0, 1.0, 2.0]],
        "reversed": [[-3.0, -1.0, -2.0], [-5.0, -4.0, 1.0], [0.0, 0.0, 0.0], [0.0, 1.0, 2.0]],
        # q0: the right one beats one of two wrong ones; q1: one right above, one tied with the wrong one
        "mixed": [[2.0, 1.0, 3.0], [2.0, 0.5, 0.5], [0.0, 0.0, 0.0], [0.0, 1.0, 2.0]],
        # on another scale, q1's scores would beat q0's: pairs never cross questions
        "shifted": [[1.0, 0.0, 0.0], [101.0, 101.0, 100.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]],
    }
    agreement = rule_agreement(rows, metrics, scores)
    assert set(agreement["perfect"]) == {"vqa"}  # captions have no right or wrong
    assert agreement["perfect"]["vqa"] == {"auc": 1.0, "pairs": 4, "questions": 2, "candidates": 3}
    assert agreement["reversed"]["vqa"]["auc"] == 0.0
    assert agreement["mixed"]["vqa"]["auc"] == (1 + 1 + 0.5) / 4
    assert agreement["shifted"]["vqa"]["auc"] == 1.0
    assert best_of_n(rows, [["a"] * 3] * 4, metrics, scores, [1], ["random"])["rule_agreement"] == agreement


@pytest.fixture
def eval_file(tmp_path):
    (tmp_path / "images").mkdir()
    rows = []
    for i in range(3):
        Image.new("RGB", (112, 112), (60 * i, 90, 40)).save(tmp_path / "images" / f"{i}.png")
        rows += [
            {
                "id": f"{i}-vqa",
                "images": [f"images/{i}.png"],
                "question": "How many ships?",
                "answer": "2",
                "task": "vqa",
            },
            {
                "id": f"{i}-mc",
                "images": [f"images/{i}.png"],
                "question": "How many ships?",
                "choices": "A. 1 B. 2 C. 3 D. 4",
                "answer": "B",
                "task": "mc",
            },
        ]
    path = tmp_path / "eval.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_bon_task_writes_table_curves_and_reuses_candidates(
    eval_file, tmp_path, tiny_generator_path, tiny_reward_path
):
    from rs_reward.modeling import tiny_model_path

    out = tmp_path / "bon"
    args = [
        "bon",
        "--config",
        str(ROOT / "recipes/tiny/bon/config_demo.yaml"),
        "--model_name_or_path",
        tiny_generator_path,
        "--reward_model_name_or_path",
        tiny_reward_path,
        "--clip_model_name_or_path",
        tiny_model_path("clip-tiny"),
        "--eval_data",
        str(eval_file),
        "--truth_scenes",
        "",
        "--tasks",
        "vqa",
        "mc",
        "--n_list",
        "1",
        "2",
        "4",
        "--max_new_tokens",
        "6",
        "--output_dir",
        str(out),
    ]
    assert main(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["results"]) == {"score_model", "clip_score", "majority_vote", "random", "oracle"}
    assert set(metrics["results"]["oracle"]) == {"1", "2", "4"}
    for selector in ("score_model", "clip_score", "majority_vote", "random", "oracle", "selectors"):
        assert (out / "figures" / f"bon_{selector}.png").is_file()
    candidates = [json.loads(line) for line in (out / "candidates.jsonl").read_text().splitlines()[1:]]
    assert len(candidates) == 6 and all(len(c["candidates"]) == 4 for c in candidates)
    scores = json.loads((out / "scores-score_model.json").read_text())["scores"]
    assert len(scores) == 6 and all(len(s) == 4 for s in scores)
    # the page: every question with its image, its 4 candidates, and each selector's pick; the score model's pick
    # is a candidate with the highest score (N = 4: all candidates drawn)
    page = (out / "browse" / "index.html").read_text()
    questions = page.split('<div class="card question" data-id="')[1:]
    assert len(questions) == 6 and page.count('<img src="thumbs/') == 6
    ids = [q.split('"', 1)[0] for q in questions]
    order = [json.loads(line)["id"] for line in (out / "candidates.jsonl").read_text().splitlines()[1:]]
    for row_id, question in zip(ids, questions):
        assert question.count('<td class="num">', 0, len(question)) >= 4 and question.count("&rarr; #") == 5
        picked = int(re.search(r"score_model &rarr; #(\d+)", question).group(1))
        row_scores = scores[order.index(row_id)]
        assert row_scores[picked] == max(row_scores)

    # a rerun with other selectors and N reuses the candidates and scores
    stamp = (out / "candidates.jsonl").stat().st_mtime_ns, (out / "scores-score_model.json").stat().st_mtime_ns
    assert main(args + ["--selectors", "score_model", "oracle", "--n_list", "1", "2"]) == 0
    assert (
        (out / "candidates.jsonl").stat().st_mtime_ns,
        (out / "scores-score_model.json").stat().st_mtime_ns,
    ) == stamp
    again = json.loads((out / "metrics.json").read_text())["results"]
    assert again["score_model"]["2"] == metrics["results"]["score_model"]["2"]
