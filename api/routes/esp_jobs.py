"""The job channel of ESP nodes (docs/esp-node.md): long-poll for work, hand in offers and deliveries.

The caller is an ESP's own account, signed in with its own key; the server holds no ESP key and never
generates. `GET /esp/jobs?wait=S` answers at once when the ESP has work (a requested task to offer on, a
locked one to reveal, a revealed one whose opening the server lacks), else within S seconds (long
poll: a node asks again at once; every request is answered, so a dead connection costs one poll).
The server checks everything a node hands in against the task and the chain before recording it: the
offer's terms and EIP-712 signature; the delivery's key against the hashlock, the lock withdrawn on
chain (the key is public there), and the content against the offer's commitment.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import time
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from api import crud, models
from api.deps import DB, CurrentAccount, State
from api.errors import ApiError, forbidden
from api.routes.common import ERRORS, IdPath
from api.schemas import DeliveryCreate, EspJob, EspJobAction, EspJobs, OfferCreate, TaskOut
from api.state import AppState
from api.states import EspOperator, TaskState
from market.chain.contracts import LockState
from market.chain.hashlocks import hashlock_of
from market.chain.offers import Offer, Opening, SignedOffer, offer_id, offer_signer
from market.protocol import ContentMismatch, Protocol

router = APIRouter(prefix="/esp/jobs", tags=["esp nodes"])

#: How often a waiting long poll looks for work.
POLL_S = 0.2
#: The longest long poll (a proxy's idle timeout is usually a minute).
MAX_WAIT_S = 30.0
#: How far an offer's timelock may lie beyond the market's lock duration (chain time moves while a node works).
TIMELOCK_SLACK_S = 120


def node_esp(session: Session, account: models.Account) -> models.Esp:
    """The ESP node of the calling account; 403 for any other caller."""
    esp = session.scalar(select(models.Esp).where(models.Esp.account_id == account.id))
    if esp is None or esp.operator != EspOperator.NODE:
        raise forbidden("only an ESP node's own account may take its jobs")
    return esp


def jobs_of(session: Session, esp: models.Esp) -> list[EspJob]:
    """One query with each task's producer (a long poll runs it every `POLL_S`)."""
    rows = session.execute(
        select(models.Task, models.Account.address)
        .join(models.Account, models.Account.id == models.Task.producer_id)
        .where(
            models.Task.esp_id == esp.id,
            or_(
                models.Task.state.in_((TaskState.REQUESTED, TaskState.LOCKED)),
                (models.Task.state == TaskState.DELIVERED) & models.Task.content_sha256.is_(None),
            ),
        )
        .order_by(models.Task.id)
        .limit(100)
    ).all()
    actions = {
        TaskState.REQUESTED: EspJobAction.OFFER,
        TaskState.LOCKED: EspJobAction.REVEAL,
        TaskState.DELIVERED: EspJobAction.DELIVER,
    }
    return [
        EspJob(
            task_id=task.id,
            action=actions[task.state],
            prompt=task.prompt,
            producer=producer,
            fee_wei=int(task.fee_wei),
            offer=task.offer,
            lock_id=task.lock_id,
        )
        for task, producer in rows
    ]


@router.get("", response_model=EspJobs, responses=ERRORS)
async def esp_jobs(
    state: State,
    session: DB,
    account: CurrentAccount,
    wait: Annotated[float, Query(ge=0, le=MAX_WAIT_S, description="Seconds to wait for work (long poll).")] = 0,
) -> EspJobs:
    """The calling ESP node's work: what to offer on, what to reveal, what to deliver (at most 100, oldest first)."""
    esp = node_esp(session, account)
    deadline = time.monotonic() + wait
    while True:
        jobs = jobs_of(session, esp)
        if jobs or time.monotonic() >= deadline:
            return EspJobs(items=jobs)
        session.rollback()  # a fresh snapshot for the next look
        await asyncio.sleep(POLL_S)


def node_task(session: Session, account: models.Account, task_id: int) -> tuple[models.Task, models.Esp]:
    esp = node_esp(session, account)
    task = crud.get_or_404(session, models.Task, task_id, f"task {task_id}")
    if task.esp_id != esp.id:
        raise forbidden("this task is another ESP's job")
    return task, esp


