"""ESP reputation by MWSL, from the `Rated` events that the indexer copied from the chain.

Producers are numbered in the order of their first rating, ESPs by their registration (`esps.id`);
times are chain seconds divided by the configured period, so freshness decays per period. The MWSL
parameters are the market's (`market.simulation.MARKET_REPUTATION`, docs/reputation.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.models import ChainEvent, Esp
from market.simulation import MARKET_REPUTATION
from reputation import MWSL, Rating


@dataclass
class ReputationModel:
    mwsl: MWSL
    producers: dict[str, int]
    esps: list[Esp]
    now: float

    def row(self, producer: str | None) -> int | None:
        return None if producer is None else self.producers.get(producer.lower())


def build(session: Session, chain_now: int, period_s: float, producer: str | None = None) -> ReputationModel:
    """An MWSL fed with every indexed rating of a registered ESP (with a row for `producer`, rated or not)."""
    esps = list(session.scalars(select(Esp).order_by(Esp.id)))
    column = {esp.address.lower(): esp.id - 1 for esp in esps}
    producers: dict[str, int] = {}
    ratings: list[Rating] = []
    events = session.scalars(
        select(ChainEvent).where(ChainEvent.name == "Rated").order_by(ChainEvent.block_number, ChainEvent.log_index)
    )
    for event in events:
        esp_col = column.get(str(event.args["esp"]).lower())
        if esp_col is None:
            continue
        row = producers.setdefault(str(event.args["producer"]).lower(), len(producers))
        ratings.append(
            Rating(row, esp_col, bool(event.args["positive"]), int(event.args["at"]) / period_s, float(event.args["score"]))
        )
    if producer is not None:
        producers.setdefault(producer.lower(), len(producers))
    n_esps = max(1, max((esp.id for esp in esps), default=1))
    # The market's own parameters (docs/reputation.md), so the API ranks ESPs as the simulation does.
    mwsl = MWSL(MARKET_REPUTATION, max(1, len(producers)), n_esps)
    mwsl.observe_records(ratings)
    return ReputationModel(mwsl, producers, esps, max(chain_now / period_s, max((r.t for r in ratings), default=0.0)))


def opinion_of(model: ReputationModel, esp: Esp, producer: str | None) -> tuple[float, float, float, float]:
    """(T, b, d, u) of the ESP: for one producer, or averaged over every producer that rated."""
    b, d, u = model.mwsl.opinions(model.now)
    trust = model.mwsl.reputation(model.now)
    column = esp.id - 1
    row = model.row(producer)
    rows = torch.tensor([row]) if row is not None else torch.arange(trust.shape[0])
    return tuple(float(x[rows, column].mean()) for x in (trust, b, d, u))  # type: ignore[return-value]
