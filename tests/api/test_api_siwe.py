"""EIP-4361 messages (api/siwe.py) against the EIP's own example, and every refusal of the sign-in route."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from eth_account import Account
from fastapi.testclient import TestClient

from api import models
from api.siwe import SignInError, SignInMessage, format_time, sign, verify_signature

#: The example message of EIP-4361 ("Example message"), verbatim.
EIP_EXAMPLE = """service.invalid wants you to sign in with your Ethereum account:
0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2

I accept the ServiceOrg Terms of Service: https://service.invalid/tos

URI: https://service.invalid/login
Version: 1
Chain ID: 1
Nonce: 32891756
Issued At: 2021-09-30T16:25:24Z
Resources:
- ipfs://bafybeiemxf5abjwjbikoz4mc3a3dla6ual3jsgpdr4cjr3oz3evfyavhwq/
- https://example.com/my-web2-claim.json"""


def test_the_eips_example_message_parses_into_its_fields_and_back() -> None:
    message = SignInMessage.parse(EIP_EXAMPLE)
    assert message.domain == "service.invalid" and message.address == "0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2"
    assert message.statement == "I accept the ServiceOrg Terms of Service: https://service.invalid/tos"
    assert (message.uri, message.version, message.chain_id, message.nonce) == ("https://service.invalid/login", "1", 1, "32891756")
    assert message.issued_at == "2021-09-30T16:25:24Z" and len(message.resources) == 2
    assert message.text() == EIP_EXAMPLE


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda t: t.replace("0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2", "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2"), "EIP-55"),
        (lambda t: t.replace("Version: 1", "Version: 2"), "version"),
        (lambda t: t.replace("Chain ID: 1", "Chain ID: one"), "chain id"),
        (lambda t: t.replace("Nonce: 32891756", "Nonce: 1234"), "nonce"),
        (lambda t: t.replace("2021-09-30T16:25:24Z", "yesterday"), "RFC 3339"),
        (lambda t: t + "\nExtra: line", "unexpected line"),
        (lambda t: t.replace("\n", "\r\n"), "control character"),
    ],
)
def test_a_message_off_the_eips_grammar_is_refused(change: Any, why: str) -> None:
    with pytest.raises(SignInError) as refused:
        SignInMessage.parse(change(EIP_EXAMPLE))
    assert refused.value.code == "malformed_sign_in" and why.split()[0].lower() in refused.value.detail.lower()


def test_a_signature_by_another_key_does_not_verify() -> None:
    owner, other = Account.create(), Account.create()
    message = SignInMessage.parse(EIP_EXAMPLE.replace("0xC02aaA39b223FE8D0A0e5C4F27eAD9083C756Cc2", owner.address))
    verify_signature(message, sign(message, bytes(owner.key)))
    with pytest.raises(SignInError) as refused:
        verify_signature(message, sign(message, bytes(other.key)))
    assert refused.value.code == "invalid_signature"


def signed_body(client: TestClient, key: Any, **overrides: Any) -> dict[str, str]:
    nonce = client.post("/auth/nonce").json()
    now = datetime.now(UTC)
    fields: dict[str, Any] = {
        "domain": nonce["domain"],
        "address": key.address,
        "uri": nonce["uri"],
        "chain_id": nonce["chain_id"],
        "nonce": nonce["nonce"],
        "issued_at": format_time(now),
        "expiration_time": format_time(now + timedelta(hours=1)),
    } | overrides
    message = SignInMessage(**fields)
    return {"message": message.text(), "signature": sign(message, bytes(key.key))}


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"domain": "evil.example"}, "sign_in_wrong_domain"),
        ({"chain_id": 1}, "sign_in_wrong_chain"),
        ({"expiration_time": None}, "sign_in_expired"),
        ({"expiration_time": "2020-01-01T00:00:00Z"}, "sign_in_expired"),
        ({"expiration_time": format_time(datetime.now(UTC) + timedelta(days=30))}, "sign_in_expired"),
        ({"issued_at": format_time(datetime.now(UTC) + timedelta(hours=1))}, "sign_in_not_yet_valid"),
        ({"nonce": "abcdefgh1234"}, "sign_in_nonce_invalid"),
    ],
)
def test_the_sign_in_route_refuses(client: TestClient, overrides: dict[str, Any], code: str) -> None:
    reply = client.post("/auth/sign-in", json=signed_body(client, Account.create(), **overrides))
    assert reply.status_code == 401 and reply.json()["code"] == code


def test_a_message_signed_for_another_address_is_refused(client: TestClient) -> None:
    owner, impostor = Account.create(), Account.create()
    body = signed_body(client, owner)
    body["signature"] = sign(SignInMessage.parse(body["message"]), bytes(impostor.key))
    reply = client.post("/auth/sign-in", json=body)
    assert reply.status_code == 401 and reply.json()["code"] == "invalid_signature"


def test_an_expired_session_token_is_refused(client: TestClient) -> None:
    signed_in = client.post("/auth/sign-in", json=signed_body(client, Account.create())).json()
    headers = {"Authorization": f"Bearer {signed_in['token']}"}
    assert client.get("/accounts/me", headers=headers).json()["custody"] == "self"
    state = client.app.state.market  # type: ignore[attr-defined]
    with state.sessions.begin() as session:
        for row in session.query(models.AccountSession).all():
            row.expires_at = datetime.now(UTC) - timedelta(seconds=1)
    reply = client.get("/accounts/me", headers=headers)
    assert reply.status_code == 401 and reply.json()["code"] == "invalid_api_key"


def test_an_api_key_address_cannot_be_signed_into(client: TestClient) -> None:
    """An address whose key the server holds never gets a self-custodied session (the two custodies stay apart)."""
    created = client.post("/accounts").json()
    state = client.app.state.market  # type: ignore[attr-defined]
    with state.sessions() as session:
        account = session.query(models.Account).filter_by(address=created["address"]).one()
        key = Account.from_key(state.vault.open(account.encrypted_key, account.address))
    reply = client.post("/auth/sign-in", json=signed_body(client, key))
    assert reply.status_code == 409 and reply.json()["code"] == "custody_mismatch"


def test_lapsed_nonces_do_not_accumulate(client: TestClient) -> None:
    """POST /auth/nonce needs no key: it must not grow the database without bound."""
    first = client.post("/auth/nonce").json()["nonce"]
    state = client.app.state.market  # type: ignore[attr-defined]
    with state.sessions.begin() as session:
        session.get(models.SignInNonce, first).expires_at = datetime.now(UTC) - timedelta(seconds=1)
    client.post("/auth/nonce")
    with state.sessions() as session:
        assert session.get(models.SignInNonce, first) is None and session.query(models.SignInNonce).count() == 1
