"""Run the method end to end on CPU on SynthRS and write runs/demo/report.md, tables and plots included.

    rs-reward demo --config recipes/tiny/demo/config.yaml            # make demo
    rs-reward demo --config recipes/tiny/demo/config.yaml --quick    # the CI-sized variant

Stages: SynthRS -> learnability probes -> the SynthRS foundation (a tiny Qwen2-VL pre-trained until it perceives
the world, committed as `tiny:qwen2-vl-synthrs`; the stand-in for a pretrained Qwen2-VL) evaluated by question
type -> train the reward model from it -> evaluate it per operator with the image-blind control -> train a tiny
CLIP on clean captions (the CLIP-score baseline) -> score the pool with the reward model, CLIP and random -> keep
30 % (and P30S60) -> curation precision against the true quality -> SFT of the foundation on the full pool and on
P30S60 by each scorer (3 seeds) -> evaluation of every arm on the clean splits ->
GRPO from the best SFT arm, with and without the score-model reward, and evaluation -> best-of-N of the best SFT
arm against N per selector. Each stage runs its own task with its own recipe (named in the demo config) and is
skipped when its output exists for the same arguments (`--force` redoes it).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path


@dataclass
class DemoConfig:
    """The demo's main knobs; each stage also reads its own recipe, named here."""

    output_dir: str = field(
        default="runs/demo",
        metadata={"help": "Folder for every artifact and report.md (`-quick` is appended with --quick)."},
    )
    synth_recipe: str = field(default="recipes/tiny/synth/config_demo.yaml", metadata={"help": "SynthRS recipe."})
    foundation: str = field(
        default="tiny:qwen2-vl-synthrs",
        metadata={"help": "The VLM every stage starts from (`make foundation` retrains the committed one)."},
    )
    reward_recipe: str = field(
        default="recipes/tiny/reward/config_demo.yaml", metadata={"help": "Reward model recipe."}
    )
    clip_recipe: str = field(
        default="recipes/tiny/clip/config_synthrs.yaml", metadata={"help": "CLIP baseline recipe."}
    )
    score_recipes: str = field(
        default="recipes/tiny/score/config_reward_model.yaml,recipes/tiny/score/config_clip.yaml,"
        "recipes/tiny/score/config_random.yaml",
        metadata={"help": "Scoring recipes, one per scorer (comma-separated; the scorer is the file's name)."},
    )
    filter_recipe: str = field(default="recipes/tiny/filter/config_demo.yaml", metadata={"help": "Selection recipe."})
    keep_fractions: str = field(default="0.1,0.2,0.3,0.5", metadata={"help": "Keep fractions of the curation report."})
    curated_sft_recipe: str = field(
        default="recipes/tiny/sft/config_curated.yaml", metadata={"help": "SFT on curated data."}
    )
    vlm_eval_recipe: str = field(
        default="recipes/tiny/eval/config_vlm.yaml", metadata={"help": "VLM evaluation recipe."}
    )
    curated_clip_recipe: str = field(
        default="recipes/tiny/clip/config_curated.yaml",
        metadata={"help": "CLIP fine-tuning on each curation arm's captions (empty: skip the CLIP arms)."},
    )
    clip_eval_recipe: str = field(
        default="recipes/tiny/eval/config_clip.yaml", metadata={"help": "CLIP evaluation recipe."}
    )
    arm_selection: str = field(
        default="caption=0.3,instruction=0.6",
        metadata={"help": "Per-task keep fractions of the curated arms (the paper's P30S60)."},
    )
    curation_seeds: int = field(default=3, metadata={"help": "SFT seeds per curation arm (mean and std over seeds)."})
    grpo_recipes: str = field(
        default="recipes/tiny/grpo/config_demo.yaml,recipes/tiny/grpo/config_no_score_model.yaml",
        metadata={"help": "GRPO recipes run from the best SFT arm (comma-separated; the arm is the file's name)."},
    )
    grpo_steps: int = field(default=150, metadata={"help": "GRPO steps per recipe (full run)."})
    bon_recipe: str = field(default="recipes/tiny/bon/config_demo.yaml", metadata={"help": "Best-of-N recipe."})
    bon_n_list: str = field(default="1,2,4,8,16", metadata={"help": "The N values of best-of-N."})
    quick_eval_rows: int = field(default=20, metadata={"help": "Eval rows per task with --quick."})
    quick: bool = field(
        default=False, metadata={"help": "CI-sized run: small SynthRS, a few training steps (under 3 minutes)."}
    )
    quick_synth_recipe: str = field(
        default="recipes/tiny/synth/config_quick.yaml", metadata={"help": "SynthRS recipe of --quick."}
    )
    quick_steps: int = field(default=30, metadata={"help": "Training steps per stage with --quick."})
    reward_epochs: float = field(default=3.0, metadata={"help": "Epochs of reward training (full run)."})
    seed: int = field(default=0, metadata={"help": "Seed of every stage."})
    workers: int = field(
        default=2,
        metadata={
            "help": "Independent stages (the curation arms, the GRPO runs and best-of-N) run this many at a time, "
            "each in its own process with cores/workers threads (1: one after the other, in this process). Results "
            "depend on the thread count, not on the order."
        },
    )
    force: bool = field(default=False, metadata={"help": "Redo stages whose outputs already exist."})


