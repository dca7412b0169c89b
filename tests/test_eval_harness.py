"""The evaluation harness: readers of the real formats (on SynthRS), per-task scoring, VLM and CLIP evaluation."""

import json
from pathlib import Path

import numpy as np
import pytest

from rs_reward.cli import main
from rs_reward.data import evalsets
from rs_reward.data.synthrs import SynthRSConfig, build, load_scenes
from rs_reward.data.synthrs import texts as T
from rs_reward.eval.harness import aggregate, score_answer


ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def synthrs(tmp_path_factory):
    config = SynthRSConfig.only(output_dir=str(tmp_path_factory.mktemp("ev") / "synthrs"), eval_size=12, num_workers=1)
    return build(config, progress=False)


def test_readers_agree_with_the_canonical_rows(synthrs):
    canonical = evalsets.read_canonical(synthrs / "eval" / "eval.jsonl")
    by_task = {t: [r for r in canonical if r["task"] == t] for t in ("cls", "vqa", "mc", "vg", "caption")}
    cls = evalsets.read_vhm(synthrs / "eval" / "cls_SynthRS.json")
    assert [r["answer"] for r in cls] == [r["answer"] for r in by_task["cls"]] and all(r["task"] == "cls" for r in cls)
    assert all(Path(r["images"][0]).is_file() for r in cls)
    vqa = evalsets.read_vhm(synthrs / "eval" / "RSVQA_SynthRS.json")
    assert [r["answer"] for r in vqa] == [r["answer"] for r in by_task["vqa"]]
    vg = evalsets.read_vhm(synthrs / "eval" / "VG_SynthRS.json")
    assert [r["bbox"] for r in vg] == [r["bbox"] for r in by_task["vg"]]
    mc = evalsets.read_lhrs_bench(synthrs / "eval" / "mc_SynthRS.json")
    assert [r["answer"] for r in mc] == [r["answer"] for r in by_task["mc"]]
    folder, names = evalsets.read_image_folder(synthrs / "eval" / "classification")
    assert len(folder) == 12 and set(names) <= {
        "open water",
        "dense forest",
        "farmland",
        "bare land",
        "residential area",
        "industrial area",
    }
    assert all(names[r["label"]] == r["answer"] for r in folder)
    captions = evalsets.read_karpathy(synthrs / "eval" / "dataset_synthrs.json")
    assert len(captions) == 12 and all(len(r["references"]) == 2 for r in captions)


def test_scoring_routes_each_task_to_its_metric(synthrs):
    scenes = load_scenes(synthrs, "eval")
    rows = {r["task"]: r for r in evalsets.read_canonical(synthrs / "eval" / "eval.jsonl")}
    assert score_answer(rows["cls"], rows["cls"]["answer"].upper() + ".") == {"correct": 1.0}
    assert score_answer(rows["cls"], "") == {"correct": 0.0}
    assert score_answer(rows["mc"], f"The answer is {rows['mc']['answer']}.") == {"correct": 1.0}
    x1, y1, x2, y2 = rows["vg"]["bbox"]
    size = rows["vg"]["size"][0]
    qwen = (
        f"<|box_start|>({x1 * 1000 // size},{y1 * 1000 // size}),({x2 * 1000 // size},{y2 * 1000 // size})<|box_end|>"
    )
    result = score_answer(rows["vg"], qwen)
    assert result["correct"] == 1.0 and result["iou"] > 0.8
    assert score_answer(rows["vg"], "somewhere on the left") == {"correct": 0.0, "iou": 0.0}
    scene = scenes[Path(rows["caption"]["images"][0]).stem]
    perfect = score_answer(rows["caption"], T.render_text(T.claims_from_scene(scene, np.random.default_rng(0))), scene)
    assert perfect == {"fact_precision": 1.0, "fact_recall": 1.0, "fact_jaccard": 1.0}
    wrong = score_answer(rows["caption"], "A cat is sleeping on a sofa.", scene)
    assert wrong["fact_recall"] == 0.0
    summary = aggregate([rows["cls"], rows["cls"]], [{"correct": 1.0}, {"correct": 0.0}])
    assert summary == {"cls": {"correct": 0.5, "rows": 2}}


def test_vlm_eval_task_writes_metrics_and_predictions(synthrs, tmp_path):
    args = [
        "eval_vlm",
        "--config",
        str(ROOT / "recipes/tiny/eval_vlm/config_synthrs.yaml"),
        "--model_name_or_path",
        "tiny:qwen2-vl-tiny",
        "--eval_data",
        str(synthrs / "eval" / "eval.jsonl"),
        "--truth_scenes",
        str(synthrs),
        "--output_dir",
        str(tmp_path),
        "--max_rows",
        "3",
        "--max_new_tokens",
        "8",
    ]
    assert main(args) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())["metrics"]
    assert {"cls", "vqa", "mc", "caption"} <= set(metrics)
    for task in ("cls", "vqa", "mc"):
        assert 0.0 <= metrics[task]["correct"] <= 1.0 and metrics[task]["rows"] == 3
    predictions = [json.loads(line) for line in (tmp_path / "predictions.jsonl").open()]
    assert all({"id", "task", "answer", "prediction"} <= set(p) for p in predictions)


