"""Baselines with the same observe / reputation / select interface as MWSL (docs/reputation.md):
random, round-robin, most-familiar, Beta reputation (Josang) and plain subjective logic."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from reputation.evidence import EvidenceStore
from reputation.inputs import FloatLike, RatingBatch, as_time
from reputation.mwsl import FusedOpinions, FusedReputation, fuse
from reputation.opinions import local_opinion
from reputation.selection import Selector, choose


class _CountingSelector(Selector):
    """Keeps an EvidenceStore (counts, sums) so that every baseline validates and records ratings alike."""

    def __init__(
        self,
        n_producers: int,
        n_esps: int,
        z: float = 1.0,
        period: float = 1.0,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float64,
    ) -> None:
        self.n_producers = n_producers
        self.n_esps = n_esps
        self.evidence = EvidenceStore(n_producers, n_esps, z, period, device, dtype)
        self.device = self.evidence.device
        self.dtype = dtype

    def _add(self, batch: RatingBatch) -> None:
        self.evidence.add(batch)


class RandomSelection(_CountingSelector):
    """Uniformly random ESP among those allowed by the mask; the strategy argument is ignored."""

    def reputation(self, now: FloatLike) -> torch.Tensor:
        """All ESPs equal: 0.5 everywhere, [P, E]."""
        as_time("now", now)
        return torch.full((self.n_producers, self.n_esps), 0.5, device=self.device, dtype=self.dtype)

    def _choose(
        self,
        rows: torch.Tensor,
        now: float,
        strategy: str,
        temperature: float,
        mask: torch.Tensor | None,
        generator: torch.Generator | None,
    ) -> torch.Tensor:
        scores = torch.zeros(rows.numel(), self.n_esps, dtype=torch.float64, device=self.device)  # [B, E]
        return choose(scores, "softmax", 1.0, mask, generator)


class RoundRobin(_CountingSelector):
    """Each producer cycles through the ESPs in index order, skipping masked ones; the strategy is ignored."""

    def __init__(
        self, n_producers: int, n_esps: int, device: torch.device | str | None = None, dtype: torch.dtype = torch.float64
    ) -> None:
        super().__init__(n_producers, n_esps, device=device, dtype=dtype)
        self.next_esp = torch.zeros(n_producers, dtype=torch.int64, device=self.device)  # [P] whose turn it is

    def reputation(self, now: FloatLike) -> torch.Tensor:
        """1 for each producer's next ESP in turn, 0 for the others, [P, E]."""
        as_time("now", now)
        esps = torch.arange(self.n_esps, device=self.device)  # [E]
        return (esps[None, :] == self.next_esp[:, None]).to(self.dtype)

    def _choose(
        self,
        rows: torch.Tensor,
        now: float,
        strategy: str,
        temperature: float,
        mask: torch.Tensor | None,
        generator: torch.Generator | None,
    ) -> torch.Tensor:
        # rows: [B]. The k-th occurrence of a producer in one call takes its k-th allowed ESP in turn.
        n_e = self.n_esps
        esps = torch.arange(n_e, device=self.device)  # [E]
        distance = (esps[None, :] - self.next_esp[rows][:, None]) % n_e  # [B, E] steps from the turn
        if mask is not None:
            distance = distance.masked_fill(~mask, n_e)
        order = distance.argsort(dim=1, stable=True)  # [B, E] ESPs in turn order, masked ones last
        allowed = (distance < n_e).sum(1)  # [B]
        sorted_rows, perm = rows.sort(stable=True)  # [B]
        counts = torch.bincount(rows, minlength=self.n_producers)  # [P]
        starts = counts.cumsum(0) - counts  # [P]
        occurrence = torch.empty_like(rows)
        occurrence[perm] = torch.arange(rows.numel(), device=self.device) - starts[sorted_rows]  # [B]
        picked = order.gather(1, (occurrence % allowed)[:, None]).squeeze(1)  # [B]
        last = occurrence == counts[rows] - 1  # [B] one per producer
        self.next_esp[rows[last]] = (picked[last] + 1) % n_e
        return picked


