"""The demo's pipeline: the method end to end on SynthRS, one function per stage.

    SynthRS -> learnability probes -> the foundation evaluated by question type -> CLIP baseline -> reward model
    (+ held-out pairs with the image-blind control) -> pool scored three ways -> selection -> curation against the
    truth -> SFT arms (full pool, P30S60 by each scorer; seeds) + their evaluation + CLIP arms on their captions
    -> GRPO from the best arm, with and without the score-model reward (seeds) -> best-of-N of that arm -> report

Each stage is a task (`rs_reward.scripts.<task>`) run by `runner.run_stage` on its recipe (named in the
`DemoConfig`) with the paths of this run as overrides; it is skipped when its fingerprint is unchanged. The reward
model, the curation arms, the GRPO runs and best-of-N run `workers` at a time in spawned processes
(`runner.worker_pool`): the arms that need no score model train beside it. So their stage functions are
module-level and take plain values.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from rs_reward.configs import DemoConfig
from rs_reward.scripts import bon, browse, clip, eval_clip, eval_vlm, filter, grpo, reward, score, sft, synth

from .report import DemoResults, arm_score, grpo_curves, write_report
from .runner import main_threads, run_stage, task_configs, worker_pool


logger = logging.getLogger("rs_reward.pipeline")


def evaluate_vlm(demo: DemoConfig, name: str, model_dir: Path, data: Path, output: Path) -> tuple[float, dict]:
    """A VLM on the clean SynthRS splits: (seconds, metrics per task)."""
    eval_dir = output / "eval" / name
    seconds = run_stage(
        f"eval-{name}",
        eval_vlm,
        eval_dir,
        force=demo.force,
        recipe=demo.vlm_eval_recipe,
        model_name_or_path=str(model_dir),
        eval_data=str(data / "eval" / "eval.jsonl"),
        truth_scenes=str(data),
        output_dir=str(eval_dir),
        max_rows=demo.eval_max_rows,
    )
    return seconds, json.loads((eval_dir / "metrics.json").read_text())["metrics"]


def clip_arm(
    demo: DemoConfig, arm: str, seed: int, captions: Path, pool_dir: Path, base_clip: Path, data: Path, output: Path
) -> dict:
    """The CLIP baseline fine-tuned on an arm's captions: zero-shot classification and retrieval metrics."""
    model_dir = output / "clip_arms" / f"{arm}-seed{seed}"
    run_stage(
        f"clip-{arm}-{seed}",
        clip,
        model_dir,
        force=demo.force,
        recipe=demo.curated_clip_recipe,
        model_name_or_path=str(base_clip),
        train_file=str(captions),
        image_root=str(pool_dir),
        output_dir=str(model_dir),
        seed=seed,
        max_steps=demo.max_steps,
        global_batch_size=demo.clip_arm_batch_size,
    )
    return evaluate_clip(demo, f"{arm}-seed{seed}", model_dir, data, output)


def evaluate_clip(demo: DemoConfig, name: str, model_dir: Path, data: Path, output: Path) -> dict:
    """Zero-shot scene classification and image-text retrieval of a CLIP model on the clean evaluation split."""
    metrics = {}
    for kind, eval_data in (
        ("cls", data / "eval" / "classification"),
        ("retrieval", data / "eval" / "dataset_synthrs.json"),
    ):
        eval_dir = output / "eval" / f"clip-{name}-{kind}"
        run_stage(
            f"eval-clip-{name}-{kind}",
            eval_clip,
            eval_dir,
            force=demo.force,
            recipe=demo.clip_eval_recipe,
            model_name_or_path=str(model_dir),
            eval_data=str(eval_data),
            output_dir=str(eval_dir),
        )
        metrics.update(json.loads((eval_dir / "metrics.json").read_text())["metrics"])
    return metrics


def arm_job(
    demo: DemoConfig, arm: str, seed: int, rows_file: Path, base: Path, base_clip: Path, data: Path, output: Path
) -> tuple:
    """One curation arm and seed: SFT from the foundation, its evaluation, and the CLIP arm on its captions."""
    model_dir = output / "sft" / f"{arm}-seed{seed}"
    pool_dir = data / "pool"
    run_stage(
        f"sft-{arm}-{seed}",
        sft,
        model_dir,
        force=demo.force,
        recipe=demo.curated_sft_recipe,
        model_name_or_path=str(base),
        dataset_name=str(rows_file),
        image_root=str(pool_dir),
        output_dir=str(model_dir),
        seed=seed,
        max_steps=demo.max_steps,
    )
    _, metrics = evaluate_vlm(demo, f"{arm}-seed{seed}", model_dir, data, output)
    clip_metrics = None
    if demo.curated_clip_recipe:
        clip_metrics = clip_arm(demo, arm, seed, rows_file.parent / "clip.csv", pool_dir, base_clip, data, output)
    return metrics, clip_metrics


