"""`MarketClient`: the market's REST API from Python, typed by the server's own schemas (api/schemas.py).

Two kinds of account (docs/api.md#self-custodied-accounts):

- an API-key account (`MarketClient.with_new_account`, or `MarketClient(url, token=api_key)`): the server holds
  its key and signs for it;
- a self-custodied account (`MarketClient.sign_in(url, account)`): Sign-In with Ethereum (EIP-4361) with a key
  that stays in this process. When a request must send one of its transactions, the server answers 428
  with the unsigned transaction; the client checks that it goes to one of the market's contracts on the
  market's chain, signs it and sends the request again with `signed_transaction` (a claim of a sale takes
  two: the approval, then the claim).

An ESP node (esp/node.py) uses the same client for its job channel (`esp_jobs`, `submit_offer`,
`submit_delivery`). Every error reply becomes `ApiClientError(status, code, detail)`.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

import httpx
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils.address import to_checksum_address
from pydantic import BaseModel

from api import schemas
from api.siwe import SignInMessage, format_time, sign
from market.chain.offers import Opening, SignedOffer

M = TypeVar("M", bound=BaseModel)

#: How many transactions one request may ask a self-custodied account to sign (a sale's claim: approve, claim).
MAX_SIGNATURES = 3
#: How long a session opened by `sign_in` asks to last.
SESSION_S = 12 * 3600


class ApiClientError(Exception):
    """An error reply of the API: its HTTP status, stable code and detail (a connection failure is status 0)."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(f"{status} {code}: {detail}")
        self.status, self.code, self.detail = status, code, detail


class JobAction(StrEnum):
    OFFER = schemas.EspJobAction.OFFER.value
    REVEAL = schemas.EspJobAction.REVEAL.value
    DELIVER = schemas.EspJobAction.DELIVER.value


@dataclass(frozen=True)
class EspJob:
    """One job of an ESP node (GET /esp/jobs): what to do for which task."""

    task_id: int
    action: JobAction
    prompt: str
    producer: str
    fee_wei: int
    offer: dict[str, Any] | None
    lock_id: str | None


@dataclass(frozen=True)
class ChainInfo:
    chain_id: int
    rpc_url: str | None
    deployment: dict[str, Any]
    terms: dict[str, int]


