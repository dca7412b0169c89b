"""`make demo --quick` end to end (the stages that exist), as CI runs it; a rerun skips finished stages."""

import json
from pathlib import Path

from rs_reward.cli import main


ROOT = Path(__file__).resolve().parent.parent


def test_quick_demo_runs_every_stage_and_writes_a_report(tmp_path):
    args = [
        "demo",
        "--config",
        str(ROOT / "recipes/tiny/demo/config.yaml"),
        "--quick",
        "--output_dir",
        str(tmp_path / "demo"),
        "--quick_steps",
        "6",
    ]
    assert main(args) == 0
    out = tmp_path / "demo-quick"
    report = (out / "report.md").read_text()
    for section in (
        "## 1. SynthRS",
        "## 2. Reward (score) model",
        "## 3. Curation of the pool",
        "Stages not run yet",
        "## Wall time",
    ):
        assert section in report
    metrics = json.loads((out / "reward" / "eval_metrics.json").read_text())
    assert f"| pairwise accuracy | {metrics['accuracy']:.3f} |" in report, "the report shows the run's own numbers"
    assert (out / "figures" / "synthrs_samples.png").is_file() and (
        out / "reward" / "figures" / "score_histogram.png"
    ).is_file()
    stamp = (out / "reward" / "model.safetensors").stat().st_mtime_ns
    assert main(args) == 0
    assert (out / "reward" / "model.safetensors").stat().st_mtime_ns == stamp, "a rerun skips the finished stages"
