"""Contrastive fine-tuning of a transformers CLIP on image-text pairs, negatives gathered across processes.

    rs-reward clip --config recipes/tiny/clip/config_synthrs.yaml
    accelerate launch --config_file accelerate_configs/ddp.yaml -m rs_reward.scripts.clip --config ...

Data: a CSV of `filepath,title` (e.g. `clip.csv` of a curated subset, SkyScript/RemoteCLIP style) or canonical SFT
rows (`sft.jsonl`, caption rows), image paths relative to `image_root`.
"""

from __future__ import annotations

import math
from pathlib import Path


def make_parser():
    """The task's parser: TRL's, over its dataclasses (`--config recipe.yaml`, then flags)."""
    from trl import TrlParser

    from rs_reward.configs import ClipArguments

    return TrlParser((ClipArguments,))


def main(args) -> int:
    import torch
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from transformers import get_cosine_schedule_with_warmup

    from rs_reward.data.captions import load_caption_pairs
    from rs_reward.data.images import open_image
    from rs_reward.data.io import Rejects
    from rs_reward.hub import clip_model_card
    from rs_reward.modeling.loading import load_clip
    from rs_reward.trainers.clip import clip_embeddings, contrastive_loss

    from ._common import push_output, setup_logging, summary_table

    logger = setup_logging("rs_reward.clip")
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    set_seed(args.seed)
    rejects = Rejects()
    pairs = load_caption_pairs(args.train_file, args.image_root, rejects=rejects)
    if accelerator.is_main_process:
        rejects.write(Path(args.output_dir) / "rejects.jsonl")
    logger.info("%d caption pairs; %s", len(pairs), rejects.summary())
    model, processor = load_clip(args.model_name_or_path, trust_remote_code=args.trust_remote_code)
    world = accelerator.num_processes
    if args.global_batch_size % world:
        raise ValueError(f"global_batch_size {args.global_batch_size} is not divisible by {world} processes")
    local = args.global_batch_size // world

    def collate(rows):
        images = [open_image(p) for p, _ in rows]
        return processor(
            text=[t for _, t in rows],
            images=images,
            padding=True,
            truncation=True,
            max_length=model.config.text_config.max_position_embeddings,
            return_tensors="pt",
        )

    loader = torch.utils.data.DataLoader(
        pairs,
        batch_size=local,
        shuffle=True,
        drop_last=True,
        collate_fn=collate,
        generator=torch.Generator().manual_seed(args.seed),
    )
    steps_per_epoch = len(pairs) // args.global_batch_size
    if steps_per_epoch == 0:
        raise ValueError(f"{len(pairs)} pairs are fewer than one global batch of {args.global_batch_size}")
    total = args.max_steps or math.ceil(args.num_train_epochs * steps_per_epoch)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.learning_rate, weight_decay=args.weight_decay)
    scheduler = get_cosine_schedule_with_warmup(optimizer, min(args.warmup_steps, total // 10 or 1), total)
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)
    step, losses = 0, []
    model.train()
    while step < total:
        for batch in loader:
            unwrapped = accelerator.unwrap_model(model)
            image, text = clip_embeddings(model if not hasattr(model, "module") else model.module, batch)
            loss = contrastive_loss(image, text, unwrapped.logit_scale)
            accelerator.backward(loss)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            step += 1
            losses.append(loss.item() / world)
            if step % args.logging_steps == 0:
                logger.info(
                    "step %d/%d loss %.4f", step, total, sum(losses[-args.logging_steps :]) / args.logging_steps
                )
            if step >= total:
                break
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        accelerator.unwrap_model(model).save_pretrained(args.output_dir)
        processor.save_pretrained(args.output_dir)
        hyperparameters = {
            k: getattr(args, k)
            for k in ("global_batch_size", "learning_rate", "weight_decay", "warmup_steps", "num_train_epochs", "seed")
        }
        hyperparameters.update(steps=step, world_size=world)
        clip_model_card(
            args.output_dir,
            base_model=args.model_name_or_path,
            datasets=[args.train_file],
            hyperparameters=hyperparameters,
        )
        if args.push_to_hub:
            push_output(args.output_dir, args, logger)
        logger.info(
            "\n%s",
            summary_table(
                "CLIP fine-tuning",
                {
                    "output": args.output_dir,
                    "pairs": len(pairs),
                    "steps": step,
                    "global batch": args.global_batch_size,
                    "processes": world,
                    "final loss": round(sum(losses[-10:]) / len(losses[-10:]), 4),
                },
            ),
        )
    return 0


if __name__ == "__main__":
    from ._common import run_task

    raise SystemExit(run_task("clip", make_parser, main))
