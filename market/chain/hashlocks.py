"""Secrets and sha256 hashlocks for the HTLC exchange."""

from __future__ import annotations

import hashlib
import secrets


def new_secret() -> bytes:
    """A fresh random 32-byte preimage (content key or trade secret)."""
    return secrets.token_bytes(32)


def hashlock_of(preimage: bytes) -> bytes:
    """sha256 of a 32-byte preimage, as the exchange checks it."""
    if len(preimage) != 32:
        raise ValueError(f"a preimage is exactly 32 bytes, got {len(preimage)}")
    return hashlib.sha256(preimage).digest()
