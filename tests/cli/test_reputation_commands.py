"""`aigc-market reputation` sub-app through typer's CliRunner, and the scale benchmark at a small size."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.reputation import app
from market.chain.paths import REPO_ROOT

runner = CliRunner()


def last_json(output: str) -> dict:
    return json.loads(output.strip().splitlines()[-1])


def test_trends_writes_csv_and_plot_and_ends_with_json(tmp_path: Path):
    result = runner.invoke(app, ["trends", "--periods", "30", "--seed", "0", "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    figures = last_json(result.output)
    assert set(figures["reputation"]) == {"esp0", "esp1", "esp2"} and len(figures["reputation"]["esp0"]) == 30
    assert figures["fell_below_both_after_periods"] is not None and figures["fell_below_both_after_periods"] <= 10
    assert (tmp_path / "trends.png").stat().st_size > 0
    assert len((tmp_path / "trends.csv").read_text().splitlines()) == 31


def test_workload_reports_load_and_jain_per_strategy(tmp_path: Path):
    result = runner.invoke(
        app, ["workload", "--periods", "40", "--strategies", "mwsl,most-familiar-global", "--out", str(tmp_path), "--json"]
    )
    assert result.exit_code == 0, result.output
    figures = last_json(result.output)
    assert set(figures["workload"]) == {"mwsl", "most-familiar-global"}
    assert figures["jain"]["most-familiar-global"] < figures["jain"]["mwsl"]
    assert (tmp_path / "workload.csv").exists() and (tmp_path / "workload.png").exists()


def test_collusion_reports_each_method(tmp_path: Path):
    result = runner.invoke(app, ["collusion", "--periods", "20", "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    figures = last_json(result.output)
    assert [m["method"] for m in figures["methods"]] == ["mwsl", "plain-sl", "beta"]
    assert figures["colluders"] == 2
    assert "2 of 10 producers collude" in result.output and "mwsl: the honest ESP" in result.output


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["trends", "--periods", "1"], "--periods"),
        (["trends", "--switch", "50", "--periods", "20"], "--switch"),
        (["trends", "--temperature", "0"], "--temperature"),
        (["workload", "--strategies", "oracle"], "--strategies"),
        (["workload", "--periods", "10"], "--periods"),
        (["collusion", "--fraction", "1.5"], "--fraction"),
    ],
)
def test_bad_option_values_are_usage_errors(args: list[str], fragment: str, tmp_path: Path):
    result = runner.invoke(app, [*args, "--out", str(tmp_path)], standalone_mode=False)
    assert result.exit_code != 0
    from typer._click import exceptions as click

    assert isinstance(result.exception, click.UsageError) and fragment in result.exception.format_message()
    standalone = runner.invoke(app, [*args, "--out", str(tmp_path)])
    assert standalone.exit_code == 2


def test_scale_benchmark_runs_at_a_small_size_and_agrees_with_the_naive_implementation():
    proc = subprocess.run(
        [
            sys.executable,
            "benchmarks/reputation_scale.py",
            "--producers",
            "200",
            "--esps",
            "30",
            "--ratings",
            "5000",
            "--sample-pairs",
            "20",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
        check=True,
    )
    figures = last_json(proc.stdout)
    assert figures["max_abs_diff_vs_naive"] < 1e-9
    assert figures["speedup"] > 1 and figures["recompute_s"] > 0 and figures["ratings"] == 5000 + 3000
