"""Start and stop an anvil node (from the npm package `@foundry-rs/anvil`) on 127.0.0.1."""

from __future__ import annotations

import os
import platform
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

from market.chain.errors import ChainError
from market.chain.paths import NODE_MODULES

LOOPBACK = "127.0.0.1"

_ARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}


class AnvilError(ChainError):
    """anvil is missing, its port is taken, or it did not come up."""


def anvil_binary() -> Path:
    """The anvil executable: `ANVIL_BINARY`, the npm platform package, or `anvil` on PATH."""
    override = os.environ.get("ANVIL_BINARY")
    if override:
        return Path(override)
    system = platform.system().lower()
    arch = _ARCH.get(platform.machine().lower(), platform.machine().lower())
    packaged = NODE_MODULES / "@foundry-rs" / f"anvil-{system}-{arch}" / "bin" / "anvil"
    if packaged.is_file():
        return packaged
    on_path = shutil.which("anvil")
    if on_path:
        return Path(on_path)
    raise AnvilError("anvil not found: run `make install` (npm package @foundry-rs/anvil) or set ANVIL_BINARY")


def port_is_free(port: int, host: str = LOOPBACK) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        return sock.connect_ex((host, port)) != 0


def free_port(host: str = LOOPBACK) -> int:
    """A TCP port the OS reports free right now on `host`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def rpc_answers(url: str, timeout: float = 1.0) -> bool:
    """Whether an EVM JSON-RPC node answers eth_chainId at `url`."""
    try:
        reply = requests.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}, timeout=timeout)
        return reply.ok and "result" in reply.json()
    except (requests.RequestException, ValueError):
        return False


@dataclass
class AnvilNode:
    """An anvil process bound to 127.0.0.1; a context manager that stops it on exit."""

    port: int = 8545
    state_path: Path | None = None
    """When set, anvil loads its state from this file at start and dumps it there at exit."""
    chain_id: int = 31337
    startup_timeout: float = 30.0
    order: str | None = None
    """anvil's transaction order in a block ("fees", its default, or "fifo": the order they were sent)."""
    balance_ether: int | None = None
    """Ether of each development account (anvil's default, 10,000, when None): a large market needs more."""
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)
    cache_dir: Path | None = field(default=None, init=False)
    """anvil's own cache of persisted states (`--cache-path`, and its $HOME): private to this node, removed by
    `stop`. By default anvil spills states under ~/.foundry/anvil/tmp and never removes them: one test session
    wrote 13 GB there in ten minutes, and a day of them filled the disk."""

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> AnvilNode:
        if not port_is_free(self.port):
            raise AnvilError(f"port {self.port} on {LOOPBACK} is already in use")
        command = [
            str(anvil_binary()),
            "--host",
            LOOPBACK,
            "--port",
            str(self.port),
            "--chain-id",
            str(self.chain_id),
            "--hardfork",
            "prague",
            "--quiet",
        ]
        if self.order is not None:
            command += ["--order", self.order]
        if self.balance_ether is not None:
            command += ["--balance", str(self.balance_ether)]
        if self.state_path is not None:
            self.state_path.parent.mkdir(parents=True, exist_ok=True)
            command += ["--state", str(self.state_path)]
        self.cache_dir = Path(tempfile.mkdtemp(prefix="anvil-cache-"))
        command += ["--cache-path", str(self.cache_dir)]
        # anvil also spills states to $HOME/.foundry/anvil/tmp whatever --cache-path says: a home of its own.
        environment = {**os.environ, "HOME": str(self.cache_dir)}
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=environment)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                stderr = self.process.stderr.read().decode(errors="replace") if self.process.stderr else ""
                code = self.process.returncode
                self.stop()
                raise AnvilError(f"anvil exited with code {code}: {stderr.strip()[:500]}")
            if rpc_answers(self.url, timeout=0.5):
                return self
            time.sleep(0.1)
        self.stop()
        raise AnvilError(f"anvil did not answer at {self.url} within {self.startup_timeout:.0f} s")

    def stop(self) -> None:
        """Stop the node gracefully (so that `--state` is dumped), killing it if it hangs."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stderr:
            self.process.stderr.close()
        if self.cache_dir is not None:
            shutil.rmtree(self.cache_dir, ignore_errors=True)
            self.cache_dir = None
        self.process = None

    def __enter__(self) -> AnvilNode:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
