"""Products: Proof-of-AIGC registration of a delivered task, listing, content download, challenges, bonds.

Registration opens the commitment of the task's paid offer (`Protocol.register`, bond attached). A
product can be challenged during the registry's challenge window (then 409
`challenge_window_closed`); afterwards it is final: it can be sold, and its owner claims the
registration bond (POST /products/{id}/bond), which is credited (see /credits).

Content download is `GET /products/{id}/content` (image/png, the decrypted plaintext, public once
its key was revealed on chain); 404 when this server does not hold the product's content.
"""

from __future__ import annotations

from typing import Annotated

from eth_utils.address import to_checksum_address
from fastapi import APIRouter, Query
from fastapi.responses import Response
from sqlalchemy import or_, select

from api import crud, custody, models
from api.deps import DB, CurrentAccount, State
from api.errors import ApiError, forbidden, not_found
from api.routes.common import ERRORS, SIGNATURE, IdPath, Limit, Offset
from api.schemas import Address, ChallengeCreate, ChallengeOut, ClaimCreate, Page, ProductCreate, ProductOut
from api.states import TaskState
from market.chain.contracts import challenge_outcome, registered
from market.chain.errors import ContractRevert

router = APIRouter(prefix="/products", tags=["products"])


@router.post("", status_code=201, response_model=ProductOut, responses=ERRORS | SIGNATURE)
def register_product(body: ProductCreate, state: State, session: DB, account: CurrentAccount) -> ProductOut:
    """Register the content of one of the caller's delivered tasks from its paid offer and the offer's opening.

    A retry after a crash between the registry transaction and the database commit finds the
    task's lock used by the caller's own token and records that token: registration is exactly once.
    """
    task = crud.get_or_404(session, models.Task, body.task_id, f"task {body.task_id}")
    if task.producer_id != account.id:
        raise forbidden("this task belongs to another account")
    if task.state == TaskState.DELIVERED and task.content_sha256 is None and state.recover_content(session, task):
        session.commit()
    if task.token_id is not None:
        raise ApiError(409, "already_registered", f"task {task.id} is registered as product {task.token_id}")
    if task.state != TaskState.DELIVERED or task.content_sha256 is None:
        raise ApiError(409, "task_not_delivered", f"task {task.id} is {task.state}: no revealed content to register")
    offer, opening = crud.offer_of(task), crud.opening_of(task)
    uri = body.uri or f"sha256://{task.content_sha256}"
    registry = state.market.registry
    send = custody.sender(
        state,
        account,
        body.signed_transaction,
        call=registry.call_of("register", offer.as_tuple(), opening.as_tuple(), uri, value=registry.registration_bond()),
        parse=registered,
        as_server=lambda key: state.protocol.register(key, offer, opening, uri),
    )
    with state.writing(session):
        try:
            token_id = send().token_id
        except ContractRevert as exc:
            adopted = adoptable_token(exc, task)
            if adopted is None:
                raise
            # Adopted only if the chain's product is this task's own registration: the caller's, of the
            # content the task's offer committed to.
            record = state.market.registry.product(adopted)
            if record.producer != account.address or record.content_hash != opening.content_hash:
                raise ApiError(409, "lock_mismatch", "the token registered from this task's lock is not its content") from exc
            token_id = adopted
        task.token_id, task.state = token_id, TaskState.REGISTERED
    product = crud.get_or_404(session, models.Product, token_id, f"product {token_id}")
    if product.task_id is None or product.content_sha256 is None:  # indexed before its task was complete: link them
        product.task_id, product.content_sha256 = task.id, task.content_sha256
        session.commit()
    return crud.product_out(product)


def adoptable_token(revert: ContractRevert, task: models.Task) -> int | None:
    """The token that an earlier request registered from this task's lock and died before recording.

    A server killed between the registry transaction and its database commit leaves the product on
    chain and the task unregistered; the retry's transaction then reverts: the lock backs a token
    already. Only the lock's producer, the caller, can have registered from it, so that token is
    the caller's registration of this task: adopting it makes registration exactly once instead of
    failing forever. Any other revert is the registry's verdict.
    """
    if revert.error != "AIGCRegistryGenerationUsed" or task.lock_id is None:
        return None
    if "0x" + bytes(revert.params["lockId"]).hex() != task.lock_id:
        return None
    return int(revert.params["tokenId"])


