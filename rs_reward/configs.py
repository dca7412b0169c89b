"""Configuration dataclasses. They subclass TRL's, so recipes are TRL recipes with a few more keys.

The model arguments (`RSModelConfig`) and the preference data (`PreferenceDataArguments`) are shared by the tasks
that read them; task-only arguments stay beside their task. Every field has a `help` (`rs-reward <task> --help`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from trl import ModelConfig, RewardConfig

from .data.chat import prompt_order_field


# ------------------------------------------------------------------------------------------------ shared fields
# Fields that several tasks take, declared once; a task's arguments inherit the mixins it needs.


@dataclass
class ImageRootArguments:
    image_root: str | None = field(
        default=None,
        metadata={"help": "Folder image paths are relative to (default: the folder of the file that names them)."},
    )


@dataclass
class StrictArguments:
    strict: bool = field(default=False, metadata={"help": "Raise on the first unusable row instead of rejecting it."})


@dataclass
class RemoteCodeArguments:
    trust_remote_code: bool = field(default=False, metadata={"help": "Allow custom model code from the Hub."})


@dataclass
class ScoreModelArguments:
    """The score model that a task reads (GRPO rewards and monitor, the best-of-N selector): a ScoreRS folder, a
    LoRA adapter or a full model, with its own dtype and pixel budget."""

    reward_model_name_or_path: str | None = field(
        default=None, metadata={"help": "The score model (ScoreRS layout, LoRA adapter or full model)."}
    )
    reward_model_dtype: str = field(default="auto", metadata={"help": "dtype of the score model."})
    reward_min_pixels: int | None = field(default=None, metadata={"help": "Score model's smallest image area."})
    reward_max_pixels: int | None = field(default=None, metadata={"help": "Score model's largest image area."})
    prompt_order: str = prompt_order_field()


@dataclass
class RSModelConfig(ModelConfig):
    """TRL's `ModelConfig` plus what a VLM needs.

    > Parameters that control the images

        min_pixels, max_pixels: the processor's pixel budget (the paper: max 1280*28*28).

    > Parameters that choose what trains (full fine-tuning; LoRA trains its adapters and the head)

        freeze_vision_tower, freeze_merger, freeze_language_model, freeze_score_head (reward models),
        freeze_lm_head (generators).

    > Parameters of the score (reward models; saved with the model, so every later use reads as it trained)

        score_activation, score_likelihood_weight, score_resolve_choices.

    Example recipe keys (the paper's score-model stage 2: vision tower + head):

        model_name_or_path: Qwen/Qwen2-VL-7B-Instruct
        freeze_language_model: true
        max_pixels: 602112
    """

    min_pixels: int | None = field(
        default=None, metadata={"help": "Smallest image area in pixels after resizing (Qwen image processors)."}
    )
    max_pixels: int | None = field(
        default=None, metadata={"help": "Largest image area in pixels after resizing, e.g. 1280*28*28 = 1003520."}
    )
    score_activation: str | None = field(
        default=None,
        metadata={
            "help": "Applied to the head's output: None (raw score, the paper) or 'softplus' (the released ScoreRS code).",
            "choices": [None, "softplus"],
        },
    )
    score_likelihood_weight: float | None = field(
        default=None,
        metadata={
            "help": "Add this weight x the mean log-likelihood of the answer under the generator's own lm_head (kept "
            "beside the score head) to the score; None: as the checkpoint says (a generator: 0, the paper's head "
            "alone). The tiny SynthRS score model uses it (recipes/tiny/reward/README.md).",
        },
    )
    score_resolve_choices: bool | None = field(
        default=None,
        metadata={
            "help": "Read a multiple-choice answer with the option it names written out ('B' -> 'B (red)'), in "
            "training and in every use of the model (saved in its config); None: as the checkpoint says (absent: "
            "the letter alone, the paper's layout). The tiny SynthRS score model uses it (recipes/tiny/reward/README.md).",
        },
    )
    freeze_vision_tower: bool = field(default=False, metadata={"help": "Freeze the vision encoder (not the merger)."})
    freeze_merger: bool = field(default=False, metadata={"help": "Freeze the vision-language merger (projector)."})
    freeze_language_model: bool = field(default=False, metadata={"help": "Freeze the language model."})
    freeze_score_head: bool = field(default=False, metadata={"help": "Freeze the scalar score head."})
    freeze_lm_head: bool = field(
        default=False, metadata={"help": "Freeze the generator's output layer (SFT stage 1 trains the merger only)."}
    )

    def trainable_parts(self) -> dict[str, bool]:
        """The freezing switches as `set_trainable` keyword arguments (only the parts that are frozen)."""
        switches = {
            "vision_tower": self.freeze_vision_tower,
            "merger": self.freeze_merger,
            "language_model": self.freeze_language_model,
            "score_head": self.freeze_score_head,
            "lm_head": self.freeze_lm_head,
        }
        return {part: False for part, frozen in switches.items() if frozen}


@dataclass
class PreferenceDataArguments(ImageRootArguments, StrictArguments):
    """Where the preference pairs come from (`rs_reward.data.preference.load_preference_pairs`).

    > Parameters that choose the data

        dataset_name: an RSRM folder, a JSONL/JSON/parquet file, a `datasets` folder or a Hub id;
        image_root: the folder image paths are relative to; eval_dataset_name / eval_image_root likewise.

    > Parameters that handle bad rows

        strict: fail on the first unusable row instead of writing it to the rejects file.
    """

    dataset_name: str = field(
        default=None, metadata={"help": "Training pairs: RSRM folder, JSONL/parquet file, datasets folder or Hub id."}
    )
    dataset_train_split: str = field(default="train", metadata={"help": "Split of a `datasets` source for training."})
    eval_dataset_name: str | None = field(default=None, metadata={"help": "Held-out pairs (same formats)."})
    eval_image_root: str | None = field(default=None, metadata={"help": "Image root of the held-out pairs."})
    dataset_test_split: str = field(default="test", metadata={"help": "Split of a `datasets` source for evaluation."})
    max_train_pairs: int | None = field(
        default=None, metadata={"help": "Use at most this many training pairs (shuffled by seed)."}
    )
    max_eval_pairs: int | None = field(default=None, metadata={"help": "Use at most this many held-out pairs."})


@dataclass
class RewardScriptArguments(PreferenceDataArguments):
    """Script arguments of `rs-reward reward` (data plus what to do with the trained model)."""

    save_merged: bool = field(
        default=False, metadata={"help": "After LoRA training, also save the merged model in `<output_dir>/merged`."}
    )
    evaluate_after_training: bool = field(
        default=True,
        metadata={"help": "Run the reward evaluation on the held-out pairs and put it in the model card."},
    )


@dataclass
class RSRewardConfig(RewardConfig):
    """TRL's `RewardConfig` with defaults that suit VLM rows.

    `max_length` cuts each question and answer to that many tokens (image tokens apart: the pixel budget bounds
    them), so memory is bounded by tokens whatever the texts; `remove_unused_columns` is off (the collator needs
    the raw rows), and `shared_prefix` (new) packs each pair behind one prefix. Everything else is TRL's.
    """

    max_length: int | None = field(
        default=1024,
        metadata={"help": "Each question and answer is cut to this many tokens (None: no cut; images apart)."},
    )
    remove_unused_columns: bool = field(
        default=False, metadata={"help": "Must stay False: the collator reads raw rows."}
    )
    shared_prefix: bool = field(
        default=True,
        metadata={
            "help": "Pack each pair's chosen and rejected answers behind one copy of the image and question "
            "(rs_reward.modeling.shared_prefix: the same loss and gradients, one vision pass). Needs sdpa or "
            "eager attention; off falls back to two rows per pair."
        },
    )
    group_rejected: bool = field(
        default=True,
        metadata={
            "help": "With shared_prefix: the pairs of one item (same image, question and chosen answer) train as one "
            "row, the chosen and every rejected answer behind one prefix; the loss stays the mean over pairs. "
            "per_device_train_batch_size then counts items. Under DDP the loss is weighed by each process's pairs."
        },
    )


@dataclass
class GRPOScriptArguments(ImageRootArguments, StrictArguments, ScoreModelArguments):
    """Script arguments of `rs-reward grpo`: the RL prompts and the rewards (`rs_reward.rewards`).

    > Parameters that choose the data

        dataset_name: a file of canonical RL rows (id, images, prompt, solution, reward_type); image_root;
        reward_types: keep only these (e.g. `[em, mc, iou]` for the rule-only ablation); prompt_suffix.

    > Parameters that choose the rewards

        reward_funcs: registry names; weights are GRPOConfig's `reward_weights` (the paper: [format, accuracy]
        with [0.3, 0.7] and format_gate); reward_model_name_or_path: the score model (ScoreRS layout, LoRA
        adapter or full model); prompt_order: where the score model reads the image (`image_first`, as it
        trains; `text_first`, as the authors' reward server); reward_routes: which function scores each
        reward_type; score_beta.
    """

    dataset_name: str = field(default=None, metadata={"help": "RL prompts: JSONL / JSON / parquet of canonical rows."})
    reward_types: list[str] | None = field(
        default=None, metadata={"help": "Reward types to train on (default: all), e.g. `--reward_types em mc iou`."}
    )
    max_train_rows: int | None = field(default=None, metadata={"help": "Use at most this many prompts (by seed)."})
    prompt_suffix: str = field(
        default="", metadata={"help": "Appended to each question (e.g. the think/answer instruction)."}
    )
    reward_funcs: list[str] = field(
        default_factory=lambda: ["format", "accuracy"],
        metadata={
            "help": "Reward functions by registry name: format, accuracy, exact_match, multiple_choice, "
            "iou_graded, score_model, score_vs_reference; or a custom one by dotted path (`my_pkg.rewards.fn`)."
        },
    )
    reward_batch_size: int = field(default=16, metadata={"help": "Rows per score-model forward pass."})
    reward_routes: str = field(
        default="em=exact_match,mc=multiple_choice,iou=iou_graded,open=score_vs_reference",
        metadata={"help": "reward_type=function pairs used by `accuracy` (`none`: no accuracy reward)."},
    )
    format_gate: bool = field(
        default=True, metadata={"help": "A completion that fails the format earns 0 accuracy (the paper)."}
    )
    score_beta: float = field(default=0.2, metadata={"help": "beta of score_vs_reference (the paper: 0.2)."})
    browse_max_rows: int = field(
        default=8,
        metadata={
            "help": "Prompts per logged step on the samples page `<output_dir>/browse/index.html` (written when "
            "GRPOConfig's `log_completions` is true)."
        },
    )

    def reward_model_args(self) -> RSModelConfig | None:
        if not self.reward_model_name_or_path:
            return None
        return RSModelConfig(
            model_name_or_path=self.reward_model_name_or_path,
            dtype=self.reward_model_dtype,
            min_pixels=self.reward_min_pixels,
            max_pixels=self.reward_max_pixels,
        )


@dataclass
class DemoConfig:
    """What `rs-reward demo` runs (`rs_reward.pipeline.demo`): the recipe of every stage and the knobs that scale
    the run. `recipes/tiny/demo/config.yaml` is `make demo`; `config_quick.yaml` the CI-sized sibling.

    > Recipes, one per stage

        synth_recipe, reward_recipe, clip_recipe, score_recipes (one per scorer, named by the file), filter_recipe,
        curated_sft_recipe, vlm_eval_recipe, curated_clip_recipe, clip_eval_recipe, grpo_recipes (one run each),
        bon_recipe

    > Scale

        max_steps (training stages cut short), eval_max_rows, clip_arm_batch_size, reward_epochs,
        grpo_steps, curation_seeds, grpo_seeds, bon_n_list, workers
    """

    output_dir: str = field(default="runs/demo", metadata={"help": "Folder for every artifact and report.md."})
    foundation: str = field(
        default="tiny:qwen2-vl-synthrs",
        metadata={"help": "The VLM every stage starts from (`make foundation` retrains the committed one)."},
    )
    synth_recipe: str = field(default="recipes/tiny/synth/config_demo.yaml", metadata={"help": "SynthRS recipe."})
    reward_recipe: str = field(
        default="recipes/tiny/reward/config_demo.yaml", metadata={"help": "Reward model recipe."}
    )
    clip_recipe: str = field(
        default="recipes/tiny/clip/config_synthrs.yaml", metadata={"help": "CLIP baseline recipe."}
    )
    score_recipes: list[str] = field(
        default_factory=lambda: [
            "recipes/tiny/score/config_reward_model.yaml",
            "recipes/tiny/score/config_clip.yaml",
            "recipes/tiny/score/config_random.yaml",
        ],
        metadata={"help": "Scoring recipes, one per scorer (the scorer is the file's name after `config_`)."},
    )
    filter_recipe: str = field(default="recipes/tiny/filter/config_demo.yaml", metadata={"help": "Selection recipe."})
    keep_fractions: list[float] = field(
        default_factory=lambda: [0.1, 0.2, 0.3, 0.5], metadata={"help": "Keep fractions of the curation report."}
    )
    curated_sft_recipe: str = field(
        default="recipes/tiny/sft/config_curated.yaml", metadata={"help": "SFT on curated data."}
    )
    vlm_eval_recipe: str = field(
        default="recipes/tiny/eval_vlm/config_synthrs.yaml", metadata={"help": "VLM evaluation recipe."}
    )
    curated_clip_recipe: str = field(
        default="recipes/tiny/clip/config_curated.yaml",
        metadata={"help": "CLIP fine-tuning on each curation arm's captions (empty: skip the CLIP arms)."},
    )
    clip_eval_recipe: str = field(
        default="recipes/tiny/eval_clip/config_synthrs.yaml", metadata={"help": "CLIP evaluation recipe."}
    )
    arm_selection: str = field(
        default="caption=0.3,instruction=0.6",
        metadata={"help": "Per-task keep fractions of the curated arms (the paper's P30S60)."},
    )
    curation_seeds: int = field(default=3, metadata={"help": "SFT seeds per curation arm (mean and std over seeds)."})
    grpo_recipes: list[str] = field(
        default_factory=lambda: ["recipes/tiny/grpo/config_demo.yaml", "recipes/tiny/grpo/config_no_score_model.yaml"],
        metadata={"help": "GRPO recipes run from the best SFT arm (the run is the file's name after `config_`)."},
    )
    grpo_steps: int = field(default=150, metadata={"help": "GRPO steps per recipe."})
    grpo_seeds: int = field(
        default=1, metadata={"help": "GRPO seeds per recipe, all from the same SFT policy (mean and std over seeds)."}
    )
    bon_recipe: str = field(default="recipes/tiny/bon/config_demo.yaml", metadata={"help": "Best-of-N recipe."})
    bon_n_list: list[int] = field(
        default_factory=lambda: [1, 2, 4, 8, 16], metadata={"help": "The N values of best-of-N."}
    )
    reward_epochs: float = field(default=1.0, metadata={"help": "Epochs of reward training (unless max_steps)."})
    max_steps: int | None = field(
        default=None,
        metadata={
            "help": "Training steps of the reward, CLIP and SFT stages instead of their recipes' lengths (the quick "
            "recipe's 30); also marks the run as a quick one in the report."
        },
    )
    eval_max_rows: int | None = field(
        default=None, metadata={"help": "Eval rows per task of every VLM evaluation and of best-of-N (default: all)."}
    )
    clip_arm_batch_size: int | None = field(
        default=None, metadata={"help": "Global batch of the CLIP arms (default: the recipe's)."}
    )
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

    @property
    def quick(self) -> bool:
        """A CI-sized run: training stages cut to `max_steps`."""
        return self.max_steps is not None

    def __post_init__(self):
        scorers = {Path(r).stem.removeprefix("config_") for r in self.score_recipes}
        if not {"reward_model", "clip", "random"} <= scorers:
            raise ValueError(
                f"score_recipes must name the scorers reward_model, clip and random (config_<scorer>.yaml), got "
                f"{sorted(scorers)}"
            )
        for name in ("curation_seeds", "grpo_seeds"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.bon_n_list or min(self.bon_n_list) < 1:
            raise ValueError(f"bon_n_list must hold N values >= 1, got {self.bon_n_list}")
        if not all(0 < f <= 1 for f in self.keep_fractions):
            raise ValueError(f"keep_fractions must lie in (0, 1], got {self.keep_fractions}")


# ------------------------------------------------------------------------------------------------ evaluation
# One task per kind of model (`rs-reward eval_reward | eval_vlm | eval_clip | eval_curation`), so that each
# `--help` shows only its own fields; what they share is in the first two classes.


@dataclass
class EvalOutputArguments(RemoteCodeArguments):
    """Where an evaluation writes (metrics.json, report.md, figures) and whether custom model code may run."""

    output_dir: str = field(default="runs/eval", metadata={"help": "Folder for metrics.json, report.md and figures."})


@dataclass
class EvalSetArguments(EvalOutputArguments):
    """An evaluation set in any of the layouts `rs_reward.data.evalsets.read_eval_rows` reads."""

    eval_data: str = field(default=None, metadata={"help": "Eval file or folder (format from `eval_format`)."})
    eval_format: str = field(
        default="auto",
        metadata={
            "help": "canonical (eval.jsonl), vhm (VHM JSON), lhrs (LHRS-Bench), imagefolder, karpathy, rsvqa (raw "
            "RSVQA split files), dior_rsvg (DIOR-RSVG XML folder), or auto."
        },
    )
    max_rows: int | None = field(default=None, metadata={"help": "Evaluate at most this many rows per task."})

    def __post_init__(self):
        if not self.eval_data:
            raise ValueError("eval_data is required: an eval file or folder (`--eval_data path`)")


@dataclass
class RewardEvalArguments(EvalOutputArguments):
    """`rs-reward eval_reward`: a reward model on held-out preference pairs (with `PreferenceDataArguments` and
    `RSModelConfig`): pairwise accuracy per task / source / operator, the image-blind control, a score histogram."""

    batch_size: int = field(default=16, metadata={"help": "Pairs per forward pass."})
    blind_control: bool = field(default=True, metadata={"help": "Also score with every image blanked."})
    store_statistics: bool = field(
        default=False, metadata={"help": "Write score_mean/score_std into the model's config."}
    )


@dataclass
class VLMEvalArguments(EvalSetArguments):
    """`rs-reward eval_vlm`: a generator VLM (with `RSModelConfig`): classification and VQA (strict match), multiple
    choice (option letter), grounding (Acc@IoU 0.5), captions (facts against SynthRS truth when given)."""

    truth_scenes: str | None = field(
        default=None, metadata={"help": "SynthRS folder whose truth scores captions by fact."}
    )
    max_new_tokens: int = field(default=64, metadata={"help": "Tokens generated per answer (greedy)."})
    batch_size: int = field(default=16, metadata={"help": "Rows per generate call."})


@dataclass
class ClipEvalArguments(EvalSetArguments):
    """`rs-reward eval_clip`: a CLIP / SigLIP: zero-shot classification (an ImageFolder, the paper's templates) or
    image-text retrieval (a caption set)."""

    model_name_or_path: str = field(default=None, metadata={"help": "CLIP / SigLIP folder or Hub id."})
    dtype: str | None = field(default=None, metadata={"help": "Weights dtype (float32, bfloat16, ...)."})

    def __post_init__(self):
        super().__post_init__()
        if not self.model_name_or_path:
            raise ValueError("model_name_or_path is required (`--model_name_or_path runs/demo/clip`)")


@dataclass
class CurationEvalArguments(EvalOutputArguments):
    """`rs-reward eval_curation`: how well each scorer curates a pool, against its true quality (SynthRS)."""

    scores: list[str] = field(
        default=None, metadata={"help": "Scorers as `name=folder` of `rs-reward score` outputs, one per value."}
    )
    truth: str = field(default=None, metadata={"help": "Parquet of `id, quality` (SynthRS pool/truth.parquet)."})
    fractions: list[float] = field(
        default_factory=lambda: [0.1, 0.2, 0.3, 0.5], metadata={"help": "Keep fractions to measure."}
    )
    good_quality: float = field(default=0.75, metadata={"help": "True quality that counts as good."})

    def __post_init__(self):
        if not self.scores or not self.truth:
            raise ValueError("scores (name=folder ...) and truth (pool/truth.parquet) are required")
        bad = [s for s in self.scores if "=" not in s]
        if bad:
            raise ValueError(f"scores: each value is name=folder, got {bad}")
        if not all(0 < f <= 1 for f in self.fractions):
            raise ValueError(f"fractions must lie in (0, 1], got {self.fractions}")


# ------------------------------------------------------------------------------------------------ the other tasks


@dataclass
class SFTScriptArguments(ImageRootArguments, StrictArguments):
    """Where the SFT rows come from."""

    dataset_name: str = field(
        default=None, metadata={"help": "A JSONL file of canonical SFT rows (id, images, messages)."}
    )
    tasks: list[str] | None = field(
        default=None, metadata={"help": "Keep only rows of these tasks (e.g. `--tasks caption`; default: all)."}
    )
    max_train_rows: int | None = field(
        default=None, metadata={"help": "Use at most this many rows (shuffled by seed)."}
    )


@dataclass
class ScoreArguments(ImageRootArguments, RemoteCodeArguments):
    """What to score, with what, and where to write it."""

    pool: str = field(
        default=None, metadata={"help": "The pool: CSV/JSONL/parquet file or folder, or a datasets dataset."}
    )
    output_dir: str = field(default="runs/score", metadata={"help": "Folder for shards, rejects and the manifest."})
    scorer: str = field(
        default="reward_model",
        metadata={"help": "reward_model, clip or random.", "choices": ["reward_model", "clip", "random"]},
    )
    batch_size: int = field(default=32, metadata={"help": "Rows per forward pass."})
    shard_size: int = field(default=1024, metadata={"help": "Rows per shard (the unit of resumption)."})
    num_workers: int = field(
        default=0, metadata={"help": "Threads opening images and encoding batches while the model runs."}
    )
    shared_prefix: bool = field(
        default=True,
        metadata={"help": "Score rows of one image and question behind one prefix (reward_model; same scores)."},
    )
    seed: int = field(default=0, metadata={"help": "Seed of the random scorer."})
    max_rows: int | None = field(default=None, metadata={"help": "Score only the first rows of the pool."})
    id_column: str | None = field(
        default=None, metadata={"help": "Column of unique row ids (default `id`, else the row index)."}
    )
    image_column: str | None = field(default=None, metadata={"help": "Image path column (default: detected)."})
    text_column: str | None = field(default=None, metadata={"help": "Text column (default: detected, e.g. `title`)."})
    question_column: str | None = field(
        default=None, metadata={"help": "Question column (default `question` if present)."}
    )
    max_text_tokens: int = field(
        default=1024, metadata={"help": "Questions and texts are cut to this many tokens (counted in the manifest)."}
    )
    max_batch_tokens: int = field(default=32768, metadata={"help": "Text tokens per batch, padded (memory bound)."})
    prompt_order: str = prompt_order_field()
    duplicate_ids: str = field(
        default="reject",
        metadata={"help": "A row repeating an earlier id: `reject` (to load_rejects.jsonl) or `suffix` (`<id>#2`)."},
    )


@dataclass
class FilterArguments(ImageRootArguments):
    """Which scores, which fractions, where to write."""

    scores: str = field(default=None, metadata={"help": "A folder written by `rs-reward score`."})
    pool: str = field(default=None, metadata={"help": "The pool that was scored (to write the kept rows)."})
    output_dir: str = field(default="runs/filter", metadata={"help": "Folder; one subfolder per selection."})
    fractions: list[str] = field(
        default_factory=lambda: ["0.3"],
        metadata={
            "help": "Selections, one subfolder each: a global keep fraction (`0.3`) or per-task fractions "
            "(`caption=0.3,instruction=0.6`), e.g. `--fractions 0.3 caption=0.3,instruction=0.6`."
        },
    )
    threshold: float | None = field(
        default=None, metadata={"help": "Keep rows scoring at least this (instead of fractions)."}
    )
    caption_prompt: str = field(
        default="Describe this image.", metadata={"help": "User turn of caption rows in sft.jsonl."}
    )
    browse: bool = field(
        default=True,
        metadata={"help": "Also write the browser page `<output_dir>/browse/index.html` (`rs-reward browse`)."},
    )
    browse_max_rows: int = field(default=10, metadata={"help": "Rows per table and task on the page."})
    push_to_hub: bool = field(
        default=False,
        metadata={"help": "Push each subset as a Hub dataset repo (images embedded in parquet, the data card)."},
    )
    hub_dataset_id: str | None = field(
        default=None,
        metadata={"help": "Hub repo of the subset (`owner/name`; with several subsets, `-<subset>` is appended)."},
    )
    hub_private_repo: bool | None = field(default=None, metadata={"help": "Create the Hub repos private."})


@dataclass
class BrowseArguments(ImageRootArguments):
    """Which scores to show, and how much of them.

    Args:
        scores (`str`): a folder written by `rs-reward score`.
        compare (`str` or `None`, defaults to `None`): a second scores folder of the same pool, shown beside it.
        pool (`str` or `None`, defaults to `None`): the scored pool (default: the one in the scores' manifest).
        image_root (`str` or `None`, defaults to `None`): the pool's image root (default: the pool file's folder).
        truth (`str` or `None`, defaults to `"auto"`): SynthRS `truth.parquet`; `auto` uses one beside the pool.
        fractions (`list[str]`, defaults to `["0.3"]`): keep fractions whose cuts are drawn.
        max_rows (`int`, defaults to 10): rows per table and task.
        sample_rows (`int`, defaults to 40): rows spread over the ranks for the slider view.
        scatter_points (`int`, defaults to 400): points of each task's scatter of the two scores.
        output_dir (`str`, defaults to `"runs/browse"`): folder of `index.html` and `thumbs/`.
        screenshot (`str` or `None`, defaults to `None`): also save a PNG of the page (needs Chromium).
    """

    scores: str = field(default=None, metadata={"help": "A folder written by `rs-reward score`."})
    compare: str | None = field(default=None, metadata={"help": "A second scores folder of the same pool."})
    pool: str | None = field(default=None, metadata={"help": "The pool (default: the scores' manifest's)."})
    truth: str | None = field(default="auto", metadata={"help": "SynthRS truth.parquet; `auto`: beside the pool."})
    fractions: list[str] = field(default_factory=lambda: ["0.3"], metadata={"help": "Keep fractions to draw."})
    max_rows: int = field(default=10, metadata={"help": "Rows per table and task."})
    sample_rows: int = field(default=40, metadata={"help": "Rows spread over the ranks for the slider view."})
    scatter_points: int = field(default=400, metadata={"help": "Points of each task's scatter of two scores."})
    output_dir: str = field(default="runs/browse", metadata={"help": "Folder of index.html and thumbs/."})
    screenshot: str | None = field(default=None, metadata={"help": "Also save a PNG of the page (Chromium)."})

    def __post_init__(self):
        if not self.scores:
            raise ValueError("browse: give --scores, a folder written by `rs-reward score`")
        if min(self.max_rows, self.sample_rows, self.scatter_points) < 1:
            raise ValueError("browse: --max_rows, --sample_rows and --scatter_points must be at least 1")
        if self.truth in ("none", "None", ""):
            self.truth = None


@dataclass
class ClipArguments(ImageRootArguments, RemoteCodeArguments):
    """Data, optimisation and output of CLIP fine-tuning (the paper: batch 1024, LR 1e-5, wd 1.0, 200 warm-up, 5 epochs)."""

    model_name_or_path: str = field(
        default="tiny:clip-tiny", metadata={"help": "CLIP checkpoint (folder, Hub id or tiny: alias)."}
    )
    train_file: str = field(default=None, metadata={"help": "CSV (filepath,title) or SFT JSONL of image-text pairs."})
    output_dir: str = field(default="runs/clip", metadata={"help": "Where the fine-tuned model and processor go."})
    global_batch_size: int = field(
        default=64, metadata={"help": "Pairs per step over all processes (negatives span it)."}
    )
    learning_rate: float = field(default=1e-5, metadata={"help": "AdamW learning rate."})
    weight_decay: float = field(default=1.0, metadata={"help": "AdamW weight decay (the paper: 1.0)."})
    warmup_steps: int = field(default=200, metadata={"help": "Linear warm-up steps, then cosine decay."})
    num_train_epochs: float = field(default=5.0, metadata={"help": "Epochs over the pairs."})
    max_steps: int | None = field(default=None, metadata={"help": "Stop after this many steps."})
    seed: int = field(default=0, metadata={"help": "Seed of shuffling and initialisation."})
    logging_steps: int = field(default=20, metadata={"help": "Log the loss every this many steps."})
    push_to_hub: bool = field(default=False, metadata={"help": "Push the finished folder, card included, to the Hub."})
    hub_model_id: str | None = field(
        default=None, metadata={"help": "Hub repo (`owner/name`; default: the output folder's name, your account)."}
    )
    hub_private_repo: bool | None = field(default=None, metadata={"help": "Create the Hub repo private."})


@dataclass
class BoNArguments(ScoreModelArguments, RemoteCodeArguments):
    """What to sample, how to select, where to write."""

    eval_data: str = field(default=None, metadata={"help": "Eval rows (any layout `rs-reward eval_vlm` reads)."})
    eval_format: str = field(default="auto", metadata={"help": "canonical, vhm, lhrs, karpathy or auto."})
    truth_scenes: str | None = field(default=None, metadata={"help": "SynthRS folder: caption rows scored by fact."})
    tasks: list[str] | None = field(default=None, metadata={"help": "Tasks to keep (default: all)."})
    max_rows: int | None = field(default=None, metadata={"help": "At most this many rows per task."})
    n_list: list[int] = field(
        default_factory=lambda: [1, 2, 4, 8, 16], metadata={"help": "The N values; the largest is generated."}
    )
    temperature: float = field(default=0.95, metadata={"help": "Sampling temperature (the paper: 0.95)."})
    max_new_tokens: int = field(default=64, metadata={"help": "Tokens per candidate."})
    batch_size: int = field(default=8, metadata={"help": "Prompts per generate call (x N sequences)."})
    selectors: list[str] = field(
        default_factory=lambda: ["score_model", "clip_score", "majority_vote", "random", "oracle"],
        metadata={"help": "Selectors: score_model, clip_score, majority_vote, random, oracle."},
    )
    clip_model_name_or_path: str | None = field(default=None, metadata={"help": "CLIP / SigLIP of `clip_score`."})
    score_batch_size: int = field(default=32, metadata={"help": "Candidates per scoring forward pass."})
    repeats: int = field(default=4, metadata={"help": "Sub-sample draws averaged per N."})
    seed: int = field(default=0, metadata={"help": "Seed of sampling, sub-sampling and the random selector."})
    output_dir: str = field(default="runs/bon", metadata={"help": "Folder for candidates, scores, table and plots."})
    browse_max_rows: int = field(
        default=8, metadata={"help": "Questions per task on the page `<output_dir>/browse/index.html` (0: no page)."}
    )


@dataclass
class FoundationScriptArguments:
    publish: bool = field(
        default=False,
        metadata={"help": "Copy the trained model over the committed `tiny:qwen2-vl-synthrs` folder."},
    )
    recipe: str = field(
        default="recipes/tiny/foundation/config.yaml",
        metadata={
            "help": "Recipe named in the model card (with config_vision.yaml before it, when it starts from it)."
        },
    )
