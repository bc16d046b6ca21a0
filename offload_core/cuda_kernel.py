"""The CUDA target of the offloading kernels: `offload_core.kernel`'s bodies (`env_step`, `greedy_env`)
compiled by numba for CUDA, one thread per environment (issue 21; docs/cost-model.md).

The state stays on the device and is updated in place (torch CUDA tensors are passed zero-copy through
`__cuda_array_interface__`, `kernel_array`); the per-environment scratch rows are device arrays kept
between calls of one shape. With NUMBA_ENABLE_CUDASIM=1 set before numba is imported, numba's simulator
runs the same kernels on the CPU (slowly: one Python thread per CUDA thread), which is how the tests
check them on a machine without a GPU.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

import numpy as np
import numpy.typing as npt

from offload_core.kernel import env_step, greedy_env, scratch_widths

cuda: Any = importlib.import_module("numba.cuda")
"""numba's CUDA module, a module global so that the simulator can swap in its own `grid` (and the rest)."""


THREADS_PER_BLOCK = 128
"""CUDA threads per block of both kernels (one environment per thread)."""


def cuda_ready() -> str | None:
    """None when the CUDA kernels can run here (a CUDA device, or numba's simulator); else why not, one line."""
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        return None
    try:
        available = bool(cuda.is_available())
    except Exception as exc:  # a driver that fails to load
        return f"the CUDA driver cannot be used: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
    if not available:
        return "no CUDA device here (NUMBA_ENABLE_CUDASIM=1 runs the CUDA kernel in numba's simulator, on the CPU)"
    return None


def kernel_array(tensor: Any) -> Any:
    """A zero-copy array of a torch tensor for the kernels: NumPy for a CPU tensor, a numba device array
    (`__cuda_array_interface__`) for a CUDA tensor."""
    if tensor.device.type == "cuda":
        return cuda.as_cuda_array(tensor.detach())
    return tensor.detach().numpy()


_cuda_kernels: dict[str, Any] = {}
_cuda_scratch: dict[tuple[int, int, int], tuple[Any, Any]] = {}


def kernels() -> dict[str, Any]:
    """The CUDA kernels, compiled on first use from `env_step` and `greedy_env` (the CPU kernels' bodies)."""
    if _cuda_kernels:
        return _cuda_kernels

    env_step_cuda = cuda.jit(device=True)(env_step)
    greedy_env_cuda = cuda.jit(device=True)(greedy_env)

    @cuda.jit
    def step(  # type: ignore[no-untyped-def]
        now,
        p,
        policy,
        curves,
        device_freq,
        model_size,
        server_quality,
        server_freq,
        up_rate,
        down_rate,
        model,
        size,
        density,
        deadline,
        demand,
        evict_keys,
        has_keys,
        split,
        download,
        cached,
        free_memory,
        loaded_at,
        last_used,
        frequency,
        context,
        context_time,
        resident,
        pending_time,
        pending_cached,
        pending_count,
        busy_until,
        out,
        floats,
        ints,
    ):
        b = cuda.grid(1)
        if b < model.shape[0]:
            env_step_cuda(
                b,
                now,
                p,
                policy,
                curves,
                (device_freq, model_size, server_quality, server_freq, up_rate, down_rate),
                (model, size, density, deadline, demand, evict_keys, has_keys),
                (split, download),
                (
                    cached,
                    free_memory,
                    loaded_at,
                    last_used,
                    frequency,
                    context,
                    context_time,
                    resident,
                    pending_time,
                    pending_cached,
                    pending_count,
                    busy_until,
                ),
                out,
                floats[b],
                ints[b],
            )

    @cuda.jit
    def greedy(cached, model, distance, split):  # type: ignore[no-untyped-def]
        b = cuda.grid(1)
        if b < model.shape[0]:
            greedy_env_cuda(b, cached, model, distance, split)

    _cuda_kernels.update(step=step, greedy=greedy, env_step=env_step_cuda, greedy_env=greedy_env_cuda)
    return _cuda_kernels


def body_of(device_function: Any) -> Any:
    """The Python function a CUDA device function was compiled from (on a GPU and in the simulator)."""
    return getattr(device_function, "py_func", getattr(device_function, "fn", None))


_constants_on_device: dict[bytes, Any] = {}


def _constants(p: npt.NDArray[np.float64], curves: npt.NDArray[np.float64]) -> tuple[Any, Any]:
    """The config's scalars and accuracy curves on the device, copied once per config (a copy per step would
    synchronise the host with the device at every step)."""
    key = p.tobytes() + curves.tobytes()
    if key not in _constants_on_device:
        _constants_on_device[key] = (cuda.to_device(p), cuda.to_device(curves))
    return _constants_on_device[key]  # type: ignore[no-any-return]


def _launch(batch: int) -> tuple[int, int]:
    """(blocks, threads) covering `batch` environments."""
    threads = min(THREADS_PER_BLOCK, batch)
    return (batch + threads - 1) // threads, threads


def cuda_step(now: float, p: npt.NDArray[np.float64], policy: int, curves: npt.NDArray[np.float64], *arrays: Any) -> None:
    """`step_kernel` on the CUDA target: the same arguments (arrays as `kernel_array` gives them), one thread
    per environment, the state updated in place on the device. The scratch rows live on the device, kept
    between calls of one shape."""
    compiled = kernels()
    model, cached = arrays[6], arrays[15]
    batch, devices = model.shape
    servers, models = cached.shape[1], cached.shape[2]
    key = (batch, devices * servers, models)
    if key not in _cuda_scratch:
        width_f, width_i = scratch_widths(devices, servers, models)
        _cuda_scratch[key] = (cuda.device_array((batch, width_f), np.float64), cuda.device_array((batch, width_i), np.int64))
    floats, ints = _cuda_scratch[key]
    blocks, threads = _launch(batch)
    p_device, curves_device = _constants(p, curves)
    compiled["step"][blocks, threads](now, p_device, policy, curves_device, *arrays, floats, ints)


def cuda_greedy(cached: Any, model: Any, distance: Any, split: Any) -> None:
    """`greedy_kernel` on the CUDA target (arrays as `kernel_array` gives them)."""
    blocks, threads = _launch(model.shape[0])
    kernels()["greedy"][blocks, threads](cached, model, distance, split)
