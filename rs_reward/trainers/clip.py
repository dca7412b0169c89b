"""Contrastive (CLIP) fine-tuning on image-text pairs, with negatives across the global batch.

The original ScoreRS CLIP training contrasted each sample only with its process's local batch. Here every
process gathers the embeddings of all processes (with gradients flowing to its own rows), so the loss over K
processes equals the single-process loss on the same global batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """All processes' rows, in process order; the local rows keep their gradient."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return tensor
    gathered = [torch.zeros_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, tensor.contiguous())
    gathered[dist.get_rank()] = tensor
    return torch.cat(gathered)


def contrastive_loss(image_embeds: torch.Tensor, text_embeds: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE over the global batch (embeddings L2-normalised here)."""
    import torch.distributed as dist

    image = gather_with_grad(F.normalize(image_embeds, dim=-1))
    text = gather_with_grad(F.normalize(text_embeds, dim=-1))
    logits = logit_scale.exp() * image @ text.T
    labels = torch.arange(len(image), device=image.device)
    loss = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2
    world = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
    # Each process back-propagates the same global loss through its own rows; DDP averages gradients over
    # processes, so scale by the world size to get the gradient of the global loss.
    return loss * world


def clip_embeddings(model, batch) -> tuple[torch.Tensor, torch.Tensor]:
    def features(output):
        return output if isinstance(output, torch.Tensor) else output.pooler_output

    image = features(model.get_image_features(pixel_values=batch["pixel_values"]))
    text = features(model.get_text_features(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]))
    return image, text
