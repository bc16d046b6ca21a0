"""Jain's fairness index of a workload."""

from __future__ import annotations

import torch


def jain_index(load: torch.Tensor) -> torch.Tensor:
    """J = (sum x)^2 / (n * sum x^2) over the last axis: 1 when equal, 1/n when all on one; 1 for all zero."""
    # load: [..., n] -> [...]
    load = load.to(torch.float64)
    n = load.shape[-1]
    squares = (load * load).sum(-1)  # [...]
    total = load.sum(-1)  # [...]
    return torch.where(
        squares > 0, total * total / (n * squares.clamp_min(torch.finfo(torch.float64).tiny)), torch.ones_like(total)
    )