def grpo_job(
    demo: DemoConfig, recipe: str, seed: int, policy: Path, reward_dir: Path, data: Path, output: Path
) -> tuple:
    """One GRPO run (recipe and seed) from the policy and its evaluation: (name, seconds, eval seconds, metrics,
    history)."""
    name = Path(recipe).stem.removeprefix("config_").replace("demo", "score_model")
    model_dir = output / "grpo" / f"{name}-seed{seed}"
    seconds = run_stage(
        f"grpo-{name}-{seed}",
        grpo,
        model_dir,
        force=demo.force,
        recipe=recipe,
        model_name_or_path=str(policy),
        dataset_name=str(data / "rl" / "prompts.jsonl"),
        reward_model_name_or_path=str(reward_dir),
        output_dir=str(model_dir),
        max_steps=demo.grpo_steps,
        seed=seed,
    )
    eval_seconds, metrics = evaluate_vlm(demo, f"grpo-{name}-seed{seed}", model_dir, data, output)
    history = json.loads((model_dir / "reward_history.json").read_text())
    return name, seconds, eval_seconds, metrics, history


def reward_job(demo: DemoConfig, base: Path, data: Path, output: Path) -> dict[str, float]:
    """The score model from the foundation, with its held-out evaluation and image-blind control, then the pool
    scored with it: the stages' seconds."""
    reward_dir = output / "reward"
    seconds = run_stage(
        "reward",
        reward,
        reward_dir,
        force=demo.force,
        recipe=demo.reward_recipe,
        model_name_or_path=str(base),
        dataset_name=str(data / "preference" / "train"),
        eval_dataset_name=str(data / "preference" / "test"),
        output_dir=str(reward_dir),
        max_steps=demo.max_steps,
        num_train_epochs=None if demo.max_steps else demo.reward_epochs,
        seed=demo.seed,
    )
    scoring = pool_scores(demo, scorer_recipe(demo, "reward_model"), data, output, reward_dir)
    return {"reward model": seconds, "score pool (reward_model)": scoring}


def clip_job(demo: DemoConfig, data: Path, output: Path) -> tuple[dict[str, float], dict | None]:
    """The CLIP-score baseline, evaluated as it is (what the CLIP arms start from), then the pool scored with it:
    (the stages' seconds, its metrics)."""
    base_clip = output / "clip"
    seconds = run_stage(
        "clip",
        clip,
        base_clip,
        force=demo.force,
        recipe=demo.clip_recipe,
        train_file=str(data / "pretrain" / "sft.jsonl"),
        output_dir=str(base_clip),
        max_steps=demo.max_steps,
        seed=demo.seed,
    )
    metrics = evaluate_clip(demo, "baseline", base_clip, data, output) if demo.curated_clip_recipe else None
    scoring = pool_scores(demo, scorer_recipe(demo, "clip"), data, output, base_clip)
    return {"CLIP baseline": seconds, "score pool (clip)": scoring}, metrics


def bon_job(demo: DemoConfig, policy: Path, reward_dir: Path, base_clip: Path, data: Path, output: Path) -> float:
    """Best-of-N from the policy; its seconds."""
    return run_stage(
        "bon",
        bon,
        output / "bon",
        force=demo.force,
        recipe=demo.bon_recipe,
        model_name_or_path=str(policy),
        eval_data=str(data / "eval" / "eval.jsonl"),
        truth_scenes=str(data),
        reward_model_name_or_path=str(reward_dir),
        clip_model_name_or_path=str(base_clip),
        output_dir=str(output / "bon"),
        n_list=demo.bon_n_list,
        seed=demo.seed,
        max_rows=demo.eval_max_rows,
    )


def build_synthrs(demo: DemoConfig, output: Path) -> tuple[Path, object]:
    """SynthRS from its recipe (reused when its manifest matches): (folder, its config)."""
    from rs_reward.data.synthrs import build

    (config,) = task_configs(
        synth, demo.synth_recipe, output_dir=str(output / "synthrs"), seed=demo.seed, force=demo.force
    )
    return build(config), config


