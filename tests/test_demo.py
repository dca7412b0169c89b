"""`make demo --quick` end to end (what exists of the pipeline), as CI runs it."""

from pathlib import Path

from rs_reward.cli import main


ROOT = Path(__file__).resolve().parent.parent


def test_quick_demo_writes_a_report_with_measured_numbers(tmp_path):
    out = tmp_path / "demo"
    assert (
        main(["demo", "--config", str(ROOT / "recipes/tiny/demo/config.yaml"), "--quick", "--output_dir", str(out)])
        == 0
    )
    report = (tmp_path / "demo-quick" / "report.md").read_text()
    assert "## SynthRS" in report and "Stages not run yet" in report
    assert (tmp_path / "demo-quick" / "figures" / "synthrs_samples.png").is_file()
    assert "land_cover" in report and "wrong_count" in report
