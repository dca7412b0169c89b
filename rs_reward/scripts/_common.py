"""What every entry point shares: parsing a recipe, logging, resuming, and the end-of-run summary.

Each task module has TRL's shape: `make_parser()` (a TrlParser over its dataclasses) and `main(*dataclasses)`;
parsing happens only on the command-line path (`call_main`, used by `rs-reward <task>` and `python -m`), so code
and tests call `main` with dataclasses.
"""

from __future__ import annotations

import logging
import os
import sys


def parse_args(parser, argv: list[str] | None = None) -> tuple:
    """Parse `--config recipe.yaml` plus flag overrides with a task's `make_parser()` (TrlParser semantics: YAML
    gives defaults, flags override, unknown keys are errors), naming the recipe or the flags that are wrong."""
    import re

    argv = list(sys.argv[1:] if argv is None else argv)
    config = None
    if "--config" in argv[:-1]:
        config = argv[argv.index("--config") + 1]
        if not os.path.isfile(config):
            raise FileNotFoundError(f"config file {config!r} not found (paths are relative to the current folder)")
        check_list_fields(parser, config)
    try:
        return parser.parse_args_and_config(args=argv)
    except ValueError as error:
        unknown = re.findall(r"'--([\w.-]+)'", str(error))
        if "Unknown arguments from config" in str(error) and unknown:
            where = f"config {config!r}: unknown field(s)"
        elif "not used by the HfArgumentParser" in str(error) and unknown:
            where = "unknown flag(s)"
        else:
            raise
        raise ValueError(f"{where} {', '.join(unknown)}; `--help` lists the task's fields") from None


def check_list_fields(parser, config: str) -> None:
    """A recipe value that is one string where the field is a list (`tasks: caption,vqa`) would otherwise be taken
    letter by letter; name the field and the YAML that is meant."""
    import dataclasses

    import yaml

    with open(config) as f:
        values = yaml.safe_load(f) or {}
    for kind in parser.dataclass_types:
        for f in dataclasses.fields(kind):
            value = values.get(f.name) if isinstance(values, dict) else None
            if isinstance(value, str) and "list[" in str(f.type).lower():
                raise ValueError(
                    f"config {config!r}: {f.name} is a list; write a YAML list (`{f.name}: [a, b]`), got {value!r}"
                )


def call_main(make_parser, main, argv: list[str] | None = None) -> int:
    """A task from its command line: parse `argv` with the task's `make_parser()`, call `main(*dataclasses)`."""
    status = int(main(*parse_args(make_parser(), argv)) or 0)
    close_process_group()
    return status


def close_process_group() -> None:
    """End a launched run's process group once the task has returned, as PyTorch asks of every trainer process.

    Left to interpreter exit, gloo's worker threads are torn down with the interpreter and a process can abort
    ("terminate called without an active exception", seen in CI on a rank that finished before rank 0 had saved).
    Called on success only: after an error the other ranks may still wait in a collective, and a destroy would hang.
    """
    torch = sys.modules.get("torch")  # a task that never imported torch never started a process group
    if torch is not None and torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def run_task(task: str, make_parser, main, argv: list[str] | None = None) -> int:
    """`python -m rs_reward.scripts.<task>` (and `accelerate launch -m ...`): `call_main` as a command."""
    return run_guarded(task, lambda args: call_main(make_parser, main, args), argv)


def setup_logging(name: str) -> logging.Logger:
    """Log to stdout; under a multi-process launch only the main process (RANK 0) logs below WARNING, so a run
    prints one progress log and one summary however many processes it has."""
    main_process = int(os.environ.get("RANK", "0")) == 0
    logging.basicConfig(
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        level=logging.INFO if main_process else logging.WARNING,
        stream=sys.stdout,
    )
    return logging.getLogger(name)


def check_launch(training_args, logger: logging.Logger) -> None:
    """Refuse processes that would not train together; say when a requested FSDP or DeepSpeed is not in use.

    accelerate shards with FSDP or DeepSpeed on GPUs (and other accelerators) only. On a machine without one, a
    launch with `accelerate_configs/fsdp.yaml` runs plain DDP over gloo when the recipe says `use_cpu: true`, and
    otherwise N single-process runs that each train on everything and write into the same folder."""
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched > 1 and training_args.world_size == 1:
        raise ValueError(
            f"{launched} processes were launched but each would train alone (no GPU for this accelerate config); "
            "on CPU add --use_cpu true (DDP over gloo) or launch with accelerate_configs/cpu.yaml"
        )
    state = getattr(training_args, "distributed_state", None)
    kind = str(getattr(state, "distributed_type", ""))
    for name, variable in (("FSDP", "ACCELERATE_USE_FSDP"), ("DEEPSPEED", "ACCELERATE_USE_DEEPSPEED")):
        if os.environ.get(variable, "").lower() != "true" or name in kind:
            continue
        # transformers would still load the weights for FSDP (on rank 0 only, meta tensors elsewhere)
        os.environ[variable] = "false"
        if training_args.process_index == 0:
            logger.warning(
                "the accelerate config asks for %s, but accelerate runs %s here (%s needs GPUs): the model is not "
                "sharded, every process holds all of it",
                name,
                kind.replace("DistributedType.", "") or "one process",
                name,
            )


