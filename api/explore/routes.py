"""The explorer's pages (HTML), their CSV exports and the JSON its live parts poll (docs/explorer.md).

Pages that read the chain (block times, the head, the registry's constants) are plain `def` routes
and run on the thread pool; the rest of what they show comes from the database. Unknown objects
are a 404 page; bad input (a malformed address, an upload that is not an image) a 4xx page.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from PIL import UnidentifiedImageError

from api import crud, models
from api.deps import DB
from api.errors import ApiError
from api.explore import queries
from api.explore.context import Explorer, explorer_of, utc
from api.explore.forms import multipart_file, urlencoded
from api.routes.common import AddressPath, IdPath
from api.schemas import SimulationCreate
from market.content import perceptual_hash
from market.simulation import SimulationConfig

router = APIRouter(prefix="/explore", include_in_schema=False)

COOKIE = "aigc_explorer_account"
"""The explorer's sign-in for simulation runs: the account's API-key hash (HttpOnly, SameSite=Strict)."""

LockPath = Annotated[str, Path(pattern=r"^0x[0-9a-fA-F]{64}$")]
SimulationPath = Annotated[str, Path(pattern=r"^[0-9a-f]{1,32}$")]
PAGE_SIZE = 50
SCHEDULERS = ("edge", "greedy", "least-loaded", "parallel-split")


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    explorer = explorer_of(request)
    html = explorer.templates.get_template(template).render(request_path=request.url.path, **context)
    return HTMLResponse(html, status_code=status)


def not_found_page(request: Request, what: str) -> HTMLResponse:
    return render(request, "error.html", 404, title="Not found", message=f"No {what} is known to this market.")


def csv_response(name: str, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> Response:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return Response(
        buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
    )


def chart(kind: str, labels: list[Any], series: dict[str, list[float | None]], *, y_max: float | None = None) -> str:
    """A Chart.js configuration as JSON (no animation: the page is read, and screenshot, as it is drawn)."""
    palette = ["#1f5fa8", "#2e7d32", "#b3261e", "#6d4c00", "#6a1b9a"]
    datasets = [
        {"label": name, "data": values, "borderColor": palette[i % 5], "backgroundColor": palette[i % 5], "fill": False}
        for i, (name, values) in enumerate(series.items())
    ]
    scale: dict[str, Any] = {"beginAtZero": True}
    if y_max is not None:
        scale["max"] = y_max
    spec = {
        "type": kind,
        "data": {"labels": labels, "datasets": datasets},
        "options": {"animation": False, "responsive": True, "maintainAspectRatio": False, "scales": {"y": scale}},
    }
    return json.dumps(spec).replace("</", "<\\/")


# -- home, search, similar images ---------------------------------------------------------------------------


def finality_cutoff(explorer: Explorer) -> tuple[int, int]:
    """(chain now, the last block whose products are past their challenge window)."""
    now = explorer.chain_now()
    head = explorer.state.chain.head()
    return now, explorer.last_block_before(now - explorer.constant("challenge_window"), head)


@router.get("", response_class=HTMLResponse)
def home(request: Request, session: DB) -> HTMLResponse:
    explorer = explorer_of(request)
    _, cutoff = finality_cutoff(explorer)
    rows, _ = queries.product_rows(session, limit=10, offset=0)
    return render(
        request,
        "home.html",
        title="AIGC market explorer",
        totals=queries.totals(session, final_through_block=cutoff),
        activity=queries.recent_activity(session, limit=15),
        products=rows,
        esps=queries.esp_rows(session),
    )


@router.get("/summary.json")
def summary_json(request: Request, session: DB) -> JSONResponse:
    """The home page's totals (wei as decimal strings)."""
    _, cutoff = finality_cutoff(explorer_of(request))
    totals = queries.totals(session, final_through_block=cutoff)
    return JSONResponse({k: str(v) if k.endswith("_wei") else v for k, v in totals.__dict__.items()})


