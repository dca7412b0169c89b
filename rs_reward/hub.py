"""Model and dataset cards, and pushing a finished output folder to the Hub.

Every task pushes the same way (`push_folder`): the folder as written, card included, through `huggingface_hub`
(`create_repo` + one `upload_folder` commit), leaving out what is not for the Hub (`UPLOAD_IGNORE`: checkpoints,
pickles, the rejects file with its local paths). The Trainer's own push is not used: it would replace the card
with TRL's generic one and push every checkpoint."""

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


LICENSE = "apache-2.0"  # the licence of rs-reward, of SynthRS and of the Qwen2-VL-2B/7B weights it starts from

# Never uploaded: resumable checkpoints, pickles (training_args.bin, optimizer states), local-only files.
UPLOAD_IGNORE = ["checkpoint-*", "checkpoint/*", "_*", ".*", "*.bin", "*.pt", "*.pth", "*.pkl", "rejects.jsonl"]


def hub_ids(names) -> list[str]:
    """The names that can be Hub repo ids (`name` or `owner/name`, not a local path): a card's metadata lists
    only those (local paths would leak the machine's folders and link nowhere); its text lists them all."""
    import os
    import re

    return [n for n in names if re.fullmatch(r"[\w.-]+(/[\w.-]+)?", n) and not os.path.exists(n)]


def card_header(**metadata) -> str:
    """The YAML front matter of a Hub card (`---` ... `---`), keys without a value left out; `base_model` and
    `datasets` only where they are Hub ids (`hub_ids`)."""
    import yaml

    if metadata.get("base_model") is not None:
        metadata["base_model"] = (hub_ids([metadata["base_model"]]) or [None])[0]
    metadata["datasets"] = hub_ids(metadata.get("datasets") or [])
    kept = {k: v for k, v in metadata.items() if v not in (None, [], "")}
    return "---\n" + yaml.safe_dump(kept, sort_keys=False, allow_unicode=True) + "---"


def push_folder(
    folder: str | Path, repo_id: str, *, repo_type: str = "model", private: bool | None = None, token=None
) -> str:
    """Create (or reuse) the Hub repo and upload `folder` in one commit, minus `UPLOAD_IGNORE`; return the repo
    id. The token comes from `token`, else huggingface_hub's own lookup (HF_TOKEN, `hf auth login`)."""
    from huggingface_hub import HfApi

    folder = Path(folder)
    if not (folder / "README.md").is_file():
        raise FileNotFoundError(f"{folder} has no README.md card; nothing is pushed without one")
    api = HfApi(token=token)
    repo = api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True).repo_id
    api.upload_folder(
        repo_id=repo,
        repo_type=repo_type,
        folder_path=str(folder),
        ignore_patterns=UPLOAD_IGNORE,
        commit_message=f"Upload {folder.name} with rs-reward",
    )
    return repo


def write_model_card(
    output_dir: str | Path,
    *,
    header: str,
    intro: str,
    datasets: list[str],
    hyperparameters: dict,
    sections: tuple[tuple[str, str], ...] = (),
) -> Path:
    """Write `output_dir/README.md`: the Hub metadata, a title and intro, the training data, the hyper-parameters,
    any further `(title, markdown)` sections, the citation."""
    output_dir = Path(output_dir)
    body = [header, "", f"# {output_dir.name}", "", intro, "", "## Training data", "", *[f"- `{d}`" for d in datasets]]
    body += [
        "",
        "## Hyper-parameters",
        "",
        "```json",
        json.dumps(hyperparameters, indent=2, sort_keys=True, default=str),
    ]
    body += ["```", ""]
    for title, markdown in sections:
        body += [f"## {title}", "", markdown, ""]
    body += ["## Citation", "", "```bibtex", CITATION, "```", ""]
    path = output_dir / "README.md"
    path.write_text("\n".join(body), encoding="utf-8")
    return path


def _adapter_tags(adapter: bool) -> list[str]:
    return ["lora", "peft"] if adapter else []


