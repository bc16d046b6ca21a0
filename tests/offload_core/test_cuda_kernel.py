"""The CUDA kernels (issue 21), compiled from the CPU kernels' own bodies, run in numba's CUDA simulator in a
subprocess (NUMBA_ENABLE_CUDASIM=1 must be set before numba is imported) and equal the CPU kernels, which
test_engine_matches_reference.py holds equal to the scalar reference."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from offload_core.config import CACHING_POLICIES, preset

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent


@pytest.fixture(scope="module")
def simulated() -> dict:
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1", "PYTHONPATH": os.pathsep.join([str(TESTS), str(ROOT)])}
    done = subprocess.run(
        [sys.executable, str(TESTS / "offload_core" / "cuda_sim_check.py"), "3", "8"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_cpu_and_cuda_kernels_are_compiled_from_one_body(simulated: dict) -> None:
    assert simulated["same_source"] == {"step_cpu": True, "step_cuda": True, "greedy_cpu": True, "greedy_cuda": True}


def test_the_cuda_kernel_equals_the_cpu_kernel_on_every_fifo_preset_and_caching_policy(simulated: dict) -> None:
    expected = {
        f"{name}/{policy}"
        for name in ("mato", "mato-cloud", "lc")
        for policy in CACHING_POLICIES
        if policy != "cloud" or preset(name).config.cloud_execution
    }
    assert set(simulated["cases"]) == expected  # each ran 8 steps with equality asserted after every one


@pytest.mark.parametrize("name", ["mato", "mato-cloud", "lc"])
def test_the_simulated_runs_exercise_queueing_eviction_and_the_miss_paths(simulated: dict, name: str) -> None:
    for case, seen in simulated["cases"].items():
        if not case.startswith(f"{name}/") or case.endswith("/cloud"):
            continue
        assert seen["queued"] > 0 and seen["loads"] > 0, case
        if preset(name).config.cloud_execution:
            assert seen["forwarded"] > 0 and seen["failed"] == 0, case
        else:
            assert seen["failed"] > 0 and seen["forwarded"] == 0, case


def test_the_simulator_counts_as_ready(simulated: dict) -> None:
    assert simulated["ready"] is None


def test_without_a_gpu_or_the_simulator_the_cuda_target_says_why_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NUMBA_ENABLE_CUDASIM", raising=False)
    from offload_core import cuda_kernel

    if cuda_kernel.cuda.is_available():
        pytest.skip("this machine has a CUDA device")  # the CI machine has none: this test runs there
    reason = cuda_kernel.cuda_ready()
    assert reason is not None and "\n" not in reason and "NUMBA_ENABLE_CUDASIM" in reason
