"""Several server processes on one port: `aigc-market serve --workers N` (PostgreSQL only).

The supervisor (`serve_workers`, run by `aigc-market serve`) first does, once, what a single server
does at start (`prepare`: migrations, the node, supervised or not, the deployment, and the
recoveries of a killed server: Idempotency-Key claims, lock intents, contents, simulation runs).
Then it reserves the port and starts N workers, `python -m api.worker_process HOST PORT PID`, each
listening on a socket of its own with SO_REUSEPORT (the kernel spreads new connections evenly over
the live ones: `port_socket`). A worker builds its app with `worker_app` from the environment the
supervisor set (`worker_env`: the node's URL, the database, the data directory, the number of
workers) and skips those recoveries, which would otherwise undo the requests its siblings are
serving. A worker that dies is replaced at once; SIGTERM or SIGINT stops them all (SIGTERM, then
SIGKILL after `STOP_TIMEOUT_S`) and then the node the supervisor started. The supervisor gives each
worker an id (`Settings.worker_id`), which marks the Idempotency-Key claims it makes; when a worker
dies, the supervisor releases the claims it still held `running` (it committed nothing for them),
so that a retry runs at once. The workers are processes of their own, not forks (a fork would copy
the parent's database connections and threads), started by module so that they import the API
only, not every command of the command line.

What the workers share, and how (docs/api.md#several-workers): the database (rows, Idempotency-Key
claims and replies, faucet budgets), the chain lock (`api.advisory.ChainLock`: the writes of all
workers run one at a time, so the nonces of the accounts the server signs for stay right), the
indexer (`api.indexer_leader`: one leader follows the chain, a survivor takes over). Each keeps
its own share of the rate limits (`api.ratelimit.worker_share`). SQLite takes one writer at a time
and has no advisory locks: it serves one worker.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from types import FrameType

from fastapi import FastAPI

from api import crud
from api.db import make_engine, session_factory
from api.main import create_app
from api.node import ChainHandle
from api.settings import Settings
from market.chain.anvil import LOOPBACK

#: What uvicorn imports in each worker (an app factory).
WORKER_APP = "api.workers:worker_app"
#: How long stopping workers may take before they are killed.
STOP_TIMEOUT_S = 30.0
#: How often the supervisor looks for dead workers and signals.
POLL_S = 0.2
#: uvicorn's exit code of a worker that failed to start: the supervisor stops rather than retry forever.
STARTUP_FAILURE = 3

log = logging.getLogger("api.workers")


class WorkersConfigError(ValueError):
    """Several workers asked for on a database that cannot take them (SQLite), or a port that cannot be bound."""


def check_workers(settings: Settings) -> None:
    """Refuse several workers on SQLite."""
    if settings.workers > 1 and not settings.database_url().startswith("postgresql"):
        raise WorkersConfigError(
            f"--workers {settings.workers} needs PostgreSQL (--db postgresql+psycopg://...): SQLite serves one worker"
        )


def prepare(settings: Settings) -> tuple[ChainHandle, dict[str, str]]:
    """Once, before the workers start: a single server's start (migrations, node, deployment, recoveries).
    Returns the node's handle (the supervisor stops a node it started when it ends) and the workers' environment."""
    check_workers(settings)
    app = create_app(settings.model_copy(update={"workers": 1}))
    state = app.state.market
    state.chain_lock.close()
    state.engine.dispose()
    handle: ChainHandle = state.handle
    if handle.node is not None:
        rpc_url = handle.node.url
    elif settings.rpc_url:
        rpc_url = settings.rpc_url
    else:  # this server's own node, still answering from before (identified by its marker)
        rpc_url = f"http://{LOOPBACK}:{settings.anvil_port}"
    return handle, worker_env(settings, rpc_url)


def worker_env(settings: Settings, rpc_url: str) -> dict[str, str]:
    """The environment from which every worker builds its `Settings` (the rest of AIGC_MARKET_* is inherited)."""
    env = {
        "AIGC_MARKET_DATA_DIR": str(settings.data_dir.resolve()),
        "AIGC_MARKET_DB_URL": settings.database_url(),
        "AIGC_MARKET_RPC_URL": rpc_url,
        "AIGC_MARKET_WORKERS": str(settings.workers),
        "AIGC_MARKET_TRUSTED_PROXIES": json.dumps(settings.trusted_proxies),
    }
    if settings.private_key:
        env["AIGC_MARKET_PRIVATE_KEY"] = settings.private_key
    return env


def worker_app() -> FastAPI:
    """The app of one worker (uvicorn's factory), from the environment `worker_env` set."""
    settings = Settings()
    settings.data_dir = settings.data_dir.resolve()
    return create_app(settings, recover=False)


def port_socket(host: str, port: int, listening: bool) -> socket.socket:
    """A socket on `host:port` with SO_REUSEPORT: each worker listens on one of its own, and the kernel spreads
    new connections over the listening ones evenly (a hash of the connection's addresses), and only over live
    ones. The supervisor holds one that does not listen (it reserves the port and receives nothing).
    `WorkersConfigError` if the port cannot be bound."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise WorkersConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    if listening:
        sock.listen(2048)
    return sock


class WorkerPool:
    """N worker processes on one listening socket; a dead one is replaced until the pool is stopped."""

    def __init__(self, host: str, port: int, count: int, access_log: bool, on_death: Callable[[str], None]) -> None:
        self.host, self.port = host, port
        self.count = count
        self.access_log = access_log
        self.on_death = on_death
        """Called with the id of a worker that died (before it is replaced)."""
        self.processes: list[subprocess.Popen[bytes]] = []
        self.ids: list[str] = []
        self.stopping = False

    def spawn(self) -> tuple[subprocess.Popen[bytes], str]:
        """A new worker and its id (`Settings.worker_id`: it marks the worker's Idempotency-Key claims)."""
        worker_id = uuid.uuid4().hex
        command = [sys.executable, "-m", "api.worker_process", self.host, str(self.port), str(os.getpid())]
        if self.access_log:
            command.append("--access-log")
        process = subprocess.Popen(command, env=os.environ | {"AIGC_MARKET_WORKER_ID": worker_id})
        log.info("started worker %d", process.pid)
        return process, worker_id

    def run(self) -> int:
        """Serve until SIGTERM or SIGINT (0), or until a worker fails to start (1)."""

        def stop(signum: int, _frame: FrameType | None) -> None:
            log.info("received %s: stopping the workers", signal.Signals(signum).name)
            self.stopping = True

        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        code = 0
        try:
            for _ in range(self.count):
                process, worker_id = self.spawn()
                self.processes.append(process)
                self.ids.append(worker_id)
            while not self.stopping:
                for index, process in enumerate(self.processes):
                    if process.poll() is None:
                        continue
                    if process.returncode == STARTUP_FAILURE:
                        log.error("worker %d failed to start: stopping", process.pid)
                        self.stopping, code = True, 1
                        break
                    log.warning("worker %d died (exit %s): replacing it", process.pid, process.returncode)
                    self.on_death(self.ids[index])
                    self.processes[index], self.ids[index] = self.spawn()
                time.sleep(POLL_S)
        finally:
            self.terminate()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return code

    def terminate(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for process in self.processes:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def serve_workers(settings: Settings, host: str, port: int, access_log: bool) -> int:
    """`aigc-market serve --workers N`: start once, then N workers on `host:port` until stopped; the exit code.
    Raises `WorkersConfigError` (SQLite, the port) and what `create_app` raises at start."""
    check_workers(settings)
    sock = port_socket(host, port, listening=False)
    try:
        handle, env = prepare(settings)
        engine = make_engine(settings.database_url())
        try:
            sessions = session_factory(engine)

            def release_claims(worker_id: str) -> None:
                try:
                    with sessions.begin() as session:
                        released = crud.release_claims_of(session, worker_id)
                except Exception:  # the database is away: the next start releases them
                    log.exception("the claims of a dead worker could not be released")
                    return
                if released:
                    log.warning("%d Idempotency-Key claims of the dead worker released", released)

            os.environ.update(env)  # the workers build their settings from the environment
            log.info("serving on http://%s:%d with %d workers", host, port, settings.workers)
            return WorkerPool(host, port, settings.workers, access_log, release_claims).run()
        finally:
            engine.dispose()
            handle.stop()
    finally:
        sock.close()
