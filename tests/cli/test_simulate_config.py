"""`simulate`'s options are derived from `SimulationConfig`; `--config` reads a TOML file that options override."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer

from cli.main import app, main
from cli.options import option_default
from cli.simulate import OPTION_NAMES
from market.fields import field_specs
from market.simulation import SimulationConfig

#: The smallest market that still runs every step of a period.
TINY = ["--producers", "1", "--esps", "1", "--consumers", "0", "--attackers", "0"]


def simulate_options() -> dict[str, typer.core.TyperOption]:
    command = typer.main.get_command(app).commands["simulate"]  # type: ignore[attr-defined]
    return {param.name: param for param in command.params}


def test_every_config_field_is_an_option_whose_default_and_help_are_the_fields():
    options = simulate_options()
    for spec in field_specs(SimulationConfig):
        option = options[spec.name]
        assert option.opts == [OPTION_NAMES.get(spec.name, "--" + spec.name.replace("_", "-"))]
        assert option.default == option_default(spec)
        assert option.help is not None and option.help.startswith(spec.doc)
    # A tuple of profiles is one comma-separated option that parses back to the field's default.
    defaults = SimulationConfig()
    assert tuple(options["esp_profiles"].default.split(",")) == defaults.esp_profiles
    assert options["producers"].default == defaults.producers and options["selection"].default == defaults.selection
    assert options["temperature"].default == defaults.temperature


def test_config_file_values_are_used_and_options_given_override_them(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    config = tmp_path / "sweep.toml"
    config.write_text('periods = 5\nseed = 7\nselection = "argmax"\nesp_profiles = ["cheating"]\nattack_probability = 0.0\n')
    out = tmp_path / "run"
    assert main(["simulate", "--config", str(config), "--periods", "1", *TINY, "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    written = json.loads((out / "config.json").read_text())
    expected = SimulationConfig(
        periods=1,
        seed=7,
        selection="argmax",
        esp_profiles=("cheating",),  # type: ignore[arg-type]
        attack_probability=0.0,
        producers=1,
        esps=1,
        consumers=0,
        attackers=0,
    )
    assert written == summary["config"] == expected.to_json()
    assert summary["tasks"] == 1 and summary["refunded"] == 1  # one cheating ESP, one period
    # The written config.json runs the same market again.
    again = tmp_path / "again"
    assert main(["simulate", "--config", str(out / "config.json"), "--out", str(again)]) == 0
    assert json.loads((again / "config.json").read_text()) == written


@pytest.mark.parametrize(
    "content,fragment",
    [
        ("preiods = 3\n", "unknown SimulationConfig field: preiods"),
        ("periods = 0\n", "periods must be at least 1"),
        ("periods = \n", "not valid TOML"),
        ('esp_profiles = ["honest", "lazy"]\n', "esp_profiles must be taken from"),
    ],
)
def test_a_bad_config_file_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, fragment: str):
    config = tmp_path / "bad.toml"
    config.write_text(content)
    assert main(["simulate", "--config", str(config), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and fragment in err[0], err
    assert not (tmp_path / "out").exists()


def test_a_missing_config_file_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["simulate", "--config", str(tmp_path / "none.toml")]) == 2
    assert "cannot read --config" in capsys.readouterr().err


def _checkpoint(path: Path, edge) -> Path:  # type: ignore[no-untyped-def]
    from offload_core.training import TrainSettings, make_agent, save_checkpoint

    return save_checkpoint(path, make_agent("maddpg-mato", edge, 0), edge, TrainSettings(envs=1, episodes=1, steps=1))


def test_a_checkpoint_for_another_system_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    from offload_core.config import preset

    path = _checkpoint(tmp_path / "ten.pt", preset("mato").config)  # 10 devices; the market has 3 producers
    assert main(["simulate", "--scheduler", f"maddpg:{path}", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "trained on 10 devices" in err[0], err
    assert not (tmp_path / "out").exists()


def test_a_checkpoint_of_the_markets_system_places_the_tasks(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    edge = SimulationConfig(producers=1, esps=1, consumers=0, attackers=0).edge_config()
    path = _checkpoint(tmp_path / "one.pt", edge)
    out = tmp_path / "run"
    assert main(["simulate", "--scheduler", f"maddpg:{path}", "--periods", "2", *TINY, "--out", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["config"]["scheduler"] == f"maddpg:{path}" and summary["tasks"] == 2
