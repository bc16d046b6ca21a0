"""Products: Proof-of-AIGC registration of a fulfilled task, listing, content download, challenges.

Content download is `GET /products/{id}/content` (image/png, the decrypted plaintext, public once
its key was revealed on chain); 404 when this server does not hold the product's content.
"""

from __future__ import annotations

from typing import Annotated

from eth_utils import to_checksum_address
from fastapi import APIRouter, Query
from fastapi.responses import Response
from sqlalchemy import or_, select

from api import crud, models
from api.deps import DB, CurrentAccount, State
from api.errors import ApiError, forbidden, not_found
from api.routes.common import ERRORS, IdPath, Limit, Offset
from api.routes.tasks import prompt_hash
from api.schemas import Address, ChallengeCreate, ChallengeOut, Page, ProductCreate, ProductOut
from market.chain.contracts import Registry
from market.chain.errors import ContractRevert
from market.chain.signing import sign_generation
from market.content import content_hash, perceptual_hash

router = APIRouter(prefix="/products", tags=["products"])


@router.post("", status_code=201, response_model=ProductOut, responses=ERRORS)
def register_product(body: ProductCreate, state: State, session: DB, account: CurrentAccount) -> ProductOut:
    """Register the content of one of the caller's fulfilled tasks, with its ESP's EIP-712 signature.

    A retry after a crash between the registry transaction and the database commit finds the
    content registered by the caller on chain and records that token: registration is exactly once.
    """
    task, esp, esp_account = crud.task_with_esp(session, body.task_id)
    if task.producer_id != account.id:
        raise forbidden("this task belongs to another account")
    if task.state != "fulfilled" or task.content_sha256 is None:
        raise ApiError(409, "task_not_fulfilled", f"task {task.id} is {task.state}: no revealed content to register")
    if task.token_id is not None:
        raise ApiError(409, "already_registered", f"task {task.id} is registered as product {task.token_id}")
    content = state.store.get(task.content_sha256)
    c_hash, p_hash, phash = content_hash(content), prompt_hash(task.prompt), perceptual_hash(content)
    producer_key = state.signer(account)
    registry = state.market.registry
    signature = sign_generation(state.signer(esp_account), chain_id=state.chain.chain_id, registry=registry.address,
                                producer=account.address, content_hash=c_hash, prompt_hash=p_hash, perceptual_hash=phash)
    with state.writing(session):
        try:
            token_id = registry.register(producer_key, content_hash=c_hash, perceptual_hash=phash, prompt_hash=p_hash,
                                         esp=esp.address, signature=signature,
                                         uri=body.uri or f"sha256://{task.content_sha256}").token_id
        except ContractRevert as exc:
            token_id = adoptable_token(session, registry, exc, account.address)
            if token_id is None:
                raise
        task.token_id = token_id
    product = crud.get_or_404(session, models.Product, token_id, f"product {token_id}")
    product.task_id, product.content_sha256 = task.id, task.content_sha256
    session.commit()
    return crud.product_out(product)


def adoptable_token(session: DB, registry: Registry, revert: ContractRevert, producer: str) -> int | None:
    """The token of content that an earlier request of `producer` registered and died before recording.

    A server killed between the registry transaction and its database commit leaves the content on
    chain and the task unregistered; the retry's transaction then reverts as a duplicate. Adopting
    that token (the caller's own, linked to no task) makes registration exactly once instead of
    failing forever. Any other revert, or someone else's product, is not adoptable.
    """
    if revert.error != "AIGCRegistryDuplicateContent":
        return None
    token_id = int(revert.params["tokenId"])
    if registry.product(token_id).producer.lower() != producer.lower():
        return None
    if session.scalar(select(models.Task.id).where(models.Task.token_id == token_id)) is not None:
        return None
    return token_id


@router.get("", response_model=Page[ProductOut])
async def list_products(session: DB, owner: Annotated[Address | None, Query()] = None,
                  producer: Annotated[Address | None, Query()] = None, esp: Annotated[Address | None, Query()] = None,
                  limit: Limit = 50, offset: Offset = 0) -> Page[ProductOut]:
    """Products (revoked ones too), filtered by current owner, producer or ESP, oldest first."""
    filters = {name: to_checksum_address(value)  # stored checksummed, so that the column's index applies
               for name, value in (("owner", owner), ("producer", producer), ("esp", esp)) if value is not None}
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


@router.post("/{token_id}/challenges", status_code=201, response_model=ChallengeOut, responses=ERRORS)
def challenge(token_id: IdPath, body: ChallengeCreate, state: State, session: DB, account: CurrentAccount) -> ChallengeOut:
    """The owner of product `token_id` accuses `duplicate_id` of copying it; the registry adjudicates."""
    registry = state.market.registry
    try:
        owner = registry.owner_of(token_id)
    except ContractRevert as exc:
        raise not_found(f"product {token_id}") from exc
    if owner.lower() != account.address.lower():
        raise forbidden(f"product {token_id} belongs to another account")
    signer = state.signer(account)
    with state.writing(session):
        outcome = registry.challenge(signer, token_id, body.duplicate_id)
    row = session.scalar(select(models.Challenge).where(models.Challenge.block_number == outcome.tx.block_number))
    if row is None:
        raise ApiError(503, "not_indexed", "the verdict is on chain but not indexed yet")
    return crud.challenge_out(row)


@router.get("/{token_id}/challenges", response_model=list[ChallengeOut], responses=ERRORS)
async def list_challenges(token_id: IdPath, session: DB) -> list[ChallengeOut]:
    """Every verdict in which the product was the original or the accused duplicate."""
    crud.get_or_404(session, models.Product, token_id, f"product {token_id}")
    query = select(models.Challenge).where(or_(models.Challenge.original_id == token_id,
                                               models.Challenge.duplicate_id == token_id)).order_by(models.Challenge.id)
    return [crud.challenge_out(c) for c in session.scalars(query)]