class MarketClient:
    """One account's client of one server."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        signer: LocalAccount | None = None,
        timeout: float = 30.0,
        http: httpx.Client | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.signer = signer
        """The self-custodied account's key (None: the server signs, or no account)."""
        # `http`: a ready httpx client to speak through (a test's in-process `TestClient`); it gets this
        # account's Authorization header.
        self._http = http if http is not None else httpx.Client(base_url=self.base_url, timeout=timeout)
        self._chain: schemas.ChainInfo | None = None
        self._owns_http = http is None
        self._auth: dict[str, str] = {} if token is None else {"Authorization": f"Bearer {token}"}

    def close(self) -> None:
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> MarketClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # -- accounts ---------------------------------------------------------------------------------

    @classmethod
    def with_new_account(cls, base_url: str, **kwargs: Any) -> tuple[MarketClient, schemas.AccountCreated]:
        """A new API-key account (POST /accounts) and its client."""
        anonymous = cls(base_url, **kwargs)
        try:
            created = anonymous._call("POST", "/accounts", schemas.AccountCreated)
        finally:
            anonymous.close()
        return cls(base_url, token=created.api_key, **kwargs), created

    @classmethod
    def sign_in(cls, base_url: str, account: LocalAccount, *, timeout: float = 30.0, **kwargs: Any) -> MarketClient:
        """Sign in with `account`'s own key (EIP-4361): the key signs the message here and never leaves."""
        client = cls(base_url, signer=account, timeout=timeout, **kwargs)
        nonce = client._call("POST", "/auth/nonce", schemas.SignInNonce)
        now = datetime.now(UTC)
        message = SignInMessage(
            domain=nonce.domain,
            address=account.address,
            statement="Sign in to the AIGC market.",
            uri=nonce.uri,
            chain_id=nonce.chain_id,
            nonce=nonce.nonce,
            issued_at=format_time(now),
            expiration_time=format_time(now + timedelta(seconds=SESSION_S)),
        )
        signed_in = client._call(
            "POST",
            "/auth/sign-in",
            schemas.SignedIn,
            json={"message": message.text(), "signature": sign(message, bytes(account.key))},
        )
        client._auth = {"Authorization": f"Bearer {signed_in.token}"}
        return client

    def me(self) -> schemas.AccountOut:
        return self._call("GET", "/accounts/me", schemas.AccountOut)

    def chain_info(self) -> ChainInfo:
        info = self._chain_info()
        return ChainInfo(info.chain_id, info.rpc_url, info.deployment, info.terms)

    def _chain_info(self) -> schemas.ChainInfo:
        if self._chain is None:
            self._chain = self._call("GET", "/chain", schemas.ChainInfo)
        return self._chain

    # -- ESPs -------------------------------------------------------------------------------------

    def register_esp(self, name: str, profile: str | None = None) -> schemas.EspOut:
        body: dict[str, Any] = {"name": name}
        if profile is not None:
            body["profile"] = profile
        return self._call("POST", "/esps", schemas.EspOut, json=body)

    def esps(self, limit: int = 100, offset: int = 0) -> schemas.Page[schemas.EspOut]:
        return self._call("GET", "/esps", schemas.Page[schemas.EspOut], params={"limit": limit, "offset": offset})

    def reputation(self, address: str, producer: str | None = None) -> schemas.ReputationOut:
        params = {} if producer is None else {"producer": producer}
        return self._call("GET", f"/esps/{address}/reputation", schemas.ReputationOut, params=params)

    # -- the ESP node's job channel ---------------------------------------------------------------

    def esp_jobs(self, wait_s: float = 20.0) -> list[EspJob]:
        """The node's work (long poll: at once if there is some, else within `wait_s`)."""
        jobs = self._call("GET", "/esp/jobs", schemas.EspJobs, params={"wait": wait_s}, timeout=wait_s + 30)
        return [
            EspJob(j.task_id, JobAction(j.action.value), j.prompt, to_checksum_address(j.producer), j.fee_wei, j.offer, j.lock_id)
            for j in jobs.items
        ]

    def submit_offer(
        self,
        task_id: int,
        signed: SignedOffer,
        ciphertext: bytes,
        *,
        latency_s: float,
        energy_j: float,
        completed: bool,
        quality: float,
        breakdown: dict[str, float],
        generation_s: float,
    ) -> schemas.TaskOut:
        body = {
            "offer": signed.offer.to_json(),
            "signature": "0x" + signed.signature.hex(),
            "ciphertext": base64.b64encode(ciphertext).decode(),
            "cost": {
                "latency_s": latency_s,
                "energy_j": energy_j,
                "completed": completed,
                "quality": quality,
                "breakdown": breakdown,
            },
            "generation_s": generation_s,
        }
        return self._call("POST", f"/esp/jobs/{task_id}/offer", schemas.TaskOut, json=body)

    def submit_delivery(self, task_id: int, opening: Opening, key: bytes) -> schemas.TaskOut:
        body = {"opening": opening.to_json() | {"perceptual_hash": hex(opening.perceptual_hash)}, "key": "0x" + key.hex()}
        return self._call("POST", f"/esp/jobs/{task_id}/delivery", schemas.TaskOut, json=body)

    # -- tasks ------------------------------------------------------------------------------------

    def create_task(self, prompt: str, esp: str | None = None, fee_wei: int | None = None) -> schemas.TaskOut:
        body: dict[str, Any] = {"prompt": prompt}
        if esp is not None:
            body["esp"] = esp
        if fee_wei is not None:
            body["fee_wei"] = fee_wei
        return self._call("POST", "/tasks", schemas.TaskOut, json=body)

    def task(self, task_id: int) -> schemas.TaskOut:
        return self._call("GET", f"/tasks/{task_id}", schemas.TaskOut)

    def tasks(self, limit: int = 50, offset: int = 0) -> schemas.Page[schemas.TaskOut]:
        return self._call("GET", "/tasks", schemas.Page[schemas.TaskOut], params={"limit": limit, "offset": offset})

    def lock(self, task_id: int) -> schemas.TaskOut:
        """Lock the fee with the task's offer (state offered -> locked)."""
        return self._signed("POST", f"/tasks/{task_id}/lock", schemas.TaskOut, {})

    def refund(self, task_id: int) -> schemas.TaskOut:
        return self._signed("POST", f"/tasks/{task_id}/refund", schemas.TaskOut, {})

    def rate(self, task_id: int, positive: bool, score: int = 0) -> schemas.TaskOut:
        return self._signed("POST", f"/tasks/{task_id}/rating", schemas.TaskOut, {"positive": positive, "score": score})

    # -- products, trades, credits ----------------------------------------------------------------

    def register_product(self, task_id: int, uri: str | None = None) -> schemas.ProductOut:
        body: dict[str, Any] = {"task_id": task_id}
        if uri is not None:
            body["uri"] = uri
        return self._signed("POST", "/products", schemas.ProductOut, body)

    def product(self, token_id: int) -> schemas.ProductOut:
        return self._call("GET", f"/products/{token_id}", schemas.ProductOut)

    def products(
        self, *, owner: str | None = None, producer: str | None = None, esp: str | None = None
    ) -> schemas.Page[schemas.ProductOut]:
        params = {k: v for k, v in (("owner", owner), ("producer", producer), ("esp", esp)) if v is not None}
        return self._call("GET", "/products", schemas.Page[schemas.ProductOut], params=params)

    def content(self, token_id: int) -> bytes:
        return self._request("GET", f"/products/{token_id}/content").content

    def challenge(self, token_id: int, duplicate_id: int) -> schemas.ChallengeOut:
        return self._signed("POST", f"/products/{token_id}/challenges", schemas.ChallengeOut, {"duplicate_id": duplicate_id})

    def claim_bond(self, token_id: int) -> schemas.ProductOut:
        return self._signed("POST", f"/products/{token_id}/bond", schemas.ProductOut, {})

    def open_trade(self, token_id: int, price_wei: int) -> schemas.TradeOut:
        """Buy a final product: lock its price (a self-custodied buyer signs the lock of the terms the server drew)."""
        return self._signed("POST", "/trades", schemas.TradeOut, {"token_id": token_id, "price_wei": price_wei})

    def trade(self, trade_id: int) -> schemas.TradeOut:
        return self._call("GET", f"/trades/{trade_id}", schemas.TradeOut)

    def claim_trade(self, trade_id: int) -> schemas.TradeOut:
        return self._signed("POST", f"/trades/{trade_id}/claim", schemas.TradeOut, {})

    def refund_trade(self, trade_id: int) -> schemas.TradeOut:
        return self._signed("POST", f"/trades/{trade_id}/refund", schemas.TradeOut, {})

    def credits(self) -> schemas.CreditsOut:
        return self._call("GET", "/credits", schemas.CreditsOut)

    def withdraw_credits(self) -> schemas.CreditWithdrawal:
        """All the account's credit; a self-custodied account signs one withdrawal per contract that credits it."""
        if self.signer is None:
            return self._call("POST", "/credits/withdraw", schemas.CreditWithdrawal)
        withdrawn = 0
        while True:
            try:
                reply = self._signed("POST", "/credits/withdraw", schemas.CreditWithdrawal, {})
            except ApiClientError as exc:
                if exc.code == "no_credit" and withdrawn:
                    return reply_of(self.me().address, withdrawn, self.me().balance_wei)
                raise
            withdrawn += reply.withdrawn_wei

    def health(self) -> schemas.Health:
        return self._call("GET", "/health", schemas.Health)

    # -- plumbing ---------------------------------------------------------------------------------

    def _signed(self, method: str, path: str, model: type[M], body: dict[str, Any]) -> M:
        """A request that may send a transaction of this account: a self-custodied one signs what the server
        prepares (428) and sends the request again, as many times as the action takes."""
        for _ in range(MAX_SIGNATURES + 1):
            try:
                return self._call(method, path, model, json=body)
            except _SignatureRequired as required:
                body = dict(body, signed_transaction=self._sign(required.transaction))
        raise ApiClientError(428, "too_many_signatures", f"{path} asked for more than {MAX_SIGNATURES} signatures")

    def _sign(self, transaction: dict[str, Any]) -> str:
        """Sign a prepared transaction after checking that it is for this market's chain and one of its contracts."""
        if self.signer is None:
            raise ApiClientError(428, "signature_required", "the server asks for a signature and this client holds no key")
        info = self._chain_info()
        tx = {
            key: int(value, 16) if isinstance(value, str) and key not in ("to", "data", "from") else value
            for key, value in transaction.items()
        }
        contracts = {to_checksum_address(a) for a in info.deployment["contracts"].values()}
        if tx.get("chainId") != info.chain_id or to_checksum_address(str(tx.get("to"))) not in contracts:
            raise ApiClientError(428, "unexpected_transaction", "the server asked to sign a transaction outside this market")
        tx.pop("from", None)
        signed = Account.sign_transaction(tx, self.signer.key)
        return "0x" + bytes(signed.raw_transaction).hex()

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, headers=self._auth, **kwargs)
        except httpx.HTTPError as exc:
            raise ApiClientError(0, "connection_failed", f"{method} {path}: {exc.__class__.__name__}") from exc
        if response.status_code >= 400:
            try:
                error = response.json()
            except ValueError:
                error = {}
            code, detail = str(error.get("code", "http_error")), str(error.get("detail", response.text[:200]))
            if response.status_code == 428 and isinstance(error.get("transaction"), dict):
                raise _SignatureRequired(error["transaction"])
            raise ApiClientError(response.status_code, code, detail)
        return response

    def _call(self, method: str, path: str, model: type[M], **kwargs: Any) -> M:
        return model.model_validate(self._request(method, path, **kwargs).json())


class _SignatureRequired(Exception):
    def __init__(self, transaction: dict[str, Any]) -> None:
        super().__init__("signature required")
        self.transaction = transaction


def reply_of(address: str, withdrawn: int, balance: int) -> schemas.CreditWithdrawal:
    return schemas.CreditWithdrawal(address=address, withdrawn_wei=withdrawn, balance_wei=balance)
