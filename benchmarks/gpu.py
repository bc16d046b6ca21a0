"""The offloading core on a GPU (issue 21): the fused CUDA kernel, the eager torch step and the
graph-captured torch step, each timed with one synchronisation per timed window.

Phases (run each in its own process under its own timeout: `benchmarks/gpu.sh`):

- `equality`: the CUDA kernel against the CPU kernel (itself held equal to the scalar reference by the
  tests) on every FIFO preset (mato, mato-cloud, lc) and caching policy, step after step, outputs and
  state (relative 1e-6, float64).
- `kernel`: decisions/s of the fused kernel (`offload_core.cuda_kernel.cuda_step`, one thread per
  environment) on `mato` with LFU, a Greedy action, at each size B; and the estimated memory traffic
  (every argument array read once, the state and the output written once) per second.
- `torch`: the same step through the eager torch engine (`EdgeEngine(backend="torch")`).
- `graph`: the torch step captured once as a CUDA graph and replayed (needs a CUDA device and the
  engine's sync-free step, `validate=False`). A replay recomputes the step from the captured state:
  the timing is the step's, the state does not chain across replays.

A decision is one task placed and fully accounted. `--dry-run` runs every phase on the CPU at tiny
sizes, the CUDA kernel in numba's simulator (NUMBA_ENABLE_CUDASIM=1), to check the whole pipeline
where no GPU is lent; its rates mean nothing. Output: one JSON object per phase on stdout's last line.

    python benchmarks/gpu.py --phase kernel [--sizes 65536,1048576] [--dtype float32] [--dry-run]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

DRY_SIZES = (4,)
SIZES = (65_536, 1_048_576)
PHASES = ("equality", "kernel", "torch", "graph")


def _reexec_in_simulator() -> None:
    """The simulator must be chosen before numba is imported: restart this process with it on."""
    if os.environ.get("NUMBA_ENABLE_CUDASIM") != "1":
        os.environ["NUMBA_ENABLE_CUDASIM"] = "1"
        os.execv(sys.executable, [sys.executable, *sys.argv])


def card_name(dry_run: bool) -> str:
    import torch

    if dry_run or not torch.cuda.is_available():
        return "cpu (numba CUDA simulator)"
    return str(torch.cuda.get_device_name(0))


# -- equality ---------------------------------------------------------------------------------------


def equality(batch: int, steps: int) -> dict[str, Any]:
    """The CUDA kernel against the CPU kernel on the same inputs; raises AssertionError at the first difference."""
    import numpy as np
    import torch

    from offload_core import cuda_kernel, kernel
    from offload_core.config import CACHING_POLICIES, preset
    from offload_core.engine import EdgeEngine

    names = ("cached", "free_memory", "loaded_at", "last_used", "frequency", "context", "context_time", "resident")
    names += ("pending_time", "pending_cached", "pending_count")

    def arguments(engine: EdgeEngine, tasks: Any, split: Any, download: Any, state: dict, busy: Any, out: Any) -> tuple:
        top, c = engine.topology, engine.config
        keys = tasks.evict_keys if tasks.evict_keys is not None else torch.zeros((1, 1, 1, c.n_models), dtype=engine.dtype)
        arrays = (top.device_freq, top.model_size, top.server_quality, top.server_freq, top.up_rate, top.down_rate)
        task_arrays = (tasks.model, tasks.size, tasks.density, tasks.deadline, tasks.demand, keys)
        return (
            engine.time,
            kernel.kernel_params(c),
            kernel.POLICY_CODES[engine.policy],
            np.array(c.accuracy_curves(), dtype=np.float64),
            *(a.numpy() for a in arrays),
            *(a.numpy() for a in task_arrays),
            int(tasks.evict_keys is not None),
            split,
            download,
            *(state[name] for name in names),
            busy,
            out,
        )

    cases: dict[str, dict[str, int]] = {}
    for name in ("mato", "mato-cloud", "lc"):
        config = preset(name).config
        for policy in CACHING_POLICIES:
            if policy == "cloud" and not config.cloud_execution:
                continue
            engine = EdgeEngine(config, batch, policy, dtype=torch.float64, backend="numba")
            engine.reset(len(cases))
            draws = torch.Generator().manual_seed(len(cases) + 7)
            initial = {n: getattr(engine.cache, n).numpy() for n in names}
            twins = {t: {n: v.copy() for n, v in initial.items()} for t in ("cpu", "cuda")}
            busy = {t: engine.busy_until.numpy().copy() for t in ("cpu", "cuda")}
            seen = {"steps": 0, "queued": 0, "loads": 0, "failed": 0, "forwarded": 0}
            for step in range(steps):
                tasks = engine.sample_tasks()
                shape = (batch, config.n_devices, config.n_servers + 2)
                raw = torch.rand(shape, generator=draws, dtype=torch.float64)
                raw = raw * (torch.rand(shape, generator=draws, dtype=torch.float64) >= 0.5)
                if not config.cloud_execution:
                    raw[..., -1] = 0.0
                raw[..., 0] += (raw.sum(-1) == 0).to(raw.dtype)
                split = (raw / raw.sum(-1, keepdim=True)).numpy()
                download = (torch.rand((batch, config.n_devices), generator=draws) < 0.8).numpy()
                outs = {}
                for target, run in (("cpu", kernel.step_kernel), ("cuda", cuda_kernel.cuda_step)):
                    outs[target] = np.zeros((batch, config.n_devices, kernel.OUTPUT_COLUMNS))
                    run(*arguments(engine, tasks, split, download, twins[target], busy[target], outs[target]))
                label = f"{name}/{policy} step {step}"
                np.testing.assert_allclose(outs["cuda"], outs["cpu"], rtol=1e-6, atol=1e-12, err_msg=label)
                for key in names:
                    np.testing.assert_array_equal(twins["cuda"][key], twins["cpu"][key], err_msg=f"{label} {key}")
                np.testing.assert_array_equal(busy["cuda"], busy["cpu"], err_msg=label)
                engine.steps += 1
                out = outs["cpu"]
                seen["steps"] += 1
                seen["queued"] += int((out[..., 1] > 0).sum())
                seen["loads"] += int((out[..., 2] > 0).sum())
                seen["failed"] += int((out[..., 17] > 0.5).sum())
                seen["forwarded"] += int((out[..., 21] > 0).sum())
            cases[f"{name}/{policy}"] = seen
    # Greedy, the kernel schedulers use on the CUDA target, on fresh states of the last preset.
    greedy_engine = EdgeEngine(preset("mato").config, batch, "lfu", dtype=torch.float64, backend="numba")
    greedy_engine.reset(5)
    greedy_tasks = greedy_engine.sample_tasks()
    view = greedy_engine.view
    shape = (batch, view.config.n_devices, view.config.n_servers + 2)
    splits = {t: np.full(shape, -1.0) for t in ("cpu", "cuda")}
    kernel.greedy_kernel(view.cache.numpy(), greedy_tasks.model.numpy(), view.distance.numpy(), splits["cpu"])
    cuda_kernel.cuda_greedy(view.cache.numpy(), greedy_tasks.model.numpy(), view.distance.numpy(), splits["cuda"])
    np.testing.assert_array_equal(splits["cuda"], splits["cpu"], err_msg="greedy")
    same_source = {
        "step": cuda_kernel.body_of(cuda_kernel.kernels()["env_step"]) is kernel.env_step_cpu.py_func is kernel.env_step,
        "greedy": cuda_kernel.body_of(cuda_kernel.kernels()["greedy_env"]) is kernel.greedy_env_cpu.py_func is kernel.greedy_env,
    }
    return {"equal": True, "same_source": same_source, "cases": cases}


# -- timed phases -------------------------------------------------------------------------------------


def _setup(batch: int, device: str, dtype_name: str, backend: str) -> tuple[Any, Any, Any]:
    import torch

    from offload_core.config import preset
    from offload_core.engine import EdgeEngine
    from offload_core.schedulers import greedy

    dtype = {"float32": torch.float32, "float64": torch.float64}[dtype_name]
    engine = EdgeEngine(preset("mato").config, batch, "lfu", device=device, dtype=dtype, backend=backend)
    engine.reset(0)
    tasks = engine.sample_tasks(torch.Generator(device=engine.device).manual_seed(1))
    action = greedy(engine, tasks, torch.Generator(device=engine.device).manual_seed(2), None)
    return engine, tasks, action


def _window(run_step: Any, sync: Any, min_seconds: float, min_steps: int) -> tuple[int, float]:
    """Steps and seconds of one timed window: as many steps as fill `min_seconds`, one sync at its end."""
    run_step()  # warm-up (compilation)
    sync()
    steps, start = 0, time.perf_counter()
    batch_of_steps = max(1, min_steps)
    while True:
        for _ in range(batch_of_steps):
            run_step()
        steps += batch_of_steps
        sync()
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return steps, elapsed
        batch_of_steps *= 2


def kernel_rate(batch: int, dtype_name: str, dry_run: bool, min_seconds: float) -> dict[str, Any]:
    import torch

    from offload_core import cuda_kernel, kernel

    device = "cpu" if dry_run else "cuda"
    engine, tasks, action = _setup(batch, device, dtype_name, "torch")
    c, top, cache = engine.config, engine.topology, engine.cache
    keys = torch.zeros((1, 1, 1, c.n_models), device=engine.device, dtype=engine.dtype)
    out = torch.empty((batch, c.n_devices, kernel.OUTPUT_COLUMNS), device=engine.device, dtype=engine.dtype)
    tensors = [top.device_freq, top.model_size, top.server_quality, top.server_freq, top.up_rate, top.down_rate]
    tensors += [tasks.model, tasks.size, tasks.density, tasks.deadline, tasks.demand, keys]
    state = [cache.cached, cache.free_memory, cache.loaded_at, cache.last_used, cache.frequency, cache.context]
    state += [cache.context_time, cache.resident, cache.pending_time, cache.pending_cached, cache.pending_count]
    state += [engine.busy_until, out]
    split = action.split.to(engine.dtype).contiguous()
    arrays = [cuda_kernel.kernel_array(t) for t in tensors]
    arrays += [0, cuda_kernel.kernel_array(split), cuda_kernel.kernel_array(action.download)]
    arrays += [cuda_kernel.kernel_array(t) for t in state]
    params, curves = kernel.kernel_params(c), kernel.np.array(c.accuracy_curves(), dtype=kernel.np.float64)
    clock = {"step": 0}

    def run_step() -> None:
        clock["step"] += 1
        cuda_kernel.cuda_step(clock["step"] * c.step_s, params, kernel.POLICY_CODES[engine.policy], curves, *arrays)

    steps, seconds = _window(run_step, cuda_kernel.cuda.synchronize, min_seconds, 1 if dry_run else 8)
    traffic = sum(t.numel() * t.element_size() for t in tensors + [split, action.download]) + 2 * sum(
        t.numel() * t.element_size() for t in state
    )
    decisions = steps * batch * c.n_devices
    return {
        "B": batch,
        "steps": steps,
        "seconds": seconds,
        "decisions_per_s": decisions / seconds,
        "bytes_per_decision": traffic / (batch * c.n_devices),
        "traffic_gb_per_s": steps * traffic / seconds / 1e9,
    }


def torch_rate(batch: int, dtype_name: str, dry_run: bool, min_seconds: float, graph: bool) -> dict[str, Any]:
    import inspect

    import torch

    device = "cpu" if dry_run else "cuda"
    engine, tasks, action = _setup(batch, device, dtype_name, "torch")
    sync_free = "validate" in inspect.signature(engine.step).parameters
    kwargs = {"validate": False} if sync_free else {}

    def sync() -> None:
        if engine.device.type == "cuda":
            torch.cuda.synchronize()

    result: dict[str, Any] = {"B": batch, "sync_free_step": sync_free}
    if graph:
        if engine.device.type != "cuda" or not sync_free:
            return {**result, "skipped": "a CUDA graph needs a CUDA device and the engine's sync-free step (validate=False)"}
        for _ in range(3):  # warm-up on a side stream, as torch.cuda.graphs asks
            engine.step(tasks, action, **kwargs)
        captured = torch.cuda.CUDAGraph()
        with torch.cuda.graph(captured):
            engine.step(tasks, action, **kwargs)
        steps, seconds = _window(captured.replay, sync, min_seconds, 8)
    else:
        steps, seconds = _window(lambda: engine.step(tasks, action, **kwargs), sync, min_seconds, 1 if dry_run else 4)
    return {**result, "steps": steps, "seconds": seconds, "decisions_per_s": steps * batch * engine.config.n_devices / seconds}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phase", choices=PHASES, required=True)
    parser.add_argument("--sizes", default=None, help="comma-separated B (default 65536,1048576; 4 with --dry-run)")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--seconds", type=float, default=None, help="minimum length of a timed window")
    parser.add_argument("--dry-run", action="store_true", help="CPU and numba's CUDA simulator, tiny sizes")
    args = parser.parse_args(argv)
    if args.dry_run:
        _reexec_in_simulator()
    sizes = tuple(int(v) for v in args.sizes.split(",")) if args.sizes else (DRY_SIZES if args.dry_run else SIZES)
    seconds = args.seconds if args.seconds is not None else (0.0 if args.dry_run else 2.0)
    report: dict[str, Any] = {"phase": args.phase, "device": card_name(args.dry_run), "dtype": args.dtype, "dry_run": args.dry_run}
    if args.phase == "equality":
        report.update(equality(batch=3 if args.dry_run else 64, steps=4 if args.dry_run else 8))
    elif args.phase == "kernel":
        report["runs"] = [kernel_rate(b, args.dtype, args.dry_run, seconds) for b in sizes]
    else:
        report["runs"] = [torch_rate(b, args.dtype, args.dry_run, seconds, args.phase == "graph") for b in sizes]
    print(json.dumps(report))


if __name__ == "__main__":
    main()
