"""Simulations: POST starts a background run and returns its id; GET gives progress and the summary."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy import select

from api import crud, models
from api.deps import DB, CurrentAccount, State
from api.errors import ApiError
from api.routes.common import ERRORS, Limit, Offset
from api.schemas import Page, SimulationCreate, SimulationOut
from api.simulations import SimulationRunner
from market.simulation import SimulationConfig

router = APIRouter(prefix="/simulations", tags=["simulations"])


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
        raise ApiError(422, "invalid_simulation", str(exc)) from exc
    sim_id = runner(request).start(config, account.id)
    if sim_id is None:
        raise ApiError(429, "simulations_busy", "as many simulations as allowed are running: retry later")
    return crud.simulation_out(crud.get_or_404(session, models.Simulation, sim_id, f"simulation {sim_id}"))


@router.get("", response_model=Page[SimulationOut])
async def list_simulations(session: DB, limit: Limit = 50, offset: Offset = 0) -> Page[SimulationOut]:
    rows, total = crud.page(session, select(models.Simulation).order_by(models.Simulation.created_at), limit, offset)
    return Page[SimulationOut](items=[crud.simulation_out(s) for s in rows], total=total, limit=limit, offset=offset)


@router.get("/{sim_id}", response_model=SimulationOut, responses=ERRORS)
async def get_simulation(sim_id: str, session: DB) -> SimulationOut:
    if len(sim_id) > 32:
        raise ApiError(404, "not_found", "simulation not found")
    return crud.simulation_out(crud.get_or_404(session, models.Simulation, sim_id, f"simulation {sim_id}"))
