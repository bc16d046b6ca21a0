"""Stand-ins for the simulation worker (`api.simulation_worker.run_in_child`) in the limits tests: cheap runs
that sleep, hog memory or fail, in a spawned process like the real one (importable by name from tests/)."""

from __future__ import annotations

import os
import time
from multiprocessing.connection import Connection
from typing import Any

from api.simulation_worker import limit_process


def quick(config: dict[str, Any], workdir: str, memory_bytes: int, conn: Connection) -> None:
    """Two periods and a summary that says which process ran it; writes a small output file."""
    limit_process(memory_bytes)
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, "summary.json"), "w") as handle:
        handle.write("{}" + " " * 1000)
    for period in range(int(config.get("periods", 2))):
        conn.send(("period", period))
    conn.send(("done", {"pid": os.getpid(), "nice": os.nice(0)}))
    conn.close()


def sleepy(config: dict[str, Any], workdir: str, memory_bytes: int, conn: Connection) -> None:
    """Never finishes on its own (the time limit ends it)."""
    conn.send(("period", 0))
    time.sleep(600)


def hungry(config: dict[str, Any], workdir: str, memory_bytes: int, conn: Connection) -> None:
    """Asks for far more memory than its limit, the way the real worker reports it."""
    limit_process(memory_bytes)
    try:
        hoard = bytearray(4 * memory_bytes)
        conn.send(("done", {"size": len(hoard)}))
    except MemoryError:
        conn.send(("error", f"the run exceeded its memory limit of {memory_bytes} bytes"))


def broken(config: dict[str, Any], workdir: str, memory_bytes: int, conn: Connection) -> None:
    """Dies without a word (a segfault, say)."""
    os._exit(3)