@router.get("/activity.csv")
async def activity_csv(session: DB, limit: Annotated[int, Query(ge=1, le=10_000)] = 1000) -> Response:
    rows = queries.recent_activity(session, limit=limit)
    return csv_response(
        "activity",
        ["block", "log_index", "contract", "event", "args"],
        ([a.block_number, a.log_index, a.contract, a.name, json.dumps(a.args, sort_keys=True)] for a in rows),
    )


@router.get("/search", response_class=HTMLResponse)
def search(request: Request, session: DB, q: Annotated[str, Query(max_length=200)] = "") -> Response:
    """Token id, content hash, lock id or address: a redirect to its page, else a 404 page that says so."""
    target = queries.resolve(session, query=q) if q.strip() else None
    if target is not None:
        return RedirectResponse(target, status_code=303)
    return render(request, "search.html", 404 if q.strip() else 200, title="Search", query=q, similar=None)


@router.post("/similar", response_class=HTMLResponse)
async def similar(request: Request, session: DB) -> HTMLResponse:
    """Products nearest by pHash (Hamming distance) to an uploaded image (form field `image`)."""
    data = multipart_file(request.headers.get("content-type", ""), await request.body(), "image")
    if not data:
        return render(
            request, "search.html", 400, title="Similar images", query="", similar=None, error="Choose an image file to upload."
        )
    try:
        phash = perceptual_hash(data)
    except (UnidentifiedImageError, OSError, ValueError):
        return render(
            request, "search.html", 422, title="Similar images", query="", similar=None, error="The upload is not an image."
        )
    found = queries.similar_products(session, phash=phash)
    return render(request, "search.html", title="Similar images", query="", similar=found, phash=f"{phash:016x}")


# -- products -----------------------------------------------------------------------------------------------


@router.get("/products", response_class=HTMLResponse)
async def products(request: Request, session: DB, offset: Annotated[int, Query(ge=0, le=10**12)] = 0) -> HTMLResponse:
    rows, total = queries.product_rows(session, limit=PAGE_SIZE, offset=offset)
    return render(request, "products.html", title="Products", products=rows, total=total, offset=offset, page_size=PAGE_SIZE)


@router.get("/products.csv")
async def products_csv(session: DB) -> Response:
    table = models.Product.__table__
    rows = session.execute(table.select().order_by(table.c.token_id))
    columns = ["token_id", "producer", "esp", "owner", "content_hash", "perceptual_hash", "revoked", "block_number", "lock_id"]
    return csv_response("products", columns, ([getattr(r, c) for c in columns] for r in rows))


@router.get("/products/{token_id}", response_class=HTMLResponse)
def product(request: Request, token_id: IdPath, session: DB) -> HTMLResponse:
    view = queries.product_view(session, token_id=token_id)
    if view is None:
        return not_found_page(request, f"product {token_id}")
    explorer = explorer_of(request)
    registered = explorer.block_time(view.product.block_number)
    window = explorer.constant("challenge_window")
    now = explorer.chain_now()
    final_at = None if registered is None else registered + window
    return render(
        request,
        "product.html",
        title=f"Product {token_id}",
        view=view,
        p=view.product,
        registered=registered,
        final_at=final_at,
        final=not view.product.revoked and final_at is not None and final_at <= now,
        chain_now=now,
        royalty_bps=explorer.constant("royalty_bps"),
        owner_times={o.block_number: explorer.block_time(o.block_number) for o in view.owners},
    )


@router.get("/products/{token_id}/owners.csv")
def product_owners_csv(request: Request, token_id: IdPath, session: DB) -> Response:
    view = queries.product_view(session, token_id=token_id)
    if view is None:
        raise ApiError(404, "not_found", f"product {token_id} not found")
    explorer = explorer_of(request)
    return csv_response(
        f"product-{token_id}-owners",
        ["block", "time", "from", "to"],
        ([o.block_number, utc(explorer.block_time(o.block_number)), o.from_address, o.to_address] for o in view.owners),
    )


@router.get("/products/{token_id}/challenges.csv")
async def product_challenges_csv(token_id: IdPath, session: DB) -> Response:
    view = queries.product_view(session, token_id=token_id)
    if view is None:
        raise ApiError(404, "not_found", f"product {token_id} not found")
    return csv_response(
        f"product-{token_id}-challenges",
        ["block", "original_id", "duplicate_id", "challenger", "distance", "upheld"],
        ([c.block_number, c.original_id, c.duplicate_id, c.challenger, c.distance, c.upheld] for c in view.challenges),
    )