def config_types():
    return (DemoConfig,)


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


def clip_arm(demo, arm, seed, captions, pool_dir, base_clip, data, output, logger) -> dict:
    """Fine-tune the CLIP baseline on an arm's captions; zero-shot classification and retrieval metrics."""
    model_dir = output / "clip_arms" / f"{arm}-seed{seed}"
    run_stage(
        f"clip-{arm}-{seed}",
        "clip",
        [
            "--config",
            demo.curated_clip_recipe,
            "--model_name_or_path",
            str(base_clip),
            "--train_file",
            str(captions),
            "--image_root",
            pool_dir,
            "--output_dir",
            str(model_dir),
            "--seed",
            str(seed),
            *(["--max_steps", str(demo.quick_steps), "--global_batch_size", "8"] if demo.quick else []),
        ],
        model_dir,
        demo.force,
        logger,
    )
    metrics = {}
    for kind, eval_data in (
        ("cls", data / "eval" / "classification"),
        ("retrieval", data / "eval" / "dataset_synthrs.json"),
    ):
        eval_dir = output / "eval" / f"clip-{arm}-seed{seed}-{kind}"
        run_stage(
            f"eval-clip-{arm}-{seed}-{kind}",
            "eval",
            [
                "--config",
                demo.clip_eval_recipe,
                "--model_name_or_path",
                str(model_dir),
                "--eval_data",
                str(eval_data),
                "--output_dir",
                str(eval_dir),
            ],
            eval_dir,
            demo.force,
            logger,
        )
        metrics.update(json.loads((eval_dir / "metrics.json").read_text())["metrics"])
    return metrics


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


def evaluate_vlm_stage(demo, name: str, model_dir: Path, eval_dir: Path, data: Path, logger) -> tuple[float, dict]:
    """Evaluate a VLM on the clean SynthRS splits (a stage): (seconds, metrics per task)."""
    seconds = run_stage(
        f"eval-{name}",
        "eval",
        [
            "--config",
            demo.vlm_eval_recipe,
            "--model_name_or_path",
            str(model_dir),
            "--eval_data",
            str(data / "eval" / "eval.jsonl"),
            "--truth_scenes",
            str(data),
            "--output_dir",
            str(eval_dir),
            *(["--max_rows", str(demo.quick_eval_rows)] if demo.quick else []),
        ],
        eval_dir,
        demo.force,
        logger,
    )
    return seconds, json.loads((eval_dir / "metrics.json").read_text())["metrics"]


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


