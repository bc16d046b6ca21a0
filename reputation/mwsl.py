"""Multi-weight subjective logic (MWSL): docs/reputation.md on dense [producers, ESPs] tensors."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

import torch

from reputation.evidence import EvidenceStore, RatedPairs
from reputation.inputs import FloatLike, RatingBatch, as_time
from reputation.opinions import Opinion, consensus, expectation, local_opinion, recommended_by_column
from reputation.selection import Selector


@dataclass(frozen=True)
class MWSLConfig:
    """Parameters of MWSL (defaults from docs/reputation.md)."""

    base_rate: float = 0.5
    """a: prior probability used in the expectation T = b + a * u."""
    kappa: float = 0.4
    """Weight of positive interactions; kappa + eta = 1 and kappa < eta (negatives weigh more)."""
    eta: float = 0.6
    """Weight of negative interactions."""
    z: float = 0.9
    """Freshness decay per period, 0 < z <= 1: a rating of age Δt weighs z ** (Δt / period)."""
    z_negative: float | None = None
    """Freshness decay per period of negative ratings; None: z (both kinds fade alike)."""
    base_rate_from_record: bool = False
    """True: ESP j's base rate is its record, a_j = (N+_j + a W) / (N_j + W) over every producer's
    ratings of j, undecayed; what decay pulls a reputation back to is then the ESP's record, not `a`."""
    period: float = 1.0
    """Length of one period in the unit of the times given to observe (1 simulation period; seconds for wall clock)."""
    prior_weight: float = 2.0
    """W in u = W / (alpha + beta + W) when uncertainty == "evidence"."""
    uncertainty: str = "evidence"
    """"evidence": u from the amount of evidence; "link": u = 1 - link_quality (the original paper)."""
    link_quality: float = 0.9
    """q in u = 1 - q for uncertainty == "link" (probability that a rating's link is reliable)."""
    delta1: float = 0.6
    """Weight of familiarity IF_yj = N_yj / mean_k N_yk in a recommender's weight."""
    delta2: float = 0.4
    """Weight of timeliness TL_yj = z ** ((now - last_yj) / period) in a recommender's weight."""

    def __post_init__(self) -> None:
        checks = {
            "base_rate": 0 <= self.base_rate <= 1,
            "kappa": 0 < self.kappa < self.eta,
            "eta": 0 < self.eta < 1 and math.isclose(self.kappa + self.eta, 1.0, abs_tol=1e-9),
            "z": 0 < self.z <= 1,
            "z_negative": self.z_negative is None or 0 < self.z_negative <= 1,
            "period": math.isfinite(self.period) and self.period > 0,
            "prior_weight": math.isfinite(self.prior_weight) and self.prior_weight >= 0,
            "uncertainty": self.uncertainty in ("evidence", "link"),
            "link_quality": 0 <= self.link_quality <= 1,
            "delta1": self.delta1 >= 0,
            "delta2": self.delta2 >= 0 and self.delta1 + self.delta2 > 0,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(
                    f"MWSLConfig.{name} is invalid ({getattr(self, name)!r}): see docs/reputation.md "
                    "(kappa + eta = 1, kappa < eta, 0 < z <= 1, 0 < z_negative <= 1, period > 0, uncertainty evidence|link)"
                )


def densify(column: torch.Tensor, pairs: RatedPairs, rated: torch.Tensor, n_producers: int) -> torch.Tensor:
    """[P, E] grid holding `rated` at the rated pairs and, elsewhere, the per-ESP `column` value."""
    # column: [E]; rated: [R] -> [P, E]
    grid = column.expand(n_producers, column.shape[0]).contiguous()  # [P, E]
    grid.view(-1)[pairs.flat] = rated
    return grid


@dataclass(frozen=True)
class FusedOpinions:
    """Opinions on the rated pairs and per ESP for producers without evidence of their own."""

    pairs: RatedPairs
    """The R rated (producer, ESP) pairs."""
    local: Opinion
    """3 x [R] local opinions of the rated pairs (unrated pairs are vacuous)."""
    weights: torch.Tensor
    """[R] unnormalized recommendation weight of each rated pair's producer for that ESP."""
    rated: Opinion
    """3 x [R] final opinions of the rated pairs: consensus of local and leave-own-out recommended."""
    column: Opinion
    """3 x [E] final opinion of a producer with no evidence about the ESP: the recommended opinion."""


def fuse(local: Opinion, weights: torch.Tensor, pairs: RatedPairs, n_esps: int) -> FusedOpinions:
    """Consensus of each rated pair's local opinion with the recommended opinion of the other raters."""
    # local: 3 x [R]; weights: [R]
    recommended_rated, recommended_col = recommended_by_column(local, weights, pairs.esp, n_esps)  # 3 x [R], 3 x [E]
    # A producer with no evidence about j has a vacuous local opinion, whose consensus with R is R itself.
    return FusedOpinions(
        pairs=pairs, local=local, weights=weights, rated=consensus(local, recommended_rated), column=recommended_col
    )


class _HasBaseRate(Protocol):
    @property
    def base_rate(self) -> float: ...


class FusedReputation:
    """Opinions and reputations of a selector that fuses local and recommended opinions.

    Subclasses provide `fused(now)`, `config.base_rate`, `n_producers`, `n_esps`, `device` and
    `dtype` (MWSL and plain SL); they may override `base_rates()`.
    """

    config: _HasBaseRate
    n_producers: int
    n_esps: int
    device: torch.device
    dtype: torch.dtype

    def fused(self, now: FloatLike) -> FusedOpinions:
        raise NotImplementedError

    def base_rates(self) -> torch.Tensor:
        """The base rate a_j of every ESP, [E]: `config.base_rate` for all."""
        return torch.full((self.n_esps,), self.config.base_rate, dtype=self.dtype, device=self.device)

    def opinions(self, now: FloatLike) -> Opinion:
        """Final opinions (b, d, u) of every producer about every ESP, each [P, E]."""
        f = self.fused(now)
        b, d, u = (densify(col, f.pairs, x, self.n_producers) for col, x in zip(f.column, f.rated, strict=True))
        return b, d, u

    def reputation(self, now: FloatLike) -> torch.Tensor:
        """T_ij = b + a_j * u, [P, E]."""
        f = self.fused(now)
        a = self.base_rates()  # [E]
        return densify(expectation(f.column, a), f.pairs, expectation(f.rated, a[f.pairs.esp]), self.n_producers)


class MWSL(FusedReputation, Selector):
    """Reputation of every ESP for every producer by multi-weight subjective logic.

    State: an EvidenceStore of [P, E] freshness-weighted sums. Every query recomputes all P x E
    opinions: the R rated pairs are gathered and combined with O(R + E) vector operations (column
    sums minus the own term), and the result is written into the [P, E] grid once.
    """

    config: MWSLConfig

    def __init__(
        self,
        config: MWSLConfig,
        n_producers: int,
        n_esps: int,
        device: torch.device | str | None = None,
        dtype: torch.dtype = torch.float64,
    ) -> None:
        self.config = config
        self.n_producers = n_producers
        self.n_esps = n_esps
        self.evidence = EvidenceStore(n_producers, n_esps, config.z, config.period, device, dtype, config.z_negative)
        self.device = self.evidence.device
        self.dtype = dtype

    def _add(self, batch: RatingBatch) -> None:
        self.evidence.add(batch)

    def base_rates(self) -> torch.Tensor:
        """a_j, [E]: `config.base_rate`, or with `base_rate_from_record` each ESP's record
        (N+_j + a W) / (N_j + W), its positive and all ratings counted over every producer, undecayed."""
        c = self.config
        if not c.base_rate_from_record:
            return super().base_rates()
        positive, total = self.evidence.positive_count.sum(0), self.evidence.count.sum(0)  # [E] each
        prior = torch.full_like(total, c.base_rate)
        if c.prior_weight == 0:  # no prior: the bare record, `a` where there is none
            return torch.where(total > 0, positive / total.clamp_min(1), prior)
        return (positive + c.base_rate * c.prior_weight) / (total + c.prior_weight)

    def fused(self, now: FloatLike) -> FusedOpinions:
        """Local, weights and final opinions on the rated pairs, and the per-ESP opinion of newcomers."""
        now_f = as_time("now", now)
        c = self.config
        pairs = self.evidence.rated_pairs()
        pos, neg, count, timeliness = self.evidence.gather(pairs, now_f)  # [R] each
        alpha, beta = c.kappa * pos, c.eta * neg  # [R] interaction effects
        local = local_opinion(
            alpha, beta, prior_weight=c.prior_weight, uncertainty=c.uncertainty, link_quality=c.link_quality
        )  # 3 x [R]
        total = torch.zeros(self.n_producers, dtype=count.dtype, device=self.device).index_add_(0, pairs.producer, count)  # [P]
        used = torch.bincount(pairs.producer, minlength=self.n_producers).clamp_min(1)  # [P] ESPs each producer used
        familiarity = count / (total / used)[pairs.producer]  # [R] IF_yj = N_yj / mean_k N_yk
        weights = c.delta1 * familiarity + c.delta2 * timeliness  # [R] w_yj
        return fuse(local, weights, pairs, self.n_esps)

    def local_opinions(self, now: FloatLike) -> Opinion:
        """Each producer's own opinion of each ESP, 3 x [P, E] ((0, 0, 1) without evidence)."""
        f = self.fused(now)
        vacuous = [torch.full((self.n_esps,), v, dtype=self.dtype, device=self.device) for v in (0.0, 0.0, 1.0)]
        b, d, u = (densify(col, f.pairs, x, self.n_producers) for col, x in zip(vacuous, f.local, strict=True))
        return b, d, u

    def recommendation_weights(self, now: FloatLike) -> torch.Tensor:
        """w_yj = delta1 * IF_yj + delta2 * TL_yj for every rater y of ESP j, 0 elsewhere, [P, E] (unnormalized)."""
        f = self.fused(now)
        return densify(torch.zeros(self.n_esps, dtype=self.dtype, device=self.device), f.pairs, f.weights, self.n_producers)

    def mean_score(self) -> torch.Tensor:
        """Freshness-weighted mean of the scores given with ratings, [P, E] (NaN where none); not part of T."""
        return self.evidence.mean_score()
