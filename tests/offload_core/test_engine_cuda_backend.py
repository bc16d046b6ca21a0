"""EdgeEngine(backend="cuda") (issue 21, item 1): the CUDA kernel (`offload_core.cuda_kernel`), here under numba's CUDA
simulator, steps like the numba CPU kernel; without a device or the simulator the engine refuses it in one line.

Each check runs in a subprocess: numba reads NUMBA_ENABLE_CUDASIM once, when `numba.cuda` is first imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]

# Three steps of B = 3 environments on one backend and on numba, from the same seed, tasks and random actions; prints
# "ok" when every StepResult term and the state the policies read agree (relative 1e-9, float64).
TWIN_STEPS = """
import dataclasses, sys, torch
from offload_core.config import preset
from offload_core.engine import Action, EdgeEngine, StepResult
from offload_core.schedulers import greedy

name, policy = sys.argv[1], sys.argv[2]
config = preset(name).config
cuda, numba = (EdgeEngine(config, 3, policy, dtype=torch.float64, backend=b) for b in ("cuda", "numba"))
cuda.reset(4)
numba.reset(4)
decisions = torch.Generator().manual_seed(4)
served = 0
for _ in range(3):
    tasks = numba.sample_tasks()
    shape = (3, config.n_devices, config.n_servers + 2)
    raw = torch.rand(shape, generator=decisions, dtype=torch.float64)
    raw = raw * (torch.rand(shape, generator=decisions, dtype=torch.float64) >= 0.5)
    if not config.cloud_execution:
        raw[..., -1] = 0.0
    raw[..., 0] += (raw.sum(-1) == 0).to(raw.dtype)
    action = Action(raw / raw.sum(-1, keepdim=True), torch.rand((3, config.n_devices), generator=decisions) < 0.8)
    chosen = {e.backend: greedy(e, tasks, torch.Generator().manual_seed(0), None).split for e in (cuda, numba)}
    assert torch.equal(chosen["cuda"], chosen["numba"]), "Greedy differs on the CUDA target"
    expected = numba.step(tasks, action)
    got = cuda.step(tasks, action)
    for field in dataclasses.fields(StepResult):
        torch.testing.assert_close(getattr(got, field.name), getattr(expected, field.name), rtol=1e-9, atol=1e-12,
                                   msg=field.name)
    torch.testing.assert_close(cuda.busy_until, numba.busy_until, rtol=1e-9, atol=1e-12)
    assert torch.equal(cuda.view.cache, numba.view.cache)
    served += int((expected.offloaded & ~expected.failed).sum())
assert served > 0, "no part was served at the edge"
print("ok")
"""


def run_python(code: str, *args: str, simulator: bool) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "NUMBA_ENABLE_CUDASIM"}
    if simulator:
        env["NUMBA_ENABLE_CUDASIM"] = "1"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=240, cwd=REPO_ROOT, env=env)


@pytest.mark.parametrize("name,policy", [("mato", "lfu"), ("lc", "lc")])
def test_the_cuda_backend_under_the_simulator_steps_like_the_numba_backend(name, policy):
    proc = run_python(TWIN_STEPS, name, policy, simulator=True)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-3000:]


# The engine on backend "cuda" against the scalar reference, with the harness of test_engine_matches_reference.py, on
# every FIFO preset and caching policy: queueing, eviction and the miss paths included (about 90 tasks per case).
AGAINST_REFERENCE = """
import sys
sys.path[:0] = ["tests", "tests/offload_core"]
import test_engine_matches_reference as harness

harness.TASKS_PER_CASE = 90
for name, policy in harness.FIFO_CASES:
    seen = harness.compare_runs(name, policy, batch=3, backend="cuda")
    if policy != "cloud":
        assert seen["queued"] > 0 and seen["loads"] > 0, (name, policy, seen)
        assert seen["failed"] + seen["forwarded"] > 0, (name, policy, seen)
    print(name, policy, seen)
print("ok")
"""


def test_the_cuda_backend_under_the_simulator_equals_the_scalar_reference_on_every_fifo_preset_and_policy():
    proc = run_python(AGAINST_REFERENCE, simulator=True)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("ok"), proc.stderr[-3000:]


REFUSAL = """
import json
from offload_core import cuda_kernel
from offload_core.config import preset
from offload_core.engine import EdgeEngine

reason = cuda_kernel.cuda_ready()
if reason is None:
    print("ready")
else:
    try:
        EdgeEngine(preset("mato").config, 1, backend="cuda")
    except ValueError as error:
        print(json.dumps({"message": str(error), "reason": reason}))
"""


def test_the_cuda_backend_is_refused_in_one_line_without_a_device_or_the_simulator():
    proc = run_python(REFUSAL, simulator=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    if proc.stdout.strip() == "ready":
        pytest.skip("this machine has a CUDA device: nothing to refuse")
    refused = json.loads(proc.stdout)  # no output, hence no JSON, if the engine accepted the backend
    message, reason = refused["message"], refused["reason"]
    assert reason and "backend 'cuda'" in message and reason in message
    assert "\n" not in message