@pytest.mark.parametrize("data", ["eval/classification", "eval/dataset_synthrs.json"])
def test_clip_eval_task(synthrs, tmp_path, data):
    args = [
        "eval_clip",
        "--config",
        str(ROOT / "recipes/tiny/eval_clip/config_synthrs.yaml"),
        "--model_name_or_path",
        "tiny:clip-tiny",
        "--eval_data",
        str(synthrs / data),
        "--output_dir",
        str(tmp_path),
    ]
    assert main(args) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())["metrics"]
    if data.endswith("classification"):
        assert 0 <= metrics["top1"] <= metrics["top5"] <= 1 and metrics["images"] == 12
        # top-1 per class, over the classes with images; weighted by their images they give the overall top-1
        folder, names = evalsets.read_image_folder(synthrs / data)
        counts = {names[i]: sum(r["label"] == i for r in folder) for i in range(len(names))}
        per_class = {k.removeprefix("top1/"): v for k, v in metrics.items() if k.startswith("top1/")}
        assert set(per_class) == {name for name, n in counts.items() if n}
        assert sum(per_class[c] * counts[c] for c in per_class) / 12 == pytest.approx(metrics["top1"])
    else:
        assert 0 <= metrics["image_to_text_R@1"] <= metrics["image_to_text_R@5"] <= metrics["image_to_text_R@10"] <= 1


def test_raw_rsvqa_reader_follows_ids_and_skips_inactive(tmp_path):
    (tmp_path / "Images_LR").mkdir()
    questions = {
        "questions": [
            {
                "id": 0,
                "img_id": 7,
                "type": "presence",
                "question": "Is a road present?",
                "answers_ids": [0],
                "active": True,
            },
            {
                "id": 1,
                "img_id": 7,
                "type": "count",
                "question": "How many buildings?",
                "answers_ids": [1],
                "active": True,
            },
            {"id": 2, "img_id": 8, "type": "comp", "question": "Old?", "answers_ids": [2], "active": False},
        ]
    }
    answers = {
        "answers": [
            {"id": 0, "question_id": 0, "answer": "yes", "active": True},
            {"id": 1, "question_id": 1, "answer": 12, "active": True},
            {"id": 2, "question_id": 2, "answer": "no", "active": True},
        ]
    }
    (tmp_path / "LR_split_test_questions.json").write_text(json.dumps(questions))
    (tmp_path / "LR_split_test_answers.json").write_text(json.dumps(answers))
    rows = evalsets.read_rsvqa(tmp_path / "LR_split_test_questions.json", suffix=" Answer in a single word.")
    assert [(r["question"], r["answer"], r["qtype"]) for r in rows] == [
        ("Is a road present? Answer in a single word.", "yes", "presence"),
        ("How many buildings? Answer in a single word.", "12", "count"),
    ]
    assert rows[0]["images"][0].endswith("Images_LR/7.tif") and rows[0]["task"] == "vqa"
    assert [
        r["qtype"] for r in evalsets.read_rsvqa(tmp_path / "LR_split_test_questions.json", types=("presence",))
    ] == ["presence"]


def test_dior_rsvg_reader_numbers_objects_across_files(tmp_path):
    (tmp_path / "Annotations").mkdir()
    (tmp_path / "JPEGImages").mkdir()

    def obj(name, box, text):
        return (
            f"<object><name>{name}</name><pose>x</pose><bndbox><xmin>{box[0]}</xmin><ymin>{box[1]}</ymin>"
            f"<xmax>{box[2]}</xmax><ymax>{box[3]}</ymax></bndbox><description>{text}</description></object>"
        )

    (tmp_path / "Annotations" / "00002.xml").write_text(
        "<annotation><filename>00002.jpg</filename><size><width>800</width><height>800</height></size>"
        + obj("ship", (1, 2, 30, 40), "the ship on the left")
        + "</annotation>"
    )
    (tmp_path / "Annotations" / "00001.xml").write_text(
        "<annotation><filename>00001.jpg</filename>"
        + obj("vehicle", (5, 6, 7, 8), "the small vehicle")
        + obj("bridge", (10, 20, 300, 400), "the long bridge")
        + "</annotation>"
    )
    (tmp_path / "test.txt").write_text("1\n2\n")
    rows = evalsets.read_dior_rsvg(tmp_path, "test")
    # sorted files: 00001 holds objects 0 and 1, 00002 holds object 2
    assert [(r["question"], r["answer"], r["bbox"]) for r in rows] == [
        ("the long bridge", "bridge", [10.0, 20.0, 300.0, 400.0]),
        ("the ship on the left", "ship", [1.0, 2.0, 30.0, 40.0]),
    ]
    assert rows[1]["size"] == [800, 800] and "size" not in rows[0]
    assert rows[0]["images"][0].endswith("JPEGImages/00001.jpg") and rows[0]["task"] == "vg"
