"""Subjective-logic opinions (b, d, u) on tensors: local opinions from evidence, the weighted
recommended opinion of the other producers, consensus (fusion) and expectation (docs/reputation.md).

`local_opinion`, `consensus` and `expectation` work elementwise on tensors of any common shape.
The recommended opinion reduces over producers: `recommended_opinion` on dense [P, E] tensors (the
readable reference), `recommended_by_column` on the R rated pairs only (what MWSL uses: with R << P*E
it touches each rated pair a few times and the dense [P, E] grid once).
"""

from __future__ import annotations

import torch

Opinion = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
"""(belief b, disbelief d, uncertainty u), same shape, b + d + u = 1."""


def _normalize(b: torch.Tensor, d: torch.Tensor, u: torch.Tensor) -> Opinion:
    """Clamp to [0, 1] and rescale so that b + d + u = 1 exactly up to rounding."""
    b, d, u = b.clamp(0, 1), d.clamp(0, 1), u.clamp(0, 1)
    total = b + d + u
    return b / total, d / total, u / total


def local_opinion(
    alpha: torch.Tensor,
    beta: torch.Tensor,
    *,
    prior_weight: float = 2.0,
    uncertainty: str = "evidence",
    link_quality: float = 0.9,
) -> Opinion:
    """Opinion from weighted positive evidence alpha and negative evidence beta.

    u = W / (alpha + beta + W) ("evidence") or u = 1 - q ("link", q the link quality);
    b = (1 - u) * alpha / (alpha + beta), d = (1 - u) * beta / (alpha + beta); no evidence: (0, 0, 1).
    """
    # alpha, beta: [...]
    total = alpha + beta  # [...]
    has = total > 0  # [...]
    if uncertainty == "evidence":
        u = torch.where(has, prior_weight / (total + prior_weight).clamp_min(torch.finfo(total.dtype).tiny), torch.ones_like(total))
    elif uncertainty == "link":
        u = torch.where(has, torch.full_like(total, 1.0 - link_quality), torch.ones_like(total))
    else:
        raise ValueError(f"uncertainty must be 'evidence' or 'link', got {uncertainty!r}")
    safe = torch.where(has, total, torch.ones_like(total))  # [...]
    # Ratio first: (1 - u) * alpha underflows for subnormal evidence (found by Hypothesis).
    b = torch.where(has, (1 - u) * (alpha / safe), torch.zeros_like(total))
    d = torch.where(has, (1 - u) * (beta / safe), torch.zeros_like(total))
    return b, d, u


def consensus(local: Opinion, recommended: Opinion) -> Opinion:
    """Consensus (fusion) of two opinions; K = uL + uR - uL*uR; both dogmatic (K ~ 0): the mean.

    K below the dtype's epsilon counts as dogmatic: with subnormal uncertainties the quotients
    would underflow to 0/0 (found by Hypothesis: uL = 5e-324, uR = 0).
    """
    bL, dL, uL = local  # each [...]
    bR, dR, uR = recommended  # each [...]
    k = uL + uR - uL * uR  # [...]
    dogmatic = k <= torch.finfo(k.dtype).eps
    safe = torch.where(dogmatic, torch.ones_like(k), k)
    b = torch.where(dogmatic, (bL + bR) / 2, (bL * uR + bR * uL) / safe)
    d = torch.where(dogmatic, (dL + dR) / 2, (dL * uR + dR * uL) / safe)
    u = torch.where(dogmatic, (uL + uR) / 2, uL * uR / safe)
    return _normalize(b, d, u)


def expectation(opinion: Opinion, base_rate: float | torch.Tensor = 0.5) -> torch.Tensor:
    """Reputation T = b + a * u."""
    b, _, u = opinion
    return b + base_rate * u


def recommended_opinion(local: Opinion, weights: torch.Tensor, rated: torch.Tensor) -> Opinion:
    """For every producer i and ESP j, the weighted mean of the local opinions of all producers y != i
    that rated j, with weights w_yj normalized over those y. No other rater: vacuous (0, 0, 1).

    Computed as column sums minus the own term (O(P * E), no loop over producers). Sums are taken in
    float64 so that subtracting a dominant own weight does not cancel the others' away.
    """
    # local: 3 x [P, E]; weights: [P, E], 0 where not rated; rated: [P, E] bool
    w = torch.where(rated, weights, torch.zeros_like(weights)).to(torch.float64)  # [P, E]
    others = rated.sum(0, dtype=torch.int64) - rated.to(torch.int64)  # [P, E] raters of j other than i
    den = w.sum(0) - w  # [P, E]
    has = (others > 0) & (den > 0)  # [P, E]
    safe = torch.where(has, den, torch.ones_like(den))  # [P, E]
    parts = []
    for component, empty in zip(local, (0.0, 0.0, 1.0), strict=True):
        wx = w * component.to(torch.float64)  # [P, E]
        mean = (wx.sum(0) - wx) / safe  # [P, E]
        parts.append(torch.where(has, mean, torch.full_like(mean, empty)).to(component.dtype))
    return _normalize(*parts)


def recommended_by_column(local: Opinion, weights: torch.Tensor, esp: torch.Tensor, n_esps: int) -> tuple[Opinion, Opinion]:
    """`recommended_opinion` computed on the R rated pairs (i, j) only.

    local: 3 x [R] local opinions of the rated pairs; weights: [R] w_ij; esp: [R] column j of each.
    Returns (for_rated, for_column): the recommended opinion for each rated pair (all raters of j
    but i itself: column sum minus the own term) [R], and for every producer that did not rate j
    (all raters of j) [E]. No other rater: vacuous (0, 0, 1).
    """
    # local: 3 x [R]; weights: [R]; esp: [R] int64
    w = weights.to(torch.float64)  # [R]
    raters = torch.bincount(esp, minlength=n_esps)  # [E]
    w_col = torch.zeros(n_esps, dtype=torch.float64, device=w.device).index_add_(0, esp, w)  # [E]
    den_rated = w_col[esp] - w  # [R]
    has_rated = (raters[esp] > 1) & (den_rated > 0)  # [R]
    has_col = (raters > 0) & (w_col > 0)  # [E]
    safe_rated = torch.where(has_rated, den_rated, torch.ones_like(den_rated))  # [R]
    safe_col = torch.where(has_col, w_col, torch.ones_like(w_col))  # [E]
    rated_parts, col_parts = [], []
    for component, empty in zip(local, (0.0, 0.0, 1.0), strict=True):
        wx = w * component.to(torch.float64)  # [R]
        sums = torch.zeros(n_esps, dtype=torch.float64, device=w.device).index_add_(0, esp, wx)  # [E]
        mean_rated = (sums[esp] - wx) / safe_rated  # [R]
        rated_parts.append(torch.where(has_rated, mean_rated, torch.full_like(mean_rated, empty)).to(component.dtype))
        col_parts.append(torch.where(has_col, sums / safe_col, torch.full_like(sums, empty)).to(component.dtype))
    return _normalize(*rated_parts), _normalize(*col_parts)
