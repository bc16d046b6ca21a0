"""benchmarks/api_load.py works end to end at a tiny size, its end-to-end phase through ESP node processes included
(its figures are not checked here)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "api_load.py"


def test_api_load_benchmark_runs_and_reports(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    spec = importlib.util.spec_from_file_location("api_load", BENCHMARK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "api_load", module)  # its dataclasses look their module up there
    spec.loader.exec_module(module)
    argv = ["--read-seconds", "1", "--registrations", "3", "--transfers", "3", "--concurrency", "4"]
    assert module.main([*argv, "--end-to-end", "2", "--producers", "2", "--json"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    result = json.loads(lines[-1])
    assert result["read"]["requests"] > 0 and result["read"]["errors"] == 0
    assert result["registration"]["requests"] == 3 and result["registration"]["errors"] == 0
    assert result["raw_web3"]["requests"] == 3 and result["raw_web3"]["per_s"] > 0
    assert result["registration_to_raw_ratio"] > 0 and "GET /products?limit=10" in "\n".join(lines)
    assert result["read"]["server_cpu_ms"] > 0 and result["registration"]["server_cpu_ms"] > 0
    e2e = result["end_to_end"]  # two ESP node processes, two producers, request to registered product
    assert e2e["tasks"] == 2 and e2e["errors"] == 0, e2e["first_errors"]
    assert e2e["per_s"] > 0 and e2e["p50_s"] <= e2e["p99_s"]
    assert result["end_to_end_to_simulated_ratio"] > 0 and "end to end (2 nodes, 2 producers)" in "\n".join(lines)
