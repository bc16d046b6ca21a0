"""The faucet: ether for new accounts, only on a development chain, only when the operator turns it on.

`Settings.faucet_wei` is what one new account gets (0, the default: nothing, accounts start empty and
the operator funds them out of band). A server told to give ether away on a chain that is not a
development chain (`DEVELOPMENT_CHAIN_IDS`) refuses to start: there ether has value. Every grant is a
row of `faucet_grants` with the client address that asked, so two budgets hold across restarts: the
most one client address is given in all (`faucet_client_budget_wei`) and the most given in all
(`faucet_budget_wei`). An account asked for past either budget is created empty and says why
(`funding`). Grants are decided under the chain lock, so two requests never spend one budget twice.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.models import FaucetGrant
from api.settings import DEVELOPMENT_CHAIN_IDS, Settings
from api.states import Funding


class FaucetConfigError(ValueError):
    """The faucet is on but the chain is not a development chain: the server refuses to start."""


def check_faucet(settings: Settings, chain_id: int) -> None:
    """Refuse to start a faucet on a chain whose ether has value."""
    if settings.faucet_wei > 0 and chain_id not in DEVELOPMENT_CHAIN_IDS:
        raise FaucetConfigError(
            f"the faucet (AIGC_MARKET_FAUCET_WEI={settings.faucet_wei}) gives ether away, which is allowed only on a "
            f"development chain ({', '.join(str(i) for i in sorted(DEVELOPMENT_CHAIN_IDS))}); this chain is {chain_id}: "
            "set AIGC_MARKET_FAUCET_WEI=0 and fund accounts out of band"
        )


def _granted(session: Session, client: str | None) -> int:
    query = select(FaucetGrant.amount_wei)
    if client is not None:
        query = query.where(FaucetGrant.client == client)
    return sum(int(amount) for amount in session.scalars(query))


def decide(session: Session, settings: Settings, chain_id: int, client: str) -> tuple[int, Funding]:
    """How much a new account created by `client` gets now, and why (call under the chain lock)."""
    amount = settings.faucet_wei
    if amount <= 0 or chain_id not in DEVELOPMENT_CHAIN_IDS:
        return 0, Funding.OFF
    if _granted(session, client) + amount > settings.faucet_client_budget_wei:
        return 0, Funding.CLIENT_BUDGET_SPENT
    if _granted(session, None) + amount > settings.faucet_budget_wei:
        return 0, Funding.BUDGET_SPENT
    return amount, Funding.FUNDED