class MostFamiliar(_CountingSelector):
    """The paper's "traditional" method: the ESP with the most past interactions (argmax by default).

    scope "own": the producer's own interactions N_ij; "global": all producers' interactions N_.j
    (the most popular ESP on the ledger).
    """

    default_strategy = "argmax"

    def __init__(
        self,
        n_producers: int,
        n_esps: int,
        scope: str = "own",
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float64,
    ) -> None:
        if scope not in ("own", "global"):
            raise ValueError(f"scope must be 'own' or 'global', got {scope!r}")
        super().__init__(n_producers, n_esps, device=device, dtype=dtype)
        self.scope = scope

    def reputation(self, now: FloatLike) -> torch.Tensor:
        """Share of interactions with each ESP, [P, E] (uniform before any interaction)."""
        as_time("now", now)
        count = self.evidence.count  # [P, E]
        if self.scope == "global":
            count = count.sum(0, keepdim=True).expand_as(count)  # [P, E]
        total = count.sum(1, keepdim=True)  # [P, 1]
        return torch.where(total > 0, count / total.clamp_min(1), torch.full_like(count, 1.0 / self.n_esps))


@dataclass(frozen=True)
class BetaConfig:
    """Parameters of the Beta reputation system (Josang and Ismail)."""

    z: float = 0.9
    """Forgetting factor per period (1 = no forgetting); same freshness as MWSL by default."""
    period: float = 1.0
    """Length of one period in the unit of the rating times."""
    pooled: bool = True
    """True: every producer sees the ESP's ratings from all producers (r, s summed over raters, the
    centralized system); False: each producer only its own ratings."""

    def __post_init__(self) -> None:
        if not 0 < self.z <= 1:
            raise ValueError(f"BetaConfig.z must be in (0, 1], got {self.z!r}")
        if not (math.isfinite(self.period) and self.period > 0):
            raise ValueError(f"BetaConfig.period must be positive, got {self.period!r}")


class BetaReputation(_CountingSelector):
    """E = (r + 1) / (r + s + 2) with freshness-weighted positive r and negative s counts."""

    def __init__(
        self,
        config: BetaConfig,
        n_producers: int,
        n_esps: int,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float64,
    ) -> None:
        super().__init__(n_producers, n_esps, config.z, config.period, device, dtype)
        self.config = config

    def reputation(self, now: FloatLike) -> torch.Tensor:
        """[P, E] expected probability of a positive interaction."""
        r, s = self.evidence.freshness_sums(as_time("now", now))  # [P, E] each
        if self.config.pooled:
            r, s = r.sum(0, keepdim=True).expand_as(r), s.sum(0, keepdim=True).expand_as(s)  # [P, E]
        return (r + 1) / (r + s + 2)


@dataclass(frozen=True)
class PlainSLConfig:
    """Plain subjective logic: unit evidence weights, no freshness, recommenders weighted equally."""

    base_rate: float = 0.5
    """a in T = b + a * u."""
    prior_weight: float = 2.0
    """W in u = W / (r + s + W)."""

    def __post_init__(self) -> None:
        if not 0 <= self.base_rate <= 1:
            raise ValueError(f"PlainSLConfig.base_rate must be in [0, 1], got {self.base_rate!r}")
        if not (math.isfinite(self.prior_weight) and self.prior_weight >= 0):
            raise ValueError(f"PlainSLConfig.prior_weight must be >= 0, got {self.prior_weight!r}")


class PlainSL(FusedReputation, _CountingSelector):
    """Subjective logic without MWSL's weights: alpha = r, beta = s (kappa = eta, no decay), and the
    recommended opinion is the plain average of the other raters' local opinions."""

    config: PlainSLConfig

    def __init__(
        self,
        config: PlainSLConfig,
        n_producers: int,
        n_esps: int,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float64,
    ) -> None:
        super().__init__(n_producers, n_esps, 1.0, 1.0, device, dtype)
        self.config = config

    def fused(self, now: FloatLike) -> FusedOpinions:
        """Local and final opinions on the rated pairs, and the per-ESP opinion of newcomers."""
        pairs = self.evidence.rated_pairs()
        r, s, _, _ = self.evidence.gather(pairs, as_time("now", now))  # [R] each (z = 1: plain counts)
        local = local_opinion(r, s, prior_weight=self.config.prior_weight)  # 3 x [R]
        return fuse(local, torch.ones_like(r), pairs, self.n_esps)  # equal weights
