"""Evaluate a generator VLM on an evaluation set: scene classification and closed VQA (strict match, VQA also by
question type), multiple choice (option letter), grounding (Acc@IoU 0.5), captions (fact precision / recall /
Jaccard against the SynthRS truth when `truth_scenes` is given).

    rs-reward eval_vlm --config recipes/tiny/eval_vlm/config_synthrs.yaml
    rs-reward eval_vlm --config ... --model_name_or_path runs/demo/grpo/score_model
"""

from __future__ import annotations

from pathlib import Path


def make_parser():
    """The task's parser: TRL's, over its dataclasses (`--config recipe.yaml`, then flags)."""
    from trl import TrlParser

    from rs_reward.configs import RSModelConfig, VLMEvalArguments

    return TrlParser((VLMEvalArguments, RSModelConfig))


def main(eval_args, model_args) -> int:
    import torch

    from rs_reward.data.synthrs import load_scenes
    from rs_reward.eval.harness import evaluate_vlm, load_eval_set, write_eval_result
    from rs_reward.modeling import model_processor
    from rs_reward.modeling.loading import load_generator
    from rs_reward.report import markdown_table

    from ._common import setup_logging

    logger = setup_logging("rs_reward.eval_vlm")
    output = Path(eval_args.output_dir)
    rows, _ = load_eval_set(eval_args, output, questions=True)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    processor = model_processor(model_args, trust_remote_code=eval_args.trust_remote_code)
    model = load_generator(model_args, trainable=False, trust_remote_code=eval_args.trust_remote_code)
    scenes = load_scenes(eval_args.truth_scenes, "eval") if eval_args.truth_scenes else None
    metrics, predictions = evaluate_vlm(
        model.to(device).eval(),
        processor,
        rows,
        scenes=scenes,
        batch_size=eval_args.batch_size,
        max_new_tokens=eval_args.max_new_tokens,
    )
    table = markdown_table(
        ["task", "metric", "value", "rows"],
        [[task, k, v, m["rows"]] for task, m in metrics.items() for k, v in m.items() if k != "rows"],
    )
    write_eval_result(output, model_args.model_name_or_path, eval_args.eval_data, metrics, table, predictions)
    logger.info("\n%s", table)
    return 0


if __name__ == "__main__":
    from ._common import run_task

    raise SystemExit(run_task("eval_vlm", make_parser, main))
