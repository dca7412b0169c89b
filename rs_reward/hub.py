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