@router.get("", response_model=Page[ProductOut], responses=ERRORS)
async def list_products(
    session: DB,
    owner: Annotated[Address | None, Query()] = None,
    producer: Annotated[Address | None, Query()] = None,
    esp: Annotated[Address | None, Query()] = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Page[ProductOut]:
    """Products (revoked ones too), filtered by current owner, producer or ESP, oldest first."""
    filters = {
        name: str(to_checksum_address(value))  # stored checksummed, so that the column's index applies
        for name, value in (("owner", owner), ("producer", producer), ("esp", esp))
        if value is not None
    }
    rows, total = crud.product_page(session, filters, limit, offset)
    return Page[ProductOut](items=[crud.product_out(p) for p in rows], total=total, limit=limit, offset=offset)


@router.get("/{token_id}", response_model=ProductOut, responses=ERRORS)
async def get_product(token_id: IdPath, session: DB) -> ProductOut:
    return crud.product_out(crud.get_or_404(session, models.Product, token_id, f"product {token_id}"))


@router.get("/{token_id}/content", responses={200: {"content": {"image/png": {}}}, **ERRORS})
async def product_content(token_id: IdPath, state: State, session: DB) -> Response:
    product = crud.get_or_404(session, models.Product, token_id, f"product {token_id}")
    if product.content_sha256 is None:
        raise not_found(f"content of product {token_id}")
    return Response(state.store.get(product.content_sha256), media_type="image/png")


@router.post("/{token_id}/challenges", status_code=201, response_model=ChallengeOut, responses=ERRORS | SIGNATURE)
def challenge(token_id: IdPath, body: ChallengeCreate, state: State, session: DB, account: CurrentAccount) -> ChallengeOut:
    """The owner of product `token_id` accuses `duplicate_id` of copying it; the registry adjudicates.

    Only within the accused product's challenge window (409 `challenge_window_closed` after it)."""
    owned_by(state, session, token_id, account)
    registry = state.market.registry
    send = custody.sender(
        state,
        account,
        body.signed_transaction,
        call=registry.call_of("challenge", token_id, body.duplicate_id, value=registry.challenge_deposit()),
        parse=challenge_outcome,
        as_server=lambda key: state.protocol.challenge(key, token_id, body.duplicate_id),
    )
    with state.writing(session):
        outcome = send()
    # The verdict of this transaction, from its own log: a block may hold several challenges.
    resolved = outcome.tx.event("ChallengeResolved")
    row = session.scalar(
        select(models.Challenge).where(
            models.Challenge.block_number == resolved.block_number, models.Challenge.log_index == resolved.log_index
        )
    )
    if row is not None:
        return crud.challenge_out(row)
    args = resolved.args
    return ChallengeOut(
        original_id=int(args["originalId"]),
        duplicate_id=int(args["duplicateId"]),
        challenger=str(args["challenger"]),
        upheld=bool(args["upheld"]),
        distance=int(args["distance"]),
        block_number=resolved.block_number,
    )


@router.post("/{token_id}/bond", response_model=ProductOut, responses=ERRORS | SIGNATURE)
def claim_bond(token_id: IdPath, state: State, session: DB, account: CurrentAccount, body: ClaimCreate | None = None) -> ProductOut:
    """The owner of a final product has its registration bond credited (once); withdraw it with POST /credits/withdraw.

    409 `product_not_final` inside the challenge window, `bond_already_claimed` the second time."""
    owned_by(state, session, token_id, account)
    send = custody.sender(
        state,
        account,
        None if body is None else body.signed_transaction,
        call=state.market.registry.call_of("claimBond", token_id),
        parse=lambda tx: tx,
        as_server=lambda key: state.protocol.claim_bond(key, token_id),
    )
    with state.writing(session):
        send()
    return crud.product_out(crud.get_or_404(session, models.Product, token_id, f"product {token_id}"))


def owned_by(state: State, session: DB, token_id: int, account: models.Account) -> None:
    """404 for an unknown product, 409 `product_revoked` for a revoked one, 403 unless the caller owns it (on chain)."""
    product = session.get(models.Product, token_id)
    if product is not None and product.revoked:
        raise ApiError(409, "product_revoked", f"product {token_id} was revoked")
    try:
        owner = state.market.registry.owner_of(token_id)
    except ContractRevert as exc:
        raise not_found(f"product {token_id}") from exc
    if owner.lower() != account.address.lower():
        raise forbidden(f"product {token_id} belongs to another account")


@router.get("/{token_id}/challenges", response_model=list[ChallengeOut], responses=ERRORS)
async def list_challenges(token_id: IdPath, session: DB) -> list[ChallengeOut]:
    """Every verdict in which the product was the original or the accused duplicate."""
    crud.get_or_404(session, models.Product, token_id, f"product {token_id}")
    query = (
        select(models.Challenge)
        .where(or_(models.Challenge.original_id == token_id, models.Challenge.duplicate_id == token_id))
        .order_by(models.Challenge.id)
    )
    return [crud.challenge_out(c) for c in session.scalars(query)]
