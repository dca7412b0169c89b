"""The bad-input catalogue, for every entry point that reads data (`sft`, `grpo`, `reward`, `eval` of a reward
model and of a VLM, `clip`, `bon`; `score` has its own in tests/test_scoring.py and tests/test_errors.py).

Each file holds good rows and one row of every kind of bad input: an empty, truncated, non-image, too large,
missing, escaping, absolute and 16-bit multi-band image, empty and non-string texts, a repeated id, a line that is
not JSON; and two awkward but usable rows, a 16-bit grayscale image (used, correctly scaled) and a 20,000-word
text (cut to the model's limit where the task may cut, rejected where a prompt would change meaning). For each the
command must exit 0, print no traceback, name every bad row with its reason in the task's `rejects.jsonl`, and
rows in = rows used + rows rejected.
"""

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rs_reward.cli import console
from rs_reward.modeling import tiny_model_path


ROOT = Path(__file__).resolve().parent.parent
HUGE_TEXT = " ".join(["ships"] * 20_000)

# row id -> (image, what its reject reason says)
BAD_IMAGES = {
    "img-empty": ("images/empty.png", "empty image"),
    "img-truncated": ("images/truncated.png", "corrupt|unreadable"),
    "img-not-an-image": ("images/text.png", "unreadable"),
    "img-too-large": ("images/huge.png", "too large"),
    "img-missing": ("images/nope.png", "missing image"),
    "img-escaping": ("../../etc/passwd", "escapes the image root"),
    "img-absolute": ("/etc/hostname", "is absolute"),
    "img-rgbn-16-bit": ("images/rgbn16.tif", "4-band 16-bit TIFF"),
}
GOOD = [f"good-{i}" for i in range(8)]


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    from test_images import _multiband_tiff

    root = tmp_path_factory.mktemp("catalogue")
    folder = root / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(len(GOOD)):
        Image.fromarray(rng.integers(0, 255, (56, 56, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    Image.fromarray((np.arange(56 * 56).reshape(56, 56) * 20).astype(np.uint16)).save(folder / "x16.png")
    (folder / "empty.png").write_bytes(b"")
    (folder / "truncated.png").write_bytes((folder / "0.png").read_bytes()[:150])
    (folder / "text.png").write_text("not an image")
    Image.new("L", (9000, 8000)).save(folder / "huge.png")  # 72 M pixels: over the guard
    _multiband_tiff(folder / "rgbn16.tif", 4, 16)
    return root


def _write_jsonl(path: Path, rows: list) -> int:
    """Rows as JSONL (a str row is written as it is: a broken line); returns the number of rows in."""
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return len(rows)


def _catalogue(make, text_field_bad: dict) -> list:
    """Rows made by `make(id, image, text)`: the good rows, the two awkward usable ones, every bad image, the bad
    texts, a repeated id and a broken line."""
    rows = [make(g, f"images/{i}.png", f"a harbour with {i} ships") for i, g in enumerate(GOOD)]
    rows += [make("ok-16-bit", "images/x16.png", "a grey scene"), make("ok-huge-text", "images/0.png", HUGE_TEXT)]
    rows += [make(row_id, image, "a scene") for row_id, (image, _) in BAD_IMAGES.items()]
    rows += [make(row_id, "images/1.png", text) for row_id, text in text_field_bad.items()]
    rows += [make(GOOD[0], "images/2.png", "the same id again"), '{"id": "broken", "images": [']
    return rows


def _rejects(path: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        row = json.loads(line)
        found.setdefault(row["id"], []).append(row["reason"])
    return found


@pytest.fixture
def console_output(capfd, caplog):
    """Everything the command printed: the console (file descriptors) and its log records."""
    import logging

    caplog.set_level(logging.INFO)

    def read() -> str:
        out = capfd.readouterr()
        text = out.out + out.err + caplog.text
        caplog.clear()
        return text

    return read


def _check(read, code: int, rejects_file: Path, rows_in: int, used_pattern: str, expected: dict[str, str]):
    """Exit 0, no traceback, each expected reject (id -> reason regex) once, rows in = used + rejected."""
    console_text = read()
    assert code == 0, console_text[-3000:]
    assert "Traceback" not in console_text, console_text[-3000:]
    found = _rejects(rejects_file)
    assert set(found) == set(expected), (sorted(found), sorted(expected))
    for row_id, reason in expected.items():
        assert len(found[row_id]) == 1 and re.search(reason, found[row_id][0]), (row_id, found[row_id])
    used = int(re.search(used_pattern, console_text).group(1))
    assert rows_in == used + sum(map(len, found.values())), (rows_in, used, found)
    return used


def _image_rejects(extra: dict[str, str]) -> dict[str, str]:
    return {
        **{k: reason for k, (_, reason) in BAD_IMAGES.items()},
        GOOD[0]: "duplicate id: row 21 repeats the id of row 1",
        "line-22": "line 22 is not valid JSON",
        **extra,
    }


def test_sft(images, tmp_path, console_output):
    def make(row_id, image, text):
        messages = [{"role": "user", "content": "Describe this image."}, {"role": "assistant", "content": text}]
        return {"id": row_id, "images": [image], "messages": messages, "task": "caption"}

    rows_in = _write_jsonl(images / "sft.jsonl", _catalogue(make, {"text-empty": "", "text-number": 3}))
    out = tmp_path / "sft"
    code = console(
        ["sft", "--config", str(ROOT / "recipes/tiny/sft/config_pretrain.yaml"), "--model_name_or_path"]
        + ["tiny:qwen2-vl-tiny", "--dataset_name", str(images / "sft.jsonl"), "--output_dir", str(out)]
        + ["--max_steps", "2", "--per_device_train_batch_size", "5", "--max_length", "256", "--report_to", "none"]
    )
    expected = _image_rejects({"text-empty": "non-empty assistant turn", "text-number": "content must be a string"})
    assert _check(console_output, code, out / "rejects.jsonl", rows_in, r"(\d+) SFT rows;", expected) == 10


def test_grpo(images, tmp_path, console_output):
    def make(row_id, image, text):
        return {"id": row_id, "images": [image], "prompt": text, "solution": "2", "reward_type": "em"}

    rows = _catalogue(make, {"text-empty": "", "text-number": 3})
    rows.append({**make("no-solution", "images/3.png", "How many ships?"), "solution": None})
    rows.append({**make("bad-type", "images/3.png", "How many ships?"), "reward_type": "magic"})
    rows_in = _write_jsonl(images / "rl.jsonl", rows)
    out = tmp_path / "grpo"
    code = console(
        ["grpo", "--config", str(ROOT / "recipes/tiny/grpo/config_no_score_model.yaml")]
        + ["--model_name_or_path", tiny_model_path("qwen2-vl-tiny"), "--dataset_name", str(images / "rl.jsonl")]
        + ["--output_dir", str(out), "--max_steps", "1", "--per_device_train_batch_size", "4"]
        + ["--num_generations", "2", "--max_completion_length", "4", "--report_to", "none"]
        + ["--reward_model_name_or_path", tiny_model_path("qwen2-vl-tiny-reward")]
    )
    expected = _image_rejects(
        {
            "ok-huge-text": "prompt of 119999 characters is longer than 8192",
            "text-empty": "non-empty string content",
            "text-number": "'prompt' must be a question",
            "no-solution": "needs a non-empty solution",
            "bad-type": "unknown reward_type 'magic'",
        }
    )
    assert _check(console_output, code, out / "rejects.jsonl", rows_in, r"(\d+) RL prompts", expected) == 9


def _pair(row_id, image, text):
    return {"id": row_id, "image": image, "question": "", "chosen": text, "rejected": "a blank image"}


def test_reward_training_and_its_evaluation(images, tmp_path, console_output):
    rows_in = _write_jsonl(images / "pairs.jsonl", _catalogue(_pair, {"text-empty": " ", "text-number": 3}))
    data = str(images / "pairs.jsonl")
    out = tmp_path / "reward"
    code = console(
        ["reward", "--config", str(ROOT / "recipes/tiny/reward/config_demo.yaml"), "--model_name_or_path"]
        + ["tiny:qwen2-vl-tiny", "--dataset_name", data, "--eval_dataset_name", data, "--output_dir", str(out)]
        + ["--max_steps", "2", "--per_device_train_batch_size", "4", "--max_eval_pairs", "4", "--report_to", "none"]
        + ["--use_cpu", "true", "--bf16", "false", "--dtype", "float32", "--eval_strategy", "no"]
    )
    expected = _image_rejects({"text-empty": "'chosen' is empty", "text-number": "'chosen'"})
    expected["pairs-21"] = expected.pop("line-22")
    text = console_output()
    assert code == 0 and "Traceback" not in text, text[-3000:]
    found = [json.loads(line) for line in (out / "rejects.jsonl").read_text().splitlines()]
    for split in ("train", "held_out"):  # the same file as both sets: each reject once per split
        mine = {r["id"]: r["reason"] for r in found if r["split"] == split}
        assert set(mine) == set(expected), (split, sorted(mine))
        assert [k for k, v in mine.items() if not re.search(expected[k], v)] == [], mine
    used = int(re.search(r"pairs: (\d+) train", text).group(1))
    assert used == 10 and rows_in == used + len(expected)
    assert int(re.search(r"texts cut to 1024 tokens +(\d+)", text).group(1)) >= 1  # the 20,000-word caption

    code = console(
        [
            "eval_reward",
            "--config",
            str(ROOT / "recipes/tiny/eval_reward/config_synthrs.yaml"),
            "--model_name_or_path",
            str(out),
        ]
        + ["--dataset_name", data, "--eval_dataset_name", data, "--output_dir", str(tmp_path / "eval")]
        + ["--blind_control", "false"]
    )
    used = _check(
        console_output, code, tmp_path / "eval" / "rejects.jsonl", rows_in, r"(\d+) held-out pairs", expected
    )
    assert used == 10


def _eval_row(row_id, image, text):
    return {"id": row_id, "images": [image], "question": text, "answer": "2", "task": "vqa"}


def _eval_rejects():
    return _image_rejects(
        {
            "ok-huge-text": "question of 119999 characters is longer than 8192",
            "text-empty": "needs a non-empty string 'question'",
            "text-number": "needs a non-empty string 'question'",
            "no-answer": "'answer' must be a non-empty string",
            "bad-task": "unknown task 'magic'",
            "bad-box": "needs 'bbox'",
        }
    )


def _eval_file(images) -> int:
    rows = _catalogue(_eval_row, {"text-empty": " ", "text-number": 3})
    rows.append({**_eval_row("no-answer", "images/3.png", "How many?"), "answer": ""})
    rows.append({**_eval_row("bad-task", "images/3.png", "How many?"), "task": "magic"})
    rows.append({**_eval_row("bad-box", "images/3.png", "the ship"), "task": "vg", "bbox": [1, 2]})
    return _write_jsonl(images / "eval.jsonl", rows)


def test_vlm_evaluation(images, tmp_path, console_output):
    rows_in = _eval_file(images)
    code = console(
        ["eval_vlm", "--config", str(ROOT / "recipes/tiny/eval_vlm/config_synthrs.yaml"), "--model_name_or_path"]
        + [tiny_model_path("qwen2-vl-tiny"), "--eval_data", str(images / "eval.jsonl"), "--truth_scenes", ""]
        + ["--output_dir", str(tmp_path / "vlm"), "--max_new_tokens", "4", "--max_rows", "1000"]
    )
    used = _check(
        console_output, code, tmp_path / "vlm" / "rejects.jsonl", rows_in, r"(\d+) eval rows;", _eval_rejects()
    )
    assert used == 9


def test_best_of_n(images, tmp_path, console_output):
    rows_in = _eval_file(images)
    code = console(
        ["bon", "--config", str(ROOT / "recipes/tiny/bon/config_demo.yaml"), "--model_name_or_path"]
        + [tiny_model_path("qwen2-vl-tiny"), "--reward_model_name_or_path", tiny_model_path("qwen2-vl-tiny-reward")]
        + ["--clip_model_name_or_path", tiny_model_path("clip-tiny"), "--eval_data", str(images / "eval.jsonl")]
        + ["--truth_scenes", "", "--tasks", "vqa", "--n_list", "1", "2", "--max_new_tokens", "4", "--max_rows", "1000"]
        + ["--output_dir", str(tmp_path / "bon")]
    )
    used = _check(
        console_output, code, tmp_path / "bon" / "rejects.jsonl", rows_in, r"(\d+) eval rows;", _eval_rejects()
    )
    assert used == 9


def test_clip(images, tmp_path, console_output):
    import csv

    rows = _catalogue(
        lambda row_id, image, text: {"id": row_id, "filepath": image, "title": text}, {"text-empty": " "}
    )
    rows = [r for r in rows if isinstance(r, dict)]  # a CSV has no broken JSON line
    rows.append({"id": "no-image", "filepath": "", "title": "a scene"})
    with open(images / "pairs.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, ["id", "filepath", "title"])
        writer.writeheader()
        writer.writerows(rows)
    out = tmp_path / "clip"
    code = console(
        ["clip", "--config", str(ROOT / "recipes/clip-vit-l14/clip/config_all.yaml"), "--model_name_or_path"]
        + [tiny_model_path("clip-tiny"), "--train_file", str(images / "pairs.csv"), "--output_dir", str(out)]
        + ["--global_batch_size", "4", "--max_steps", "2", "--warmup_steps", "1"]
    )
    expected = _image_rejects({"text-empty": "no caption text", "no-image": "no image"})
    del expected["line-22"]
    expected[GOOD[0]] = "duplicate id: row 20 repeats the id of row 1"
    used = _check(console_output, code, out / "rejects.jsonl", len(rows), r"(\d+) caption pairs", expected)
    assert used == 10  # the 20,000-word caption is used, cut to the text tower's length by the processor
