"""Simulation runs: each in a process of its own (time and memory limits), quotas per account, retention.

`start` checks the quotas, records the run and hands it to a supervising thread, which spawns the run's
process (`api.simulation_worker`: lower priority, RLIMIT_AS of `Settings.simulation_memory_bytes`) and
writes its progress to the database. A run past `simulation_timeout_s` is killed (status failed). The
quotas: runs going at once on the server (`max_running_simulations`) and per account
(`max_running_simulations_per_account`), both 429 `simulations_busy`; runs started per account in
`simulation_quota_window_s` (`simulations_per_account`), 429 `simulation_quota_exceeded` with
Retry-After; bytes an account keeps (`stored_bytes_per_account`: its runs' folders and its tasks),
403 `storage_quota_exceeded`. Run folders older than `simulation_retention_s` are removed (the summary
stays) at start and whenever a run starts.

A run that was going when the server stopped is marked `interrupted` at the next start (its process
died with the server, or is ended by `shutdown`). The error a client sees is the server's words only.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from api import crud
from api.errors import ApiError
from api.models import Simulation
from api.settings import Settings
from api.simulation_worker import run_in_child
from api.states import SimulationStatus
from market.simulation import SimulationConfig

log = logging.getLogger("api.simulations")

INTERRUPTED = "the server stopped during the run"


def folder_bytes(path: Path) -> int:
    """Bytes of the files under `path` (0 if it is not there)."""
    if not path.is_dir():
        return 0
    return sum(item.stat().st_size for item in path.rglob("*") if item.is_file())


@dataclass
class SimulationRunner:
    sessions: sessionmaker[Session]
    workdir: Path
    settings: Settings
    target: Callable[..., None] = run_in_child
    """What the run's process runs: `run_in_child(config_json, workdir, memory_bytes, conn)` (tests swap it)."""
    stop: threading.Event = field(default_factory=threading.Event)
    threads: dict[str, threading.Thread] = field(default_factory=dict)
    owners: dict[str, int] = field(default_factory=dict)
    processes: dict[str, Any] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def recover(self) -> None:
        """At start: runs left `running` by a stopped server are interrupted; old run folders go."""
        with self.sessions.begin() as session:
            session.execute(
                update(Simulation)
                .where(Simulation.status == SimulationStatus.RUNNING)
                .values(status=SimulationStatus.INTERRUPTED, error=INTERRUPTED, finished_at=datetime.now(UTC))
            )
        self.purge()

    def running(self, account_id: int | None = None) -> int:
        return sum(
            thread.is_alive() and (account_id is None or self.owners.get(sim_id) == account_id)
            for sim_id, thread in self.threads.items()
        )

    def purge(self) -> int:
        """Remove the folders of runs finished more than `simulation_retention_s` ago; returns how many."""
        retention = self.settings.simulation_retention_s
        if not retention:
            return 0
        cutoff = datetime.now(UTC) - timedelta(seconds=retention)
        with self.sessions.begin() as session:
            old = session.scalars(
                select(Simulation.id).where(
                    Simulation.purged.is_(False), Simulation.finished_at.is_not(None), Simulation.finished_at < cutoff
                )
            ).all()
            for sim_id in old:
                shutil.rmtree(self.workdir / sim_id, ignore_errors=True)
            if old:
                session.execute(update(Simulation).where(Simulation.id.in_(old)).values(purged=True, output_bytes=0))
        return len(old)

    def check_quotas(self, session: Session, account_id: int) -> None:
        settings = self.settings
        if self.running() >= settings.max_running_simulations:
            raise ApiError(
                429, "simulations_busy", "as many simulations as allowed are running: retry later", {"Retry-After": "10"}
            )
        if self.running(account_id) >= settings.max_running_simulations_per_account:
            raise ApiError(
                429, "simulations_busy", "this account runs as many simulations as allowed: retry later", {"Retry-After": "10"}
            )
        since = datetime.now(UTC) - timedelta(seconds=settings.simulation_quota_window_s)
        recent = session.scalars(
            select(Simulation.created_at)
            .where(Simulation.account_id == account_id, Simulation.created_at >= since)
            .order_by(Simulation.created_at)
        ).all()
        if len(recent) >= settings.simulations_per_account:
            oldest = recent[0] if recent else datetime.now(UTC)
            if oldest.tzinfo is None:  # SQLite hands back naive datetimes (stored in UTC)
                oldest = oldest.replace(tzinfo=UTC)
            wait = (oldest - since).total_seconds()
            raise ApiError(
                429,
                "simulation_quota_exceeded",
                f"this account may start {settings.simulations_per_account} simulations per "
                f"{settings.simulation_quota_window_s:.0f} s",
                {"Retry-After": str(max(1, math.ceil(wait)))},
            )
        crud.check_storage_quota(session, account_id, settings.stored_bytes_per_account)

    def start(self, config: SimulationConfig, account_id: int) -> str:
        """Start a run in its own process; ApiError when a quota says no."""
        self.purge()
        with self.lock:
            with self.sessions.begin() as session:
                self.check_quotas(session, account_id)
                sim_id = uuid.uuid4().hex
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
            thread = threading.Thread(target=self._supervise, args=(sim_id, config), name=f"simulation-{sim_id[:8]}", daemon=True)
            self.threads[sim_id] = thread
            self.owners[sim_id] = account_id
            thread.start()
            return sim_id

    def _supervise(self, sim_id: str, config: SimulationConfig) -> None:
        folder = self.workdir / sim_id
        values: dict[str, Any]
        try:
            values = self._run(sim_id, config, folder)
        except Exception:  # the supervisor's own failure (spawning, the database): the run failed, the server goes on
            log.exception("simulation %s: supervising failed", sim_id)
            values = {"status": SimulationStatus.FAILED, "error": "the run failed (server error)"}
        values |= {"finished_at": datetime.now(UTC), "output_bytes": folder_bytes(folder)}
        with self.sessions.begin() as session:
            session.execute(update(Simulation).where(Simulation.id == sim_id).values(**values))

    def _run(self, sim_id: str, config: SimulationConfig, folder: Path) -> dict[str, Any]:
        context = multiprocessing.get_context("spawn")
        receiver, sender = context.Pipe(duplex=False)
        process = context.Process(
            target=self.target,
            args=(config.to_json(), str(folder), self.settings.simulation_memory_bytes, sender),
            name=f"simulation-{sim_id[:8]}",
            daemon=True,
        )
        process.start()
        sender.close()
        self.processes[sim_id] = process
        timeout = self.settings.simulation_timeout_s
        deadline = time.monotonic() + timeout
        try:
            while True:
                if self.stop.is_set():
                    return {"status": SimulationStatus.INTERRUPTED, "error": INTERRUPTED}
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return {"status": SimulationStatus.FAILED, "error": f"the run exceeded its time limit of {timeout:g} s"}
                if not receiver.poll(min(0.2, remaining)):
                    continue
                try:
                    kind, payload = receiver.recv()
                except EOFError:
                    process.join(5)
                    return {
                        "status": SimulationStatus.FAILED,
                        "error": f"the run's process ended without a result (exit code {process.exitcode})",
                    }
                if kind == "period":
                    with self.sessions.begin() as session:
                        session.execute(update(Simulation).where(Simulation.id == sim_id).values(periods_done=int(payload) + 1))
                elif kind == "done":
                    return {"status": SimulationStatus.DONE, "summary": payload}
                else:
                    return {"status": SimulationStatus.FAILED, "error": str(payload)[:1000]}
        finally:
            receiver.close()
            process.join(2)
            if process.is_alive():
                process.kill()
                process.join(5)
            self.processes.pop(sim_id, None)

    def shutdown(self, timeout: float = 30.0) -> None:
        self.stop.set()
        for thread in list(self.threads.values()):
            thread.join(timeout)

    def count(self, session: Session) -> int:
        return session.scalar(select(func.count()).select_from(Simulation)) or 0
