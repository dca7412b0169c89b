"""Memory is bounded by tokens and pixels, not only rows: scoring a pool with one enormous caption and one
enormous image stays under a stated peak RSS (measured in a fresh process with `resource`)."""

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


def test_scoring_an_enormous_caption_and_image_stays_bounded(tmp_path):
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
    pd.DataFrame(rows).to_csv(tmp_path / "pool.csv", index=False)
    out = tmp_path / "scores"
    args = ["score", "--config", str(ROOT / "recipes/tiny/score/config_reward_model.yaml")]
    args += ["--model_name_or_path", "tiny:qwen2-vl-tiny-reward", "--pool", str(tmp_path / "pool.csv")]
    args += ["--output_dir", str(out), "--batch_size", "16"]
    result = subprocess.run([sys.executable, "-c", SCRIPT, *args], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    manifest = json.loads((out / "manifest.json").read_text())
    assert measured["code"] == 0 and manifest["rows_scored"] == 14 and manifest["texts_truncated"] == 1
    assert measured["peak_gib"] < PEAK_RSS_LIMIT_GIB, measured
    print(f"peak RSS {measured['peak_gib']:.2f} GiB")
