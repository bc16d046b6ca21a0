"""Generation tasks: ESP selection, the ESP's offer, the producer's lock, the reveal, refund and rating.

An ESP that runs its own node (`aigc-market esp run`, docs/esp-node.md) is coordinated here, never played
(docs/api.md#tasks): POST /tasks records the request (`requested`) for the ESP chosen by MWSL reputation;
the node takes it from GET /esp/jobs, places it on its servers, generates, encrypts under a fresh key and
sends its signed offer with the ciphertext (`offered`, api/routes/esp_jobs.py); the producer locks the fee
with that offer (POST /tasks/{id}/lock: `pending` then `locked`; a self-custodied producer signs the
lock itself, api/custody.py); the node reveals the key on chain and hands over the opening (`delivered`,
the server opens the ciphertext and checks it against the commitment); the producer registers the product
(`registered`, api/routes/products.py), or refunds after the timelock when the key never came
(`refunded`), and rates the ESP.

A server-run ESP (an API-key account registered with a simulated `profile`: honest or cheating) is the
older flow, kept for the API's own tests and demos: POST /tasks then does the whole fair exchange at once
with keys the server holds. Simulations (`/simulations`) run their own ESPs in their own chains.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

import torch
from fastapi import APIRouter
from sqlalchemy import func, select

from api import crud, custody, models, reputation
from api.deps import DB, CurrentAccount, State
from api.errors import ApiError, forbidden
from api.placement import place
from api.routes.common import ERRORS, SIGNATURE, IdPath, Limit, Offset
from api.schemas import LockCreate, Page, RatingCreate, RefundCreate, TaskCreate, TaskOut
from api.state import mark_committed
from api.states import Custody, EspOperator, EspStakeState, SelectedBy, TaskState
from market.actors import EspProfile
from market.chain.contracts import LockKind, lock_opened
from market.chain.offers import Offer, SignedOffer, offer_id
from market.content import DeterministicImageGenerator
from market.protocol import DuplicateCommitment, Protocol
from reputation.selection import SelectionStrategy

router = APIRouter(prefix="/tasks", tags=["tasks"])

#: Softmax temperature of reputation-based selection (as in the simulation's default).
TEMPERATURE = 0.1


def job_seed() -> bytes:
    """The ESP's secret per-job seed: content nobody can compute from the prompt alone (docs/protocol.md)."""
    return secrets.token_bytes(32)


def choose_esp(state: State, session: DB, producer: str, seed: int) -> models.Esp:
    """An active ESP chosen by MWSL reputation (softmax); the first active one if the choice cannot take jobs."""
    model = reputation.build(session, state.chain.now(), state.settings.reputation_period_s, producer=producer)
    row = model.row(producer)
    assert row is not None
    generator = torch.Generator().manual_seed(seed)
    column = int(
        model.mwsl.select(row, model.now, strategy=SelectionStrategy.SOFTMAX, temperature=TEMPERATURE, generator=generator)
    )
    esp = session.get(models.Esp, column + 1)
    if esp is None or esp.stake_state != EspStakeState.ACTIVE:  # a gap in the ids, or an ESP that left: the first active
        esp = session.scalars(
            select(models.Esp).where(models.Esp.stake_state == EspStakeState.ACTIVE).order_by(models.Esp.id)
        ).first()
    if esp is None:
        raise ApiError(409, "no_esps", "no registered ESP is active")
    return esp


