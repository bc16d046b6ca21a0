"""API keys and encryption of private keys at rest, both keyed by the server secret.

An API key is 32 random bytes (url-safe base64); the database keeps HMAC-SHA256(secret, key), looked
up by its value and then compared with `hmac.compare_digest`. Private keys and HTLC secrets are
sealed with AES-256-GCM under a key derived from the server secret by HKDF, the account address
(or record id) as associated data, so a sealed key moved to another row does not open.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

NONCE_BYTES = 12


@dataclass(frozen=True)
class Vault:
    """Seals and opens secrets; derives API key hashes. Holds keys derived from the server secret."""

    secret: bytes = field(repr=False)

    def _derive(self, purpose: bytes) -> bytes:
        return _derive(self.secret, purpose)

    def seal(self, plaintext: bytes, context: str) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + AESGCM(self._derive(b"seal")).encrypt(nonce, plaintext, context.encode())

    def open(self, sealed: bytes, context: str) -> bytes:
        return AESGCM(self._derive(b"seal")).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], context.encode())

    def key_hash(self, api_key: str) -> str:
        return hmac.new(self._derive(b"api-key"), api_key.encode(), hashlib.sha256).hexdigest()

    def matches(self, api_key: str, stored_hash: str) -> bool:
        return hmac.compare_digest(self.key_hash(api_key), stored_hash)


@functools.lru_cache(maxsize=16)
def _derive(secret: bytes, purpose: bytes) -> bytes:
    """A key for `purpose` derived from the server secret (HKDF-SHA256), computed once per process."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"aigc-market", info=purpose).derive(secret)


#: What a session token of a signed-in (self-custodied) account starts with; an API key starts with "amk_".
SESSION_PREFIX = "ams_"


def new_api_key() -> str:
    return "amk_" + secrets.token_urlsafe(32)


def new_session_token() -> str:
    return SESSION_PREFIX + secrets.token_urlsafe(32)
