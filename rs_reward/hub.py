"""Model and dataset cards, and pushing to the Hub (through the standard Trainer / huggingface_hub paths)."""

from __future__ import annotations

import json
from pathlib import Path


CITATION = """@inproceedings{scorers2025,
  title     = {Quality-Driven Curation of Remote Sensing Vision-Language Data via Learned Scoring Models},
  booktitle = {NeurIPS},
  year      = {2025},
  note      = {arXiv:2503.00743}
}"""


def code_version() -> str:
    """`commit <short hash>` (`+ local changes` when the tree is dirty), or `an unknown commit` outside git."""
    import subprocess

    root = Path(__file__).resolve().parents[1]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "an unknown commit"
    return f"commit `{commit}`" + (" + local changes" if dirty else "")


def _yaml_list(values) -> str:
    return "".join(f"\n- {v}" for v in values)


def reward_model_card(
    output_dir: str | Path,
    *,
    base_model: str,
    datasets: list[str],
    hyperparameters: dict,
    metrics: dict | None = None,
    metrics_markdown: str | None = None,
    adapter: bool = False,
) -> Path:
    """Write `README.md` (a Hub model card) for a reward model: base model, data, hyper-parameters, metrics."""
    output_dir = Path(output_dir)
    tags = ["rs-reward", "reward-model", "remote-sensing", "vision-language", "trl"] + (
        ["lora", "peft"] if adapter else []
    )
    header = "\n".join(
        [
            "---",
            f"base_model: {base_model}",
            f"library_name: {'peft' if adapter else 'transformers'}",
            f"tags:{_yaml_list(tags)}",
            f"datasets:{_yaml_list(datasets)}" if datasets else "datasets: []",
            "---",
        ]
    )
    usage = (
        "```python\n"
        "from rs_reward.configs import RSModelConfig\n"
        "from rs_reward.modeling import load_processor\n"
        "from rs_reward.modeling.loading import load_reward_model\n"
        "from rs_reward.scoring import RewardModelScorer\n\n"
        f'model = load_reward_model(RSModelConfig(model_name_or_path="{output_dir.name}"), trainable=False)\n'
        f'scorer = RewardModelScorer(model, load_processor("{output_dir.name}"))\n'
        'scorer.score([image], [""], ["A satellite image of a harbor with three ships."])\n'
        "```"
    )
    body = [
        header,
        "",
        f"# {output_dir.name}",
        "",
        "A remote-sensing image-text **score model** trained with rs-reward (Bradley-Terry loss"
        " on preference pairs, a scalar head read at the last token), following arXiv 2503.00743 (ScoreRS).",
        f"{'A LoRA adapter (the score head is saved with it) on' if adapter else 'Fine-tuned from'} `{base_model}`.",
        "",
        "## Usage",
        "",
        usage,
        "",
        "The scored transcript: user turn = image + question (empty string for captions), assistant turn = the text,"
        " no generation prompt.",
        "",
        "## Training data",
        "",
        *[f"- `{d}`" for d in datasets],
        "",
        "## Hyper-parameters",
        "",
        "```json",
        json.dumps(hyperparameters, indent=2, sort_keys=True, default=str),
        "```",
        "",
        "## Evaluation (held-out pairs)",
        "",
        metrics_markdown or ("```json\n" + json.dumps(metrics, indent=2) + "\n```" if metrics else "Not evaluated."),
        "",
        "## Citation",
        "",
        "```bibtex",
        CITATION,
        "```",
        "",
    ]
    path = output_dir / "README.md"
    path.write_text("\n".join(body), encoding="utf-8")
    return path


def foundation_model_card(output_dir: str | Path, *, recipe: str, commit: str, result: dict) -> Path:
    """Write `README.md` for the SynthRS foundation: what it is, the recipe and commit that made it, its
    held-out perception per question type against chance."""
    output_dir = Path(output_dir)
    config = result["config"]
    rows = [
        f"| {qtype} | {m['accuracy']:.3f} | {m['chance']:.3f} | {m['questions']} |"
        for qtype, m in result["perception"].items()
    ]
    body = [
        "---",
        "library_name: transformers",
        f"tags:{_yaml_list(['rs-reward', 'qwen2-vl', 'remote-sensing', 'synthetic', 'tiny'])}",
        "---",
        "",
        f"# {output_dir.name}: a tiny Qwen2-VL that perceives SynthRS",
        "",
        "The stand-in, on CPU, for the pretrained Qwen2-VL-7B-Instruct the paper starts every stage from: a",
        f"`Qwen2VLForConditionalGeneration` ({result.get('parameters', '?')} parameters) pre-trained from random",
        "weights on SynthRS scenes rendered on the fly (`rs_reward.foundation`): first the vision tower and merger on",
        "a per-token perception loss, then the whole model on dense multi-turn questions and captions.",
        "",
        f"- recipe: `{recipe}` (`make foundation` reruns it)",
        f"- code: {commit}",
        f"- world: image {config['image_size']} px, object_scale {config['object_scale']},"
        f" max_groups {config['max_groups']}, haze {config['haze_probability']}",
        f"- steps: {result['steps']} ({config['vision_steps']} vision, batch {config['batch_size']};"
        f" then batch {config['lm_batch_size']}), {result.get('minutes', '?')} minutes on"
        f" {result.get('machine', 'this machine')}",
        "",
        "## Held-out perception (fresh scenes, greedy answers, strict match)",
        "",
        "| question type | accuracy | chance | questions |",
        "|---|---|---|---|",
        *rows,
        "",
        "Use: `model_name_or_path: tiny:qwen2-vl-synthrs` in any recipe (the folder ships with the package).",
        "",
    ]
    path = output_dir / "README.md"
    path.write_text("\n".join(body), encoding="utf-8")
    return path