@router.post("", status_code=201, response_model=TaskOut, responses=ERRORS)
def create_task(body: TaskCreate, state: State, session: DB, account: CurrentAccount) -> TaskOut:
    n_esps = session.scalar(select(func.max(models.Esp.id))) or 0
    if n_esps == 0:
        raise ApiError(409, "no_esps", "no ESP is registered yet")
    seed = (session.scalar(select(func.count()).select_from(models.Task)) or 0) + 1
    if body.esp is not None:
        esp, selected_by = crud.esp_by_address(session, body.esp), SelectedBy.REQUEST
        if esp.stake_state != EspStakeState.ACTIVE:
            raise ApiError(409, "esp_not_active", f"ESP {esp.address} is {esp.stake_state}: it takes no jobs")
    else:
        esp, selected_by = choose_esp(state, session, account.address, seed), SelectedBy.MWSL
    if esp.account_id == account.id:
        raise ApiError(409, "self_generation", "an ESP cannot take its own generation task")
    crud.check_storage_quota(session, account.id, state.settings.stored_bytes_per_account)
    fee = state.protocol.terms.generation_fee if body.fee_wei is None else body.fee_wei
    # A job the lock would refuse is refused before anyone works on it (the chain's verdict, without a transaction).
    exchange = state.market.exchange
    if fee < exchange.fee_floor():
        raise ApiError(422, "fee_below_floor", f"the fee must be at least the exchange's floor, {exchange.fee_floor()} wei")
    if state.chain.balance(account.address) < fee:
        raise ApiError(409, "insufficient_funds", f"the fee is {fee} wei: the account has less")
    if esp.operator == EspOperator.NODE:
        return request_from_node(state, session, account, esp, body, selected_by, fee)
    if account.custody != Custody.SERVER or not state.settings.simulated_esps:
        raise ApiError(409, "esp_not_a_node", "a server-run (simulated) ESP serves API-key accounts only: ask an ESP node")
    esp_account = session.get(models.Account, esp.account_id)
    assert esp_account is not None
    producer_key, esp_key = state.signer(account), state.signer(esp_account)
    cost = place(state.market, state.store, producer_key, esp_key, esp.id - 1, n_esps, seed)
    content = DeterministicImageGenerator().generate(body.prompt, seed=job_seed())
    protocol, chain = state.protocol, state.chain
    # The ESP accepts the job: encrypts the content, commits to it and signs the offer; an honest ESP
    # refuses content it committed to another producer (it would be slashed for it).
    with state.offer_lock:
        try:
            job = protocol.make_offer(esp_key, account.address, content, prompt_hash(body.prompt), fee=fee)
        except DuplicateCommitment as exc:
            raise ApiError(409, "duplicate_commitment", f"the ESP refuses: {exc}") from exc
    offer = job.offer
    ciphertext = state.store.put(job.ciphertext)
    hashlock_hex = "0x" + offer.hashlock.hex()  # the row's hashlock, also what its sealed key is bound to
    task = models.Task(
        producer_id=account.id,
        esp_id=esp.id,
        prompt=body.prompt,
        hashlock=hashlock_hex,
        fee_wei=str(offer.fee),
        timelock=offer.timelock,
        selected_by=selected_by,
        ciphertext_sha256=ciphertext,
        offer=offer.to_json(),
        opening=job.opening.to_json(),
        encrypted_content_key=state.vault.seal(job.key, hashlock_hex),
        latency_s=cost.latency_s,
        energy_j=cost.energy_j,
        completed=cost.completed,
        quality=cost.quality,
        breakdown=cost.breakdown,
        rated=False,
        stored_bytes=len(body.prompt.encode()) + len(job.ciphertext) + len(content),
    )
    lock_id = offer_id(offer, chain_id=chain.chain_id, exchange=exchange.address)
    with state.writing(session):
        if state.settings.workers > 1:  # the ESP's guard knows this worker's commitments only: its siblings' too
            state.check_sibling_commitments(session, account.address, job.opening)
        state.lock_as_intent(session, task, lock_id, lambda: protocol.lock(producer_key, job.signed))
        if esp.profile == EspProfile.HONEST:
            # The ESP reveals its key only for the lock of its own offer: the id the chain holds is the digest of
            # every term (producer, ESP, fee, hashlock, timelock, commitment), and it must be a generation lock
            # still locked.
            state.check_lock(lock_id, LockKind.GENERATION)
            state.store.put(content)  # before the key is public: a reveal cut off by a crash leaves it stored
            reveal = protocol.reveal(esp_key, offer, job.key)
            # The producer's side: the key read from the chain opens the ciphertext to the committed content.
            delivery = Protocol.open_content(Protocol.revealed_key(reveal), state.store.get(ciphertext), job.opening, offer)
            task.state, task.content_sha256 = TaskState.DELIVERED, state.store.put(delivery.content)
    return crud.task_out(session, task)


