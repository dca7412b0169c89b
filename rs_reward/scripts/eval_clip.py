"""Evaluate a CLIP / SigLIP: zero-shot scene classification with the paper's prompt templates (an ImageFolder
eval set) or image-text retrieval R@1/5/10 (a caption set).

    rs-reward eval_clip --config recipes/tiny/eval_clip/config_synthrs.yaml
    rs-reward eval_clip --config ... --eval_data runs/demo/synthrs/eval/dataset_synthrs.json     # retrieval
"""

from __future__ import annotations

from pathlib import Path


def make_parser():
    """The task's parser: TRL's, over its dataclasses (`--config recipe.yaml`, then flags)."""
    from trl import TrlParser

    from rs_reward.configs import ClipEvalArguments

    return TrlParser((ClipEvalArguments,))


def main(eval_args) -> int:
    import torch

    from rs_reward.eval.harness import clip_retrieval, clip_zero_shot, load_eval_set, write_eval_result
    from rs_reward.modeling.loading import load_clip
    from rs_reward.report import markdown_table

    from ._common import setup_logging

    logger = setup_logging("rs_reward.eval_clip")
    output = Path(eval_args.output_dir)
    rows, class_names = load_eval_set(eval_args, output, questions=False)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model, processor = load_clip(
        eval_args.model_name_or_path, dtype=eval_args.dtype, trust_remote_code=eval_args.trust_remote_code
    )
    model = model.to(device).eval()
    if class_names:
        metrics = clip_zero_shot(model, processor, rows, class_names)
    else:
        metrics = clip_retrieval(model, processor, rows)
    table = markdown_table(["metric", "value"], [[k, v] for k, v in metrics.items()])
    write_eval_result(output, eval_args.model_name_or_path, eval_args.eval_data, metrics, table)
    logger.info("\n%s", table)
    return 0


if __name__ == "__main__":
    from ._common import run_task

    raise SystemExit(run_task("eval_clip", make_parser, main))