def grpo_curves(histories: dict[str, list[dict]], folder: Path) -> list[Path]:
    """One PNG per curve family, one line per GRPO run and metric."""
    from rs_reward.report import line_plot

    paths = []
    for name, ylabel, keys in GRPO_CURVES:
        series = {}
        for run, history in histories.items():
            for key in keys:
                points = [(e["step"], e[key]) for e in history if e.get(key) is not None]
                if points:
                    label = run if len(keys) == 1 else f"{run}: {key.split('/')[-1]}"
                    series[label] = ([p[0] for p in points], [p[1] for p in points])
        if series:
            paths.append(line_plot(series, folder / f"{name}.png", xlabel="GRPO step", ylabel=ylabel, title=name))
    return paths


def grpo_table(histories: dict[str, list[dict]]) -> str:
    """First and last logged value of the main GRPO curves, per run."""
    from rs_reward.report import markdown_table

    keys = [
        "reward",
        "accuracy/em",
        "accuracy/open",
        "hacking/score_rule_auc",
        "hacking/high_score_rule_fail",
        "hacking/length_drift",
    ]
    rows = []
    for run, history in histories.items():
        for key in keys:
            values = [e[key] for e in history if e.get(key) is not None]
            if values:
                rows.append([run, key, f"{values[0]:.3f}", f"{values[-1]:.3f}"])
    return markdown_table(["run", "metric", "first log", "last log"], rows)


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


@cache
def source_fingerprint() -> str:
    """A hash of the package's Python source: a code change redoes every stage."""
    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def stage_key(task: str, argv: list[str], output: Path) -> str:
    """What a stage's result depends on: its task and arguments, the text of its recipe, the package source, and
    the keys of the stages whose outputs it reads (the nearest folder above a path argument with a `stage.json`),
    so that a redone upstream stage redoes it."""
    recipe = argv[argv.index("--config") + 1] if "--config" in argv[:-1] else None
    upstream = {}
    for value in argv:
        path = Path(value)
        if "/" not in value or path.resolve() == output.resolve():
            continue
        for folder in (path, *path.parents):
            if folder.resolve() == output.resolve():  # a path inside the stage's own output
                break
            if (folder / "stage.json").is_file():
                upstream[value] = json.loads((folder / "stage.json").read_text()).get("key")
                break
    parts = [task, argv, Path(recipe).read_text() if recipe else None, source_fingerprint(), upstream]
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def run_stage(name: str, task: str, argv: list[str], output: Path, force: bool, logger) -> float:
    """Run `rs-reward <task> argv` unless `output/stage.json` records the same `stage_key`; return seconds."""
    from rs_reward.cli import main as cli

    key = stage_key(task, argv, output)
    marker = output / "stage.json"
    if not force and marker.is_file() and json.loads(marker.read_text()).get("key") == key:
        logger.info("stage %s: up to date in %s, skipped", name, output)
        return json.loads(marker.read_text())["seconds"]
    logger.info("stage %s: rs-reward %s %s", name, task, " ".join(argv))
    start = time.perf_counter()
    if cli([task, *argv]) != 0:
        raise RuntimeError(f"stage {name} failed")
    seconds = time.perf_counter() - start
    marker.write_text(json.dumps({"key": key, "task": task, "argv": argv, "seconds": seconds}, indent=1) + "\n")
    return seconds


def _init_worker(threads: int) -> None:
    import torch

    from ._common import setup_logging

    torch.set_num_threads(threads)
    setup_logging("rs_reward.demo")


