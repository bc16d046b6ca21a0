"""`aigc-market offload compare` and benchmarks/offload_throughput.py, at small sizes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from market.chain.paths import REPO_ROOT

CLI = [sys.executable, "-m", "cli"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=300, cwd=REPO_ROOT)


def test_compare_writes_csv_and_png_and_ends_with_the_json_rows(tmp_path: Path):
    proc = run("offload", "compare", "--preset", "lc", "--envs", "4", "--steps", "5", "--out", str(tmp_path), "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["preset"] == "lc"
    assert set(summary["rows"]) == {"random", "fifo", "lru", "lfu", "lc", "cloud"}
    assert {"system_cost", "switching_cost", "accuracy_cost", "edge_execution_ratio", "latency_s", "energy_j",
            "completion_rate", "hit_rate", "crash_rate"} <= set(summary["rows"]["lc"])
    assert (tmp_path / "compare.csv").stat().st_size > 0
    assert (tmp_path / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_with_an_unknown_preset_prints_one_line_and_exits_2():
    proc = run("offload", "compare", "--preset", "nope")
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "--preset" in proc.stderr


def test_compare_with_zero_environments_prints_one_line_and_exits_2():
    proc = run("offload", "compare", "--envs", "0")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1


def test_throughput_benchmark_reports_rates_and_the_ratio_to_the_scalar_reference():
    proc = subprocess.run([sys.executable, "benchmarks/offload_throughput.py", "--sizes", "1,64", "--json"],
                          capture_output=True, text=True, timeout=300, cwd=REPO_ROOT, check=True)
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(figures["decisions_per_s"]) == {"1", "64"}
    assert figures["scalar_per_s"] > 0
    assert figures["ratio"] == figures["decisions_per_s"]["64"] / figures["scalar_per_s"]
