"""Per-(producer, ESP) aggregated evidence as dense [P, E] tensors of freshness-weighted sums.

The freshness of a rating at time t_k seen at time `now` is theta_k = z ** ((now - t_k) / period);
negative ratings may fade at their own rate z_negative (by default z: both kinds fade alike). It
factorizes as z ** ((now - t_ref) / period) * z ** ((t_ref - t_k) / period), so the store keeps
sums of z ** ((t_ref - t_k) / period) relative to a reference time t_ref and rescales them once per
query. A rating later than t_ref enters with a weight above 1; before that weight could exceed
e ** MAX_LOG_WEIGHT the sums are rescaled to the new latest time (one in-place pass), so nothing
overflows over long time spans and very old evidence underflows to 0, as it should. Besides the
sums, the store counts every rating and every positive one without decay (the pair's record).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from reputation.inputs import RatingBatch

MAX_LOG_WEIGHT = 30.0
"""Largest log of a stored weight before the sums are rescaled (e**30 ~ 1e13: safe in float32 too)."""


@dataclass(frozen=True)
class RatedPairs:
    """The R (producer, ESP) pairs with at least one rating, in row-major order."""

    flat: torch.Tensor
    """[R] int64 index into the flattened [P * E] grid."""
    producer: torch.Tensor
    """[R] int64 producer of each pair."""
    esp: torch.Tensor
    """[R] int64 ESP of each pair."""


class EvidenceStore:
    """Freshness-weighted positive/negative sums, counts and last-interaction times, each [P, E]."""

    def __init__(
        self,
        n_producers: int,
        n_esps: int,
        z: float,
        period: float,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float64,
        z_negative: float | None = None,
    ) -> None:
        if n_producers < 1 or n_esps < 1:
            raise ValueError(f"n_producers and n_esps must be >= 1, got {n_producers} and {n_esps}")
        self.n_producers = n_producers
        self.n_esps = n_esps
        self.log_z_per_period = math.log(z) / period  # theta = exp(log_z_per_period * age), <= 0
        # Negative ratings may fade at their own rate (z_negative); None: as the positive ones.
        self.log_z_negative = self.log_z_per_period if z_negative is None else math.log(z_negative) / period
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.dtype = dtype
        shape = (n_producers, n_esps)
        self.pos = torch.zeros(shape, device=self.device, dtype=dtype)  # [P, E] sum theta_k(t_ref), positive
        self.neg = torch.zeros(shape, device=self.device, dtype=dtype)  # [P, E] sum theta_k(t_ref), negative
        self.count = torch.zeros(shape, device=self.device, dtype=dtype)  # [P, E] N: number of ratings
        self.positive_count = torch.zeros(shape, device=self.device, dtype=dtype)  # [P, E] N+: positive ratings
        # Times stay float64 whatever `dtype` is: wall-clock seconds (~1.7e9) do not fit float32.
        self.last = torch.full(shape, -math.inf, device=self.device, dtype=torch.float64)  # [P, E]
        self.score: torch.Tensor | None = None  # [P, E] sum theta_k(t_ref) * score_k, allocated on first score
        self.scored: torch.Tensor | None = None  # [P, E] sum theta_k(t_ref) over scored ratings
        self.t_ref: float | None = None
        self._rated: RatedPairs | None = None  # cache of rated_pairs(), dropped by add()

    def _sums(self) -> list[tuple[torch.Tensor, float]]:
        """Every decayed sum with its log decay per unit of time."""
        pairs = [(self.pos, self.log_z_per_period), (self.neg, self.log_z_negative)]
        pairs += [(s, self.log_z_per_period) for s in (self.score, self.scored) if s is not None]
        return pairs

    def add(self, batch: RatingBatch) -> None:
        """Accumulate a validated batch of B ratings (vectorized scatter-add, no loop over ratings)."""
        if batch.t.numel() == 0:
            return
        t_max = float(batch.t.max())
        fastest = min(self.log_z_per_period, self.log_z_negative)  # the largest weight a late rating gets
        if self.t_ref is None:
            self.t_ref = t_max
        elif -fastest * (t_max - self.t_ref) > MAX_LOG_WEIGHT:
            for sums, log_z in self._sums():
                sums.mul_(math.exp(log_z * (t_max - self.t_ref)))
            self.t_ref = t_max
        flat = batch.producer * self.n_esps + batch.esp  # [B] index into the flattened [P * E]
        age = self.t_ref - batch.t  # [B]
        theta = torch.exp(self.log_z_per_period * age).to(self.dtype)  # [B]
        theta_negative = torch.exp(self.log_z_negative * age).to(self.dtype)  # [B]
        positive = batch.positive.to(self.dtype)  # [B]
        self.pos.view(-1).index_add_(0, flat, theta * positive)
        self.neg.view(-1).index_add_(0, flat, theta_negative * (1 - positive))
        self.count.view(-1).index_add_(0, flat, torch.ones_like(theta))
        self.positive_count.view(-1).index_add_(0, flat, positive)
        if batch.score is not None:
            if self.score is None or self.scored is None:
                self.score, self.scored = torch.zeros_like(self.pos), torch.zeros_like(self.pos)
            score, scored = self.score, self.scored
            score.view(-1).index_add_(0, flat, theta * batch.score.to(self.dtype))
            scored.view(-1).index_add_(0, flat, theta)
        self.last.view(-1).scatter_reduce_(0, flat, batch.t, reduce="amax")
        self._rated = None

    def rated_pairs(self) -> RatedPairs:
        """The pairs with N > 0 (cached until the next add)."""
        if self._rated is None:
            flat = (self.count.view(-1) > 0).nonzero().squeeze(1)  # [R]
            self._rated = RatedPairs(flat=flat, producer=flat // self.n_esps, esp=flat % self.n_esps)
        return self._rated

    def decay(self, now: float, negative: bool = False) -> float:
        """The factor z ** ((now - t_ref) / period) that turns stored sums into freshness sums at `now`
        (z_negative for the negative sums with `negative`)."""
        if self.t_ref is None:
            return 0.0
        return math.exp((self.log_z_negative if negative else self.log_z_per_period) * (now - self.t_ref))

    def freshness_sums(self, now: float) -> tuple[torch.Tensor, torch.Tensor]:
        """(sum of theta_k over positive ratings, over negative ratings) at `now`, each [P, E]."""
        return self.pos * self.decay(now), self.neg * self.decay(now, negative=True)

    def gather(self, pairs: RatedPairs, now: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(positive sum, negative sum, N, TL) at `now` for the rated pairs, each [R]."""
        pos = self.pos.view(-1)[pairs.flat] * self.decay(now)  # [R]
        neg = self.neg.view(-1)[pairs.flat] * self.decay(now, negative=True)  # [R]
        count = self.count.view(-1)[pairs.flat]  # [R]
        timeliness = torch.exp(self.log_z_per_period * (now - self.last.view(-1)[pairs.flat])).to(self.dtype)  # [R]
        return pos, neg, count, timeliness

    def mean_score(self) -> torch.Tensor:
        """Freshness-weighted mean score, [P, E]; NaN where no scored rating (the decay factor cancels)."""
        if self.score is None or self.scored is None:
            return torch.full_like(self.pos, math.nan)
        return torch.where(
            self.scored > 0, self.score / self.scored.clamp_min(torch.finfo(self.dtype).tiny), torch.full_like(self.score, math.nan)
        )
