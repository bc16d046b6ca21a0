"""The API's states are StrEnums whose values are the strings it always stored and sent."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.orm import Session

from api import models, schemas
from api.states import INTENT_STATES, EspStakeState, SelectedBy, SimulationStatus, TaskState, TradeState
from market.actors import EspProfile


def test_state_values_are_the_strings_of_the_api():
    assert [s.value for s in TaskState] == [
        "requested",
        "offered",
        "pending",
        "locked",
        "delivered",
        "registered",
        "refunded",
        "abandoned",
    ]
    assert [s.value for s in TradeState] == ["prepared", "pending", "locked", "claimed", "refunded", "abandoned"]
    assert [s.value for s in EspStakeState] == ["active", "exiting", "withdrawn", "slashed"]
    assert [s.value for s in SelectedBy] == ["mwsl", "request"]
    assert [s.value for s in SimulationStatus] == ["running", "done", "failed", "interrupted"]
    assert INTENT_STATES == ("pending", "abandoned")


def test_responses_show_the_plain_strings():
    out = schemas.TradeOut(
        id=1, token_id=1, lock_id=None, buyer="0x", seller="0x", price_wei=1, timelock=1, state=TradeState.CLAIMED
    )
    assert out.model_dump(mode="json")["state"] == "claimed"
    esp = schemas.EspOut(
        address="0x", name="n", profile=EspProfile.CHEATING, index=0, positives=0, negatives=0, stake_state=EspStakeState.EXITING
    )
    dumped = esp.model_dump(mode="json")
    assert dumped["profile"] == "cheating" and dumped["stake_state"] == "exiting"
    assert schemas.EspCreate.model_validate({"name": "n", "profile": "cheating"}).profile is EspProfile.CHEATING
    with pytest.raises(ValueError):
        schemas.EspCreate.model_validate({"name": "n", "profile": "slow"})  # the API serves honest and cheating ESPs


def test_rows_store_the_plain_value_and_load_the_member():
    engine = create_engine("sqlite://")
    models.Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add(models.Account(id=1, address="0x" + "1" * 40, api_key_hash="h", encrypted_key=b"k"))
        session.add(
            models.Simulation(
                id="s", account_id=1, config={}, status=SimulationStatus.RUNNING, periods=1, created_at=datetime.now(UTC)
            )
        )
        session.commit()
        assert session.execute(text("SELECT status FROM simulations")).scalar_one() == "running"
        session.execute(text("UPDATE simulations SET status = 'done'"))
        session.expire_all()
        assert session.scalar(select(models.Simulation.status)) is SimulationStatus.DONE
        with pytest.raises(Exception, match="bogus"):  # a value outside the enum is refused on the way in
            session.scalar(select(models.Simulation).where(models.Simulation.status == "bogus"))


def test_the_simulation_body_is_derived_from_the_config():
    """Types, defaults, bounds and docs come from SimulationConfig; the API only caps them (and runs 10 periods)."""
    from market.fields import field_specs
    from market.simulation import SimulationConfig

    body = schemas.SimulationCreate.model_validate({})
    specs = {spec.name: spec for spec in field_specs(SimulationConfig)}
    for name, value in body.model_dump().items():
        assert value == (10 if name == "periods" else specs[name].default), name
    properties = schemas.SimulationCreate.model_json_schema()["properties"]
    assert set(properties) == set(schemas.SIMULATION_API_FIELDS)
    caps = schemas.SIMULATION_API_FIELDS
    assert all(properties[name]["description"] == caps[name].get("description", specs[name].doc) for name in properties)
    # A client names a rule scheduler only: a learned one is a file on the server (issue 18).
    assert "maddpg" not in properties["scheduler"]["description"] and "maddpg:PATH" not in str(properties["scheduler"]["enum"])
    assert properties["producers"]["minimum"] == 1 and properties["producers"]["maximum"] == 10
    assert properties["caching"]["enum"] == list(specs["caching"].choices or ())
    assert SimulationConfig.from_mapping(body.model_dump()) == SimulationConfig(periods=10)
    for bad in ({"producers": 0}, {"selection": "oracle"}, {"esp_profiles": []}, {"temperature": 1.0}):
        with pytest.raises(ValueError):
            schemas.SimulationCreate.model_validate(bad)
