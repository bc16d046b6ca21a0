"""The ESP node's job store: a job round-trips, states move, and a reopened file resumes where it was."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from esp.jobs import JobCost, JobState, JobStore
from market.chain.offers import Offer, Opening, SignedOffer
from market.protocol import Job

ESP = "0x" + "11" * 20
PRODUCER = "0x" + "22" * 20


def make_job(nonce: int) -> Job:
    opening = Opening.of(bytes([nonce]) * 32, 0xDEADBEEF + nonce, b"\x07" * 32)
    offer = Offer(ESP, PRODUCER, b"\x01" * 32, 10**16, 1_000, 900, nonce, opening.commitment())
    return Job(SignedOffer(offer, b"\x05" * 65), opening, key=bytes([nonce + 1]) * 32, ciphertext=b"secret" * nonce)


COST = JobCost(latency_s=1.5, energy_j=2.5, completed=True, quality=0.7, breakdown={"T_up": 0.5, "T_es": 1.0}, generation_s=0.01)


def test_a_job_round_trips_with_its_key_offer_opening_and_cost(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite")
    job = make_job(3)
    added = store.add(7, job, b"\x09" * 32, COST)
    stored = store.get(7)
    assert stored == added
    assert stored is not None and stored.state == JobState.OFFERED
    assert (stored.signed, stored.opening, stored.key, stored.ciphertext) == (job.signed, job.opening, job.key, job.ciphertext)
    assert stored.offer.esp == Offer.from_json(job.offer.to_json()).esp and stored.lock_id == b"\x09" * 32
    assert stored.cost == COST
    assert store.get(8) is None
    assert stat.S_IMODE((tmp_path / "jobs.sqlite").stat().st_mode) == 0o600  # the content keys are secrets


def test_states_move_and_select(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs.sqlite")
    for task_id in (1, 2, 3):
        store.add(task_id, make_job(task_id), bytes([task_id]) * 32, COST)
    store.set_state(2, JobState.REVEALING)
    store.set_state(3, JobState.REFUNDED)
    assert [j.task_id for j in store.in_states(JobState.OFFERED, JobState.REVEALING)] == [1, 2]
    assert [j.task_id for j in store.in_states()] == [1, 2, 3]
    with pytest.raises(KeyError):
        store.set_state(9, JobState.DELIVERED)


def test_reopening_the_file_resumes_every_job_in_its_state(tmp_path: Path) -> None:
    path = tmp_path / "node" / "jobs.sqlite"
    store = JobStore(path)
    store.add(1, make_job(1), b"\x01" * 32, COST)
    store.set_state(1, JobState.REVEALED)
    store.close()  # a SIGKILL skips this; every write is committed before it returns anyway
    again = JobStore(path)
    resumed = again.get(1)
    assert resumed is not None and resumed.state == JobState.REVEALED and resumed.key == make_job(1).key
