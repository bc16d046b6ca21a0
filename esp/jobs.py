"""The node's job store: every job it accepted, in one SQLite file, so that a restart resumes them.

A job is written (and committed) before its offer leaves the node, and every state change is committed
before the step that follows it, so that after a crash the file says what may have happened on chain:
a job in `revealing` may have a reveal in flight, and the node asks the chain before it reveals again.
The content key of every job is in this file: it is a secret until revealed, so the file is created
with mode 0600 (docs/esp-node.md).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from market.chain.offers import Offer, Opening, SignedOffer
from market.protocol import Job


class JobState(StrEnum):
    """Where a job stands, as far as the node knows (docs/esp-node.md, "Job states")."""

    OFFERED = "offered"
    """The offer is signed and stored (and sent, or about to be); no reveal was sent."""
    REVEALING = "revealing"
    """A reveal was about to be sent: the chain decides whether it landed."""
    REVEALED = "revealed"
    """The key is on chain (the fee is the node's); the delivery to the coordinator may be pending."""
    DELIVERED = "delivered"
    """The coordinator has the opening and the key: nothing left to do."""
    REFUNDED = "refunded"
    """The producer took the fee back after the timelock: nothing left to do."""
    EXPIRED = "expired"
    """The offer passed its expiry with no lock: it can never be locked, nothing left to do."""


SETTLED_STATES = (JobState.DELIVERED, JobState.REFUNDED, JobState.EXPIRED)
"""States after which the node never acts on the job again."""


@dataclass(frozen=True)
class JobCost:
    """What the node reported with its offer (the core's prediction and the measured generation time),
    stored so that a resubmitted offer is exactly the first one."""

    latency_s: float
    energy_j: float
    completed: bool
    quality: float
    breakdown: dict[str, float]
    generation_s: float

    def to_json(self) -> dict[str, Any]:
        return {
            "latency_s": self.latency_s,
            "energy_j": self.energy_j,
            "completed": self.completed,
            "quality": self.quality,
            "breakdown": self.breakdown,
            "generation_s": self.generation_s,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobCost:
        return cls(
            float(data["latency_s"]),
            float(data["energy_j"]),
            bool(data["completed"]),
            float(data["quality"]),
            {str(k): float(v) for k, v in data["breakdown"].items()},
            float(data["generation_s"]),
        )


@dataclass(frozen=True)
class StoredJob:
    """One row of the store."""

    task_id: int
    state: JobState
    signed: SignedOffer
    key: bytes
    opening: Opening
    ciphertext: bytes
    lock_id: bytes
    cost: JobCost
    updated_at: float

    @property
    def offer(self) -> Offer:
        return self.signed.offer


_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    task_id INTEGER PRIMARY KEY,
    state TEXT NOT NULL,
    offer_json TEXT NOT NULL,
    signature BLOB NOT NULL,
    key BLOB NOT NULL,
    opening_json TEXT NOT NULL,
    ciphertext BLOB NOT NULL,
    lock_id TEXT NOT NULL,
    cost_json TEXT NOT NULL,
    updated_at REAL NOT NULL
)
"""
_COLUMNS = "task_id, state, offer_json, signature, key, opening_json, ciphertext, lock_id, cost_json, updated_at"


class JobStore:
    """The jobs of one node in the SQLite file at `path` (WAL; every write committed before it returns)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Create the file owner-only before SQLite opens it: it will hold unrevealed content keys.
        os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))
        os.chmod(path, 0o600)
        self.path = path
        self._db = sqlite3.connect(path, isolation_level=None)  # autocommit: each statement is its own commit
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # a committed state survives a power cut, not only a crash
        self._db.execute(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def add(self, task_id: int, job: Job, lock_id: bytes, cost: JobCost) -> StoredJob:
        """Store a new (or replace an expired) job in state `offered`."""
        now = time.time()
        self._db.execute(
            f"INSERT OR REPLACE INTO jobs ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                task_id,
                JobState.OFFERED.value,
                json.dumps(job.offer.to_json()),
                job.signed.signature,
                job.key,
                json.dumps(job.opening.to_json()),
                job.ciphertext,
                "0x" + lock_id.hex(),
                json.dumps(cost.to_json()),
                now,
            ),
        )
        return StoredJob(task_id, JobState.OFFERED, job.signed, job.key, job.opening, job.ciphertext, lock_id, cost, now)

    def get(self, task_id: int) -> StoredJob | None:
        row = self._db.execute(f"SELECT {_COLUMNS} FROM jobs WHERE task_id = ?", (task_id,)).fetchone()
        return None if row is None else _job_of(row)

    def set_state(self, task_id: int, state: JobState) -> None:
        """Move a job to `state` (committed when this returns); KeyError for an unknown task."""
        cursor = self._db.execute(
            "UPDATE jobs SET state = ?, updated_at = ? WHERE task_id = ?", (state.value, time.time(), task_id)
        )
        if cursor.rowcount != 1:
            raise KeyError(f"no stored job for task {task_id}")

    def in_states(self, *states: JobState) -> list[StoredJob]:
        """The jobs in any of `states` (all jobs when none is given), oldest task first."""
        if not states:
            rows = self._db.execute(f"SELECT {_COLUMNS} FROM jobs ORDER BY task_id").fetchall()
        else:
            marks = ", ".join("?" for _ in states)
            query = f"SELECT {_COLUMNS} FROM jobs WHERE state IN ({marks}) ORDER BY task_id"
            rows = self._db.execute(query, [s.value for s in states]).fetchall()
        return [_job_of(row) for row in rows]


def _job_of(row: tuple[Any, ...]) -> StoredJob:
    task_id, state, offer_json, signature, key, opening_json, ciphertext, lock_id, cost_json, updated_at = row
    return StoredJob(
        task_id=int(task_id),
        state=JobState(state),
        signed=SignedOffer(Offer.from_json(json.loads(offer_json)), bytes(signature)),
        key=bytes(key),
        opening=Opening.from_json(json.loads(opening_json)),
        ciphertext=bytes(ciphertext),
        lock_id=bytes.fromhex(lock_id[2:]),
        cost=JobCost.from_json(json.loads(cost_json)),
        updated_at=float(updated_at),
    )
