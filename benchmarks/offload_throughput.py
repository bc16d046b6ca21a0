"""Task decisions per second of the batched engine against the scalar reference, same run.

A decision is one task placed and fully accounted (uplink, arrival-ordered FIFO queue, model
switch with LFU caching, compute, local part, the view of the caches at the next step's time) on
the `mato` preset: each step schedules M tasks per environment greedily (nearest server holding the
model, else local) and steps the engine. Task batches are drawn before
the timed loop (the scalar reference's streams are too); the rate with sampling inside the loop is
reported beside it. Both engine backends run: "numba" (compiled CPU kernel) and "torch" (the
batched tensor engine, which is also the GPU path).

    python benchmarks/offload_throughput.py [--sizes 1,256,4096,16384] [--device cpu] [--threads N] [--json]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time

import torch

from offload_core.config import preset
from offload_core.engine import EdgeEngine
from offload_core.names import Backend, CachingPolicy, PresetName
from offload_core.reference import ScalarEdge, ScalarTask, ScalarTopology
from offload_core.schedulers import greedy

MIN_SECONDS = 1.0
POOL = 8  # task batches drawn ahead of the timed loop


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def engine_rate(batch: int, device: str, backend: Backend | str, sample_in_loop: bool = False, seed: int = 0) -> float:
    """Decisions per second at batch size `batch` (timed over at least MIN_SECONDS)."""
    config = preset(PresetName.MATO).config
    engine = EdgeEngine(config, batch, CachingPolicy.LFU, device=device, dtype=torch.float32, backend=backend)
    engine.reset(seed)
    decisions_generator = torch.Generator(device=engine.device).manual_seed(seed)
    pool = [engine.sample_tasks() for _ in range(POOL)]
    for tasks in pool[:3]:  # warm-up (and compilation of the numba kernels)
        engine.step(tasks, greedy(engine, tasks, decisions_generator, None))
    _sync(engine.device)
    steps, start = 0, time.perf_counter()
    while True:
        tasks = engine.sample_tasks() if sample_in_loop else pool[steps % POOL]
        engine.step(tasks, greedy(engine, tasks, decisions_generator, None))
        steps += 1
        _sync(engine.device)
        elapsed = time.perf_counter() - start
        if elapsed >= MIN_SECONDS and steps >= 3:
            return steps * batch * config.n_devices / elapsed


def scalar_rate(seed: int = 0) -> float:
    """Decisions per second of the plain-Python reference with the same greedy rule."""
    config = preset(PresetName.MATO).config
    engine = EdgeEngine(config, 1, CachingPolicy.LFU, dtype=torch.float64)
    top = engine.reset(seed)
    edge = ScalarEdge(config, ScalarTopology.of(top, 0), CachingPolicy.LFU, engine.view.cache[0].tolist())
    distance = top.distance[0].tolist()
    n_servers = config.n_servers
    streams = []
    for _ in range(50):
        t = engine.sample_tasks()
        streams.append(
            [
                ScalarTask(
                    int(t.model[0, m]), float(t.size[0, m]), float(t.density[0, m]), float(t.deadline[0, m]), float(t.demand[0, m])
                )
                for m in range(config.n_devices)
            ]
        )
    decisions, start = 0, time.perf_counter()
    while True:
        for tasks in streams:
            splits, downloads = [], []
            for m, task in enumerate(tasks):
                holders = [n for n in range(n_servers) if edge.servers[n].cached[task.model]]
                split = [0.0] * (n_servers + 2)
                if holders:
                    split[1 + min(holders, key=lambda n: distance[m][n])] = 1.0
                else:
                    split[0] = 1.0
                splits.append(split)
                downloads.append(True)
            edge.step(tasks, splits, downloads)
            decisions += len(tasks)
        elapsed = time.perf_counter() - start
        if elapsed >= MIN_SECONDS:
            return decisions / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1,256,4096,16384", help="comma-separated batch sizes B")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--json", action="store_true", help="end with one JSON object")
    args = parser.parse_args(argv)
    if args.threads < 0:
        parser.error("--threads must not be negative")
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = [int(s) for s in args.sizes.split(",")]
    if any(s < 1 for s in sizes):
        parser.error("--sizes must be positive integers")
    device_name = torch.cuda.get_device_name() if args.device == "cuda" else f"cpu ({torch.get_num_threads()} threads)"

    scalar = scalar_rate()
    print(f"scalar reference: {scalar:,.0f} decisions/s")
    backends = [Backend.NUMBA, Backend.TORCH] if args.device == "cpu" else [Backend.TORCH]
    rates: dict[str, dict[str, float]] = {backend.value: {} for backend in backends}
    for backend in backends:
        for batch in sizes:
            rate = engine_rate(batch, args.device, backend)
            rates[backend.value][str(batch)] = rate
            print(f"{backend.value:>5} B = {batch:>6}: {rate:>14,.0f} decisions/s  ({rate / scalar:,.1f}x scalar)")
    fastest = backends[0].value
    reference_batch = "4096" if "4096" in rates[fastest] else str(max(sizes))
    with_sampling = engine_rate(int(reference_batch), args.device, fastest, sample_in_loop=True)
    ratio = rates[fastest][reference_batch] / scalar
    print(f"{fastest} B={reference_batch} with task sampling inside the loop: {with_sampling:,.0f} decisions/s")
    print(f"ratio {fastest} B={reference_batch} / scalar: {ratio:.1f}x on {device_name}")
    if args.json:
        print(
            json.dumps(
                {
                    "device": device_name,
                    "backend": fastest,
                    "decisions_per_s": rates[fastest],
                    "decisions_per_s_by_backend": rates,
                    "scalar_per_s": scalar,
                    "ratio": ratio,
                    "ratio_batch": int(reference_batch),
                    "with_sampling_per_s": with_sampling,
                    "target_decisions_per_s_at_4096": 20e6,
                    "target_ratio": 30.0,
                    "meets_targets": bool(rates[fastest].get("4096", math.nan) >= 20e6 and ratio >= 30.0),
                }
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
