"""Run `aigc-market serve` as a child process on 127.0.0.1: for the durability test, the load benchmark
and the end-to-end tests, which need the real server (and need to SIGKILL it); `NodeProcess` runs an ESP
node (`aigc-market esp run`) likewise. `serve_in_thread` serves
an app built in-process under uvicorn in a thread, for tests and benchmarks that need no process.

The child gets its own process group, so `kill()` takes down whatever it started with it (a
supervised anvil node included); `stop()` asks politely first. Every start takes a fresh free port.

A harness for tests and benchmarks on development chains: unless `env` says otherwise, the server's
faucet is on (10 ether per new account, budgets large enough for a durability run) and its rate
limits are off (`HARNESS_ENV`); the abuse drills (`tests/api/abuse_drill.py`) turn them back on.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import uvicorn
from fastapi import FastAPI

from market.chain.anvil import LOOPBACK, free_port
from market.terms import ETHER

#: The settings a test or benchmark server gets unless its `env` overrides them (see the module's docstring).
HARNESS_ENV = {
    "AIGC_MARKET_FAUCET_WEI": str(10 * ETHER),
    "AIGC_MARKET_FAUCET_CLIENT_BUDGET_WEI": str(10**6 * ETHER),
    "AIGC_MARKET_FAUCET_BUDGET_WEI": str(10**6 * ETHER),
    "AIGC_MARKET_RATE_LIMIT_PER_S": "0",
    "AIGC_MARKET_ACCOUNT_RATE_LIMIT_PER_S": "0",
    "AIGC_MARKET_ACCOUNT_CREATIONS_PER_HOUR": "0",
    "AIGC_MARKET_SIMULATED_ESPS": "true",
}


class ServerStartError(RuntimeError):
    """The server exited or did not answer GET /health in time."""


def serve_command() -> list[str]:
    """`aigc-market serve` from this interpreter's environment (the console script, or `-m cli`)."""
    script = Path(sys.executable).with_name("aigc-market")
    if script.exists():
        return [str(script), "serve"]
    return [sys.executable, "-c", "from cli.main import run; raise SystemExit(run())", "serve"]


def kill_group(process: subprocess.Popen[bytes], sig: int) -> None:
    """Send `sig` to the process group of `process` (a child started with `start_new_session`) and reap it;
    SIGKILL after 30 s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@dataclass
class ServerProcess:
    """`aigc-market serve --host 127.0.0.1 --data DIR [--rpc URL] [--db URL]`, restartable."""

    data_dir: Path
    rpc_url: str | None = None
    db_url: str | None = None
    anvil_port: int | None = None
    env: dict[str, str] = field(default_factory=dict)
    extra_args: list[str] = field(default_factory=list)
    """More options of `aigc-market serve` (`--access-log`, say)."""
    startup_timeout: float = 60.0
    port: int = 0
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)
    starts: int = field(default=0, init=False)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> ServerProcess:
        """Start on a fresh free port and wait until /health answers 200."""
        if self.process is not None:
            raise RuntimeError("the server is already running")
        self.port = free_port()
        command = serve_command() + ["--host", LOOPBACK, "--port", str(self.port), "--data", str(self.data_dir)]
        if self.rpc_url:
            command += ["--rpc", self.rpc_url]
        if self.db_url:
            command += ["--db", self.db_url]
        if self.anvil_port:
            command += ["--anvil-port", str(self.anvil_port)]
        command += self.extra_args
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.data_dir / f"server-{self.starts}.log", "wb")  # noqa: SIM115 - the child holds it
        try:
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=os.environ | HARNESS_ENV | self.env
            )
        finally:
            log.close()
        self.starts += 1
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                code = self.process.returncode
                self.process = None
                tail = (self.data_dir / f"server-{self.starts - 1}.log").read_text(errors="replace")[-2000:]
                raise ServerStartError(f"the server exited with code {code}: {tail}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.kill()
        raise ServerStartError(f"the server did not answer {self.url}/health within {self.startup_timeout:.0f} s")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send `sig` (default SIGKILL) to the server's process group and reap it."""
        if self.process is not None:
            kill_group(self.process, sig)
        self.process = None

    def stop(self) -> None:
        """SIGTERM (uvicorn's graceful shutdown, which also stops a supervised anvil), SIGKILL after 20 s."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=20)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            pass
        self.kill()

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def esp_command() -> list[str]:
    """`aigc-market esp run` from this interpreter's environment."""
    script = Path(sys.executable).with_name("aigc-market")
    if script.exists():
        return [str(script), "esp", "run"]
    return [sys.executable, "-c", "from cli.main import run; raise SystemExit(run())", "esp", "run"]


@dataclass
class NodeProcess:
    """`aigc-market esp run --api URL --key-file KEY --db DB [ARGS...]`: an ESP node in a process of its own (its
    own process group), restartable on the same key and job file; its output goes to `log`."""

    api_url: str
    key_file: Path
    db_path: Path
    args: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)
    starts: int = field(default=0, init=False)

    @property
    def log(self) -> Path:
        return self.db_path.with_suffix(".log")

    def start(self) -> NodeProcess:
        if self.process is not None:
            raise RuntimeError("the node is already running")
        command = esp_command() + ["--api", self.api_url, "--key-file", str(self.key_file), "--db", str(self.db_path)]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(command + self.args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.starts += 1
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process is not None:
            kill_group(self.process, sig)
        self.process = None

    def stop(self) -> int | None:
        """SIGTERM (the node drains and exits 0), SIGKILL after 30 s; the exit code."""
        if self.process is None:
            return None
        process = self.process
        self.kill(signal.SIGTERM)
        return process.returncode


@contextlib.contextmanager
def serve_in_thread(app: FastAPI, startup_timeout: float = 30.0) -> Iterator[str]:
    """`app` under uvicorn on 127.0.0.1 (a free port) in a daemon thread; yields its URL, stops it on exit."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host=LOOPBACK, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    if not server.started:
        server.should_exit = True
        raise ServerStartError(f"the in-process server did not start within {startup_timeout:.0f} s")
    try:
        yield f"http://{LOOPBACK}:{port}"
    finally:
        server.should_exit = True
        thread.join(startup_timeout)
