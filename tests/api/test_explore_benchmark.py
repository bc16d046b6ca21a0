"""benchmarks/explorer_render.py works end to end at a tiny size (its figures are not checked here)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "explorer_render.py"


def test_the_explorer_benchmark_seeds_renders_and_reports_a_ratio(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = importlib.util.spec_from_file_location("explorer_render", BENCHMARK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "explorer_render", module)
    spec.loader.exec_module(module)
    argv = ["--products", "30", "--requests", "3", "--esps", "1", "--ratings", "10", "--challenges", "5", "--json"]
    assert module.main(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    result = json.loads(lines[-1])
    assert result["products"] == 31  # the one made over HTTP and the 30 inserted
    for page in ("product", "esp"):
        assert result[page]["page"]["p50_ms"] > 0 and result[page]["twin"]["p50_ms"] > 0 and result[page]["ratio_p50"] > 0
    assert "GET /explore/products/…" in "\n".join(lines)


def test_the_explorer_benchmark_refuses_a_request_count_below_one(capsys: pytest.CaptureFixture[str]) -> None:
    spec = importlib.util.spec_from_file_location("explorer_render_args", BENCHMARK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.main(["--requests", "0"]) == 2
    assert "--requests" in capsys.readouterr().err
