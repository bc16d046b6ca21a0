"""The ESP node against a fake market API and the embedded chain: offers, one reveal per lock, restarts,
refunds, a lying coordinator, and `--withhold-key`.

The fake coordinator (`FakeMarket`) hands out the jobs a test queues and records what the node sends;
the producer locks on chain itself with `Protocol.lock`. The node runs one `step()` at a time.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account.signers.local import LocalAccount

import esp.node
from client.market_client import ChainInfo, EspJob, JobAction
from esp.jobs import JobState
from esp.node import EspNode, NodeConfig
from market.chain.connection import Chain
from market.chain.contracts import EspState, LockState
from market.chain.deploy import Market, deploy_market
from market.chain.offers import Opening, SignedOffer
from market.protocol import Protocol
from market.terms import ETHER, MarketTerms

TERMS = MarketTerms()
FEE = TERMS.generation_fee


class FakeMarket:
    """The coordinator's side of the node's interface, in memory."""

    def __init__(self, market: Market) -> None:
        self.info = ChainInfo(
            chain_id=market.chain.chain_id,
            rpc_url=None,
            deployment=market.deployment.to_json(),
            terms=dataclasses.asdict(TERMS),
        )
        self.queued: list[list[EspJob]] = []
        self.offers: dict[int, list[tuple[SignedOffer, bytes, dict[str, Any]]]] = {}
        self.deliveries: dict[int, list[tuple[Opening, bytes]]] = {}
        self.registered: list[str] = []
        self.failures: list[BaseException] = []

    def chain_info(self) -> ChainInfo:
        return self.info

    def register_esp(self, name: str) -> dict[str, Any]:
        self.registered.append(name)
        return {"name": name}

    def esp_jobs(self, wait_s: float = 20.0) -> list[EspJob]:
        if self.failures:
            raise self.failures.pop(0)
        return self.queued.pop(0) if self.queued else []

    def submit_offer(self, task_id: int, signed: SignedOffer, ciphertext: bytes, **cost: Any) -> dict[str, Any]:
        self.offers.setdefault(task_id, []).append((signed, ciphertext, cost))
        return {"task_id": task_id}

    def submit_delivery(self, task_id: int, opening: Opening, key: bytes) -> dict[str, Any]:
        self.deliveries.setdefault(task_id, []).append((opening, key))
        return {"task_id": task_id}

    def close(self) -> None:
        return None


@pytest.fixture(scope="module")
def deployed() -> Market:
    market, _ = deploy_market(Chain.embedded())
    return market


@pytest.fixture
def market(deployed: Market) -> Iterator[Market]:
    snapshot = deployed.chain.snapshot()
    try:
        yield deployed
    finally:
        deployed.chain.revert(snapshot)


@pytest.fixture
def parties(market: Market) -> tuple[LocalAccount, LocalAccount]:
    """A funded ESP key (the node's) and a funded producer."""
    return market.chain.new_account(ETHER, "esp"), market.chain.new_account(ETHER, "producer")


def new_node(market: Market, esp_account: LocalAccount, db: Path, fake: FakeMarket, **options: Any) -> EspNode:
    config = NodeConfig(
        api_url="http://market.invalid",
        account=esp_account,
        db_path=db,
        protocol=Protocol(market, TERMS),  # a fresh object per node: a restart's guard starts empty
        **{"wait_s": 0.0, "retry_s": 0.0, **options},
    )
    node = EspNode(config, connect=lambda: fake)
    node.start()
    return node


def job(task_id: int, action: JobAction, producer: LocalAccount, offer: SignedOffer | None = None) -> EspJob:
    return EspJob(
        task_id=task_id,
        action=action,
        prompt=f"a lighthouse at dusk, task {task_id}",
        producer=producer.address,
        fee_wei=FEE,
        offer=None if offer is None else offer.offer.to_json(),
        lock_id=None,
    )


def reveals(market: Market, esp_account: LocalAccount) -> int:
    """Withdrawn events of generation locks offered by `esp_account` (each is one reveal on chain)."""
    mine = {market.exchange.offer_id(o) for o in market.exchange.generation_offers() if o.esp == esp_account.address}
    return sum(1 for e in market.chain.events(market.exchange.contract, "Withdrawn") if bytes(e.args["id"]) in mine)


def offer_and_lock(market: Market, node: EspNode, fake: FakeMarket, producer: LocalAccount, task_id: int) -> SignedOffer:
    fake.queued.append([job(task_id, JobAction.OFFER, producer)])
    node.step()
    signed, _, _ = fake.offers[task_id][-1]
    Protocol(market, TERMS).lock(producer, signed)
    return signed


def test_the_node_stakes_offers_reveals_once_on_the_lock_and_delivers(market: Market, parties, tmp_path: Path) -> None:
    esp_account, producer = parties
    fake = FakeMarket(market)
    node = new_node(market, esp_account, tmp_path / "jobs.sqlite", fake, servers=2, name="lighthouse")
    assert market.exchange.esp_info(esp_account.address).state == EspState.ACTIVE and fake.registered == ["lighthouse"]
    assert stat.S_IMODE((tmp_path / "jobs.sqlite").stat().st_mode) == 0o600

    signed = offer_and_lock(market, node, fake, producer, task_id=1)
    _, ciphertext, cost = fake.offers[1][0]
    assert signed.offer.fee == FEE and signed.offer.producer == producer.address and signed.offer.esp == esp_account.address
    assert cost["latency_s"] > 0 and cost["generation_s"] > 0 and set(cost) >= {"energy_j", "completed", "quality", "breakdown"}
    stored = node.store.get(1)
    assert stored is not None and stored.state == JobState.OFFERED and stored.lock_id == market.exchange.offer_id(signed.offer)

    fake.queued.append([job(1, JobAction.OFFER, producer)])  # the same job again: exactly the same offer
    node.step()
    assert fake.offers[1][1][:2] == fake.offers[1][0][:2] and fake.offers[1][1][2] == cost

    fake.queued.append([job(1, JobAction.REVEAL, producer, signed)])
    node.step()
    fake.queued.append([job(1, JobAction.REVEAL, producer, signed)])  # a repeated reveal job changes nothing
    node.step()
    assert reveals(market, esp_account) == 1
    assert market.exchange.get_lock(stored.lock_id).state == LockState.WITHDRAWN
    (opening, key), *more = fake.deliveries[1]
    assert not more and node.store.get(1).state == JobState.DELIVERED  # type: ignore[union-attr]
    delivery = Protocol.open_content(key, ciphertext, opening, signed.offer)  # what the producer checks
    assert delivery.content.startswith(b"\x89PNG")


def test_the_node_reveals_a_lock_the_coordinator_never_mentions(market: Market, parties, tmp_path: Path) -> None:
    esp_account, producer = parties
    fake = FakeMarket(market)
    node = new_node(market, esp_account, tmp_path / "jobs.sqlite", fake)
    offer_and_lock(market, node, fake, producer, task_id=4)
    node.step()  # no job from the coordinator: the node's own check of its offered jobs finds the lock
    assert reveals(market, esp_account) == 1 and len(fake.deliveries[4]) == 1


def test_a_reveal_job_without_a_lock_on_chain_is_not_believed(market: Market, parties, tmp_path: Path) -> None:
    esp_account, producer = parties
    fake = FakeMarket(market)
    node = new_node(market, esp_account, tmp_path / "jobs.sqlite", fake)
    fake.queued += [[job(2, JobAction.OFFER, producer)], [job(2, JobAction.REVEAL, producer), job(99, JobAction.REVEAL, producer)]]
    node.step()
    node.step()
    assert reveals(market, esp_account) == 0 and not fake.deliveries
    assert node.store.get(2).state == JobState.OFFERED  # type: ignore[union-attr]


def test_a_restarted_node_whose_reveal_landed_before_the_crash_does_not_reveal_again(
    market: Market, parties, tmp_path: Path
) -> None:
    esp_account, producer = parties
    db = tmp_path / "jobs.sqlite"
    fake = FakeMarket(market)
    first = new_node(market, esp_account, db, fake)
    signed = offer_and_lock(market, first, fake, producer, task_id=3)
    stored = first.store.get(3)
    assert stored is not None
    # The crash: the node marked the job `revealing` and its reveal was mined, then it died.
    first.store.set_state(3, JobState.REVEALING)
    first.protocol.reveal(esp_account, stored.offer, stored.key)
    first.close()
    transactions = market.chain.nonce(esp_account.address)

    second_fake = FakeMarket(market)
    second = new_node(market, esp_account, db, second_fake)  # same key, same file: its start-up check delivers
    second_fake.queued.append([job(3, JobAction.REVEAL, producer, signed)])
    second.step()
    assert reveals(market, esp_account) == 1 and market.chain.nonce(esp_account.address) == transactions  # no stake, no reveal
    assert len(second_fake.deliveries[3]) == 1 and second.store.get(3).state == JobState.DELIVERED  # type: ignore[union-attr]


def test_a_lock_refunded_while_the_node_was_away_is_marked_refunded(market: Market, parties, tmp_path: Path) -> None:
    esp_account, producer = parties
    fake = FakeMarket(market)
    db = tmp_path / "jobs.sqlite"
    node = new_node(market, esp_account, db, fake)
    signed = offer_and_lock(market, node, fake, producer, task_id=5)
    node.close()  # down past the timelock
    Protocol(market, TERMS).refund(producer, signed.offer, wait=True)
    again = new_node(market, esp_account, db, fake)  # its start-up check reads the chain
    assert again.store.get(5).state == JobState.REFUNDED and reveals(market, esp_account) == 0  # type: ignore[union-attr]


def test_withhold_key_takes_jobs_and_never_reveals(market: Market, parties, tmp_path: Path) -> None:
    esp_account, producer = parties
    fake = FakeMarket(market)
    node = new_node(market, esp_account, tmp_path / "jobs.sqlite", fake, withhold_key=True)
    signed = offer_and_lock(market, node, fake, producer, task_id=6)
    fake.queued.append([job(6, JobAction.REVEAL, producer, signed)])
    node.step()
    node.step()
    assert reveals(market, esp_account) == 0 and not fake.deliveries
    Protocol(market, TERMS).refund(producer, signed.offer, wait=True)
    node.step()
    assert node.store.get(6).state == JobState.REFUNDED  # type: ignore[union-attr]


def test_a_connection_error_while_polling_is_logged_and_waited_out(
    market: Market, parties, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(esp.node, "BACKOFF_S", (0.01, 0.02))
    esp_account, producer = parties
    fake = FakeMarket(market)
    node = new_node(market, esp_account, tmp_path / "jobs.sqlite", fake)
    fake.failures += [ConnectionError("connection refused"), TimeoutError("read timed out")]
    fake.queued.append([job(8, JobAction.OFFER, producer)])
    node.step()
    node.step()
    assert not fake.offers  # both polls failed, the node is still there
    node.step()
    assert len(fake.offers[8]) == 1


def test_stop_drains_after_the_job_in_hand(market: Market, parties, tmp_path: Path) -> None:
    esp_account, producer = parties
    fake = FakeMarket(market)
    node = new_node(market, esp_account, tmp_path / "jobs.sqlite", fake)
    real_submit = fake.submit_offer

    def submit_then_stop(task_id: int, signed: SignedOffer, ciphertext: bytes, **cost: Any) -> dict[str, Any]:
        node.stop()  # a signal arrives while the first job is in hand
        return real_submit(task_id, signed, ciphertext, **cost)

    fake.submit_offer = submit_then_stop  # type: ignore[method-assign]
    fake.queued.append([job(10, JobAction.OFFER, producer), job(11, JobAction.OFFER, producer)])
    node.run()  # returns once drained
    assert list(fake.offers) == [10]


def test_a_restarted_node_whose_reveal_never_left_reveals_it_before_the_timelock(market: Market, parties, tmp_path: Path) -> None:
    esp_account, producer = parties
    db = tmp_path / "jobs.sqlite"
    first = new_node(market, esp_account, db, FakeMarket(market))
    offer_and_lock(market, first, first.client, producer, task_id=12)  # type: ignore[arg-type]
    first.store.set_state(12, JobState.REVEALING)  # the crash: marked, never sent
    first.close()
    second_fake = FakeMarket(market)
    second = new_node(market, esp_account, db, second_fake)
    assert reveals(market, esp_account) == 1 and len(second_fake.deliveries[12]) == 1
    assert second.store.get(12).state == JobState.DELIVERED  # type: ignore[union-attr]


def test_sigterm_abandons_a_long_poll_in_progress_and_run_returns(market: Market, parties, tmp_path: Path) -> None:
    esp_account, _ = parties
    fake = FakeMarket(market)
    node = new_node(market, esp_account, tmp_path / "jobs.sqlite", fake)

    def long_poll(wait_s: float = 20.0) -> list[EspJob]:
        time.sleep(30)
        return []

    fake.esp_jobs = long_poll  # type: ignore[method-assign]
    handlers = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    node.install_signal_handlers()
    try:
        threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGTERM)).start()
        started = time.monotonic()
        node.run()
        assert time.monotonic() - started < 5
    finally:
        signal.signal(signal.SIGINT, handlers[0])
        signal.signal(signal.SIGTERM, handlers[1])


def test_a_job_the_market_repeats_at_once_is_acted_on_once_per_retry_interval(market: Market, parties, tmp_path: Path) -> None:
    esp_account, producer = parties
    fake = FakeMarket(market)
    node = new_node(market, esp_account, tmp_path / "jobs.sqlite", fake, withhold_key=True, retry_s=0.3)
    signed = offer_and_lock(market, node, fake, producer, task_id=13)
    handled: list[EspJob] = []
    real_handle = node.handle
    node.handle = lambda job: (handled.append(job), real_handle(job))  # type: ignore[method-assign]
    fake.queued += [[job(13, JobAction.REVEAL, producer, signed)]] * 3  # a locked task: the market repeats it
    started = time.monotonic()
    node.step()
    node.step()  # the same job moments later: not acted on, the node pauses instead of spinning
    assert len(handled) == 1 and time.monotonic() - started >= 0.3
    node.step()  # past the interval: acted on again
    assert len(handled) == 2 and reveals(market, esp_account) == 0