def generator_model_card(
    output_dir: str | Path,
    *,
    stage: str,
    base_model: str,
    datasets: list[str],
    hyperparameters: dict,
    adapter: bool = False,
) -> Path:
    """Write `README.md` for an SFT or GRPO-tuned Qwen2-VL: base model, data, hyper-parameters."""
    what = {"sft": "supervised fine-tuning (TRL SFTTrainer)", "grpo": "GRPO (TRL GRPOTrainer)"}[stage]
    header = card_header(
        base_model=base_model,
        datasets=datasets,
        library_name="peft" if adapter else "transformers",
        pipeline_tag="image-text-to-text",
        license=LICENSE,
        tags=["rs-reward", stage, "remote-sensing", "vision-language", "trl", *_adapter_tags(adapter)],
    )
    intro = (
        f"A remote-sensing vision-language model tuned by {what} with rs-reward, following arXiv 2503.00743"
        f" (ScoreRS). {'A LoRA adapter on' if adapter else 'Fine-tuned from'} `{base_model}`."
    )
    return write_model_card(output_dir, header=header, intro=intro, datasets=datasets, hyperparameters=hyperparameters)


def clip_model_card(output_dir: str | Path, *, base_model: str, datasets: list[str], hyperparameters: dict) -> Path:
    """Write `README.md` for a CLIP fine-tuned on (curated) remote-sensing captions."""
    header = card_header(
        base_model=base_model,
        datasets=datasets,
        library_name="transformers",
        pipeline_tag="zero-shot-image-classification",
        license=LICENSE,
        tags=["rs-reward", "clip", "remote-sensing", "contrastive"],
    )
    intro = (
        f"`{base_model}` fine-tuned contrastively on remote-sensing image-caption pairs with rs-reward (negatives"
        " gathered across processes), following arXiv 2503.00743 (ScoreRS)."
    )
    return write_model_card(output_dir, header=header, intro=intro, datasets=datasets, hyperparameters=hyperparameters)


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
    header = card_header(
        base_model=base_model,
        datasets=datasets,
        library_name="peft" if adapter else "transformers",
        pipeline_tag="text-classification",  # a scalar score per (image, text): what sequence classification gives
        license=LICENSE,
        tags=["rs-reward", "reward-model", "remote-sensing", "vision-language", "trl", *_adapter_tags(adapter)],
    )
    intro = (
        "A remote-sensing image-text **score model** trained with rs-reward (Bradley-Terry loss on preference pairs,"
        " a scalar head read at the last token), following arXiv 2503.00743 (ScoreRS).\n"
        f"{'A LoRA adapter (the score head is saved with it) on' if adapter else 'Fine-tuned from'} `{base_model}`."
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
        "```\n\n"
        "The scored transcript: user turn = image + question (empty string for captions), assistant turn = the text,"
        " no generation prompt."
    )
    evaluation = metrics_markdown or (
        "```json\n" + json.dumps(metrics, indent=2) + "\n```" if metrics else "Not evaluated."
    )
    return write_model_card(
        output_dir,
        header=header,
        intro=intro + "\n\n## Usage\n\n" + usage,
        datasets=datasets,
        hyperparameters=hyperparameters,
        sections=(("Evaluation (held-out pairs)", evaluation),),
    )


