"""POST /accounts creates a funded chain account whose key the server keeps encrypted."""

from __future__ import annotations

from eth_account import Account as EthAccount
from fastapi import APIRouter

from api import models
from api.deps import DB, CurrentAccount, State
from api.routes.common import ERRORS
from api.schemas import AccountCreated, AccountOut
from api.security import new_api_key

router = APIRouter(prefix="/accounts", tags=["accounts"])


@router.post("", status_code=201, response_model=AccountCreated, responses=ERRORS)
def create_account(state: State, session: DB) -> AccountCreated:
    """A new key pair, funded by the deployer; the API key is returned here and never again."""
    key = EthAccount.create()
    api_key = new_api_key()
    with state.writing(session):
        state.chain.send_ether(state.chain.funder, key.address, state.settings.account_funds_wei)
        session.add(
            models.Account(
                address=key.address,
                api_key_hash=state.vault.key_hash(api_key),
                encrypted_key=state.vault.seal(bytes(key.key), key.address),
            )
        )
    return AccountCreated(address=key.address, api_key=api_key, balance_wei=state.chain.balance(key.address))


@router.get("/me", response_model=AccountOut, responses=ERRORS)
def me(state: State, account: CurrentAccount) -> AccountOut:
    return AccountOut(address=account.address, balance_wei=state.chain.balance(account.address), created_at=account.created_at)
