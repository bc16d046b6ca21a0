"""`aigc-market esp keygen` and `esp run`'s one-line errors (the node itself: tests/esp)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from eth_account import Account

from cli.main import main


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("aigc-market: error:"), err
    return err[0]


def test_keygen_writes_an_owner_only_key_and_refuses_to_overwrite_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key_file = tmp_path / "esp.key"
    assert main(["esp", "keygen", "--out", str(key_file)]) == 0
    address = capsys.readouterr().out.strip()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert Account.from_key(key_file.read_text().strip()).address == address
    before = key_file.read_text()
    assert main(["esp", "keygen", "--out", str(key_file)]) == 2
    assert "refusing to overwrite" in one_error_line(capsys) and key_file.read_text() == before


def test_run_with_a_missing_or_bad_key_file_prints_one_line_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "none.key"
    assert main(["esp", "run", "--api", "http://127.0.0.1:9", "--key-file", str(missing)]) == 2
    assert str(missing) in one_error_line(capsys)
    bad = tmp_path / "bad.key"
    bad.write_text("not a key\n")
    assert main(["esp", "run", "--api", "http://127.0.0.1:9", "--key-file", str(bad)]) == 2
    assert "no hex private key" in one_error_line(capsys)


def test_run_against_an_unreachable_market_prints_one_line_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key_file = tmp_path / "esp.key"
    assert main(["esp", "keygen", "--out", str(key_file)]) == 0
    capsys.readouterr()
    db = tmp_path / "jobs.sqlite"
    assert main(["esp", "run", "--api", "http://127.0.0.1:9", "--key-file", str(key_file), "--db", str(db)]) == 2
    assert "cannot sign in to http://127.0.0.1:9" in one_error_line(capsys)
    assert not db.exists()  # nothing is written before the node has signed in


def test_run_with_an_unknown_generator_prints_one_line_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    key_file = tmp_path / "esp.key"
    assert main(["esp", "keygen", "--out", str(key_file)]) == 0
    capsys.readouterr()
    assert main(["esp", "run", "--api", "http://127.0.0.1:9", "--key-file", str(key_file), "--generator", "dall-e"]) == 2
    assert "unknown generator" in one_error_line(capsys)