# -- ESPs ---------------------------------------------------------------------------------------------------


@router.get("/esps", response_class=HTMLResponse)
async def esps(request: Request, session: DB) -> HTMLResponse:
    return render(request, "esps.html", title="ESPs", esps=queries.esp_rows(session))


@router.get("/esps.csv")
async def esps_csv(session: DB) -> Response:
    return csv_response(
        "esps",
        ["index", "address", "name", "profile", "stake_state", "positives", "negatives"],
        ([e.id - 1, e.address, e.name, e.profile, e.stake_state, e.positives, e.negatives] for e in queries.esp_rows(session)),
    )


def esp_data(request: Request, session: DB, address: str) -> tuple[queries.EspView, list[queries.ReputationPoint]] | None:
    explorer = explorer_of(request)
    events = queries.rated_events(session)
    view = queries.esp_view(session, address=address, block_time=explorer.block_time, events=events)
    if view is None:
        return None
    history = queries.reputation_history(
        session, esp=view.esp, period_s=explorer.state.settings.reputation_period_s, now=explorer.chain_now(), events=events
    )
    return view, history


@router.get("/esps/{address}", response_class=HTMLResponse)
def esp(request: Request, address: AddressPath, session: DB) -> HTMLResponse:
    found = esp_data(request, session, address)
    if found is None:
        return not_found_page(request, f"ESP {address}")
    view, history = found
    stake = queries.stake_of(session, esp=view.esp.address)
    reputation_chart = chart(
        "line",
        [utc(p.at) for p in history],
        {
            "T (reputation)": [p.trust for p in history],
            "belief": [p.belief for p in history],
            "disbelief": [p.disbelief for p in history],
            "uncertainty": [p.uncertainty for p in history],
        },
        y_max=1.0,
    )
    jobs = list(reversed(view.jobs))
    latency_chart = chart(
        "line",
        [f"task {j.task_id}" for j in jobs],
        {"predicted latency (s)": [j.predicted_s for j in jobs], "measured on chain (s)": [j.measured_s for j in jobs]},
    )
    return render(
        request,
        "esp.html",
        title=f"ESP {view.esp.name}",
        view=view,
        e=view.esp,
        stake_wei=stake,
        history=history,
        reputation_chart=reputation_chart,
        latency_chart=latency_chart,
    )


@router.get("/esps/{address}/ratings.csv")
async def esp_ratings_csv(address: AddressPath, session: DB) -> Response:
    esp = crud.esp_by_address(session, address)
    return csv_response(
        f"esp-{esp.address}-ratings",
        ["block", "producer", "positive", "score", "at", "lock_id"],
        ([r.block_number, r.producer, r.positive, r.score, r.at, r.lock_id] for r in queries.ratings_of(session, esp=esp.address)),
    )


@router.get("/esps/{address}/jobs.csv")
def esp_jobs_csv(request: Request, address: AddressPath, session: DB) -> Response:
    view = queries.esp_view(session, address=address, block_time=explorer_of(request).block_time, jobs=10_000)
    if view is None:
        raise ApiError(404, "not_found", f"ESP {address} not found")
    return csv_response(
        f"esp-{view.esp.address}-jobs",
        ["task_id", "lock_id", "state", "fee_wei", "predicted_latency_s", "measured_latency_s", "token_id"],
        ([j.task_id, j.lock_id, j.state, j.fee_wei, j.predicted_s, j.measured_s, j.token_id] for j in view.jobs),
    )


@router.get("/esps/{address}/reputation.csv")
def esp_reputation_csv(request: Request, address: AddressPath, session: DB) -> Response:
    found = esp_data(request, session, address)
    if found is None:
        raise ApiError(404, "not_found", f"ESP {address} not found")
    return csv_response(
        f"esp-{found[0].esp.address}-reputation",
        ["at", "time", "trust", "belief", "disbelief", "uncertainty"],
        ([p.at, utc(p.at), p.trust, p.belief, p.disbelief, p.uncertainty] for p in found[1]),
    )


