"""Credits: what the registry and the exchange owe the caller (protocol v2's pull payments).

Sale proceeds, royalties and slashed stakes are credited by the exchange; released bonds, challenge
payouts and displacement refunds by the registry. Nothing is pushed to an account: GET /credits
reads both ledgers on chain, POST /credits/withdraw pays out both (`Protocol.withdraw_credits`).
"""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import DB, CurrentAccount, State
from api.errors import ApiError
from api.routes.common import ERRORS
from api.schemas import CreditsOut, CreditWithdrawal

router = APIRouter(prefix="/credits", tags=["credits"])


def credits_of(state: State, address: str) -> CreditsOut:
    registry, exchange = state.market.registry.credit_of(address), state.market.exchange.credit_of(address)
    return CreditsOut(address=address, registry_wei=registry, exchange_wei=exchange, total_wei=registry + exchange)


@router.get("", response_model=CreditsOut, responses=ERRORS)
def get_credits(state: State, account: CurrentAccount) -> CreditsOut:
    """The caller's credit in the registry and in the exchange, not yet withdrawn."""
    return credits_of(state, account.address)


@router.post("/withdraw", response_model=CreditWithdrawal, responses=ERRORS)
def withdraw(state: State, session: DB, account: CurrentAccount) -> CreditWithdrawal:
    """Pay the caller all its credit, from the registry and the exchange; 409 `no_credit` when there is none."""
    if credits_of(state, account.address).total_wei == 0:
        raise ApiError(409, "no_credit", "nothing is credited to this account")
    signer = state.signer(account)
    with state.writing(session):
        withdrawn = state.protocol.withdraw_credits(signer)
    if withdrawn == 0:  # a concurrent request of the same account took it first
        raise ApiError(409, "no_credit", "nothing is credited to this account")
    return CreditWithdrawal(address=account.address, withdrawn_wei=withdrawn, balance_wei=state.chain.balance(account.address))
