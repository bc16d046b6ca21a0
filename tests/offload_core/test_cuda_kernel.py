"""The CUDA kernels (issue 21), compiled from the CPU kernels' own bodies: `benchmarks/gpu.sh --dry-run` runs
every phase of the GPU benchmark on the CPU, the CUDA kernel in numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1,
set before numba is imported, hence a subprocess per phase). Its equality phase holds the CUDA kernel equal to
the CPU kernel, which test_engine_matches_reference.py holds equal to the scalar reference."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from offload_core.config import CACHING_POLICIES, preset

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def phases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    out = tmp_path_factory.mktemp("gpu")
    env = {**os.environ, "OUT": str(out), "PYTHON": os.environ.get("PYTHON", str(ROOT / ".venv" / "bin" / "python"))}
    done = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu.sh"), "--dry-run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    rows = [json.loads(line) for line in (out / "gpu.jsonl").read_text().splitlines()]
    return {row["phase"]: row for row in rows}


def test_the_cpu_and_cuda_kernels_are_compiled_from_one_body(phases: dict[str, dict]) -> None:
    assert phases["equality"]["same_source"] == {"step": True, "greedy": True}


def test_the_cuda_kernel_equals_the_cpu_kernel_on_every_fifo_preset_and_caching_policy(phases: dict[str, dict]) -> None:
    expected = {
        f"{name}/{policy}"
        for name in ("mato", "mato-cloud", "lc")
        for policy in CACHING_POLICIES
        if policy != "cloud" or preset(name).config.cloud_execution
    }
    equality = phases["equality"]
    assert equality["equal"] is True and set(equality["cases"]) == expected  # outputs and state after every step


@pytest.mark.parametrize("name", ["mato", "mato-cloud", "lc"])
def test_the_equality_runs_exercise_queueing_eviction_and_the_miss_paths(phases: dict[str, dict], name: str) -> None:
    for case, seen in phases["equality"]["cases"].items():
        if not case.startswith(f"{name}/") or case.endswith("/cloud"):
            continue
        assert seen["queued"] > 0 and seen["loads"] > 0, case
        if preset(name).config.cloud_execution:
            assert seen["forwarded"] > 0 and seen["failed"] == 0, case
        else:
            assert seen["failed"] > 0 and seen["forwarded"] == 0, case


def test_the_dry_run_times_the_fused_kernel_and_the_eager_step_and_names_its_device(phases: dict[str, dict]) -> None:
    for phase in ("kernel", "torch"):
        (run,) = phases[phase]["runs"]
        assert phases[phase]["device"] == "cpu (numba CUDA simulator)" and phases[phase]["dry_run"] is True
        assert run["B"] == 4 and run["steps"] >= 1 and run["decisions_per_s"] > 0
    assert phases["kernel"]["runs"][0]["bytes_per_decision"] > 0
    assert "skipped" in phases["graph"]["runs"][0]  # a CUDA graph needs a CUDA device


def test_without_a_gpu_or_the_simulator_the_cuda_target_says_why_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NUMBA_ENABLE_CUDASIM", raising=False)
    from offload_core import cuda_kernel

    if cuda_kernel.cuda.is_available():
        pytest.skip("this machine has a CUDA device")  # the CI machine has none: this test runs there
    reason = cuda_kernel.cuda_ready()
    assert reason is not None and "\n" not in reason and "NUMBA_ENABLE_CUDASIM" in reason