# -- addresses ----------------------------------------------------------------------------------------------


@router.get("/address/{address}", response_class=HTMLResponse)
async def address_page(request: Request, address: AddressPath, session: DB) -> HTMLResponse:
    if not queries.address_known(session, address=address):
        return not_found_page(request, f"address {address}")
    produced, owned = queries.address_products(session, address=address)
    is_esp = queries.resolve(session, query=address)
    return render(
        request,
        "address.html",
        title=f"Address {address}",
        address=address,
        produced=produced,
        owned=owned,
        esp_link=is_esp if is_esp and is_esp.startswith("/explore/esps/") else None,
    )


@router.get("/address/{address}/products.csv")
async def address_products_csv(address: AddressPath, session: DB) -> Response:
    produced, owned = queries.address_products(session, address=address, limit=100_000)
    rows = [("produced", r.token_id, r.content_hash, r.owner) for r in produced] + [
        ("owned", r.token_id, r.content_hash, r.owner) for r in owned
    ]
    return csv_response(f"address-{address}-products", ["relation", "token_id", "content_hash", "owner"], rows)


# -- escrows (locks) ----------------------------------------------------------------------------------------


def lock_json(explorer: Explorer, view: queries.LockView) -> dict[str, Any]:
    return {
        "lock_id": view.lock_id,
        "kind": view.kind,
        "state": view.state,
        "sender": view.sender,
        "receiver": view.receiver,
        "amount_wei": str(view.amount_wei),
        "hashlock": view.hashlock,
        "timelock": view.timelock,
        "token_id": view.token_id,
        "chain_now": explorer.chain_now(),
    }


@router.get("/locks/{lock_id}", response_class=HTMLResponse)
def lock(request: Request, lock_id: LockPath, session: DB) -> HTMLResponse:
    view = queries.lock_view(session, lock_id=lock_id)
    if view is None:
        return not_found_page(request, f"lock {lock_id}")
    explorer = explorer_of(request)
    return render(request, "lock.html", title=f"Escrow {lock_id[:10]}", lock=view, chain_now=explorer.chain_now())


@router.get("/locks/{lock_id}/state.json")
def lock_state(request: Request, lock_id: LockPath, session: DB) -> JSONResponse:
    """The escrow's parties, amount, hashlock, timelock, state and the chain's time: what its page polls."""
    view = queries.lock_view(session, lock_id=lock_id)
    if view is None:
        raise ApiError(404, "not_found", f"lock {lock_id} not found")
    return JSONResponse(lock_json(explorer_of(request), view))


# -- simulations --------------------------------------------------------------------------------------------


def signed_in(request: Request, session: DB) -> models.Account | None:
    return queries.account_by_cookie(session, key_hash=request.cookies.get(COOKIE, ""))


@router.get("/simulations", response_class=HTMLResponse)
async def simulations(request: Request, session: DB) -> HTMLResponse:
    account = signed_in(request, session)
    runs = queries.simulations_of(session, account_id=account.id) if account else []
    return render(request, "simulations.html", title="Simulations", account=account, runs=runs, schedulers=SCHEDULERS, error=None)


@router.get("/simulations.csv")
async def simulations_csv(request: Request, session: DB) -> Response:
    account = signed_in(request, session)
    if account is None:
        raise ApiError(401, "not_signed_in", "start a run with the account's API key first")
    return csv_response(
        "simulations",
        ["id", "status", "periods", "periods_done", "created_at", "error"],
        (
            [s.id, s.status, s.periods, s.periods_done, s.created_at, s.error]
            for s in queries.simulations_of(session, account_id=account.id)
        ),
    )


