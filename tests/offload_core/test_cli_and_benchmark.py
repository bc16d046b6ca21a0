"""`aigc-market offload compare` and benchmarks/offload_throughput.py, at small sizes.

The benchmark's arithmetic is checked against a clock the test controls: every engine step (B
environments x M tasks) and every scalar step (M tasks) advances a fake `perf_counter` by a known
amount, so the true rates and their ratio are known before the benchmark reports them. A real run
then checks only what must hold whatever the machine's speed.
"""

from __future__ import annotations

import csv
import dataclasses
import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import torch

from market.chain.paths import REPO_ROOT
from offload_core.compare import compare
from offload_core.config import preset
from offload_core.engine import EdgeEngine
from offload_core.reference import BREAKDOWN_KEYS
from offload_core.scenario import TaskBatch
from offload_core.schedulers import greedy

CLI = [sys.executable, "-m", "cli"]
BENCHMARK = REPO_ROOT / "benchmarks" / "offload_throughput.py"
M = preset("mato").config.n_devices  # tasks per environment and step in the benchmark


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300, cwd=REPO_ROOT)


# -- offload compare ------------------------------------------------------------------------------------


def test_compare_writes_csv_and_png_and_ends_with_the_json_rows(tmp_path: Path):
    proc = run("offload", "compare", "--preset", "lc", "--envs", "4", "--steps", "5", "--out", str(tmp_path), "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["preset"] == "lc"
    assert set(summary["rows"]) == {"random", "cloud", "fifo", "lfu", "lc"}  # [Xu 2023, Table II]
    assert {
        "system_cost",
        "switching_cost",
        "accuracy_cost",
        "edge_execution_ratio",
        "latency_s",
        "energy_j",
        "completion_rate",
        "hit_rate",
        "crash_rate",
    } <= set(summary["rows"]["lc"])
    assert (tmp_path / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # The numbers are the library's for the same preset, sizes and seed, and the CSV holds the same.
    expected = compare(preset("lc"), envs=4, steps=5, seed=0)
    for label, row in expected.items():
        for metric, value in summary["rows"][label].items():
            assert value == pytest.approx(row[metric].mean, rel=1e-12, abs=1e-15), (label, metric)
            assert summary["ci95"][label][metric] == pytest.approx(row[metric].half_width, rel=1e-12, abs=1e-15)
    with (tmp_path / "compare.csv").open() as handle:
        written = list(csv.DictReader(handle))
    assert len(written) == sum(len(row) for row in summary["rows"].values())
    for line in written:
        assert float(line["mean"]) == summary["rows"][line["variant"]][line["metric"]]
        assert float(line["ci95_half_width"]) == summary["ci95"][line["variant"]][line["metric"]]
    # The run's full configuration lies beside its results: the preset's every field and the sizes.
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["preset"] == "lc" and (config["envs"], config["steps"], config["seed"]) == (4, 5, 0)
    assert config["edge"] == json.loads(json.dumps(dataclasses.asdict(preset("lc").config), default=str))


def test_compare_with_an_unknown_preset_prints_one_line_and_exits_2():
    proc = run("offload", "compare", "--preset", "nope")
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "--preset" in proc.stderr


def test_compare_with_zero_environments_prints_one_line_and_exits_2():
    proc = run("offload", "compare", "--envs", "0")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1


# -- the throughput benchmark against a controlled clock -------------------------------------------------

ENGINE_STEP_S = 0.25  # fake seconds per engine step, whatever B
SCALAR_STEP_S = 0.0625  # fake seconds per scalar step (M tasks)


def load_benchmark() -> ModuleType:
    spec = importlib.util.spec_from_file_location("offload_throughput_under_test", BENCHMARK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FakeClock:
    """Stands in for the benchmark's `time` module: perf_counter reads a time that only steps advance."""

    def __init__(self) -> None:
        self.now = 0.0

    def perf_counter(self) -> float:
        return self.now


@pytest.fixture
def timed_benchmark(monkeypatch: pytest.MonkeyPatch):
    """The benchmark module with a fake clock; engine and scalar steps advance it and are counted."""
    bench = load_benchmark()
    clock = FakeClock()
    record: dict[str, list] = {"engine_steps": [], "scalar_steps": []}

    class TimedEngine(bench.EdgeEngine):
        def step(self, tasks, action):
            clock.now += ENGINE_STEP_S
            record["engine_steps"].append(int(tasks.model.numel()))
            return super().step(tasks, action)

    class TimedScalar(bench.ScalarEdge):
        def step(self, tasks, splits, downloads):
            clock.now += SCALAR_STEP_S
            result = super().step(tasks, splits, downloads)
            record["scalar_steps"].append((list(tasks), [list(s) for s in splits], list(downloads), result))
            return result

    monkeypatch.setattr(bench, "time", clock)
    monkeypatch.setattr(bench, "EdgeEngine", TimedEngine)
    monkeypatch.setattr(bench, "ScalarEdge", TimedScalar)
    # numba's parallel kernel (OpenMP threading layer) resets the OpenMP thread count that torch shares:
    # torch.get_num_threads() goes from 1 to 2, which slows every later test of this process on a busy host.
    threads = torch.get_num_threads()
    yield bench, record
    torch.set_num_threads(threads)


def test_an_engine_rate_is_the_decisions_of_the_timed_steps_over_their_time(timed_benchmark):
    """Each timed step decides B x M tasks in 0.25 fake seconds, so the rate must be 4 B M per second: it
    would not be if warm-up steps were counted, or decisions counted per environment instead of per task."""
    bench, record = timed_benchmark
    for backend in ("torch", "numba"):
        for batch in (1, 64):
            record["engine_steps"].clear()
            rate = bench.engine_rate(batch, "cpu", backend)
            assert rate == pytest.approx(batch * M / ENGINE_STEP_S, rel=1e-12), (backend, batch)
            assert set(record["engine_steps"]) == {batch * M}  # every step, warm-up included, had B x M tasks
            timed = len(record["engine_steps"]) - 3  # three warm-up steps before the clock starts
            assert timed >= 3 and timed * ENGINE_STEP_S >= bench.MIN_SECONDS


def test_the_benchmark_reports_rates_and_a_ratio_equal_to_the_known_ones(timed_benchmark, capsys: pytest.CaptureFixture[str]):
    """Engine: 64 x 10 tasks per 0.25 s = 2,560 decisions/s at B = 64 (40/s at B = 1); scalar: 10 tasks per
    0.0625 s = 160/s; so the ratio at the reference batch (the largest size, 4,096 not being run) is 16."""
    bench, _ = timed_benchmark
    assert bench.main(["--sizes", "1,64", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for backend in ("numba", "torch"):
        assert figures["decisions_per_s_by_backend"][backend] == pytest.approx({"1": 40.0, "64": 2560.0}, rel=1e-12)
    assert figures["backend"] == "numba" and figures["decisions_per_s"] == figures["decisions_per_s_by_backend"]["numba"]
    assert figures["scalar_per_s"] == pytest.approx(160.0, rel=1e-12)
    assert figures["ratio_batch"] == 64
    assert figures["ratio"] == pytest.approx(16.0, rel=1e-12)
    assert figures["with_sampling_per_s"] == pytest.approx(2560.0, rel=1e-12)
    assert figures["meets_targets"] is False


def test_the_scalar_reference_makes_the_engines_greedy_decisions_with_the_same_results(timed_benchmark):
    """The ratio compares like with like only if the scalar loop does the engine's work: replaying its 50
    task batches on the batched engine (B = 1, same topology seed) with the library's greedy scheduler
    gives the same placements and the same breakdown for every task."""
    bench, record = timed_benchmark
    assert bench.scalar_rate(seed=0) == pytest.approx(M / SCALAR_STEP_S, rel=1e-12)
    steps = record["scalar_steps"]
    assert len(steps) == 50  # one pass: 50 x 0.0625 s > MIN_SECONDS

    config = preset("mato").config
    engine = EdgeEngine(config, 1, "lfu", dtype=torch.float64)
    engine.reset(0)
    unused = torch.Generator().manual_seed(0)
    for index, (tasks, splits, downloads, results) in enumerate(steps):
        batch = TaskBatch(
            model=torch.tensor([[t.model for t in tasks]]),
            size=torch.tensor([[t.size for t in tasks]], dtype=torch.float64),
            density=torch.tensor([[t.density for t in tasks]], dtype=torch.float64),
            deadline=torch.tensor([[t.deadline for t in tasks]], dtype=torch.float64),
            demand=torch.tensor([[t.demand for t in tasks]], dtype=torch.float64),
        )
        action = greedy(engine, batch, unused, None)
        assert action.split[0].tolist() == splits, index
        assert action.download[0].tolist() == downloads, index
        out = engine.step(batch, action)
        for m, row in enumerate(results):
            for key in BREAKDOWN_KEYS:
                assert float(getattr(out, key)[0, m]) == pytest.approx(float(row[key]), rel=1e-6, abs=1e-9), (index, m, key)


# -- the throughput benchmark, for real -----------------------------------------------------------------


def test_a_real_benchmark_run_reports_finite_rates_that_grow_with_the_batch():
    """What must hold on any machine: every rate is finite and positive, and batching pays: B = 64 decides
    more than 4 times as many tasks per second as B = 1 on each backend (observed 60-80 times on 2 cores).
    The ratio to the scalar reference is machine-dependent: on a loaded 2-core host numba's parallel
    kernel at B = 64 is slower than the scalar loop (ratio ~0.4), so no bound is asserted on it."""
    proc = subprocess.run(
        [sys.executable, str(BENCHMARK), "--sizes", "1,64", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO_ROOT,
        check=True,
    )
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(figures["decisions_per_s_by_backend"]) == {"numba", "torch"}
    for rates in figures["decisions_per_s_by_backend"].values():
        assert set(rates) == {"1", "64"}
        assert all(math.isfinite(rate) and rate > 0 for rate in rates.values())
        assert rates["64"] > 4 * rates["1"]
    assert math.isfinite(figures["scalar_per_s"]) and figures["scalar_per_s"] > 0
    assert math.isfinite(figures["ratio"]) and figures["ratio"] > 0 and figures["ratio_batch"] == 64