def checkpoint_to_resume(training_args, logger: logging.Logger) -> str | None:
    """The checkpoint a rerun of the same command continues from: `--resume_from_checkpoint` if given, else the
    newest complete `checkpoint-N` in `output_dir` (one whose `trainer_state.json`, written last, reads back), so
    a run killed while it was saving resumes from the checkpoint before instead of failing on half a folder."""
    import json
    from pathlib import Path

    if training_args.resume_from_checkpoint:
        return training_args.resume_from_checkpoint
    output_dir = Path(training_args.output_dir)
    found = sorted(
        (int(p.name.split("-")[1]), p) for p in output_dir.glob("checkpoint-*") if p.name.split("-")[1].isdigit()
    )
    for _, folder in reversed(found):
        try:
            json.loads((folder / "trainer_state.json").read_text())
        except (OSError, ValueError):
            logger.warning("skipping %s: incomplete (no readable trainer_state.json)", folder)
            continue
        logger.info("resuming from %s", folder)
        return str(folder)
    return None


TRAINING_KEYS = (
    "learning_rate",
    "num_train_epochs",
    "max_steps",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "weight_decay",
    "warmup_steps",
    "lr_scheduler_type",
    "adam_beta1",
    "adam_beta2",
    "bf16",
    "seed",
)
MODEL_KEYS = (
    "use_peft",
    "lora_r",
    "lora_alpha",
    "load_in_4bit",
    "freeze_vision_tower",
    "freeze_merger",
    "freeze_language_model",
    "freeze_score_head",
    "score_likelihood_weight",
    "score_resolve_choices",
    "min_pixels",
    "max_pixels",
)


def card_hyperparameters(training_args, model_args, *extra_training_keys: str) -> dict:
    """What a model card records of a Trainer run: the optimisation, the world size, the model switches."""
    keys = TRAINING_KEYS + extra_training_keys
    values = {k: getattr(training_args, k) for k in keys if hasattr(training_args, k)}
    values["world_size"] = training_args.world_size
    values.update({k: getattr(model_args, k) for k in MODEL_KEYS if hasattr(model_args, k)})
    return values


def take_push_request(training_args) -> bool:
    """Whether the run was asked to `--push_to_hub`; turns the Trainer's own push off (it would replace the task's
    card with TRL's generic one and push each checkpoint): the task pushes its finished folder (`push_output`)."""
    push = bool(training_args.push_to_hub)
    training_args.push_to_hub = False
    return push


def push_output(folder, args, logger: logging.Logger) -> str:
    """Push a finished output folder with its card (`rs_reward.hub.push_folder`) to `args.hub_model_id` (default:
    the folder's name under the token's account), private if `args.hub_private_repo`."""
    from pathlib import Path

    from rs_reward.hub import push_folder

    repo_id = args.hub_model_id or Path(folder).name
    repo = push_folder(folder, repo_id, private=args.hub_private_repo, token=getattr(args, "hub_token", None))
    logger.info("pushed %s to https://huggingface.co/%s", folder, repo)
    return repo


def summary_table(title: str, rows: dict) -> str:
    """A one-screen summary: a title and aligned `key: value` lines."""
    width = max((len(str(k)) for k in rows), default=0)
    lines = [title, "-" * len(title)] + [f"{str(k):<{width}}  {v}" for k, v in rows.items()]
    return "\n".join(lines)


def finish_trackers() -> None:
    """Close experiment trackers the Trainer leaves open, so their files are complete when the task returns."""
    import sys

    wandb = sys.modules.get("wandb")
    if wandb is not None and getattr(wandb, "run", None) is not None:
        wandb.finish()


DEBUG_ENV = "RS_REWARD_DEBUG"


def run_guarded(task: str, main, argv: list[str] | None = None) -> int:
    """Run a task's `main(argv)` as a command: an error is printed as one line naming the task, the error and what
    to do, with exit status 1; `--debug` (anywhere in argv) or `RS_REWARD_DEBUG=1` lets the traceback through.

    Argument errors (argparse) keep their own short usage message and status 2. Library calls of `main` raise.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    argv = [a for a in argv if a != "--debug"]
    if debug:
        return int(main(argv) or 0)
    try:
        return int(main(argv) or 0)
    except KeyboardInterrupt:
        print(f"rs-reward {task}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - the command line boundary: one line, not a traceback
        print(f"rs-reward {task}: error: {describe_error(error)}", file=sys.stderr)
        print(f"  (rerun with --debug or {DEBUG_ENV}=1 to see the traceback)", file=sys.stderr)
        return 1


def describe_error(error: BaseException) -> str:
    """One line for an exception: its message, with its type when it is not a value, runtime or file error."""
    message = " ".join(str(error).split()) or type(error).__name__
    if isinstance(error, FileNotFoundError) and error.filename and str(error.filename) not in message:
        message = f"no such file or folder: {error.filename}"
    if isinstance(error, (ValueError, RuntimeError, OSError)):  # ours and the data's: the message says it all
        return message
    return f"{type(error).__name__}: {message}"
