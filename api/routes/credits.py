"""Credits: what the registry and the exchange owe the caller (protocol v2's pull payments).

Sale proceeds, royalties and slashed stakes are credited by the exchange; released bonds, challenge
payouts and displacement refunds by the registry. Nothing is pushed to an account: GET /credits
reads both ledgers on chain, POST /credits/withdraw pays out both (`Protocol.withdraw_credits`).
"""

from __future__ import annotations

from fastapi import APIRouter

from api import custody, models
from api.deps import DB, CurrentAccount, State
from api.errors import ApiError
from api.routes.common import ERRORS, SIGNATURE
from api.schemas import ClaimCreate, CreditsOut, CreditWithdrawal
from api.states import Custody

router = APIRouter(prefix="/credits", tags=["credits"])


def credits_of(state: State, address: str) -> CreditsOut:
    registry, exchange = state.market.registry.credit_of(address), state.market.exchange.credit_of(address)
    return CreditsOut(address=address, registry_wei=registry, exchange_wei=exchange, total_wei=registry + exchange)


@router.get("", response_model=CreditsOut, responses=ERRORS)
def get_credits(state: State, account: CurrentAccount) -> CreditsOut:
    """The caller's credit in the registry and in the exchange, not yet withdrawn."""
    return credits_of(state, account.address)


@router.post("/withdraw", response_model=CreditWithdrawal, responses=ERRORS | SIGNATURE)
def withdraw(state: State, session: DB, account: CurrentAccount, body: ClaimCreate | None = None) -> CreditWithdrawal:
    """Pay the caller all its credit, from the registry and the exchange; 409 `no_credit` when there is none.

    A self-custodied account withdraws from one contract per signed transaction (428): the registry's credit,
    then the exchange's; the reply counts what this request withdrew."""
    if credits_of(state, account.address).total_wei == 0:
        raise ApiError(409, "no_credit", "nothing is credited to this account")
    if account.custody == Custody.SELF:
        return withdraw_signed(state, session, account, None if body is None else body.signed_transaction)
    signer = state.signer(account)
    with state.writing(session):
        withdrawn = state.protocol.withdraw_credits(signer)
    if withdrawn == 0:  # a concurrent request of the same account took it first
        raise ApiError(409, "no_credit", "nothing is credited to this account")
    return CreditWithdrawal(address=account.address, withdrawn_wei=withdrawn, balance_wei=state.chain.balance(account.address))


def withdraw_signed(state: State, session: DB, account: models.Account, signed_transaction: str | None) -> CreditWithdrawal:
    """The withdrawal of a self-custodied account from the first contract that credits it."""
    contract = next(c for c in (state.market.registry, state.market.exchange) if c.credit_of(account.address))
    credit = contract.credit_of(account.address)
    send = custody.sender(
        state,
        account,
        signed_transaction,
        call=contract.call_of("withdrawCredit"),
        parse=lambda tx: tx,
        as_server=lambda key: contract.withdraw_credit(key),
    )
    with state.writing(session):
        send()
    return CreditWithdrawal(address=account.address, withdrawn_wei=credit, balance_wei=state.chain.balance(account.address))
