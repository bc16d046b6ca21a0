"""Background simulation runs: each in its own thread, on its own embedded chain, progress in the database.

A run that was going when the server stopped is marked `interrupted` at the next start (its chain
died with the process). Stopping the app sets `stop`, which ends every run at its next period.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from api.models import Simulation
from api.states import SimulationStatus
from market.chain.connection import Chain
from market.simulation import SimulationConfig, run_simulation


class StoppedError(Exception):
    """Raised from the progress callback to end a run when the server stops."""


@dataclass
class SimulationRunner:
    sessions: sessionmaker[Session]
    workdir: Path
    max_running: int
    stop: threading.Event = field(default_factory=threading.Event)
    threads: dict[str, threading.Thread] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def recover(self) -> None:
        with self.sessions.begin() as session:
            session.execute(
                update(Simulation)
                .where(Simulation.status == SimulationStatus.RUNNING)
                .values(status=SimulationStatus.INTERRUPTED, error="the server stopped during the run")
            )

    def running(self) -> int:
        return sum(thread.is_alive() for thread in self.threads.values())

    def start(self, config: SimulationConfig, account_id: int) -> str | None:
        """Start a run; None when `max_running` runs are going already."""
        with self.lock:
            if self.running() >= self.max_running:
                return None
            sim_id = uuid.uuid4().hex
            with self.sessions.begin() as session:
                session.add(
                    Simulation(
                        id=sim_id,
                        account_id=account_id,
                        config=config.to_json(),
                        status=SimulationStatus.RUNNING,
                        periods=config.periods,
                        periods_done=0,
                    )
                )
            thread = threading.Thread(target=self._run, args=(sim_id, config), name=f"simulation-{sim_id[:8]}", daemon=True)
            self.threads[sim_id] = thread
            thread.start()
            return sim_id

    def _progress(self, sim_id: str, period: int) -> None:
        with self.sessions.begin() as session:
            session.execute(update(Simulation).where(Simulation.id == sim_id).values(periods_done=period + 1))
        if self.stop.is_set():
            raise StoppedError

    def _run(self, sim_id: str, config: SimulationConfig) -> None:
        values: dict[str, Any]
        try:
            result = run_simulation(
                config, Chain.embedded(), self.workdir / sim_id, on_period=lambda period: self._progress(sim_id, period)
            )
            values = {"status": SimulationStatus.DONE, "summary": json.loads(json.dumps(result.summary, default=str))}
        except StoppedError:
            values = {"status": SimulationStatus.INTERRUPTED, "error": "the server stopped during the run"}
        except Exception as exc:  # the run's own failure is its result, not the server's
            values = {"status": SimulationStatus.FAILED, "error": f"{exc.__class__.__name__}: {exc}"[:1000]}
        with self.sessions.begin() as session:
            session.execute(update(Simulation).where(Simulation.id == sim_id).values(**values))

    def shutdown(self, timeout: float = 30.0) -> None:
        self.stop.set()
        for thread in list(self.threads.values()):
            thread.join(timeout)

    def count(self, session: Session) -> int:
        return session.scalar(select(func.count()).select_from(Simulation)) or 0
