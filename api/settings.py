"""The one place where the server's configuration lives (environment variables prefixed AIGC_MARKET_).

Market terms (fees, stakes, durations) are not defined here: their defaults live in
`market.terms.MarketTerms` (and the deployment's in `MarketParams`); a setting left at None keeps
that default, a value overrides it for this server (`market_terms()`).

The server secret encrypts account keys at rest: it comes from `AIGC_MARKET_SECRET` or, failing
that, from `<data_dir>/server.secret`, created once with mode 0600 so that a restart can still
decrypt the keys it stored before.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from dataclasses import replace
from pathlib import Path
from typing import Any

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from market.terms import ETHER, MarketTerms

SECRET_FILE = "server.secret"

#: Chains whose ether has no value: anvil and hardhat (31337), geth --dev and ganache (1337), and the
#: embedded eth-tester chain. Only on these may the faucet give ether away.
DEVELOPMENT_CHAIN_IDS = frozenset({31337, 1337, 131277322940537})


class Settings(BaseSettings):
    """Server configuration; tests build one directly (and may inject an embedded `Chain`)."""

    model_config = SettingsConfigDict(env_prefix="AIGC_MARKET_", arbitrary_types_allowed=True)

    data_dir: Path = Path("data")
    """Holds the SQLite file, anvil's state, content blobs, simulation outputs and the secret file."""
    db_url: str | None = None
    """SQLAlchemy URL; default: a SQLite file (WAL) under data_dir."""
    rpc_url: str | None = None
    """JSON-RPC URL of the chain; default: a supervised anvil node with state under data_dir."""
    private_key: str | None = None
    """Key that deploys and funds new accounts on an --rpc chain (default: anvil's dev key)."""
    anvil_port: int = 8545
    """Port of the supervised anvil node on 127.0.0.1."""
    secret: str | None = Field(default=None, repr=False)
    """Server secret (env AIGC_MARKET_SECRET); default: the secret file under data_dir."""
    faucet_wei: int = Field(default=0, ge=0)
    """Ether the funder gives every new account (POST /accounts), so that it can pay stakes, fees and bonds.
    0 (the default): the faucet is off and accounts start empty (the operator funds them out of band).
    Honoured only on a development chain (`DEVELOPMENT_CHAIN_IDS`): a server told to give ether away on
    any other chain refuses to start."""
    faucet_client_budget_wei: int = Field(default=100 * ETHER, ge=0)
    """The most the faucet gives, in all, to the accounts created from one client address (an IPv6 client
    by its /64); past it, that client's new accounts start empty."""
    faucet_budget_wei: int = Field(default=1000 * ETHER, ge=0)
    """The most the faucet gives in all (kept in the database, so a restart does not reset it)."""
    account_creations_per_hour: float = Field(default=30.0, ge=0)
    """POST /accounts per client address and hour (a token bucket of `account_creation_burst`); 0: no limit."""
    account_creation_burst: int = Field(default=10, ge=1)
    rate_limit_per_s: float = Field(default=50.0, ge=0)
    """Requests per second each client address may send, sustained (a token bucket); 0: no limit."""
    rate_limit_burst: int = Field(default=200, ge=1)
    """Requests a client address may send at once before `rate_limit_per_s` applies."""
    account_rate_limit_per_s: float = Field(default=20.0, ge=0)
    """Requests per second each account (API key) may send, sustained, from any address; 0: no limit."""
    account_rate_limit_burst: int = Field(default=100, ge=1)
    trusted_proxies: list[str] = Field(default_factory=list)
    """Addresses of reverse proxies whose X-Forwarded-For names the client; from anyone else it is ignored."""
    generation_fee_wei: int | None = None
    """Default generation fee of POST /tasks; None: `MarketTerms.generation_fee`."""
    lock_duration_s: int | None = None
    """Timelock of every HTLC the server opens, counted from the latest block; None: `MarketTerms.lock_duration_s`."""
    offer_ttl_s: int | None = None
    """How long an ESP's offer can be locked; None: `MarketTerms.offer_ttl_s`."""
    esp_stake_wei: int | None = None
    """Stake that POST /esps puts up; None: `MarketTerms.esp_stake` (the deployment's minimum)."""
    reputation_period_s: float = 3600.0
    """MWSL freshness period in chain seconds."""
    max_body_bytes: int = 64 * 1024
    """Requests with a larger body are refused with 413 before they are read (an ESP node's offer excepted)."""
    simulated_esps: bool = False
    """Let API-key accounts register server-run ESPs with a simulated profile (the server then holds their keys and
    generates for them). Off: every ESP is a node with its own key (`aigc-market esp run`) and the server only
    coordinates; on only for development and the API's own tests (docs/api.md#esp-nodes)."""
    open_tasks_per_account: int = Field(default=20, ge=1)
    """Tasks one producer may have waiting for an ESP node (requested or offered, asked within the lock duration): an
    ESP node generates for every request, so unlocked requests are work a producer could make it do for free."""
    prepared_trades_per_account: int = Field(default=20, ge=1)
    """Prepared trades (terms drawn, signed lock not yet sent) one self-custodied buyer may hold; each is a row and a
    sealed secret, made by a request that costs the buyer nothing."""
    max_content_bytes: int = Field(default=8 * 1024**2, ge=1024)
    """Largest ciphertext an ESP node may hand in with its offer (its request body may be 4/3 of it, base64)."""
    public_rpc_url: str | None = None
    """The chain's JSON-RPC URL that ESP nodes are told (GET /chain); default: the node the server uses, or none
    on the embedded chain."""
    sign_in_domain: str | None = None
    """The domain a Sign-In with Ethereum message must name; default: the request's Host header."""
    sign_in_nonce_ttl_s: int = Field(default=600, ge=10)
    """How long a sign-in nonce may wait for its message."""
    session_max_s: int = Field(default=86400, ge=60)
    """The longest session a sign-in opens (its message's Expiration Time may lie no later than this after Issued At)."""
    max_simulation_periods: int = 50
    """Largest `periods` a POST /simulations may ask for."""
    max_running_simulations: int = Field(default=1, ge=0)
    """Simulations running at once on the server; more are refused with 429 `simulations_busy`."""
    max_running_simulations_per_account: int = Field(default=1, ge=0)
    """Simulations one account may have running at once; more are 429 `simulations_busy`."""
    simulations_per_account: int = Field(default=20, ge=0)
    """Simulations one account may start per `simulation_quota_window_s`; more are 429 `simulation_quota_exceeded`."""
    simulation_quota_window_s: float = Field(default=86400.0, gt=0)
    simulation_timeout_s: float = Field(default=600.0, gt=0)
    """Wall-clock limit of one run (its own process is killed then: status failed)."""
    simulation_memory_bytes: int = Field(default=4 * 1024**3, ge=0)
    """Address-space limit of a run's process (RLIMIT_AS); 0: none."""
    simulation_retention_s: float = Field(default=7 * 86400.0, ge=0)
    """Run folders older than this are removed (the run's summary stays in the database); 0: kept forever."""
    stored_bytes_per_account: int = Field(default=256 * 1024**2, ge=0)
    """Bytes one account may keep on the server (its tasks' prompts, ciphertexts and contents, its runs'
    folders); past it, POST /tasks and POST /simulations are 403 `storage_quota_exceeded`. 0: no quota."""
    workers: int = Field(default=1, ge=1)
    """Server processes sharing the port (`aigc-market serve --workers N`, PostgreSQL only). Each worker's rate
    limits are this share of the settings above (docs/api.md#several-workers)."""
    worker_id: str | None = None
    """Set by the supervisor of several workers for each worker it starts: marks the Idempotency-Key claims of this
    worker, which the supervisor releases if the worker dies."""
    indexer_poll_s: float = Field(default=0.5, gt=0)
    """With several workers: how often the indexer's leader follows the chain, and a survivor tries to take over."""
    chain: Any = Field(default=None, exclude=True, repr=False)
    """An already connected `market.chain.connection.Chain` (tests use the embedded one)."""

    def market_terms(self) -> MarketTerms:
        """`MarketTerms` with this server's overrides (checked against the deployment at start)."""
        overrides = {
            name: value
            for name, value in (
                ("generation_fee", self.generation_fee_wei),
                ("lock_duration_s", self.lock_duration_s),
                ("offer_ttl_s", self.offer_ttl_s),
                ("esp_stake", self.esp_stake_wei),
            )
            if value is not None
        }
        return replace(MarketTerms(), **overrides)

    def database_url(self) -> str:
        if self.db_url:
            return self.db_url
        return f"sqlite:///{(self.data_dir / 'market.sqlite3').resolve()}"

    def server_secret(self) -> bytes:
        """The secret from the environment, or the secret file (created once, mode 0600)."""
        if self.secret:
            return self.secret.encode()
        path = self.data_dir / SECRET_FILE
        if not path.exists():
            # Written in full and synced under a temporary name, then linked into place: a server killed
            # half-way never leaves an empty secret (which would lock every stored key out for good).
            self.data_dir.mkdir(parents=True, exist_ok=True)
            temporary = path.with_name(f"{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                with os.fdopen(fd, "w") as handle:
                    handle.write(secrets.token_hex(32))
                    handle.flush()
                    os.fsync(handle.fileno())
                with contextlib.suppress(FileExistsError):  # another process got there first: use its secret
                    os.link(temporary, path)
            finally:
                temporary.unlink(missing_ok=True)
        return path.read_text().strip().encode()
