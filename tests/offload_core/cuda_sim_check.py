"""Run in a subprocess with NUMBA_ENABLE_CUDASIM=1 (numba's CUDA simulator, on the CPU): the CUDA kernels,
compiled from the CPU kernels' bodies, against the CPU kernels on the same inputs, step after step.

Prints one JSON line: the cases run and what they exercised."""

from __future__ import annotations

import json
import os
import sys

import numpy as np
import torch

assert os.environ.get("NUMBA_ENABLE_CUDASIM") == "1", "run me under numba's CUDA simulator"

from offload_core_helpers import random_action  # noqa: E402

from offload_core import cuda_kernel, kernel  # noqa: E402
from offload_core.config import CACHING_POLICIES, preset  # noqa: E402
from offload_core.engine import EdgeEngine  # noqa: E402

STATE = ("cached", "free_memory", "loaded_at", "last_used", "frequency", "context", "context_time", "resident")
PENDING = ("pending_time", "pending_cached", "pending_count")


def arguments(engine: EdgeEngine, tasks, action, out: np.ndarray, busy: np.ndarray, cache: dict) -> tuple:
    top, c = engine.topology, engine.config
    keys = tasks.evict_keys if tasks.evict_keys is not None else torch.zeros((1, 1, 1, c.n_models), dtype=engine.dtype)
    return (
        engine.time,
        kernel.kernel_params(c),
        kernel.POLICY_CODES[engine.policy],
        np.array(c.accuracy_curves(), dtype=np.float64),
        top.device_freq.numpy(),
        top.model_size.numpy(),
        top.server_quality.numpy(),
        top.server_freq.numpy(),
        top.up_rate.numpy(),
        top.down_rate.numpy(),
        tasks.model.numpy(),
        tasks.size.numpy(),
        tasks.density.numpy(),
        tasks.deadline.numpy(),
        tasks.demand.numpy(),
        keys.numpy(),
        int(tasks.evict_keys is not None),
        action.split.to(engine.dtype).contiguous().numpy(),
        action.download.numpy(),
        *(cache[name] for name in ("cached", "free_memory", "loaded_at", "last_used", "frequency", "context")),
        cache["context_time"],
        cache["resident"],
        cache["pending_time"],
        cache["pending_cached"],
        cache["pending_count"],
        busy,
        out,
    )


def run_case(name: str, policy: str, batch: int, steps: int, seed: int) -> dict[str, int]:
    config = preset(name).config
    engine = EdgeEngine(config, batch, policy, dtype=torch.float64, backend="numba")
    engine.reset(seed)
    decisions = torch.Generator().manual_seed(seed + 7)
    state = {n: getattr(engine.cache, n).numpy().copy() for n in STATE + PENDING}
    twins = {"cpu": {k: v.copy() for k, v in state.items()}, "cuda": {k: v.copy() for k, v in state.items()}}
    busy = {"cpu": engine.busy_until.numpy().copy(), "cuda": engine.busy_until.numpy().copy()}
    seen = {"steps": 0, "queued": 0, "loads": 0, "failed": 0, "forwarded": 0}
    for step in range(steps):
        tasks = engine.sample_tasks()
        action = random_action(engine, decisions, 0.5)
        outs = {}
        for target, run in (("cpu", kernel.step_kernel), ("cuda", cuda_kernel.cuda_step)):
            out = np.zeros((batch, config.n_devices, kernel.OUTPUT_COLUMNS))
            run(*arguments(engine, tasks, action, out, busy[target], twins[target]))
            outs[target] = out
        np.testing.assert_allclose(outs["cuda"], outs["cpu"], rtol=1e-6, atol=1e-12, err_msg=f"{name} {policy} step {step}")
        for key in twins["cpu"]:
            np.testing.assert_array_equal(twins["cuda"][key], twins["cpu"][key], err_msg=f"{name} {policy} {key} step {step}")
        np.testing.assert_array_equal(busy["cuda"], busy["cpu"])
        engine.steps += 1  # time moves on; the twins carry the state
        out = outs["cpu"]
        seen["steps"] += 1
        seen["queued"] += int((out[..., 1] > 0).sum())
        seen["loads"] += int((out[..., 2] > 0).sum())
        seen["failed"] += int((out[..., 17] > 0.5).sum())
        seen["forwarded"] += int((out[..., 21] > 0).sum())
    return seen


def greedy_case(batch: int) -> None:
    config = preset("mato").config
    engine = EdgeEngine(config, batch, "lfu", dtype=torch.float64, backend="numba")
    engine.reset(5)
    tasks = engine.sample_tasks()
    view = engine.view
    splits = {}
    for target, run in (("cpu", kernel.greedy_kernel), ("cuda", cuda_kernel.cuda_greedy)):
        split = np.full((batch, config.n_devices, config.n_servers + 2), -1.0)
        run(view.cache.numpy(), tasks.model.numpy(), view.distance.numpy(), split)
        splits[target] = split
    np.testing.assert_array_equal(splits["cuda"], splits["cpu"])


def main() -> None:
    batch, steps = int(sys.argv[1]), int(sys.argv[2])
    kernels = cuda_kernel._kernels()
    same_source = {
        "step_cpu": kernel.env_step_cpu.py_func is kernel.env_step,
        "step_cuda": getattr(kernels["env_step"], "py_func", getattr(kernels["env_step"], "fn", None)) is kernel.env_step,
        "greedy_cpu": kernel.greedy_env_cpu.py_func is kernel.greedy_env,
        "greedy_cuda": getattr(kernels["greedy_env"], "py_func", getattr(kernels["greedy_env"], "fn", None)) is kernel.greedy_env,
    }
    cases = {}
    for name in ("mato", "mato-cloud", "lc"):
        for policy in CACHING_POLICIES:
            if policy == "cloud" and not preset(name).config.cloud_execution:
                continue
            cases[f"{name}/{policy}"] = run_case(name, policy, batch, steps, seed=len(cases))
    greedy_case(batch)
    print(json.dumps({"same_source": same_source, "cases": cases, "ready": cuda_kernel.cuda_ready()}))


if __name__ == "__main__":
    main()