def probes(data: Path, image_format: str, output: Path) -> tuple[Path, dict, dict]:
    """What the image is needed for: a colour-histogram probe and a text-only pair scorer; a sheet of samples."""
    from PIL import Image

    from rs_reward.data.synthrs import load_scenes
    from rs_reward.data.synthrs.probes import colour_histogram_probe, pairs_from_rsrm, text_only_pair_probe
    from rs_reward.report import image_sheet

    scenes = list(load_scenes(data, "pretrain").values())
    ext = ".jpg" if image_format == "jpeg" else ".png"
    images = [(Image.open(data / "pretrain" / "images" / f"{s.id}{ext}"), s) for s in scenes]
    cut = int(0.8 * len(images))
    colour = colour_histogram_probe(images[:cut], images[cut:])
    text_only = text_only_pair_probe(
        pairs_from_rsrm(data / "preference" / "train"), pairs_from_rsrm(data / "preference" / "test")
    )
    sheet = image_sheet([im for im, _ in images[:18]], output / "figures" / "synthrs_samples.png")
    return sheet, colour, text_only


def pool_scores(demo: DemoConfig, recipe: str, data: Path, output: Path, model: Path | None) -> float:
    """The pool scored by one scorer (`config_<scorer>.yaml`) into `scores/<scorer>/`: the seconds it took."""
    folder = output / "scores" / scorer_name(recipe)
    return run_stage(
        f"score-{scorer_name(recipe)}",
        score,
        folder,
        force=demo.force,
        recipe=recipe,
        pool=str(data / "pool" / "pool.csv"),
        output_dir=str(folder),
        seed=demo.seed,
        model_name_or_path=str(model) if model else None,
    )


def scorer_name(recipe: str) -> str:
    """`recipes/tiny/score/config_clip.yaml` -> `clip`."""
    return Path(recipe).stem.removeprefix("config_")


def scorer_recipe(demo: DemoConfig, name: str) -> str:
    """The recipe of `score_recipes` named `config_<name>.yaml`."""
    for recipe in demo.score_recipes:
        if scorer_name(recipe) == name:
            return recipe
    raise ValueError(
        f"score_recipes has no config_{name}.yaml: the demo needs the reward_model, clip and random scorers"
    )


def select(demo: DemoConfig, name: str, scores: Path, fractions: list[str] | None, data: Path, folder: Path) -> float:
    """`rs-reward filter`: the selections of one scorer's scores, with their data cards."""
    return run_stage(
        name,
        filter,
        folder,
        force=demo.force,
        recipe=demo.filter_recipe,
        scores=str(scores),
        pool=str(data / "pool" / "pool.csv"),
        output_dir=str(folder),
        fractions=fractions,
    )


def arm_tag(selection: str) -> str:
    """`caption=0.3,instruction=0.6` -> `p30s60`, the paper's name of the selection."""
    from rs_reward.curation import parse_fractions

    return "p" + "s".join(str(round(100 * f)) for f in parse_fractions(selection).values())