def foundation_model_card(output_dir: str | Path, *, recipe: str, commit: str, result: dict) -> Path:
    """Write `README.md` for the SynthRS foundation: what it is, the recipe and commit that made it, its
    held-out perception per question type against chance."""
    from .foundation import foundation_runs
    from .modeling.tiny import FOUNDATION_NAME

    output_dir = Path(output_dir)
    config = result["config"]
    before = result.get("continued_from", {}).get("perception", {})  # the run this one continued
    rows = [
        f"| {qtype} | {m['accuracy']:.3f} | {m['chance']:.3f} | {m['questions']} |"
        + (f" {before[qtype]['accuracy']:.3f} |" if qtype in before else " - |" if before else "")
        for qtype, m in result["perception"].items()
    ]
    formats = config.get("benchmark_questions", 0)
    runs = foundation_runs(result)

    def run_steps(run):
        c = run["config"]
        if run["what"] == "vision steps":
            return f"{run['steps']} vision steps (batch {c['batch_size']})"
        vision = f"{c['vision_steps']} vision steps (batch {c['batch_size']}) and " if c.get("vision_steps") else ""
        return f"{vision}{run['conversation_steps']} {run['what']} (batch {c['lm_batch_size']})"

    if len(runs) == 1:
        steps = (
            f"- steps: {result['steps']} ({config['vision_steps']} vision, batch {config['batch_size']};"
            f" then batch {config['lm_batch_size']}), {result.get('minutes', '?')} minutes"
        )
        lines = [f"- recipe: `{recipe}` (`make foundation` reruns it)"]
    else:
        steps = "- steps: " + "; then ".join(f"{run_steps(run)}, {run.get('minutes', '?')} minutes" for run in runs)

        def name(run):
            if run["what"] == "vision steps":
                return "the vision phase"
            return "the conversation phase" if run["what"] == "conversation steps" else f"a run of {run['what']}"

        earlier = [
            f"{name(run)} (`{run['model']}`, "
            + (
                f"the vision tower and merger alone, kind_weight {run['config'].get('kind_weight', 1.0):g})"
                if run["what"] == "vision steps"
                else f"from training scene {run['config'].get('first_scene', 0)})"
            )
            for run in runs[:-1]
        ]
        this = f"this run ({runs[-1]['what']}, from training scene {config['first_scene']}" + (
            f", with {formats} turns per conversation in the evaluation benchmarks' formats (multiple choice"
            " answered by a letter, grounding by a box, classification from the class list)"
            if formats
            else ", each turn seeing the image and its own question only"
            if config.get("isolated_turns")
            else ""
        )
        lines = [
            f"- {len(runs)} runs, each from the model the one before made: {'; '.join(earlier)}; then {this})",
            f"- recipe: `{recipe}`, the last of the {len(runs)} (`make foundation` runs the committed foundation's"
            " recipes in turn)",
        ]
    body = [
        card_header(
            library_name="transformers",
            license=LICENSE,
            tags=["rs-reward", "qwen2-vl", "remote-sensing", "synthetic", "tiny"],
        ),
        "",
        f"# {FOUNDATION_NAME}: a tiny Qwen2-VL that perceives SynthRS",
        "",
        "The stand-in, on CPU, for the pretrained Qwen2-VL-7B-Instruct the paper starts every stage from: a",
        f"`Qwen2VLForConditionalGeneration` ({result.get('parameters', '?')} parameters) pre-trained from random",
        "weights on SynthRS scenes rendered on the fly (`rs_reward.foundation`): first the vision tower and merger on",
        "a per-token perception loss (what each merged token holds, the cell and size of its object group, and the",
        "token's own place: Qwen2-VL's vision tower has rotary positions only, so without it no token knows where",
        "it is), then the whole model on dense multi-turn questions and captions"
        + (
            f", the vision tower at {config['vision_learning_rate_scale']:g} x the learning rate."
            if config.get("vision_learning_rate_scale", 1.0) != 1.0
            else "."
        ),
        "",
        *(
            [
                f"- continued from `{config['model_name_or_path']}` on conversations that ask presence of every kind"
                f" and hold {config.get('description_checks', 0)} description checks each (is this description,"
                " correct or with one grounded error, of the image correct?)"
            ]
            if not config["vision_steps"]
            and (config.get("presence_of_every_kind") or config.get("description_checks"))
            else []
        ),
        *lines,
        f"- code: {commit}",
        f"- world: image {config['image_size']} px, object_scale {config['object_scale']},"
        f" max_groups {config['max_groups']}, haze {config['haze_probability']}",
        steps + f" on {result.get('machine', 'this machine')}",
        "",
        "## Held-out perception (fresh scenes, greedy answers, strict match)",
        "",
        *(
            ["Multiple choice counts the letter; grounding counts a box at IoU >= 0.5 with the object's (pixels).", ""]
            if {"multiple_choice", "grounding"} & set(result["perception"])
            else []
        ),
        "| question type | accuracy | chance | questions |" + (" before this run |" if before else ""),
        "|---|---|---|---|" + ("---|" if before else ""),
        *rows,
        "",
        *(
            [
                "`description` (is this description of the image correct? yes or no) is asked, not trained"
                " (`description_checks: 0`): the model rarely answers it with yes or no.",
                "",
            ]
            if "description" in result["perception"] and not config.get("description_checks")
            else []
        ),
        "Use: `model_name_or_path: tiny:qwen2-vl-synthrs` in any recipe (the folder ships with the package).",
        "",
    ]
    path = output_dir / "README.md"
    path.write_text("\n".join(body), encoding="utf-8")
    return path


