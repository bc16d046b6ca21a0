"""POST /accounts creates a chain account whose key the server keeps encrypted; funded only by the faucet.

Accounts start empty unless the operator turned the faucet on (development chains only, with a
per-client and a global budget: `api/faucet.py`, docs/api.md). The reply carries the API key, once:
it is sent with `Cache-Control: no-store`, and an Idempotency-Key never stores it (a replay is 409
`idempotent_reply_withheld`).
"""

from __future__ import annotations

from eth_account import Account as EthAccount
from fastapi import APIRouter, Request, Response

from api import faucet, models
from api.deps import DB, CurrentAccount, State
from api.ratelimit import client_key
from api.routes.common import ERRORS
from api.schemas import AccountCreated, AccountOut
from api.security import new_api_key

router = APIRouter(prefix="/accounts", tags=["accounts"])


@router.post("", status_code=201, response_model=AccountCreated, responses=ERRORS)
def create_account(request: Request, response: Response, state: State, session: DB) -> AccountCreated:
    """A new key pair; the API key is returned here and never again. Funded by the faucet when it is on
    and the client's and the server's budgets allow (see `funding`), else empty."""
    key = EthAccount.create()
    api_key = new_api_key()
    client = getattr(request.state, "client", None) or client_key(request.client.host if request.client else None)
    chain = state.chain
    with state.writing(session):
        amount, funding = faucet.decide(session, state.settings, chain.chain_id, client)
        account = models.Account(
            address=key.address,
            api_key_hash=state.vault.key_hash(api_key),
            encrypted_key=state.vault.seal(bytes(key.key), key.address),
        )
        session.add(account)
        if amount:
            session.flush()
            session.add(models.FaucetGrant(client=client, account_id=account.id, amount_wei=str(amount)))
            chain.send_ether(chain.funder, key.address, amount)
    response.headers["Cache-Control"] = "no-store"
    return AccountCreated(
        address=key.address, api_key=api_key, balance_wei=chain.balance(key.address), funded_wei=amount, funding=funding
    )


@router.get("/me", response_model=AccountOut, responses=ERRORS)
def me(state: State, account: CurrentAccount) -> AccountOut:
    return AccountOut(
        address=account.address,
        custody=account.custody,
        balance_wei=state.chain.balance(account.address),
        created_at=account.created_at,
    )
