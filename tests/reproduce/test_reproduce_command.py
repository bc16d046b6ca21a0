"""`aigc-market reproduce` through the application's entry point: table, files, config.json, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from cli.main import main


@pytest.fixture(autouse=True)
def keep_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_reproduce_prints_paper_vs_ours_and_writes_its_results(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    out = tmp_path / "asp"
    code = main(["reproduce", "asp-baselines", "--tiny", "--seeds", "2", "--out", str(out), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "paper vs ours" in captured.out and "verdict" in captured.out
    summary = json.loads(captured.out.strip().splitlines()[-1])
    assert summary["target"] == "asp-baselines" and summary["level"] == "tiny" and summary["seeds"] == 2
    assert {c["verdict"] for c in summary["claims"].values()} <= {"reproduced", "partly", "not reproduced"}
    for name in ("runs.csv", "summary.csv", "claims.csv", "asp-baselines.png", "report.md", "config.json"):
        assert (out / name).stat().st_size > 0, name
    config = json.loads((out / "config.json").read_text())
    assert config["target"] == "asp-baselines" and config["seeds"] == 2 and config["threads"] == 1
    assert config["budget"]["level"] == "tiny" and config["settings"]["edge"]["n_servers"] == 20


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["reproduce", "lc-table2", "--seeds", "1"], "--seeds must be at least 2"),
        (["reproduce", "lc-table2", "--full", "--tiny"], "--full and --tiny exclude each other"),
        (["reproduce", "lc-table2", "--threads", "0"], "--threads must be at least 1"),
        (["reproduce", "table-9"], "table-9"),
        (["reproduce", "lc-table2", "--values", "3,6"], "--values applies to mato-eds and mato-models only"),
        (["reproduce", "mato-eds", "--values", "5,x"], "comma-separated integers"),
        (["reproduce", "mato-eds", "--values", "20"], "at least two distinct positive counts"),
        (["reproduce", "mato-eds", "--values", "20,5"], "increasing order"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], fragment: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    code = main([*args, "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 2
    assert fragment in err and len(err.strip().splitlines()) == 1, err


def test_an_out_that_cannot_be_a_directory_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    blocker = tmp_path / "file"
    blocker.write_text("")
    code = main(["reproduce", "lc-table2", "--tiny", "--out", str(blocker / "sub")])
    err = capsys.readouterr().err
    assert code == 2 and "--out" in err and len(err.strip().splitlines()) == 1