def run_demo(demo: DemoConfig) -> DemoResults:
    """Every stage (finished ones skipped), in `workers` processes after SynthRS; writes `report.md` and
    `metrics.json` into `output_dir`."""
    from rs_reward.eval.curation_eval import compare_scorers
    from rs_reward.modeling.tiny import resolve_model_path

    output = Path(demo.output_dir)
    timings, began = {}, time.perf_counter()

    start = time.perf_counter()
    data, synth_config = build_synthrs(demo, output)
    timings["synth"] = time.perf_counter() - start

    # The score model trains in one worker while the other evaluates the foundation, trains the CLIP-score baseline
    # and then the curation arms that need no score model (the full pool, the other scorers' selections); the score
    # model's own arms start as soon as it has scored the pool. GRPO and best-of-N follow in the same workers.
    base = Path(resolve_model_path(demo.foundation))
    foundation_card = json.loads((base / "metrics.json").read_text()) if (base / "metrics.json").is_file() else {}
    reward_dir, base_clip = output / "reward", output / "clip"
    tag, seeds = arm_tag(demo.arm_selection), range(demo.seed, demo.seed + demo.curation_seeds)
    arms = {"full": ("random", "1.0")}
    arms |= {f"{scorer_name(r)}-{tag}": (scorer_name(r), demo.arm_selection) for r in demo.score_recipes}
    scores: dict[str, Path] = {}
    arm_futures: dict[str, list] = {}
    start = time.perf_counter()
    with worker_pool(demo.workers) as pool, main_threads(demo.workers):

        def start_arms(*ready: str) -> None:
            """Select and submit the arms of the scorers whose scores are ready."""
            scores.update({name: output / "scores" / name for name in ready})
            for arm, (scorer, fraction) in arms.items():
                if scorer in scores and arm not in arm_futures:
                    subset = output / "curated" / arm
                    select(demo, f"select-{arm}", scores[scorer], [fraction], data, subset)
                    rows_file = next(subset.glob("keep-*/sft.jsonl"))
                    arm_futures[arm] = [
                        pool.submit(arm_job, demo, arm, seed, rows_file, base, base_clip, data, output)
                        for seed in seeds
                    ]

        reward_future = pool.submit(reward_job, demo, base, data, output)
        foundation_future = pool.submit(evaluate_vlm, demo, "foundation", base, data, output)
        clip_future = pool.submit(clip_job, demo, data, output)
        probes_start = time.perf_counter()
        sheet, colour, text_only = probes(data, synth_config.image_format, output)
        timings["probes"] = time.perf_counter() - probes_start
        modelless = [scorer_name(r) for r in demo.score_recipes if scorer_name(r) not in ("reward_model", "clip")]
        for name in modelless:  # random and any other scorer without a model, here: they take seconds
            timings[f"score pool ({name})"] = pool_scores(demo, scorer_recipe(demo, name), data, output, None)
        timings["eval foundation"], foundation_metrics = foundation_future.result()
        clip_times, clip_base_metrics = clip_future.result()
        timings |= clip_times
        start_arms("clip", *modelless)
        timings |= reward_future.result()
        reward_metrics = json.loads((reward_dir / "eval_metrics.json").read_text())
        start_arms("reward_model")

        # the score model's selections with their cards; curation against the truth; the pool's page
        curated = output / "curated" / "reward_model"
        timings["filter"] = select(demo, "filter", scores["reward_model"], None, data, curated)
        curation_start = time.perf_counter()
        curation = compare_scorers(
            {k: str(v) for k, v in scores.items()},
            str(data / "pool" / "truth.parquet"),
            demo.keep_fractions,
            plot=output / "figures" / "precision_vs_kept.png",
        )
        (output / "curation_metrics.json").write_text(json.dumps(curation, indent=2) + "\n")
        timings["curation report"] = time.perf_counter() - curation_start
        timings["browse page"] = run_stage(
            "browse",
            browse,
            output / "browse",
            force=demo.force,
            scores=str(scores["reward_model"]),
            compare=str(scores["clip"]),
            pool=str(data / "pool" / "pool.csv"),
            fractions=["0.3", demo.arm_selection],
            output_dir=str(output / "browse"),
        )

        arm_metrics: dict[str, list[dict]] = {}
        clip_arm_metrics: dict[str, list[dict]] = {}
        for arm in arms:  # the report's order, whatever order they ran in
            for future in arm_futures[arm]:
                metrics, clip_metrics = future.result()
                arm_metrics.setdefault(arm, []).append(metrics)
                if clip_metrics is not None:
                    clip_arm_metrics.setdefault(arm, []).append(clip_metrics)
        timings["foundation eval, score model, CLIP baseline and curation arms, together"] = (
            time.perf_counter() - start
        )

        # GRPO from the best SFT arm, with and without the score-model reward; best-of-N of that arm
        best_arm = max(arm_metrics, key=lambda arm: arm_score(arm_metrics[arm][0]))
        policy = output / "sft" / f"{best_arm}-seed{demo.seed}"
        start = time.perf_counter()
        grpo_futures = [
            pool.submit(grpo_job, demo, recipe, seed, policy, reward_dir, data, output)
            for recipe in demo.grpo_recipes
            for seed in range(demo.seed, demo.seed + demo.grpo_seeds)
        ]
        bon_future = pool.submit(bon_job, demo, policy, reward_dir, base_clip, data, output)
        grpo_results = [future.result() for future in grpo_futures]
        timings["best-of-N"] = bon_future.result()
        timings["GRPO and best-of-N, together"] = time.perf_counter() - start
    grpo_metrics: dict[str, list[dict]] = {}
    grpo_histories: dict[str, list[list[dict]]] = {}
    for name, seconds, eval_seconds, metrics, history in grpo_results:
        timings[f"GRPO ({name})"] = timings.get(f"GRPO ({name})", 0.0) + seconds
        timings[f"eval GRPO ({name})"] = timings.get(f"eval GRPO ({name})", 0.0) + eval_seconds
        grpo_metrics.setdefault(name, []).append(metrics)
        grpo_histories.setdefault(name, []).append(history)

    results = DemoResults(
        output=output,
        manifest=json.loads((data / "manifest.json").read_text()),
        sheet=sheet,
        colour_probe=colour,
        text_only_probe=text_only,
        foundation_card=foundation_card,
        foundation_metrics=foundation_metrics,
        reward_metrics=reward_metrics,
        curation=curation,
        curated=curated,
        arm_metrics=arm_metrics,
        clip_arm_metrics=clip_arm_metrics,
        clip_base_metrics=clip_base_metrics,
        best_arm=best_arm,
        grpo_metrics=grpo_metrics,
        grpo_histories=grpo_histories,
        grpo_figures=grpo_curves(grpo_histories, output / "figures"),
        bon_metrics=json.loads((output / "bon" / "metrics.json").read_text()),
        timings=timings,
    )
    results.wall = time.perf_counter() - began
    write_report(demo, results)
    return results
