"""Memory is bounded by tokens and pixels, not only rows: scoring a pool, and training a reward model, on rows
with one enormous caption and one enormous image stays under a stated peak RSS (measured in a fresh process with
`resource`)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image


ROOT = Path(__file__).resolve().parent.parent
PEAK_RSS_LIMIT_GIB = 2.0  # the tiny reward model's process, torch and transformers included

SCRIPT = """
import json, resource, sys
from rs_reward.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "peak_gib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}))
"""


def _enormous_rows(tmp_path) -> list[dict]:
    """12 ordinary rows, one with a 20,000-word caption and one with a 36 M-pixel image."""
    (tmp_path / "images").mkdir()
    rng = np.random.default_rng(0)
    rows = []
    for i in range(12):
        Image.fromarray(rng.integers(0, 255, (56, 56, 3), dtype=np.uint8)).save(tmp_path / "images" / f"{i}.jpg")
        rows.append({"id": f"r{i}", "filepath": f"images/{i}.jpg", "title": f"a field with {i} ships"})
    words = rng.choice(["farmland", "ships", "two", "red", "harbour", "left", "a", "of"], size=20_000)
    rows.append({"id": "long-text", "filepath": "images/0.jpg", "title": " ".join(words)})
    Image.new("RGB", (6000, 6000), (20, 120, 40)).save(tmp_path / "images" / "huge.jpg", quality=50)  # 36 M pixels
    rows.append({"id": "huge-image", "filepath": "images/huge.jpg", "title": "a forest"})
    return rows


def _run(args) -> dict:
    result = subprocess.run([sys.executable, "-c", SCRIPT, *args], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    assert measured["code"] == 0
    return measured


def test_scoring_an_enormous_caption_and_image_stays_bounded(tmp_path):
    rows = _enormous_rows(tmp_path)
    pd.DataFrame(rows).to_csv(tmp_path / "pool.csv", index=False)
    out = tmp_path / "scores"
    args = ["score", "--config", str(ROOT / "recipes/tiny/score/config_reward_model.yaml")]
    args += ["--model_name_or_path", "tiny:qwen2-vl-tiny-reward", "--pool", str(tmp_path / "pool.csv")]
    args += ["--output_dir", str(out), "--batch_size", "16"]
    measured = _run(args)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["rows_scored"] == 14 and manifest["texts_truncated"] == 1
    assert measured["peak_gib"] < PEAK_RSS_LIMIT_GIB, measured
    print(f"peak RSS {measured['peak_gib']:.2f} GiB")


def test_reward_training_on_an_enormous_caption_and_image_stays_bounded(tmp_path):
    """Each text is cut to `max_length` (1024) tokens and the image resized to the pixel budget. Before the cut
    (`max_length` was None), two steps over the bad-input catalogue's pairs, one with a 20,000-word text, took
    180 s instead of 14 s on the tiny model, and this run had not finished after 11 minutes."""
    rows = _enormous_rows(tmp_path)
    pairs = [
        {"id": r["id"], "image": r["filepath"], "question": "", "chosen": r["title"], "rejected": "an empty image"}
        for r in rows
    ]
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs))
    args = ["reward", "--config", str(ROOT / "recipes/tiny/reward/config_demo.yaml")]
    args += ["--model_name_or_path", "tiny:qwen2-vl-tiny", "--dataset_name", str(tmp_path / "pairs.jsonl")]
    args += ["--eval_dataset_name", str(tmp_path / "pairs.jsonl"), "--output_dir", str(tmp_path / "rm")]
    args += ["--num_train_epochs", "1", "--per_device_train_batch_size", "7", "--max_eval_pairs", "14"]
    args += ["--min_pixels", "3136", "--max_pixels", "12544", "--report_to", "none"]
    measured = _run(args)
    assert (tmp_path / "rm" / "model.safetensors").is_file() or (
        tmp_path / "rm" / "adapter_model.safetensors"
    ).is_file()
    assert measured["peak_gib"] < PEAK_RSS_LIMIT_GIB, measured
    print(f"peak RSS {measured['peak_gib']:.2f} GiB")