def request_from_node(
    state: State, session: DB, account: models.Account, esp: models.Esp, body: TaskCreate, selected_by: SelectedBy, fee: int
) -> TaskOut:
    """The task of an ESP node: recorded `requested`; its node offers (api/routes/esp_jobs.py)."""
    since = models.utcnow() - timedelta(seconds=state.protocol.terms.lock_duration_s)
    waiting = session.scalar(
        select(func.count())
        .select_from(models.Task)
        .where(
            models.Task.producer_id == account.id,
            models.Task.state.in_((TaskState.REQUESTED, TaskState.OFFERED)),
            models.Task.created_at >= since,
        )
    )
    if (waiting or 0) >= state.settings.open_tasks_per_account:
        raise ApiError(
            429,
            "too_many_open_tasks",
            f"{waiting} tasks of this account wait for an ESP node's offer or for their lock: lock or let them lapse first",
        )
    task = models.Task(
        producer_id=account.id,
        esp_id=esp.id,
        prompt=body.prompt,
        fee_wei=str(fee),
        timelock=0,
        selected_by=selected_by,
        state=TaskState.REQUESTED,
        rated=False,
        stored_bytes=len(body.prompt.encode()),
    )
    session.add(task)
    mark_committed(session)
    session.commit()
    return crud.task_out(session, task)


@router.post("/{task_id}/lock", response_model=TaskOut, responses=ERRORS | SIGNATURE)
def lock_task(task_id: IdPath, state: State, session: DB, account: CurrentAccount, body: LockCreate | None = None) -> TaskOut:
    """The producer locks the fee with its ESP node's signed offer (a self-custodied producer signs the lock: 428)."""
    task = own_task(session, task_id, account)
    if task.state != TaskState.OFFERED or task.offer is None or task.offer_signature is None:
        raise ApiError(409, "task_not_offered", f"task {task.id} is {task.state}: there is no offer to lock")
    offer = Offer.from_json(task.offer)
    signed = SignedOffer(offer, bytes.fromhex(task.offer_signature[2:]))
    chain, exchange, protocol = state.chain, state.market.exchange, state.protocol
    if chain.now() >= offer.expiry:
        raise ApiError(409, "offer_expired", "the ESP's offer expired: ask for the task again")
    if chain.balance(account.address) < offer.fee:
        raise ApiError(409, "insufficient_funds", f"the fee is {offer.fee} wei: the account has less")
    send = custody.sender(
        state,
        account,
        None if body is None else body.signed_transaction,
        call=exchange.call_of("lockGeneration", offer.as_tuple(), signed.signature, value=offer.fee),
        parse=lock_opened,
        as_server=lambda key: protocol.lock(key, signed),
    )
    lock_id = offer_id(offer, chain_id=chain.chain_id, exchange=exchange.address)
    with state.writing(session):
        state.lock_as_intent(session, task, lock_id, send)
    return crud.task_out(session, task)


@router.get("", response_model=Page[TaskOut], responses=ERRORS)
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


@router.post("/{task_id}/refund", response_model=TaskOut, responses=ERRORS | SIGNATURE)
def refund_task(task_id: IdPath, state: State, session: DB, account: CurrentAccount, body: RefundCreate | None = None) -> TaskOut:
    """The producer takes the fee back, at or after the timelock, if the ESP never revealed the key."""
    task = own_task(session, task_id, account)
    offer = crud.offer_of(task)
    send = custody.sender(
        state,
        account,
        None if body is None else body.signed_transaction,
        call=state.market.exchange.call_of("refundGeneration", offer.as_tuple()),
        parse=lambda tx: tx,
        as_server=lambda key: state.protocol.refund(key, offer, wait=False),  # the server never moves chain time
    )
    with state.writing(session):
        send()
        task.state = TaskState.REFUNDED
    return crud.task_out(session, task)


@router.post("/{task_id}/rating", response_model=TaskOut, responses=ERRORS | SIGNATURE)
def rate_task(task_id: IdPath, body: RatingCreate, state: State, session: DB, account: CurrentAccount) -> TaskOut:
    """Rate the ESP on chain for a settled task (once; a refunded task only negatively)."""
    task = own_task(session, task_id, account)
    offer = crud.offer_of(task)
    send = custody.sender(
        state,
        account,
        body.signed_transaction,
        call=state.market.ledger.call_of("rate", offer.as_tuple(), body.positive, body.score),
        parse=lambda tx: tx,
        as_server=lambda key: state.protocol.rate(key, offer, body.positive, body.score),
    )
    with state.writing(session):
        send()
        task.rated = True
    return crud.task_out(session, task)


def prompt_hash(prompt: str) -> bytes:
    return hashlib.sha256(prompt.encode()).digest()