@router.post("/{task_id}/offer", response_model=TaskOut, responses=ERRORS)
def submit_offer(task_id: IdPath, body: OfferCreate, state: State, session: DB, account: CurrentAccount) -> TaskOut:
    """The node's signed offer and the ciphertext: the task becomes `offered` (the same offer again is accepted)."""
    task, esp = node_task(session, account, task_id)
    try:
        offer = Offer.from_json(body.offer.model_dump())
    except (KeyError, ValueError, TypeError) as exc:
        raise ApiError(422, "malformed_offer", f"the offer is not an Offer's fields: {exc.__class__.__name__}") from exc
    if task.state == TaskState.OFFERED and task.offer is not None and Offer.from_json(task.offer) == offer:
        return crud.task_out(session, task)  # a node's retry after a lost reply
    if task.state != TaskState.REQUESTED:
        raise ApiError(409, "task_not_requested", f"task {task.id} is {task.state}: it takes no offer")
    check_offer(state, session, task, esp, offer, body.signature)
    try:
        ciphertext = base64.b64decode(body.ciphertext, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ApiError(422, "malformed_ciphertext", "the ciphertext is not base64") from exc
    if len(ciphertext) > state.settings.max_content_bytes:
        raise ApiError(413, "content_too_large", f"the ciphertext exceeds {state.settings.max_content_bytes} bytes")
    lock_id = "0x" + offer_id(offer, chain_id=state.chain.chain_id, exchange=state.market.exchange.address).hex()
    hashlock = "0x" + offer.hashlock.hex()
    if session.scalar(select(models.Task.id).where(or_(models.Task.lock_id == lock_id, models.Task.hashlock == hashlock))):
        raise ApiError(409, "offer_reused", "another task already holds this offer or its hashlock: use a fresh key and nonce")
    task.ciphertext_sha256 = state.store.put(ciphertext)
    task.offer, task.offer_signature, task.lock_id, task.hashlock = offer.to_json(), body.signature, lock_id, hashlock
    task.timelock, task.generation_s = offer.timelock, body.generation_s
    cost = body.cost
    task.latency_s, task.energy_j, task.completed, task.quality = cost.latency_s, cost.energy_j, cost.completed, cost.quality
    task.breakdown = dict(cost.breakdown)
    task.stored_bytes += len(ciphertext)
    task.state = TaskState.OFFERED
    session.commit()
    return crud.task_out(session, task)


def check_offer(state: AppState, session: Session, task: models.Task, esp: models.Esp, offer: Offer, signature: str) -> None:
    """422 `offer_mismatch` unless the offer is this task's: its ESP, producer and fee, a timelock the market's terms
    allow, not expired, signed by the ESP (EIP-712, the exchange's domain)."""
    producer = session.get(models.Account, task.producer_id)
    assert producer is not None
    now, terms = state.chain.now(), state.protocol.terms
    params = state.market.params()
    problems = {
        "esp": offer.esp == esp.address,
        "producer": offer.producer == producer.address,
        "fee": offer.fee == int(task.fee_wei),
        "timelock": now + params.min_timelock <= offer.timelock <= now + terms.lock_duration_s + TIMELOCK_SLACK_S,
        "expiry": now < offer.expiry <= offer.timelock,
    }
    wrong = [name for name, ok in problems.items() if not ok]
    if wrong:
        raise ApiError(422, "offer_mismatch", f"the offer does not fit the task: {', '.join(wrong)}")
    signer = offer_signer(
        SignedOffer(offer, bytes.fromhex(signature[2:])), chain_id=state.chain.chain_id, exchange=state.market.exchange.address
    )
    if signer != esp.address:
        raise ApiError(422, "invalid_offer_signature", "the offer is not signed by the task's ESP")


@router.post("/{task_id}/delivery", response_model=TaskOut, responses=ERRORS)
def submit_delivery(task_id: IdPath, body: DeliveryCreate, state: State, session: DB, account: CurrentAccount) -> TaskOut:
    """The node's opening of the content, once its key is on chain: the server opens the ciphertext and checks it
    against the offer's commitment; the task becomes `delivered` (the producer can register it)."""
    task, _ = node_task(session, account, task_id)
    if task.state not in (TaskState.LOCKED, TaskState.DELIVERED) or task.offer is None or task.lock_id is None:
        raise ApiError(409, "task_not_locked", f"task {task.id} is {task.state}: there is nothing to deliver")
    if task.content_sha256 is not None:
        return crud.task_out(session, task)  # delivered already (a node's retry)
    offer, key = Offer.from_json(task.offer), bytes.fromhex(body.key[2:])
    if hashlock_of(key) != offer.hashlock:
        raise ApiError(422, "wrong_key", "the key does not open the offer's hashlock")
    if state.market.exchange.get_lock(bytes.fromhex(task.lock_id[2:])).state != LockState.WITHDRAWN:
        raise ApiError(409, "key_not_revealed", "reveal the key on chain first (withdraw the fee): then deliver")
    try:
        fields = body.opening.model_dump()
        opening = Opening.from_json(fields | {"perceptual_hash": int(fields["perceptual_hash"], 16)})
    except (KeyError, ValueError, TypeError) as exc:
        raise ApiError(422, "malformed_opening", f"the opening is not an Opening's fields: {exc.__class__.__name__}") from exc
    assert task.ciphertext_sha256 is not None
    try:
        delivery = Protocol.open_content(key, state.store.get(task.ciphertext_sha256), opening, offer)
    except ContentMismatch as exc:
        raise ApiError(422, "content_mismatch", f"the delivery does not open to the committed content: {exc}") from exc
    task.opening, task.content_sha256 = opening.to_json(), state.store.put(delivery.content)
    task.stored_bytes += len(delivery.content)
    task.state = TaskState.DELIVERED
    session.commit()
    return crud.task_out(session, task)