def dataset_card_header(*, name: str, rows: int, scorer: str) -> str:
    """Hub metadata of a curated subset pushed as a dataset repo (`stage_curated_dataset`)."""
    sizes = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")]
    return card_header(
        license=LICENSE,
        pretty_name=f"rs-reward curated subset {name} ({scorer})",
        task_categories=["image-text-to-text", "zero-shot-image-classification"],
        tags=["rs-reward", "remote-sensing", "curated", "vision-language"],
        size_categories=[next((label for limit, label in sizes if rows < limit), "n>1M")],
        configs=[{"config_name": "default", "data_files": [{"split": "train", "path": "data/train-*.parquet"}]}],
    )


def stage_curated_dataset(subset: str | Path, staging: str | Path, *, scorer: str, rows_per_shard: int = 2000) -> Path:
    """Write the Hub dataset repo of a curated subset folder (written by `rs-reward filter`) into `staging`:
    `data/train-NNNNN-of-MMMMM.parquet` (the rows of `sft.jsonl`, each image's file embedded, read inside the
    subset's `image_root.txt`), `README.md` (its data card under Hub metadata) and `score_histogram.png`.
    Shards are written `rows_per_shard` rows at a time, so memory is bounded by one shard's images."""
    import math
    import shutil

    import pyarrow as pa
    import pyarrow.parquet as pq
    from datasets import Features, Image, List, Value

    from .data.io import confine_path

    subset, staging = Path(subset), Path(staging)
    image_root = (subset / "image_root.txt").read_text().strip()
    rows = [json.loads(line) for line in (subset / "sft.jsonl").read_text(encoding="utf-8").splitlines() if line]
    features = Features(
        {
            "id": Value("string"),
            "image": Image(),
            "task": Value("string"),
            "source": Value("string"),
            "messages": List({"role": Value("string"), "content": Value("string")}),
        }
    )
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "data").mkdir(parents=True)
    shards = max(1, math.ceil(len(rows) / rows_per_shard))
    for shard in range(shards):
        chunk = rows[shard * rows_per_shard : (shard + 1) * rows_per_shard]
        records = []
        for row in chunk:
            path = Path(confine_path(image_root, row["images"][0]))
            image = {"bytes": path.read_bytes(), "path": path.name}
            records.append(
                {
                    "id": row["id"],
                    "image": image,
                    "task": row["task"],
                    "source": row["source"],
                    "messages": row["messages"],
                }
            )
        table = pa.Table.from_pylist(records, schema=features.arrow_schema)
        pq.write_table(table, staging / "data" / f"train-{shard:05d}-of-{shards:05d}.parquet")
    card = (subset / "README.md").read_text(encoding="utf-8")
    header = dataset_card_header(name=subset.name, rows=len(rows), scorer=scorer)
    (staging / "README.md").write_text(header + "\n\n" + card, encoding="utf-8")
    if (subset / "score_histogram.png").is_file():
        shutil.copy2(subset / "score_histogram.png", staging / "score_histogram.png")
    return staging
