"""Pre-train the SynthRS foundation: a tiny Qwen2-VL that perceives the world (the demo's stand-in for a
pretrained Qwen2-VL).

    rs-reward foundation --config recipes/tiny/foundation/config_vision.yaml   # make foundation: the vision phase,
    rs-reward foundation --config recipes/tiny/foundation/config.yaml          # then the conversations,
    rs-reward foundation --config recipes/tiny/foundation/config_longer.yaml   # then 4 continuations (Makefile)
    rs-reward foundation --config recipes/tiny/foundation/config.yaml --max_minutes 30   # stop, rerun resumes

The result, committed at `rs_reward/modeling/foundation/qwen2-vl-synthrs` (`tiny:qwen2-vl-synthrs`), is what
`make demo` starts from; `--publish true` copies the trained model there with its model card.
"""

from __future__ import annotations


def make_parser():
    """The task's parser: TRL's, over its dataclasses (`--config recipe.yaml`, then flags)."""
    from trl import TrlParser

    from rs_reward.configs import FoundationScriptArguments
    from rs_reward.foundation import FoundationConfig

    return TrlParser((FoundationConfig, FoundationScriptArguments))


def main(config, script_args) -> int:
    import shutil
    from pathlib import Path

    from rs_reward.foundation import train_foundation
    from rs_reward.hub import code_version, foundation_model_card
    from rs_reward.modeling.tiny import FOUNDATION_DIR

    from ._common import setup_logging, summary_table

    logger = setup_logging("rs_reward.foundation")
    result = train_foundation(config)
    if "perception" not in result:
        logger.info("stopped at step %d; rerun the same command to resume", result["stopped_at"])
        return 0
    model_dir = Path(config.output_dir) / "model"
    foundation_model_card(model_dir, recipe=script_args.recipe, commit=code_version(), result=result)
    if script_args.publish:
        shutil.rmtree(FOUNDATION_DIR, ignore_errors=True)
        shutil.copytree(model_dir, FOUNDATION_DIR)
    rows = {
        f"{qtype} accuracy (chance)": f"{m['accuracy']:.3f} ({m['chance']:.2f})"
        for qtype, m in result["perception"].items()
    }
    rows.update({"steps": result["steps"], "minutes": result["minutes"], "model": str(model_dir)})
    if script_args.publish:
        rows["published to"] = str(FOUNDATION_DIR)
    logger.info("\n%s", summary_table("SynthRS foundation", rows))
    return 0


if __name__ == "__main__":
    from ._common import run_task

    raise SystemExit(run_task("foundation", make_parser, main))
