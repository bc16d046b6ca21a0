"""The abuse drills (tests/api/abuse_drill.py) run end to end against a real server at a small size, and show
what they are for: account creation throttled with the funder's payout bounded, a flood throttled while a
second client is served, a simulation burst held to the account's quotas."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from market.terms import ETHER

DRILL = Path(__file__).resolve().parent / "abuse_drill.py"


def test_abuse_drills_at_a_small_size(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    spec = importlib.util.spec_from_file_location("abuse_drill", DRILL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "abuse_drill", module)
    spec.loader.exec_module(module)
    assert module.main(["--accounts", "40", "--reads", "600", "--simulations", "4", "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    accounts, reads, simulations = result["accounts"], result["reads"], result["simulations"]
    assert accounts["created"] == 10 and accounts["throttled_429"] == 30 and not accounts["other_statuses"]
    assert accounts["funder_paid_wei"] <= 100 * ETHER + 10**16  # the client's budget and the transfers' fees
    assert reads["flood_statuses"].get("429", 0) > 0 and set(reads["flood_statuses"]) <= {"200", "429"}
    assert reads["second_client_statuses"] == {"200": reads["second_client_requests"]}
    assert simulations["burst_outcomes"] == {"202 accepted": 1, "429 simulations_busy": 3}
    assert simulations["then_one_after_the_other"][-1].startswith("429 simulation_quota_exceeded")
