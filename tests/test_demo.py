"""The quick demo recipe end to end, as CI runs it; a rerun skips finished stages; the stage runner."""

import json
import re
from pathlib import Path

import pytest

from rs_reward.cli import main


ROOT = Path(__file__).resolve().parent.parent
SECTIONS = (
    "## 1. SynthRS",
    "## 2. The foundation: a tiny Qwen2-VL that sees SynthRS",
    "## 3. Reward (score) model",
    "## 4. Curation of the pool",
    "## 5. Training on the curated data",
    "## 6. GRPO from the best SFT arm",
    "## 7. Best-of-N",
    "## Wall time",
)


def test_quick_demo_runs_every_stage_and_writes_a_report(tmp_path):
    args = [
        "demo",
        "--config",
        str(ROOT / "recipes/tiny/demo/config_quick.yaml"),
        "--output_dir",
        str(tmp_path / "demo"),
        "--max_steps",
        "6",
        "--grpo_steps",
        "6",
        "--eval_max_rows",
        "4",
    ]
    assert main(args) == 0
    out = tmp_path / "demo"
    report = (out / "report.md").read_text()
    for section in SECTIONS:
        assert section in report
    metrics = json.loads((out / "reward" / "eval_metrics.json").read_text())
    assert f"| pairwise accuracy | {metrics['accuracy']:.3f} |" in report, "the report shows the run's own numbers"
    for figure in (
        "figures/synthrs_samples.png",
        "reward/figures/score_histogram.png",
        "figures/precision_vs_kept.png",
        "figures/grpo_reward.png",
        "figures/grpo_monitor.png",
        "bon/figures/bon_selectors.png",
    ):
        assert (out / figure).is_file(), figure
    assert (out / "curated" / "reward_model" / "keep-0p3" / "sft.jsonl").is_file()
    assert set(json.loads((out / "curation_metrics.json").read_text())) == {"reward_model", "clip", "random"}
    arms = ("full", "reward_model-p30s60", "clip-p30s60", "random-p30s60")
    for arm in arms:
        assert f"| {arm} |" in report
        assert (out / "eval" / f"{arm}-seed0" / "metrics.json").is_file()
    assert "| arm | top1 | image_to_text_R@1 |" in report
    assert "| model | land_cover | presence | count | kind | colour | position | comparison |" in report
    headline = json.loads((out / "metrics.json").read_text())
    assert headline["score_model"]["accuracy"] == metrics["accuracy"]
    by_format = headline["score_model"]["accuracy_by_operator_and_format"]
    assert by_format == metrics["accuracy_by_operator_and_format"] and "| operator | caption |" in report
    assert set(headline["sft_arms"]) == set(arms)
    assert set(headline["curation"]) == {"reward_model", "clip", "random"}
    assert headline["foundation"]["perception_at_training"], "the committed foundation's own metrics are reported"
    for arm in arms:
        assert (out / "eval" / f"clip-{arm}-seed0-retrieval" / "metrics.json").is_file()
    base = json.loads((out / "eval" / "clip-baseline-cls" / "metrics.json").read_text())["metrics"]
    assert headline["clip_baseline"]["top1"] == base["top1"] and "image_to_text_R@5" in headline["clip_baseline"]
    assert f"| CLIP baseline (before) | {base['top1']:.3f} |" in report, "the arms are shown beside their start"
    classes = [k.removeprefix("top1/") for k in base if k.startswith("top1/")]
    assert classes and f"| arm | {' | '.join(classes)} |" in report, "top-1 per class beside the average"
    for run in ("score_model", "no_score_model"):
        assert f"| GRPO {run} |" in report
        assert (out / "grpo" / f"{run}-seed0" / "reward_history.json").is_file()
    bon = json.loads((out / "bon" / "metrics.json").read_text())
    assert set(bon["results"]) == {"score_model", "clip_score", "majority_vote", "random", "oracle"}
    assert headline["grpo"]["score_rule_auc_at_start"] == bon["rule_agreement"].get("score_model", {})
    oracle = bon["results"]["oracle"]
    assert oracle["2"]["mean"] >= oracle["1"]["mean"]
    # the report links a page of each kind, and each page is there
    pages = re.findall(r"\]\(([\w/.-]*browse/index\.html)\)", report)
    assert {"browse/index.html", "curated/reward_model/browse/index.html", "bon/browse/index.html"} <= set(pages)
    assert {f"grpo/{run}-seed0/browse/index.html" for run in ("score_model", "no_score_model")} <= set(pages)
    for page in pages:
        assert '<img src="thumbs/' in (out / page).read_text(), page
    stamp = (out / "reward" / "model.safetensors").stat().st_mtime_ns
    assert main(args) == 0
    assert (out / "reward" / "model.safetensors").stat().st_mtime_ns == stamp, "a rerun skips the finished stages"


