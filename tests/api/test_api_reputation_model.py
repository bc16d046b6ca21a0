"""The API ranks ESPs with the market's MWSL parameters (market.simulation.MARKET_REPUTATION, docs/reputation.md):
an ESP's long-silent bad record pulls its reputation down to that record, not back to the neutral base rate."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from api import reputation
from api.db import make_engine, migrate, session_factory
from api.models import Account, ChainEvent, Esp
from market.actors import EspProfile

PERIOD_S = 10.0
CHEAT = "0x" + "c1" * 20
HONEST = "0x" + "a1" * 20
PRODUCER = "0x" + "b1" * 20


def rated(block: int, esp: str, positive: bool, at: int) -> ChainEvent:
    args = {"esp": esp, "producer": PRODUCER, "positive": positive, "at": at, "score": 1.0}
    return ChainEvent(block_number=block, log_index=0, contract="ledger", name="Rated", args=args)


@pytest.fixture
def session(tmp_path: Path) -> Session:
    engine = make_engine(f"sqlite:///{tmp_path / 'api.sqlite'}")
    migrate(engine)
    db = session_factory(engine)()
    for n, address in enumerate((CHEAT, HONEST), start=1):
        db.add(Account(id=n, address=address, api_key_hash=f"{n:064x}", encrypted_key=b"k"))
        db.add(Esp(id=n, account_id=n, address=address, name=f"esp{n}", profile=EspProfile.HONEST))
    # Four negatives for the cheat and four positives for the honest ESP, all in the first period.
    for block in range(4):
        db.add(rated(2 * block + 1, CHEAT, False, at=0))
        db.add(rated(2 * block + 2, HONEST, True, at=0))
    db.commit()
    return db


def test_a_long_silent_cheat_falls_to_its_record_base_rate(session: Session) -> None:
    # 1,000 periods later every piece of evidence has decayed (0.98 ** 1000 < 1e-8), so T = a_j, the ESP's record
    # (N+ + a W) / (N + W) with a = 0.5, W = 2 (docs/reputation.md): (0 + 1) / (4 + 2) = 1/6 for the cheat,
    # (4 + 1) / (4 + 2) = 5/6 for the honest ESP. The paper's constant base rate would give 0.5 to both.
    model = reputation.build(session, chain_now=int(1000 * PERIOD_S), period_s=PERIOD_S)
    cheat, honest = sorted(model.esps, key=lambda esp: esp.id)
    assert reputation.opinion_of(model, cheat, PRODUCER)[0] == pytest.approx(1 / 6, abs=1e-3)
    assert reputation.opinion_of(model, honest, PRODUCER)[0] == pytest.approx(5 / 6, abs=1e-3)


def test_a_fresh_record_ranks_the_honest_esp_above_the_cheat(session: Session) -> None:
    model = reputation.build(session, chain_now=0, period_s=PERIOD_S)
    cheat, honest = sorted(model.esps, key=lambda esp: esp.id)
    assert reputation.opinion_of(model, honest, None)[0] > 0.5 > reputation.opinion_of(model, cheat, None)[0]