def form_config(fields: dict[str, str], max_periods: int) -> SimulationConfig:
    """The run's configuration from the form: the API's SimulationCreate body, with its checks."""
    values: dict[str, Any] = {}
    for name in ("producers", "esps", "consumers", "attackers", "periods"):
        if fields.get(name, "").strip():
            try:
                values[name] = int(fields[name])
            except ValueError as exc:
                raise ApiError(422, "validation_error", f"{name} must be a whole number") from exc
    if fields.get("scheduler"):
        values["scheduler"] = fields["scheduler"]
    values["random_periods"] = 0
    try:
        body = SimulationCreate.model_validate(values)
    except ValueError as exc:
        raise ApiError(422, "validation_error", "the run's settings are out of bounds") from exc
    checked = body.model_dump()
    if checked["periods"] > max_periods:
        raise ApiError(422, "too_many_periods", f"periods must be at most {max_periods}")
    try:
        return SimulationConfig.from_mapping(checked)
    except ValueError as exc:
        raise ApiError(422, "invalid_simulation", str(exc)[:300]) from exc


@router.post("/simulations", response_class=HTMLResponse)
async def start_simulation(request: Request, session: DB) -> Response:
    """Start a run from the form for the account of the API key given (or signed in): a redirect to its page."""
    fields = urlencoded(await request.body())
    explorer = explorer_of(request)
    key = fields.get("api_key", "").strip()
    account = None
    if key and len(key) <= 200:
        account = queries.account_by_cookie(session, key_hash=explorer.state.vault.key_hash(key))
    elif not key:
        account = signed_in(request, session)
    if account is None:
        return render(
            request, "simulations.html", 401, title="Simulations", account=None, runs=[], schedulers=SCHEDULERS,
            error="That API key is not valid: give the key POST /accounts returned.",
        )  # fmt: skip
    try:
        config = form_config(fields, explorer.state.settings.max_simulation_periods)
        sim_id = await run_in_threadpool(explorer.simulations.start, config, account.id)
    except ApiError as exc:
        runs = queries.simulations_of(session, account_id=account.id)
        return render(
            request, "simulations.html", exc.status, title="Simulations", account=account, runs=runs,
            schedulers=SCHEDULERS, error=exc.detail,
        )  # fmt: skip
    response = RedirectResponse(f"/explore/simulations/{sim_id}", status_code=303)
    assert account.api_key_hash is not None  # found by it
    response.set_cookie(COOKIE, account.api_key_hash, httponly=True, samesite="strict", path="/explore")
    return response


def own_run(request: Request, session: DB, sim_id: str) -> models.Simulation | None:
    account = signed_in(request, session)
    run = session.get(models.Simulation, sim_id)
    if account is None or run is None or run.account_id != account.id:
        return None
    return run


@router.get("/simulations/{sim_id}", response_class=HTMLResponse)
async def simulation(request: Request, sim_id: SimulationPath, session: DB) -> HTMLResponse:
    run = own_run(request, session, sim_id)
    if run is None:
        return not_found_page(request, f"simulation run {sim_id} of the signed-in account")
    charts: dict[str, str] = {}
    summary = run.summary or {}
    if summary.get("reputation_final"):
        names = list(summary["reputation_final"])
        charts["reputation"] = chart("bar", names, {"final reputation": [summary["reputation_final"][n] for n in names]}, y_max=1.0)
    if summary.get("workload"):
        names = list(summary["workload"])
        charts["workload"] = chart("bar", names, {"tasks served": [summary["workload"][n] for n in names]})
    if summary.get("gas_by_operation"):
        names = list(summary["gas_by_operation"])
        charts["gas"] = chart("bar", names, {"mean gas": [summary["gas_by_operation"][n]["mean"] for n in names]})
    scalars = {k: v for k, v in summary.items() if isinstance(v, int | float | str) and k not in ("backend", "chain_id")}
    return render(request, "simulation.html", title=f"Simulation {sim_id}", run=run, charts=charts, scalars=scalars)


@router.get("/simulations/{sim_id}/progress.json")
async def simulation_progress(request: Request, sim_id: SimulationPath, session: DB) -> JSONResponse:
    run = own_run(request, session, sim_id)
    if run is None:
        raise ApiError(404, "not_found", "simulation not found")
    return JSONResponse({"id": run.id, "status": run.status, "periods": run.periods, "periods_done": run.periods_done})
