"""The process a simulation runs in (spawned by `api.simulations.SimulationRunner`), apart from the server's.

It lowers its own priority, so that requests keep the CPU first, limits its address space
(RLIMIT_AS) and reports through a pipe: `("period", n)` after each period, then `("done", summary)`
or `("error", message)`. Messages are the server's words; the exception itself is printed to this
process's stderr (the server's log), never sent to a client. It imports the simulation only once
its limits are set, so an import that needs more memory than allowed fails under the limit too.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import sys
import traceback
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any


def limit_process(memory_bytes: int) -> None:
    """Lower this process's priority and cap its address space at `memory_bytes` (0: no cap)."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core's worth of BLAS threads, not all of them
    with contextlib.suppress(OSError):
        os.nice(10)
    if memory_bytes:
        resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))


def run_in_child(config: dict[str, Any], workdir: str, memory_bytes: int, conn: Connection) -> None:
    """Run one simulation with `config` (SimulationConfig's JSON) into `workdir`, reporting through `conn`."""
    try:
        limit_process(memory_bytes)
        from market.chain.connection import Chain
        from market.simulation import SimulationConfig, run_simulation

        result = run_simulation(
            SimulationConfig.from_mapping(config),
            Chain.embedded(),
            Path(workdir),
            on_period=lambda period: conn.send(("period", period)),
        )
        conn.send(("done", json.loads(json.dumps(result.summary, default=str))))
    except MemoryError:
        conn.send(("error", f"the run exceeded its memory limit of {memory_bytes} bytes"))
    except BaseException as exc:
        traceback.print_exc(file=sys.stderr)
        conn.send(("error", f"the run failed ({exc.__class__.__name__})"))
    finally:
        conn.close()
