"""Subjective-logic reputation of ESPs: opinions, multi-weight subjective logic (MWSL), selection.

Imports neither `market`, `api` nor `offload_core` (docs/architecture.md).

    rep = MWSL(MWSLConfig(), n_producers, n_esps)
    rep.observe(producer, esp, positive, t, score=None)   # ints or 1-D tensors
    b, d, u = rep.opinions(now)                             # each [P, E]
    T = rep.reputation(now)                                 # [P, E]
    esp = rep.select(producers, now, strategy=SelectionStrategy.SOFTMAX)  # or ARGMAX; mask=, generator=
"""

from reputation.baselines import (
    BetaConfig,
    BetaReputation,
    MostFamiliar,
    PlainSL,
    PlainSLConfig,
    RandomSelection,
    RoundRobin,
)
from reputation.fairness import jain_index
from reputation.inputs import Rating
from reputation.mwsl import MWSL, MWSLConfig
from reputation.opinions import consensus, expectation, local_opinion, recommended_opinion
from reputation.selection import Selection, SelectionStrategy, Selector

__all__ = [
    "MWSL",
    "MWSLConfig",
    "BetaConfig",
    "BetaReputation",
    "MostFamiliar",
    "PlainSL",
    "PlainSLConfig",
    "RandomSelection",
    "RoundRobin",
    "Rating",
    "Selection",
    "SelectionStrategy",
    "Selector",
    "consensus",
    "expectation",
    "jain_index",
    "local_opinion",
    "recommended_opinion",
]