def test_worker_pool_runs_calls_in_spawned_workers_or_inline_and_a_failure_cancels_the_queued_calls():
    import time

    from rs_reward.pipeline.runner import worker_pool

    for workers in (1, 2):
        with worker_pool(workers) as pool:
            futures = [pool.submit(pow, 2, 10), pool.submit(divmod, 17, 5), pool.submit(pow, 3, 3)]
            assert [f.result() for f in futures] == [1024, (3, 2), 27]
    with pytest.raises(ZeroDivisionError), worker_pool(2) as pool:
        failing = pool.submit(divmod, 1, 0)
        queued = [pool.submit(time.sleep, 0.2) for _ in range(30)]
        failing.result()
    assert sum(f.cancelled() for f in queued) >= 20, "the queued calls are dropped, not run to the end"
    ran = []
    with pytest.raises(ZeroDivisionError), worker_pool(1) as pool:
        pool.submit(divmod, 1, 0)
        ran.append(pool.submit(pow, 2, 2))
    assert not ran, "in one process a failure stops the run where it happens"


def test_a_stage_is_skipped_only_while_its_recipe_overrides_code_and_upstream_stages_are_unchanged(tmp_path):
    """`run_stage` parses the recipe and overrides with the task's own parser, calls its `main` with the
    dataclasses, and redoes the stage when the recipe's text, an override, a stage or a SynthRS build it reads
    from changes."""
    import types
    from dataclasses import dataclass

    from trl import TrlParser

    from rs_reward.pipeline.runner import run_stage

    @dataclass
    class Args:
        output_dir: str = "out"
        text: str = "a"
        count: int = 1

    calls = []

    def fake_main(args):
        calls.append((args.output_dir, args.text, args.count))
        return 0

    task = types.SimpleNamespace(
        __name__="rs_reward.scripts.fake", make_parser=lambda: TrlParser((Args,)), main=fake_main
    )
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("text: b\n")
    up, down = tmp_path / "up", tmp_path / "down"
    run_stage("up", task, up, recipe=str(recipe), output_dir=str(up))
    run_stage("down", task, down, recipe=str(recipe), output_dir=str(up / "model"), count=2)
    assert calls == [(str(up), "b", 1), (str(up / "model"), "b", 2)], "recipe values, then overrides, typed"
    run_stage("down", task, down, recipe=str(recipe), output_dir=str(up / "model"), count=2)
    assert len(calls) == 2, "unchanged: skipped"
    run_stage("down", task, down, recipe=str(recipe), output_dir=str(up / "model"), count=3)
    assert len(calls) == 3, "an override changed"
    recipe.write_text("text: c\n")
    run_stage("up", task, up, recipe=str(recipe), output_dir=str(up))
    run_stage("down", task, down, recipe=str(recipe), output_dir=str(up / "model"), count=3)
    assert calls[-2:] == [(str(up), "c", 1), (str(up / "model"), "c", 3)], "the recipe changed"
    run_stage("up", task, up, force=True, recipe=str(recipe), output_dir=str(up), count=5)
    run_stage("down", task, down, recipe=str(recipe), output_dir=str(up / "model"), count=3)
    assert len(calls) == 7, "the stage it reads from was redone with other settings"
    data = tmp_path / "synthrs"
    (data / "pool").mkdir(parents=True)
    (data / "manifest.json").write_text('{"fingerprint": "a"}')
    run_stage("read", task, tmp_path / "read", recipe=str(recipe), output_dir=str(data / "pool"))
    run_stage("read", task, tmp_path / "read", recipe=str(recipe), output_dir=str(data / "pool"))
    assert len(calls) == 8
    (data / "manifest.json").write_text('{"fingerprint": "b"}')
    run_stage("read", task, tmp_path / "read", recipe=str(recipe), output_dir=str(data / "pool"))
    assert len(calls) == 9, "the SynthRS build it reads was rebuilt with another config"


