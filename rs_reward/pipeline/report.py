"""The demo report: its tables and figures from the stages' metrics, `report.md` and the headline `metrics.json`.

Every function reads metrics that the stages wrote (`rs_reward.pipeline.demo`) and formats them; none trains or
scores anything.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


ARM_COLUMNS = (
    ("cls", "correct"),
    ("vqa", "correct"),
    ("mc", "correct"),
    ("vg", "correct"),
    ("caption", "fact_jaccard"),
)


def arms_table(arm_metrics: dict[str, list[dict]]) -> str:
    """Arms x tasks, mean +- std over seeds, under the chance level of each task (VQA: its types are balanced)."""
    from rs_reward.data.synthrs.texts import CLOSED_QTYPES, LAND_COVERS, QTYPE_CHANCE
    from rs_reward.report import markdown_table

    vqa_chance = sum(QTYPE_CHANCE[t] for t in CLOSED_QTYPES) / len(CLOSED_QTYPES)
    rows = [["chance", f"{1 / len(LAND_COVERS):.3f}", f"{vqa_chance:.3f}", "0.250", "~0", "0"]]
    for arm, runs in arm_metrics.items():
        rows.append([arm] + [_mean_std([run[task][key] for run in runs if task in run]) for task, key in ARM_COLUMNS])
    header = ["arm", "classification", "VQA", "multiple choice", "grounding Acc@0.5", "caption fact Jaccard"]
    return markdown_table(header, rows)


VQA_TYPES = ("land_cover", "presence", "count", "kind", "colour", "position", "comparison")


def _mean_std(values: list[float]) -> str:
    import numpy as np

    if not values:
        return "-"
    return f"{np.mean(values):.3f} +- {np.std(values):.3f}" if len(values) > 1 else f"{values[0]:.3f}"


def vqa_types_table(models: dict[str, list[dict]]) -> str:
    """Models x VQA question types (strict match, mean +- std over seeds), with the chance level of each type."""
    from rs_reward.data.synthrs.texts import QTYPE_CHANCE
    from rs_reward.report import markdown_table

    rows = [["chance"] + [f"{QTYPE_CHANCE[t]:.3f}" for t in VQA_TYPES]]
    for name, runs in models.items():
        rows.append(
            [name] + [_mean_std([r[f"vqa/{t}"]["correct"] for r in runs if f"vqa/{t}" in r]) for t in VQA_TYPES]
        )
    return markdown_table(["model", *VQA_TYPES], rows)


CAPTION_FACTS = ("fact_precision", "fact_recall", "fact_jaccard")


def caption_facts_table(models: dict[str, list[dict]]) -> str:
    """Models x caption fact scores against the scene (precision, recall, Jaccard; mean +- std over seeds)."""
    from rs_reward.report import markdown_table

    rows = [
        [name] + [_mean_std([r["caption"][k] for r in runs if k in r.get("caption", {})]) for k in CAPTION_FACTS]
        for name, runs in models.items()
    ]
    return markdown_table(["model", "caption fact precision", "recall", "Jaccard"], rows)


def summarise_runs(runs: list[dict]) -> dict:
    """{task or task/qtype: {metric: {"mean", "std", "runs"}}} over the seeds of one arm (for metrics.json)."""
    import numpy as np

    out = {}
    for task in sorted({t for r in runs for t in r}):
        keys = sorted({k for r in runs if task in r for k in r[task] if k != "rows"})
        out[task] = {
            k: {
                "mean": float(np.mean([r[task][k] for r in runs if task in r])),
                "std": float(np.std([r[task][k] for r in runs if task in r])),
                "runs": [r[task][k] for r in runs if task in r],
            }
            for k in keys
        }
    return out


CLIP_COLUMNS = ("top1", "image_to_text_R@1", "text_to_image_R@1", "image_to_text_R@5", "text_to_image_R@5")


def clip_arms_table(arm_metrics: dict[str, list[dict]]) -> str:
    """CLIP arms x metrics, mean +- std over seeds."""
    import numpy as np

    from rs_reward.report import markdown_table

    rows = []
    for arm, runs in arm_metrics.items():
        row = [arm]
        for key in CLIP_COLUMNS:
            values = [run[key] for run in runs if key in run]
            row.append(
                f"{np.mean(values):.3f} +- {np.std(values):.3f}"
                if len(values) > 1
                else f"{values[0]:.3f}"
                if values
                else "-"
            )
        rows.append(row)
    return markdown_table(["arm", *CLIP_COLUMNS], rows)


def clip_classes(arm_metrics: dict[str, list[dict]]) -> list[str]:
    """The per-class top-1 keys (`top1/<class>`) of the CLIP runs, in order of first appearance."""
    return list(dict.fromkeys(k for runs in arm_metrics.values() for k in runs[0] if k.startswith("top1/")))


def clip_classes_table(arm_metrics: dict[str, list[dict]]) -> str:
    """CLIP arms x classes: zero-shot top-1 per class (`top1/<class>`), mean over seeds."""
    import numpy as np

    from rs_reward.report import markdown_table

    classes = clip_classes(arm_metrics)
    rows = [
        [arm, *(f"{np.mean([run[c] for run in runs if c in run]):.2f}" if c in runs[0] else "-" for c in classes)]
        for arm, runs in arm_metrics.items()
    ]
    return markdown_table(["arm", *(c.removeprefix("top1/") for c in classes)], rows)


def arm_score(metrics: dict) -> float:
    """Mean of the arm columns a model has (how the demo picks the SFT arm to start GRPO and best-of-N from)."""
    values = [metrics[task][key] for task, key in ARM_COLUMNS if task in metrics]
    return sum(values) / len(values) if values else float("-inf")


GRPO_CURVES = (
    ("grpo_reward", "reward (mean per logging step)", ("reward",)),
    ("grpo_accuracy", "accuracy reward per prompt type", ("accuracy/em", "accuracy/open")),
    (
        "grpo_monitor",
        "reward-hacking monitor",
        ("hacking/score_rule_auc", "hacking/high_score_rule_fail", "hacking/length_drift"),
    ),
)


def mean_history(histories: list[list[dict]]) -> list[dict]:
    """The logged entries of several seeds of one GRPO run, averaged step by step (a step and a metric enter where
    every seed logged them)."""
    import numpy as np

    by_step = [{e["step"]: e for e in history if "step" in e} for history in histories]
    steps = sorted(set.intersection(*(set(h) for h in by_step))) if by_step else []
    out = []
    for step in steps:
        entries = [h[step] for h in by_step]
        keys = set.intersection(*(set(e) for e in entries)) - {"step"}
        values = {k: [e[k] for e in entries] for k in sorted(keys)}
        out.append(
            {"step": step}
            | {k: float(np.mean(v)) for k, v in values.items() if all(isinstance(x, (int, float)) for x in v)}
        )
    return out


def grpo_curves(histories: dict[str, list[list[dict]]], folder: Path) -> list[Path]:
    """One PNG per curve family, one line per GRPO run and metric (the mean over the run's seeds)."""
    from rs_reward.report import line_plot

    paths = []
    for name, ylabel, keys in GRPO_CURVES:
        series = {}
        for run, seeds in histories.items():
            history = mean_history(seeds)
            for key in keys:
                points = [(e["step"], e[key]) for e in history if e.get(key) is not None]
                if points:
                    label = run if len(keys) == 1 else f"{run}: {key.split('/')[-1]}"
                    series[label] = ([p[0] for p in points], [p[1] for p in points])
        if series:
            paths.append(line_plot(series, folder / f"{name}.png", xlabel="GRPO step", ylabel=ylabel, title=name))
    return paths


GRPO_TABLE_KEYS = (
    "reward",
    "accuracy/em",
    "accuracy/open",
    "hacking/score_rule_auc",
    "hacking/score_rule_pairs",
    "hacking/high_score_rule_fail",
    "hacking/length_drift",
)


def grpo_first_last(histories: list[list[dict]], key: str) -> tuple[list[float], list[float]]:
    """The first and the last logged value of `key`, one per seed that logged it."""
    first, last = [], []
    for history in histories:
        values = [e[key] for e in history if e.get(key) is not None]
        if values:
            first.append(values[0])
            last.append(values[-1])
    return first, last


def grpo_whole_run(history: list[dict], key: str) -> float | None:
    """`key` over a whole run: the mean of its logged values, except `hacking/score_rule_auc`, which each log pools over
    its own pairs, so the run's value weighs each log by its pairs (`hacking/score_rule_pairs`); None if never logged."""
    logged = [e for e in history if e.get(key) is not None]
    if key == "hacking/score_rule_auc":
        weights = [e.get("hacking/score_rule_pairs") or 0.0 for e in logged]
        if sum(weights) > 0:
            return sum(e[key] * w for e, w in zip(logged, weights)) / sum(weights)
    return sum(e[key] for e in logged) / len(logged) if logged else None


def grpo_table(histories: dict[str, list[list[dict]]]) -> str:
    """First and last logged value of the main GRPO curves and their value over the whole run (`grpo_whole_run`), per
    run (mean +- std over its seeds)."""
    from rs_reward.report import markdown_table

    rows = []
    for run, seeds in histories.items():
        for key in GRPO_TABLE_KEYS:
            first, last = grpo_first_last(seeds, key)
            if first:
                whole = [v for v in (grpo_whole_run(h, key) for h in seeds) if v is not None]
                rows.append([run, key, _mean_std(first), _mean_std(last), _mean_std(whole)])
    return markdown_table(["run", "metric", "first log", "last log", "whole run"], rows)


def start_agreement(bon_metrics: dict, policy: str) -> list[str]:
    """The monitor's AUC on the GRPO start policy's own samples: best-of-N's `rule_agreement` of the score model (the
    same policy), from far more pairs than a logging step holds; [] when best-of-N had no such pair."""
    agreement = bon_metrics.get("rule_agreement", {}).get("score_model", {})
    if not agreement:
        return []
    parts = [
        f"{v['auc']:.3f} on {task} ({v['pairs']} pairs from {v['questions']} questions with right and wrong answers)"
        for task, v in agreement.items()
    ]
    return [
        "Before the first step, on the start policy's own samples (the"
        f" {next(iter(agreement.values()))['candidates']} best-of-N candidates per held-out question of section 7,",
        f"`{policy}` at temperature {bon_metrics['temperature']}), the score model ranks an answer that exact match",
        f"accepts above one it rejects for the same question at AUC {'; '.join(parts)}: the monitor's",
        "`hacking/score_rule_auc` at step 0, from more pairs than a logging step holds.",
        "",
    ]


def bon_table(metrics: dict) -> str:
    """Selectors x N: the mean metric over tasks, and per task."""
    from rs_reward.report import markdown_table

    ns = [str(n) for n in metrics["n_list"]]
    tasks = sorted(metrics["rows"])
    rows = []
    for selector, by_n in metrics["results"].items():
        for task in [*tasks, "mean"]:
            rows.append([selector, task, *[f"{by_n[n][task]:.3f}" for n in ns]])
    return markdown_table(["selector", "task", *[f"N={n}" for n in ns]], rows)


def foundation_training(card: dict) -> str:
    """`3000 vision steps (41 min), then 2200 conversation steps (60 min)[, then 800 more conversation steps
    (11 min), ...]`, from the foundation's metrics.json (`foundation_runs`)."""
    from rs_reward.foundation import foundation_runs

    runs = foundation_runs(card)
    phases = []
    for run in runs:
        config, minutes = run.get("config", {}), run.get("minutes", "?")
        if run["what"] == "vision steps":
            phases.append(f"{run['steps']} vision steps ({minutes} min)")
            continue
        if config.get("vision_steps"):  # one run of both phases
            phases.append(f"{config['vision_steps']} vision steps")
        alone = len(runs) == 1  # one run of both phases: its minutes are both phases'
        phases.append(f"{run['conversation_steps']} {run['what']} ({minutes} min{' in all' if alone else ''})")
    return ", then ".join(phases)


@dataclass
class DemoResults:
    """What the demo's stages measured, for the report."""

    output: Path
    manifest: dict
    sheet: Path
    colour_probe: dict
    text_only_probe: dict
    foundation_card: dict
    foundation_metrics: dict
    reward_metrics: dict
    curation: dict
    curated: Path
    arm_metrics: dict[str, list[dict]]
    clip_arm_metrics: dict[str, list[dict]]
    clip_base_metrics: dict | None  # the CLIP baseline the arms fine-tune, before any of them
    best_arm: str
    grpo_metrics: dict[str, list[dict]]  # per run, one per seed
    grpo_histories: dict[str, list[list[dict]]]
    grpo_figures: list[Path]
    bon_metrics: dict
    timings: dict[str, float]
    wall: float = 0.0
    report: Path | None = None


def write_report(demo, r: DemoResults) -> Path:
    """`report.md` (every table and figure of the run) and the headline `metrics.json`, beside each other."""
    from rs_reward.data.synthrs import GROUNDED_OPERATORS
    from rs_reward.eval.curation_eval import format_curation
    from rs_reward.eval.reward_eval import format_reward_metrics
    from rs_reward.hub import code_version
    from rs_reward.report import markdown_table, write_atomic

    output, manifest, sheet, curated = r.output, r.manifest, r.sheet, r.curated
    colour, text_only, foundation_card, foundation_metrics = (
        r.colour_probe,
        r.text_only_probe,
        r.foundation_card,
        r.foundation_metrics,
    )
    reward_metrics, curation, fractions = r.reward_metrics, r.curation, demo.keep_fractions
    arm_metrics, clip_arm_metrics, best_arm = r.arm_metrics, r.clip_arm_metrics, r.best_arm
    grpo_metrics, grpo_histories, grpo_figures, bon_metrics = (
        r.grpo_metrics,
        r.grpo_histories,
        r.grpo_figures,
        r.bon_metrics,
    )
    timings, wall = r.timings, r.wall
    clip_tables = ({"CLIP baseline (before)": [r.clip_base_metrics]} if r.clip_base_metrics else {}) | clip_arm_metrics
    classes = clip_classes(clip_tables)
    report = [
        "# rs-reward demo report",
        "",
        f"{'Quick (CI-sized) run' if demo.quick else 'Full run'}, seed {demo.seed}, code at {code_version()}. Every number",
        "below was computed by this run; the recipes of each stage are named in `recipes/tiny/demo/config.yaml`.",
        "",
        "## 1. SynthRS",
        "",
        markdown_table(["file", "rows"], [[k, v] for k, v in manifest["counts"].items()]),
        "",
        f"![SynthRS samples](figures/{sheet.name})",
        "",
        "### What the image is needed for",
        "",
        "A colour-histogram probe (softmax regression, no objects seen):",
        "",
        markdown_table(
            ["target", "accuracy", "majority", "chance"],
            [[t, r["accuracy"], r["majority"], r["chance"]] for t, r in colour.items()],
        ),
        "",
        "A text-only scorer on the preference pairs (bag of words, no image): at chance on grounded operators,",
        "near perfect on form operators.",
        "",
        markdown_table(
            ["operator", "kind", "pairwise accuracy", "pairs"],
            [
                [op, "grounded" if op in GROUNDED_OPERATORS else "form", r["accuracy"], r["pairs"]]
                for op, r in text_only.items()
            ],
        ),
        "",
        "## 2. The foundation: a tiny Qwen2-VL that sees SynthRS",
        "",
        f"Every stage starts from `{demo.foundation}` ({foundation_card.get('parameters', '?')} parameters), pre-trained",
        f"once by `make foundation` ({foundation_training(foundation_card)} on {foundation_card.get('machine', '?')}), the",
        "stand-in for the pretrained Qwen2-VL the paper starts from. Its held-out perception on fresh scenes when it",
        "was trained (many questions per scene):",
        "",
        markdown_table(
            ["question type", "accuracy", "chance", "questions"],
            [
                [t, m["accuracy"], m["chance"], m["questions"]]
                for t, m in foundation_card.get("perception", {}).items()
            ],
        ),
        "",
        "And on this run's clean evaluation split (one VQA question per scene), with the other tasks:",
        "",
        vqa_types_table({"foundation": [foundation_metrics]}),
        "",
        arms_table({"foundation": [foundation_metrics]}),
        "",
        "## 3. Reward (score) model",
        "",
        f"The foundation with a score head, trained by `{demo.reward_recipe}` on the preference pairs (the parts that",
        "recipe leaves unfrozen). Held-out pairs, with the same model scoring every image blanked (image-blind control);",
        "the last table splits each operator by answer format (a wrong colour is one word of a caption, one letter of a",
        "multiple-choice answer, a wrong position one box of a grounding answer): a score model judges an answer only",
        "as far as its foundation can give it (the foundation's own multiple-choice and grounding columns, section 2):",
        "",
        format_reward_metrics(reward_metrics),
        "",
        "![score histogram](reward/figures/score_histogram.png)",
        "",
        "## 4. Curation of the pool",
        "",
        "The pool (captions and answers of mixed quality, as a generator VLM writes them) scored by the reward model,",
        "by a tiny CLIP trained on clean SynthRS captions (cosine of image and text embeddings) and at random; the",
        "top fraction kept over the whole pool. Precision = share of kept rows whose true quality is >= 0.75.",
        "",
        format_curation(curation, fractions),
        "",
        "![precision against the fraction kept](figures/precision_vs_kept.png)",
        "",
        f"Curated subsets (30 %, P30S60, ...) with their data cards: `{curated}`.",
        "",
        "Pages to look at the data (open from disk, no server): [the pool, score model beside CLIP score, with each",
        "row's true quality and corruption operators](browse/index.html), and [what each of the score model's",
        f"selections keeps and drops]({curated.relative_to(output)}/browse/index.html).",
        "",
        "## 5. Training on the curated data",
        "",
        f"The foundation fine-tuned ({demo.curated_sft_recipe}) on the whole pool and on each scorer's per-task",
        f"selection ({demo.arm_selection}, the paper's P30S60), then evaluated on the clean SynthRS splits (strict match",
        "for classification and VQA, option letter for multiple choice, Acc@IoU 0.5 for grounding, fact Jaccard for",
        f"captions; mean +- std over {len(next(iter(arm_metrics.values())))} seed(s)):",
        "",
        arms_table(arm_metrics),
        "",
        "VQA by question type:",
        "",
        vqa_types_table(arm_metrics),
        "",
        f"The CLIP baseline fine-tuned ({demo.curated_clip_recipe}) on the captions of each arm, then zero-shot scene",
        "classification with the paper's prompt templates (the class names are the captions' land-cover phrases,",
        "`residential area`, `open water`) and image-text retrieval on the clean evaluation split (first row: the",
        "baseline itself, before any arm; it was trained on clean SynthRS captions, so an arm adds to or loses what",
        "it knows):",
        "",
        clip_arms_table(clip_tables),
        "",
        f"Zero-shot top-1 by class (chance {1 / max(1, len(classes)):.2f}; mean over seeds):",
        "",
        clip_classes_table(clip_tables),
        "",
        "## 6. GRPO from the best SFT arm",
        "",
        f"The best SFT arm (`{best_arm}`, by the mean of the columns above; its seed {demo.seed}) trained with GRPO on",
        "SynthRS RL prompts, once with the score-model reward on open prompts (`score_vs_reference`) plus exact match on",
        f"closed ones, and once with exact match alone (recipes in the demo config); {demo.grpo_seeds} GRPO seed(s)",
        "each (mean +- std). Held-out evaluation before and after:",
        "",
        arms_table(
            {f"SFT {best_arm} (before)": arm_metrics[best_arm][:1]}
            | {f"GRPO {name}": runs for name, runs in grpo_metrics.items()}
        ),
        "",
        caption_facts_table(
            {f"SFT {best_arm} (before)": arm_metrics[best_arm][:1]}
            | {f"GRPO {name}": runs for name, runs in grpo_metrics.items()}
        ),
        "",
        vqa_types_table(
            {f"SFT {best_arm} (before)": arm_metrics[best_arm][:1]}
            | {f"GRPO {name}": runs for name, runs in grpo_metrics.items()}
        ),
        "",
        "Training curves (reward per logging step) and the reward-hacking monitor (share of high-score completions the",
        "rule rejects; probability that the score model ranks a rule-correct answer above a wrong one for the same",
        "prompt, 0.5 = blind to correctness, pooled over the pairs of each log and, in the table's last column, of the",
        "whole run, with the pairs per step; completion length relative to the first step):",
        "",
        *[f"![{f.stem}](figures/{f.name})" for f in grpo_figures],
        "",
        grpo_table(grpo_histories),
        "",
        *start_agreement(bon_metrics, best_arm),
        "Sampled completions with their images, reward components and advantages: "
        + ", ".join(
            f"[{page.parent.parent.name}]({page.relative_to(output).as_posix()})"
            for page in sorted((output / "grpo").glob("*/browse/index.html"))
        )
        + ".",
        "",
        "## 7. Best-of-N",
        "",
        f"N answers sampled once per held-out question from `{best_arm}` (temperature"
        f" {bon_metrics['temperature']}, {bon_metrics['repeats']} sub-sample draws per N), one picked by each selector;",
        "the oracle picks the best answer by the metric itself (the ceiling).",
        "",
        bon_table(bon_metrics),
        "",
        "![best-of-N by selector](bon/figures/bon_selectors.png)",
        "",
        "Every question's candidates with their scores and each selector's pick: [bon/browse/index.html]"
        "(bon/browse/index.html).",
        "",
        "## Wall time",
        "",
        f"Stages of the curation arms, GRPO and best-of-N ran {demo.workers} at a time (`--workers`), so their times",
        "overlap; the last line is the wall time of the whole run.",
        "",
        markdown_table(
            ["stage", "seconds"],
            [[k, f"{v:.1f}"] for k, v in timings.items()] + [["wall time", f"{wall:.1f}"]],
        ),
        "",
    ]
    path = write_atomic(output / "report.md", "\n".join(report))
    headline = {
        "code": code_version(),
        "seed": demo.seed,
        "quick": demo.quick,
        "foundation": {
            "model": demo.foundation,
            "perception_at_training": foundation_card.get("perception", {}),
            "eval_split": foundation_metrics,
        },
        "score_model": {
            "accuracy": reward_metrics["accuracy"],
            "accuracy_by_operator": reward_metrics.get("accuracy_by_operator", {}),
            "accuracy_by_format": reward_metrics.get("accuracy_by_format", {}),
            "accuracy_by_operator_and_format": reward_metrics.get("accuracy_by_operator_and_format", {}),
            "image_blind": reward_metrics.get("image_blind", {}),
            "spearman_score_vs_true_quality": reward_metrics.get("spearman_score_vs_true_quality"),
        },
        "curation": {
            name: {
                "spearman_score_vs_true_quality": r["spearman_score_vs_true_quality"],
                "precision": {f: v["precision"] for f, v in r["by_fraction"].items()},
                "precision_per_task": {f: v["precision"] for f, v in r.get("by_fraction_per_task", {}).items()},
            }
            for name, r in curation.items()
        },
        "sft_arms": {arm: summarise_runs(runs) for arm, runs in arm_metrics.items()},
        "clip_arms": {
            arm: summarise_runs([{"clip": r} for r in runs])["clip"] for arm, runs in clip_arm_metrics.items()
        },
        "clip_baseline": r.clip_base_metrics,
        "grpo": {
            "seeds": demo.grpo_seeds,
            "eval": {run: summarise_runs(runs) for run, runs in grpo_metrics.items()},
            "score_rule_auc_at_start": bon_metrics.get("rule_agreement", {}).get("score_model", {}),
            "first_last": {
                run: {
                    k: dict(zip(("first", "last"), grpo_first_last(seeds, k)))
                    | {"whole_run": [grpo_whole_run(h, k) for h in seeds]}
                    for k in ("reward", "hacking/score_rule_auc")
                }
                for run, seeds in grpo_histories.items()
            },
        },
        "best_of_n": bon_metrics.get("results", {}),
        "wall_seconds": timings | {"wall time": wall},
    }
    write_atomic(output / "metrics.json", json.dumps(headline, indent=1, default=float) + "\n")
    r.report = path
    return path


def summary_rows(r: DemoResults) -> dict:
    """The one-screen summary of a run (the demo command prints it)."""
    import numpy as np

    timings, reward_metrics, curation = r.timings, r.reward_metrics, r.curation
    grpo_metrics, bon_metrics, path, output = r.grpo_metrics, r.bon_metrics, r.report, r.output
    rows = {f"{k} (s)": round(v, 1) for k, v in timings.items()}
    rows.update(
        {
            "held-out pairwise accuracy": round(reward_metrics["accuracy"], 3),
            "image-blind control": round(reward_metrics.get("image_blind", {}).get("accuracy", float("nan")), 3),
            **{
                f"precision @ 30 % kept ({name})": round(r["by_fraction"]["0.3"]["precision"], 3)
                for name, r in curation.items()
                if "0.3" in r["by_fraction"]
            },
            **{
                f"GRPO {n}: VQA after": round(
                    float(np.mean([m.get("vqa", {}).get("correct", np.nan) for m in runs])), 3
                )
                for n, runs in grpo_metrics.items()
            },
            **{
                f"best-of-N {sel} @ N={n_max}": round(by_n[n_max]["mean"], 3)
                for sel, by_n in bon_metrics["results"].items()
                for n_max in [str(bon_metrics["n_list"][-1])]
            },
            "report": str(path),
            "artifacts": str(output),
        }
    )
    return rows
