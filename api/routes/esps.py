"""ESPs: an ESP node (a self-custodied account that runs `aigc-market esp run`), or a server-run ESP (an API-key
account whose key the server uses, with a simulated profile).

Registering stakes the account on the exchange (protocol v2: only a staked ESP's offers can be
locked), from the account's own funds, with the server's market terms' stake.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select

from api import crud, models, reputation
from api.deps import DB, CurrentAccount, State
from api.errors import ApiError, forbidden
from api.routes.common import ERRORS, AddressPath, Limit, Offset
from api.schemas import Address, EspCreate, EspOut, EspUpdate, Page, ReputationOut
from api.states import Custody, EspOperator, EspStakeState
from market.actors import EspProfile
from market.chain.contracts import EspState

router = APIRouter(prefix="/esps", tags=["esps"])


@router.post("", status_code=201, response_model=EspOut, responses=ERRORS)
def register_esp(body: EspCreate, state: State, session: DB, account: CurrentAccount) -> EspOut:
    """Register the caller's account as an ESP (one per account): stake it on the exchange, then record it.

    409 `insufficient_funds` when the account cannot pay the stake, `esp_cannot_stake` when the
    exchange knows it as exiting or slashed. An account already staked on chain (a request that died
    after its stake) is recorded without a second stake.
    """
    if account.custody == Custody.SELF:
        return register_node(state, session, account, body)
    if not state.settings.simulated_esps:
        raise ApiError(
            409,
            "esp_must_run_a_node",
            "this server coordinates ESP nodes only: run `aigc-market esp run` with your own key (docs/esp-node.md)",
        )
    protocol = state.protocol
    stake = protocol.terms.esp_stake
    signer = state.signer(account)
    with state.writing(session):  # under the chain lock: two requests of one account do not both stake
        if session.scalar(select(models.Esp.id).where(models.Esp.account_id == account.id)) is not None:
            raise ApiError(409, "already_registered", "this account is an ESP already")
        on_chain = state.market.exchange.esp_info(account.address).state
        if on_chain is EspState.NONE:
            if state.chain.balance(account.address) <= stake:
                raise ApiError(
                    409,
                    "insufficient_funds",
                    f"staking an ESP takes {stake} wei and the fees of the transaction: the account has less",
                )
            protocol.stake(signer)
        elif on_chain is not EspState.ACTIVE:
            raise ApiError(409, "esp_cannot_stake", f"the exchange knows this account as a {on_chain.name.lower()} ESP")
        esp = models.Esp(
            account_id=account.id,
            address=account.address,
            name=body.name,
            profile=body.profile or EspProfile.HONEST,
            operator=EspOperator.SERVER,
            positives=0,
            negatives=0,
            stake_state=EspStakeState.ACTIVE,
        )
        session.add(esp)
    return crud.esp_out(esp)


def register_node(state: State, session: DB, account: models.Account, body: EspCreate) -> EspOut:
    """Record a self-custodied account as an ESP node: it staked on chain itself (`aigc-market esp run` does)."""
    if body.profile is not None:
        raise ApiError(422, "profile_for_node", "an ESP node behaves as its own process does: it takes no simulated profile")
    if session.scalar(select(models.Esp.id).where(models.Esp.account_id == account.id)) is not None:
        raise ApiError(409, "already_registered", "this account is an ESP already")
    on_chain = state.market.exchange.esp_info(account.address).state
    if on_chain is not EspState.ACTIVE:
        raise ApiError(
            409, "esp_not_staked", f"stake on the exchange first (registerEsp): it knows this account as {on_chain.name.lower()}"
        )
    esp = models.Esp(
        account_id=account.id,
        address=account.address,
        name=body.name,
        profile=None,
        operator=EspOperator.NODE,
        positives=0,
        negatives=0,
        stake_state=EspStakeState.ACTIVE,
    )
    session.add(esp)
    session.commit()
    return crud.esp_out(esp)


@router.get("", response_model=Page[EspOut], responses=ERRORS)
async def list_esps(session: DB, limit: Limit = 50, offset: Offset = 0) -> Page[EspOut]:
    rows, total = crud.page(session, select(models.Esp).order_by(models.Esp.id), limit, offset)
    return Page[EspOut](items=[crud.esp_out(e) for e in rows], total=total, limit=limit, offset=offset)


@router.get("/{address}", response_model=EspOut, responses=ERRORS)
async def get_esp(address: AddressPath, session: DB) -> EspOut:
    return crud.esp_out(crud.esp_by_address(session, address))


@router.patch("/{address}", response_model=EspOut, responses=ERRORS)
def update_esp(address: AddressPath, body: EspUpdate, session: DB, account: CurrentAccount) -> EspOut:
    """Change an ESP's name or profile: only its own account may."""
    esp = crud.esp_by_address(session, address)
    if esp.account_id != account.id:
        raise forbidden("this ESP belongs to another account")
    if body.name is not None:
        esp.name = body.name
    if body.profile is not None:
        if esp.operator == EspOperator.NODE:
            raise ApiError(422, "profile_for_node", "an ESP node behaves as its own process does: it takes no simulated profile")
        esp.profile = body.profile
    session.commit()
    return crud.esp_out(esp)


@router.get("/{address}/reputation", response_model=ReputationOut, responses=ERRORS)
def esp_reputation(
    address: AddressPath,
    state: State,
    session: DB,
    producer: Annotated[Address | None, Query(description="Reputation as seen by this producer.")] = None,
) -> ReputationOut:
    """MWSL reputation from the on-chain ratings (as indexed); averaged over producers unless ?producer=."""
    esp = crud.esp_by_address(session, address)
    now = state.chain.now()
    model = reputation.build(session, now, state.settings.reputation_period_s)
    trust, b, d, u = reputation.opinion_of(model, esp, producer)
    return ReputationOut(
        address=esp.address,
        reputation=trust,
        belief=b,
        disbelief=d,
        uncertainty=u,
        positives=esp.positives,
        negatives=esp.negatives,
        producers=len(model.producers),
        at=now,
    )