def test_grpo_seeds_are_reported_as_mean_and_spread():
    """`grpo_seeds`: the curves show the mean over seeds step by step, the table first and last logs as mean +- std,
    and the evaluation columns of the seeds as mean +- std."""
    from rs_reward.pipeline.report import (
        arms_table,
        caption_facts_table,
        grpo_first_last,
        grpo_table,
        grpo_whole_run,
        mean_history,
        start_agreement,
    )

    seeds = [
        [{"step": 1, "reward": 0.0, "hacking/score_rule_auc": 0.8}, {"step": 2, "reward": 1.0}],
        [
            {"step": 1, "reward": 1.0, "hacking/score_rule_auc": 1.0},
            {"step": 2, "reward": 2.0},
            {"step": 3, "reward": 5},
        ],
    ]
    assert mean_history(seeds) == [
        {"step": 1, "reward": 0.5, "hacking/score_rule_auc": 0.9},
        {"step": 2, "reward": 1.5},
    ]
    assert grpo_first_last(seeds, "reward") == ([0.0, 1.0], [1.0, 5])
    table = grpo_table({"score_model": seeds})
    assert "| score_model | reward | 0.500 +- 0.500 | 3.000 +- 2.000 | 1.583 +- 1.083 |" in table
    assert "| score_model | hacking/score_rule_auc | 0.900 +- 0.100 | 0.900 +- 0.100 | 0.900 +- 0.100 |" in table
    # over a whole run, each log's AUC weighs by its pairs: (0.5 x 2 + 1.0 x 6) / 8
    logs = [
        {"step": 5, "hacking/score_rule_auc": 0.5, "hacking/score_rule_pairs": 2.0},
        {"step": 10, "hacking/score_rule_pairs": 0.0},
        {"step": 15, "hacking/score_rule_auc": 1.0, "hacking/score_rule_pairs": 6.0},
    ]
    assert grpo_whole_run(logs, "hacking/score_rule_auc") == 0.875
    assert grpo_whole_run(logs, "hacking/score_rule_pairs") == 8 / 3 and grpo_whole_run(logs, "reward") is None
    runs = [{"caption": {"fact_precision": p, "fact_recall": 0.5, "fact_jaccard": 0.4}} for p in (0.6, 0.8)]
    assert "| GRPO score_model | 0.700 +- 0.100 | 0.500 +- 0.000 | 0.400 +- 0.000 |" in caption_facts_table(
        {"GRPO score_model": runs}
    )
    assert "| GRPO score_model | - | - | - | - | 0.400 +- 0.000 |" in arms_table({"GRPO score_model": runs})
    # the monitor's AUC at step 0, from best-of-N's candidates of the same policy
    bon = {"temperature": 0.95, "rule_agreement": {"score_model": {"vqa": dict(auc=0.875, pairs=40, questions=9)}}}
    bon["rule_agreement"]["score_model"]["vqa"]["candidates"] = 16
    text = "\n".join(start_agreement(bon, "full"))
    assert "the 16 best-of-N candidates" in text and "AUC 0.875 on vqa (40 pairs from 9 questions" in text
    assert start_agreement({"temperature": 0.95, "rule_agreement": {}}, "full") == []


def test_a_stage_leaves_deterministic_kernels_as_it_found_them(tmp_path):
    """A recipe's `full_determinism` (the tiny reward recipe sets it) turns deterministic kernels on for the whole
    process; `run_stage` puts the setting back, so the demo's next in-process stage runs as its own recipe says."""
    import types
    from dataclasses import dataclass

    import torch
    from trl import TrlParser

    from rs_reward.pipeline.runner import run_stage

    @dataclass
    class Args:
        output_dir: str = "out"
        fail: bool = False

    def deterministic_main(args):
        torch.use_deterministic_algorithms(True)
        return 1 if args.fail else 0

    task = types.SimpleNamespace(
        __name__="rs_reward.scripts.fake", make_parser=lambda: TrlParser((Args,)), main=deterministic_main
    )
    torch.use_deterministic_algorithms(False)  # as a demo process starts (conftest restores it after each test)
    run_stage("ok", task, tmp_path / "ok", output_dir=str(tmp_path / "ok"))
    assert not torch.are_deterministic_algorithms_enabled()
    with pytest.raises(RuntimeError, match="stage failing failed"):
        run_stage("failing", task, tmp_path / "failing", output_dir=str(tmp_path / "failing"), fail=True)
    assert not torch.are_deterministic_algorithms_enabled()
