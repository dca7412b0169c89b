"""Helpers shared by the tests (import as `from helpers import ...`; pytest puts this folder on the path)."""

from __future__ import annotations

from collections.abc import Mapping

import torch


def snapshot(model) -> dict[str, torch.Tensor]:
    """A copy of every parameter of `model`, to compare with after training."""
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def changed_parameters(before: Mapping[str, torch.Tensor], after: Mapping[str, torch.Tensor]) -> set[str]:
    """Names of the tensors that differ between two state dicts (or snapshots); a name missing from either counts
    as changed."""
    names = set(before) | set(after)
    return {
        name
        for name in names
        if name not in before or name not in after or not torch.equal(before[name].detach(), after[name].detach())
    }