def run_parallel(calls: list[tuple], workers: int) -> list:
    """`[fn(*args) for fn, *args in calls]`, `workers` at a time in spawned processes sharing the cores.

    On a 2-core machine two 1-thread processes train these tiny models ~1.3x faster than one 2-thread process.
    `fn` must be a module-level function; results come back in the order of `calls`.
    """
    if workers <= 1 or len(calls) <= 1:
        return [fn(*args) for fn, *args in calls]
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    threads = max(1, cores // workers)  # the cores this process may use (a container or taskset may allow fewer)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=(threads,)) as pool:
        futures = [pool.submit(fn, *args) for fn, *args in calls]
        return [future.result() for future in futures]


def arm_job(demo, arm: str, seed: int, rows_file: Path, base: Path, clip: Path, data: Path, output: Path) -> tuple:
    """One curation arm and seed: SFT from the foundation, its VLM evaluation, and the CLIP arm on its captions."""
    import logging

    logger = logging.getLogger("rs_reward.demo")
    model_dir, eval_dir = output / "sft" / f"{arm}-seed{seed}", output / "eval" / f"{arm}-seed{seed}"
    pool_dir = str(data / "pool")
    run_stage(
        f"sft-{arm}-{seed}",
        "sft",
        [
            "--config",
            demo.curated_sft_recipe,
            "--model_name_or_path",
            str(base),
            "--dataset_name",
            str(rows_file),
            "--image_root",
            pool_dir,
            "--output_dir",
            str(model_dir),
            "--seed",
            str(seed),
            *(["--max_steps", str(demo.quick_steps)] if demo.quick else []),
        ],
        model_dir,
        demo.force,
        logger,
    )
    _, metrics = evaluate_vlm_stage(demo, f"{arm}-{seed}", model_dir, eval_dir, data, logger)
    clip_metrics = None
    if demo.curated_clip_recipe:
        captions = rows_file.parent / "clip.csv"
        clip_metrics = clip_arm(demo, arm, seed, captions, pool_dir, clip, data, output, logger)
    return metrics, clip_metrics


def grpo_job(demo, recipe: str, policy: Path, reward: Path, data: Path, output: Path) -> tuple:
    """One GRPO run from the policy and its VLM evaluation: (name, seconds, eval seconds, metrics, history)."""
    import logging

    logger = logging.getLogger("rs_reward.demo")
    name = Path(recipe).stem.removeprefix("config_").replace("demo", "score_model")
    model_dir, eval_dir = output / "grpo" / name, output / "eval" / f"grpo-{name}"
    seconds = run_stage(
        f"grpo-{name}",
        "grpo",
        [
            "--config",
            recipe,
            "--model_name_or_path",
            str(policy),
            "--dataset_name",
            str(data / "rl" / "prompts.jsonl"),
            "--reward_model_name_or_path",
            str(reward),
            "--output_dir",
            str(model_dir),
            "--max_steps",
            str(demo.quick_steps if demo.quick else demo.grpo_steps),
            "--seed",
            str(demo.seed),
        ],
        model_dir,
        demo.force,
        logger,
    )
    eval_seconds, metrics = evaluate_vlm_stage(demo, f"grpo-{name}", model_dir, eval_dir, data, logger)
    history = json.loads((model_dir / "reward_history.json").read_text())
    return name, seconds, eval_seconds, metrics, history


def bon_job(demo, policy: Path, reward: Path, clip: Path, data: Path, output: Path) -> float:
    """Best-of-N from the policy (a stage); returns its seconds."""
    import logging

    bon = output / "bon"
    return run_stage(
        "bon",
        "bon",
        [
            "--config",
            demo.bon_recipe,
            "--model_name_or_path",
            str(policy),
            "--eval_data",
            str(data / "eval" / "eval.jsonl"),
            "--truth_scenes",
            str(data),
            "--reward_model_name_or_path",
            str(reward),
            "--clip_model_name_or_path",
            str(clip),
            "--output_dir",
            str(bon),
            "--n_list",
            "1,2" if demo.quick else demo.bon_n_list,
            "--seed",
            str(demo.seed),
            *(["--max_rows", str(demo.quick_eval_rows)] if demo.quick else []),
        ],
        bon,
        demo.force,
        logging.getLogger("rs_reward.demo"),
    )


def main(argv: list[str] | None = None) -> int:
    from PIL import Image

    from rs_reward.data.synthrs import GROUNDED_OPERATORS, SynthRSConfig, build, load_scenes
    from rs_reward.data.synthrs.probes import colour_histogram_probe, pairs_from_rsrm, text_only_pair_probe
    from rs_reward.eval.curation_eval import compare_scorers, format_curation
    from rs_reward.eval.reward_eval import format_reward_metrics
    from rs_reward.hub import code_version
    from rs_reward.report import image_sheet, markdown_table, write_atomic

    from ._common import parse, setup_logging, summary_table

    logger = setup_logging("rs_reward.demo")
    (demo,) = parse([DemoConfig], argv)
    output = Path(demo.output_dir + "-quick" if demo.quick else demo.output_dir)
    timings, began = {}, time.perf_counter()

    # 1. SynthRS
    start = time.perf_counter()
    synth_recipe = demo.quick_synth_recipe if demo.quick else demo.synth_recipe
    (synth,) = parse(
        [SynthRSConfig],
        [
            "--config",
            synth_recipe,
            "--output_dir",
            str(output / "synthrs"),
            "--seed",
            str(demo.seed),
            "--force",
            str(demo.force).lower(),
        ],
    )
    data = build(synth)
    timings["synth"] = time.perf_counter() - start

    # 2. Learnability probes
    start = time.perf_counter()
    scenes = list(load_scenes(data, "pretrain").values())
    ext = ".jpg" if synth.image_format == "jpeg" else ".png"
    images = [(Image.open(data / "pretrain" / "images" / f"{s.id}{ext}"), s) for s in scenes]
    cut = int(0.8 * len(images))
    colour = colour_histogram_probe(images[:cut], images[cut:])
    text_only = text_only_pair_probe(
        pairs_from_rsrm(data / "preference" / "train"), pairs_from_rsrm(data / "preference" / "test")
    )
    sheet = image_sheet([im for im, _ in images[:18]], output / "figures" / "synthrs_samples.png")
    timings["probes"] = time.perf_counter() - start

    # 3. The foundation (committed; `make foundation` retrains it), evaluated on the clean splits by question type
    from rs_reward.modeling.tiny import resolve_model_path

    length = ["--max_steps", str(demo.quick_steps)] if demo.quick else []
    common = ["--seed", str(demo.seed)]
    base, reward = Path(resolve_model_path(demo.foundation)), output / "reward"
    foundation_card = json.loads((base / "metrics.json").read_text()) if (base / "metrics.json").is_file() else {}
    timings["eval foundation"], foundation_metrics = evaluate_vlm_stage(
        demo, "foundation", base, output / "eval" / "foundation", data, logger
    )

    # 4. Reward model from the foundation (+ held-out evaluation with the image-blind control)
    timings["reward model"] = run_stage(
        "reward",
        "reward",
        [
            "--config",
            demo.reward_recipe,
            "--model_name_or_path",
            str(base),
            "--dataset_name",
            str(data / "preference" / "train"),
            "--eval_dataset_name",
            str(data / "preference" / "test"),
            "--output_dir",
            str(reward),
            *(length or ["--num_train_epochs", str(demo.reward_epochs)]),
            *common,
        ],
        reward,
        demo.force,
        logger,
    )
    reward_metrics = json.loads((reward / "eval_metrics.json").read_text())

    # 5. CLIP-score baseline, 6. scoring the pool three ways, 7. selection, 8. curation against the truth
    clip = output / "clip"
    timings["CLIP baseline"] = run_stage(
        "clip",
        "clip",
        [
            "--config",
            demo.clip_recipe,
            "--train_file",
            str(data / "pretrain" / "sft.jsonl"),
            "--output_dir",
            str(clip),
            *(["--max_steps", str(demo.quick_steps)] if demo.quick else []),
            "--seed",
            str(demo.seed),
        ],
        clip,
        demo.force,
        logger,
    )
    models = {"reward_model": str(reward), "clip": str(clip), "random": None}
    scores = {}
    for recipe in demo.score_recipes.split(","):
        kind = Path(recipe).stem.removeprefix("config_")
        scores[kind] = output / "scores" / kind
        flags = [
            "--config",
            recipe,
            "--pool",
            str(data / "pool" / "pool.csv"),
            "--output_dir",
            str(scores[kind]),
            "--seed",
            str(demo.seed),
        ]
        if models.get(kind):
            flags += ["--model_name_or_path", models[kind]]
        timings[f"score pool ({kind})"] = run_stage(f"score-{kind}", "score", flags, scores[kind], demo.force, logger)
    curated = output / "curated" / "reward_model"
    timings["filter"] = run_stage(
        "filter",
        "filter",
        [
            "--config",
            demo.filter_recipe,
            "--scores",
            str(scores["reward_model"]),
            "--pool",
            str(data / "pool" / "pool.csv"),
            "--output_dir",
            str(curated),
        ],
        curated,
        demo.force,
        logger,
    )
    start = time.perf_counter()
    fractions = [float(f) for f in demo.keep_fractions.split(",")]
    curation = compare_scorers(
        {k: str(v) for k, v in scores.items()},
        str(data / "pool" / "truth.parquet"),
        fractions,
        plot=output / "figures" / "precision_vs_kept.png",
    )
    (output / "curation_metrics.json").write_text(json.dumps(curation, indent=2) + "\n")
    timings["curation report"] = time.perf_counter() - start
    # the page of the pool: score model beside CLIP score, with each row's truth (`rs-reward browse`)
    timings["browse page"] = run_stage(
        "browse",
        "browse",
        [
            "--scores",
            str(scores["reward_model"]),
            "--compare",
            str(scores["clip"]),
            "--pool",
            str(data / "pool" / "pool.csv"),
            "--fractions",
            "0.3",
            demo.arm_selection,
            "--output_dir",
            str(output / "browse"),
        ],
        output / "browse",
        demo.force,
        logger,
    )

    # 9. SFT from the foundation on the full pool and on each scorer's per-task selection; 10. evaluate every arm
    pool_csv = str(data / "pool" / "pool.csv")
    arm_tag = "p" + "s".join(str(round(100 * float(part.split("=")[1]))) for part in demo.arm_selection.split(","))
    arms = {"full": (scores["random"], "1.0")} | {f"{k}-{arm_tag}": (v, demo.arm_selection) for k, v in scores.items()}
    arm_metrics: dict[str, list[dict]] = {}
    clip_arm_metrics: dict[str, list[dict]] = {}
    start = time.perf_counter()
    jobs = []
    for arm, (score_dir, fraction) in arms.items():
        subset = output / "curated" / arm
        run_stage(
            f"select-{arm}",
            "filter",
            [
                "--config",
                demo.filter_recipe,
                "--scores",
                str(score_dir),
                "--pool",
                pool_csv,
                "--output_dir",
                str(subset),
                "--fractions",
                str(fraction),
            ],
            subset,
            demo.force,
            logger,
        )
        rows_file = next(subset.glob("keep-*/sft.jsonl"))
        for seed in range(demo.seed, demo.seed + (1 if demo.quick else demo.curation_seeds)):
            jobs.append((arm_job, demo, arm, seed, rows_file, base, clip, data, output))
    for (_, _, arm, *_), (metrics, clip_metrics) in zip(jobs, run_parallel(jobs, demo.workers)):
        arm_metrics.setdefault(arm, []).append(metrics)
        if clip_metrics is not None:
            clip_arm_metrics.setdefault(arm, []).append(clip_metrics)
    timings["SFT + eval of the curation arms"] = time.perf_counter() - start

    # 11. GRPO from the best SFT arm, with and without the score-model reward; 12. best-of-N of that arm
    best_arm = max(arm_metrics, key=lambda arm: arm_score(arm_metrics[arm][0]))
    policy = output / "sft" / f"{best_arm}-seed{demo.seed}"
    grpo_metrics, grpo_histories = {}, {}
    recipes = [r for r in demo.grpo_recipes.split(",") if r]
    jobs = [(grpo_job, demo, recipe, policy, reward, data, output) for recipe in recipes]
    *grpo_results, timings["best-of-N"] = run_parallel(
        [*jobs, (bon_job, demo, policy, reward, clip, data, output)], demo.workers
    )
    for name, seconds, eval_seconds, metrics, history in grpo_results:
        timings[f"GRPO ({name})"], timings[f"eval GRPO ({name})"] = seconds, eval_seconds
        grpo_metrics[name], grpo_histories[name] = metrics, history
    grpo_figures = grpo_curves(grpo_histories, output / "figures")
    bon = output / "bon"
    bon_metrics = json.loads((bon / "metrics.json").read_text())

    manifest = json.loads((data / "manifest.json").read_text())
    wall = time.perf_counter() - began
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
        f"once by `recipes/tiny/foundation/config.yaml` ({foundation_card.get('steps', '?')} steps,"
        f" {foundation_card.get('minutes', '?')} min on {foundation_card.get('machine', '?')}; `make foundation`), the",
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
        "recipe leaves unfrozen). Held-out pairs, with the same model scoring every image blanked (image-blind control):",
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
        "classification with the paper's prompt templates and image-text retrieval on the clean evaluation split:",
        "",
        clip_arms_table(clip_arm_metrics),
        "",
        "## 6. GRPO from the best SFT arm",
        "",
        f"The best SFT arm (`{best_arm}`, by the mean of the columns above) trained with GRPO on SynthRS RL prompts,",
        "once with the score-model reward on open prompts (`score_vs_reference`) plus exact match on closed ones, and",
        "once with exact match alone (recipes in the demo config). Held-out evaluation before and after:",
        "",
        arms_table(
            {f"SFT {best_arm} (before)": arm_metrics[best_arm][:1]}
            | {f"GRPO {name}": [metrics] for name, metrics in grpo_metrics.items()}
        ),
        "",
        vqa_types_table(
            {f"SFT {best_arm} (before)": arm_metrics[best_arm][:1]}
            | {f"GRPO {name}": [metrics] for name, metrics in grpo_metrics.items()}
        ),
        "",
        "Training curves (reward per logging step) and the reward-hacking monitor (share of high-score completions the",
        "rule rejects; probability that the score model ranks a rule-correct answer above a wrong one for the same",
        "prompt, 0.5 = blind to correctness; completion length relative to the first step):",
        "",
        *[f"![{f.stem}](figures/{f.name})" for f in grpo_figures],
        "",
        grpo_table(grpo_histories),
        "",
        "Sampled completions with their images, reward components and advantages: "
        + ", ".join(
            f"[{name}](grpo/{name}/browse/index.html)"
            for name in grpo_metrics
            if (output / "grpo" / name / "browse" / "index.html").is_file()
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
        "grpo": {
            "eval": grpo_metrics,
            "first_last": {
                run: {k: [h[0].get(k), h[-1].get(k)] for k in ("reward", "hacking/score_rule_auc")}
                for run, h in grpo_histories.items()
                if h
            },
        },
        "best_of_n": bon_metrics.get("results", {}),
        "wall_seconds": timings | {"wall time": wall},
    }
    write_atomic(output / "metrics.json", json.dumps(headline, indent=1, default=float) + "\n")
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
                f"GRPO {n}: VQA after": round(m.get("vqa", {}).get("correct", float("nan")), 3)
                for n, m in grpo_metrics.items()
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
    logger.info("\n%s", summary_table("rs-reward demo", rows))
    return 0


if __name__ == "__main__":
    from ._common import run_guarded

    raise SystemExit(run_guarded("demo", main))
