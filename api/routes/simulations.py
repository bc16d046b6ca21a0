"""Simulations: POST starts a run in its own process and returns its id; GET gives progress and the summary.

Runs are an account's own: listing and reading need its API key and show only its runs (403 for
another account's). Quotas and limits: `api/simulations.py`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Request
from sqlalchemy import select

from api import crud, models
from api.deps import DB, CurrentAccount, State
from api.errors import ApiError, forbidden
from api.routes.common import ERRORS, Limit, Offset
from api.schemas import Page, SimulationCreate, SimulationOut
from api.simulations import SimulationRunner
from market.simulation import SimulationConfig

router = APIRouter(prefix="/simulations", tags=["simulations"])

SimulationId = Annotated[str, Path(pattern=r"^[0-9a-f]{1,32}$")]


def runner(request: Request) -> SimulationRunner:
    simulations: SimulationRunner = request.app.state.simulations
    return simulations


@router.post("", status_code=202, response_model=SimulationOut, responses=ERRORS)
def start(body: SimulationCreate, request: Request, state: State, session: DB, account: CurrentAccount) -> SimulationOut:
    values = body.model_dump()  # fields of SimulationConfig (api.schemas derives the body from it)
    if values["periods"] > state.settings.max_simulation_periods:
        raise ApiError(422, "too_many_periods", f"periods must be at most {state.settings.max_simulation_periods}")
    try:
        config = SimulationConfig.from_mapping(values)
    except ValueError as exc:
        raise ApiError(422, "invalid_simulation", str(exc)[:500]) from exc
    sim_id = runner(request).start(config, account.id)
    return crud.simulation_out(crud.get_or_404(session, models.Simulation, sim_id, f"simulation {sim_id}"))


@router.get("", response_model=Page[SimulationOut], responses=ERRORS)
async def list_simulations(session: DB, account: CurrentAccount, limit: Limit = 50, offset: Offset = 0) -> Page[SimulationOut]:
    """The caller's own runs, oldest first."""
    query = select(models.Simulation).where(models.Simulation.account_id == account.id).order_by(models.Simulation.created_at)
    rows, total = crud.page(session, query, limit, offset)
    return Page[SimulationOut](items=[crud.simulation_out(s) for s in rows], total=total, limit=limit, offset=offset)


@router.get("/{sim_id}", response_model=SimulationOut, responses=ERRORS)
async def get_simulation(sim_id: SimulationId, session: DB, account: CurrentAccount) -> SimulationOut:
    simulation = crud.get_or_404(session, models.Simulation, sim_id, "simulation")
    if simulation.account_id != account.id:
        raise forbidden("this simulation belongs to another account")
    return crud.simulation_out(simulation)
