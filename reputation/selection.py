"""ESP selection from a [P, E] score tensor (argmax or softmax, optionally masked), and the
common observe / reputation / select interface that MWSL and every baseline share.

The names of the rules live here, once: `SelectionStrategy` (how a selector picks from its scores)
and `Selection` (which selector picks: reputation with either strategy, or a baseline).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from enum import StrEnum

import torch

from reputation.inputs import (
    BoolLike,
    FloatLike,
    IndexLike,
    Rating,
    RatingBatch,
    as_index,
    as_time,
    check_strategy,
    make_batch,
)


class SelectionStrategy(StrEnum):
    """How a selector picks one ESP from its scores."""

    SOFTMAX = "softmax"
    """Sample softmax(scores / temperature)."""
    ARGMAX = "argmax"
    """The highest score (ties: the lowest index)."""


class Selection(StrEnum):
    """Which rule picks the ESPs: MWSL reputation with a strategy, or a baseline (`reputation.baselines`)."""

    SOFTMAX = SelectionStrategy.SOFTMAX.value
    ARGMAX = SelectionStrategy.ARGMAX.value
    RANDOM = "random"
    FAMILIAR = "familiar"
    ROUND_ROBIN = "round-robin"
    BETA = "beta"
    """Beta reputation (pooled, freshness-weighted), softmax over it."""
    PLAIN_SL = "plain-sl"
    """Plain subjective logic (unit weights, no decay, plain averaging of recommendations), softmax over it."""

    @property
    def strategy(self) -> SelectionStrategy | None:
        """The strategy over reputation scores, None for a baseline (which has its own rule)."""
        return SelectionStrategy(self.value) if self.value in tuple(SelectionStrategy) else None


def check_mask(mask: torch.Tensor | None, batch: int, n_esps: int, device: torch.device) -> torch.Tensor | None:
    """A [B, E] bool mask (True = the ESP can serve now) from None, [E] or [B, E]; ValueError otherwise."""
    if mask is None:
        return None
    mask = torch.as_tensor(mask, device=device)
    if mask.dtype != torch.bool:
        raise ValueError(f"mask must be a bool tensor, got {mask.dtype}")
    if mask.dim() == 1:
        mask = mask.unsqueeze(0)
    if mask.dim() != 2 or mask.shape[1] != n_esps or mask.shape[0] not in (1, batch):
        raise ValueError(f"mask must have shape [{n_esps}] or [{batch}, {n_esps}], got {tuple(mask.shape)}")
    mask = mask.expand(batch, n_esps)
    if batch and not bool(mask.any(1).all()):
        raise ValueError("mask leaves some producer no ESP to select")
    return mask


def choose(
    scores: torch.Tensor, strategy: str, temperature: float, mask: torch.Tensor | None, generator: torch.Generator | None
) -> torch.Tensor:
    """One ESP per row: argmax of the scores (ties: lowest index) or a sample of softmax(scores / temperature)."""
    # scores: [B, E]; mask: [B, E] bool or None -> [B] int64
    check_strategy(strategy, temperature)
    if mask is not None:
        scores = scores.masked_fill(~mask, -math.inf)
    if strategy == SelectionStrategy.ARGMAX:
        return scores.argmax(1)
    probs = torch.softmax(scores.to(torch.float64) / temperature, dim=1)  # [B, E]
    return torch.multinomial(probs, 1, generator=generator).squeeze(1)


class Selector:
    """observe / reputation / select shared by MWSL and the baselines.

    Subclasses set `n_producers`, `n_esps`, `device`, `dtype` and implement `_add(batch)` and
    `reputation(now)`; selectors whose rule is not a function of scores override `_choose`.
    """

    n_producers: int
    n_esps: int
    device: torch.device
    dtype: torch.dtype
    default_strategy: str = SelectionStrategy.SOFTMAX

    def observe(
        self, producer: IndexLike, esp: IndexLike, positive: BoolLike, t: FloatLike, score: FloatLike | None = None
    ) -> None:
        """Record ratings: ints for one rating, or 1-D tensors (scalars broadcast) for a batch."""
        self._add(make_batch(producer, esp, positive, t, score, self.n_producers, self.n_esps, self.device))

    def observe_records(self, records: Iterable[Rating]) -> None:
        """Record plain `Rating` records (e.g. adapted from on-chain `Rated` events) as one batch."""
        rows = list(records)
        if not rows:
            return
        scores = [r.score for r in rows]
        if any(s is None for s in scores) and not all(s is None for s in scores):
            raise ValueError("score must be given for all records of a batch or for none")
        self.observe(
            torch.tensor([r.producer for r in rows]),
            torch.tensor([r.esp for r in rows]),
            torch.tensor([bool(r.positive) for r in rows]),
            torch.tensor([float(r.t) for r in rows], dtype=torch.float64),
            None if scores[0] is None else torch.tensor(scores, dtype=torch.float64),
        )

    def _add(self, batch: RatingBatch) -> None:
        raise NotImplementedError

    def reputation(self, now: FloatLike) -> torch.Tensor:
        """[P, E] score of every ESP for every producer (higher is better)."""
        raise NotImplementedError

    def select(
        self,
        producers: IndexLike,
        now: FloatLike,
        strategy: str | None = None,
        temperature: float = 1.0,
        mask: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> int | torch.Tensor:
        """Pick one ESP for each producer: an int for an int, a [B] int64 tensor for a 1-D tensor.

        strategy: a `SelectionStrategy` (or its value): "softmax" (sample softmax(T / temperature)) or
        "argmax"; None means the selector's default ("softmax" for reputation-based ones). mask: [E] or [B, E] bool, True
        where the ESP can serve now.
        """
        strategy = self.default_strategy if strategy is None else strategy
        check_strategy(strategy, temperature)
        scalar = isinstance(producers, int) and not isinstance(producers, bool)
        rows = as_index("producers", producers, self.n_producers, self.device)  # [B]
        now_f = as_time("now", now)
        valid = check_mask(mask, rows.numel(), self.n_esps, self.device)
        picked = self._choose(rows, now_f, strategy, temperature, valid, generator)  # [B]
        return int(picked[0]) if scalar else picked

    def _choose(
        self,
        rows: torch.Tensor,
        now: float,
        strategy: str,
        temperature: float,
        mask: torch.Tensor | None,
        generator: torch.Generator | None,
    ) -> torch.Tensor:
        return choose(self.reputation(now)[rows], strategy, temperature, mask, generator)
