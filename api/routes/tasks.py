"""Generation tasks: ESP selection, placement and cost, generation lock and (same request) fulfilment.

POST /tasks does the whole fair exchange at once because the ESP is a server-side account: the
ESP generates the content, encrypts it under a fresh key k, the producer locks the fee under
sha256(k), and an honest ESP claims the fee by revealing k on chain (state `fulfilled`, the
plaintext is then stored). A `cheating` ESP never reveals: the task stays `locked` and the producer
refunds after the timelock (POST /tasks/{id}/refund). Rating is POST /tasks/{id}/rating.
"""

from __future__ import annotations

import hashlib

import torch
from fastapi import APIRouter
from sqlalchemy import func, select

from api import crud, models, reputation
from api.deps import DB, CurrentAccount, State
from api.errors import ApiError, forbidden
from api.placement import place
from api.routes.common import ERRORS, IdPath, Limit, Offset
from api.schemas import Page, RatingCreate, TaskCreate, TaskOut
from market.chain.hashlocks import hashlock_of, new_secret
from market.content import DeterministicImageGenerator, encrypt

router = APIRouter(prefix="/tasks", tags=["tasks"])

#: Softmax temperature of reputation-based selection (as in the simulation's default).
TEMPERATURE = 0.1


def choose_esp(state: State, session: DB, producer: str, seed: int) -> models.Esp:
    model = reputation.build(session, state.chain.now(), state.settings.reputation_period_s, producer=producer)
    row = model.row(producer)
    assert row is not None
    generator = torch.Generator().manual_seed(seed)
    column = int(model.mwsl.select(row, model.now, strategy="softmax", temperature=TEMPERATURE, generator=generator))
    esp = session.get(models.Esp, column + 1)
    if esp is None:  # a gap in the ids: fall back to the first ESP
        esp = session.scalars(select(models.Esp).order_by(models.Esp.id)).first()
    assert esp is not None
    return esp


@router.post("", status_code=201, response_model=TaskOut, responses=ERRORS)
def create_task(body: TaskCreate, state: State, session: DB, account: CurrentAccount) -> TaskOut:
    n_esps = session.scalar(select(func.max(models.Esp.id))) or 0
    if n_esps == 0:
        raise ApiError(409, "no_esps", "no ESP is registered yet")
    seed = (session.scalar(select(func.count()).select_from(models.Task)) or 0) + 1
    if body.esp is not None:
        esp, selected_by = crud.esp_by_address(session, body.esp), "request"
    else:
        esp, selected_by = choose_esp(state, session, account.address, seed), "mwsl"
    if esp.account_id == account.id:
        raise ApiError(422, "self_generation", "an ESP cannot take its own generation task")
    esp_account = session.get(models.Account, esp.account_id)
    assert esp_account is not None
    producer_key, esp_key = state.signer(account), state.signer(esp_account)
    cost = place(state.market, state.store, producer_key, esp_key, esp.id - 1, n_esps, seed)
    content = DeterministicImageGenerator().generate(body.prompt)
    key = new_secret()
    ciphertext = state.store.put(encrypt(key, content))
    fee = body.fee_wei or state.settings.generation_fee_wei
    hashlock = hashlock_of(key)
    hashlock_hex = "0x" + hashlock.hex()  # the row's hashlock, also what its sealed key is bound to
    with state.writing(session):
        chain, exchange = state.chain, state.market.exchange
        timelock = chain.now() + state.settings.lock_duration_s
        task = models.Task(
            producer_id=account.id, esp_id=esp.id, prompt=body.prompt, hashlock=hashlock_hex, fee_wei=str(fee),
            timelock=timelock, selected_by=selected_by, ciphertext_sha256=ciphertext,
            encrypted_content_key=state.vault.seal(key, hashlock_hex), latency_s=cost.latency_s,
            energy_j=cost.energy_j, completed=cost.completed, quality=cost.quality, breakdown=cost.breakdown, rated=False)
        lock = state.lock_as_intent(
            session, task, lambda: exchange.lock_generation(producer_key, esp.address, hashlock, timelock, fee))
        if esp.profile == "honest":
            exchange.withdraw(esp_key, lock.lock_id, key)
            task.state, task.content_sha256 = "fulfilled", state.store.put(content)
    return crud.task_out(session, task)


@router.get("", response_model=Page[TaskOut])
async def list_tasks(session: DB, account: CurrentAccount, limit: Limit = 50, offset: Offset = 0) -> Page[TaskOut]:
    """The caller's own tasks (prompts are private to their producer)."""
    query = select(models.Task).where(models.Task.producer_id == account.id).order_by(models.Task.id)
    rows, total = crud.page(session, query, limit, offset)
    return Page[TaskOut](items=[crud.task_out(session, t) for t in rows], total=total, limit=limit, offset=offset)


def own_task(session: DB, task_id: int, account: models.Account) -> models.Task:
    task = crud.get_or_404(session, models.Task, task_id, f"task {task_id}")
    if task.producer_id != account.id:
        raise forbidden("this task belongs to another account")
    return task


@router.get("/{task_id}", response_model=TaskOut, responses=ERRORS)
async def get_task(task_id: IdPath, session: DB, account: CurrentAccount) -> TaskOut:
    return crud.task_out(session, own_task(session, task_id, account))


@router.post("/{task_id}/refund", response_model=TaskOut, responses=ERRORS)
def refund_task(task_id: IdPath, state: State, session: DB, account: CurrentAccount) -> TaskOut:
    """The producer takes the fee back, at or after the timelock, if the ESP never revealed the key."""
    task = own_task(session, task_id, account)
    signer = state.signer(account)
    with state.writing(session):
        state.market.exchange.refund(signer, crud.lock_of(task))
        task.state = "refunded"
    return crud.task_out(session, task)


@router.post("/{task_id}/rating", response_model=TaskOut, responses=ERRORS)
def rate_task(task_id: IdPath, body: RatingCreate, state: State, session: DB, account: CurrentAccount) -> TaskOut:
    """Rate the ESP on chain for a settled task (once; a refunded task only negatively)."""
    task = own_task(session, task_id, account)
    signer = state.signer(account)
    with state.writing(session):
        state.market.ledger.rate(signer, crud.lock_of(task), body.positive, body.score)
        task.rated = True
    return crud.task_out(session, task)


def prompt_hash(prompt: str) -> bytes:
    return hashlib.sha256(prompt.encode()).digest()
