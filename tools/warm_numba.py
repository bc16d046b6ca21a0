"""Compile the numba CPU kernels (`offload_core.kernel`) into numba's on-disk cache, one process per dtype.

Usage: python tools/warm_numba.py   (`make test` runs it before the suite)

The kernels are compiled with `cache=True`: the first process that calls one for a dtype compiles it
(12-15 s on a quiet core, 25-36 s with the suite's two workers on both cores) and writes it beside the
module; every later process loads it in milliseconds. Under `pytest -n 2` each worker met the kernels
first in a different file and compiled them itself, so a clean checkout paid the compilation several
times over. Compiling both dtypes here, side by side, pays it once.
"""

from __future__ import annotations

import subprocess
import sys

DTYPES = ("float32", "float64")


def warm(dtype_name: str) -> None:
    """One step of a tiny engine (and the greedy kernel) on the numba backend in `dtype_name`."""
    import torch

    from offload_core.config import preset
    from offload_core.engine import EdgeEngine
    from offload_core.names import Backend, CachingPolicy, PresetName
    from offload_core.schedulers import greedy

    dtype = getattr(torch, dtype_name)
    engine = EdgeEngine(preset(PresetName.MATO).config, 2, CachingPolicy.LFU, dtype=dtype, backend=Backend.NUMBA)
    engine.reset(0)
    tasks = engine.sample_tasks()
    engine.step(tasks, greedy(engine, tasks, torch.Generator().manual_seed(0), None))


def main() -> int:
    if len(sys.argv) == 2:
        warm(sys.argv[1])
        return 0
    processes = [subprocess.Popen([sys.executable, __file__, dtype]) for dtype in DTYPES]
    return max(process.wait() for process in processes)


if __name__ == "__main__":
    sys.exit(main())
