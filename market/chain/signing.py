"""EIP-712 proof of generation: the ESP's signature that `register` checks."""

from __future__ import annotations

from eth_account import Account
from eth_account.signers.local import LocalAccount

GENERATION_TYPES = {
    "Generation": [
        {"name": "producer", "type": "address"},
        {"name": "contentHash", "type": "bytes32"},
        {"name": "promptHash", "type": "bytes32"},
        {"name": "perceptualHash", "type": "uint64"},
    ]
}


def generation_domain(chain_id: int, registry: str) -> dict[str, object]:
    """The registry's EIP-712 domain: name "AIGCRegistry", version "1"."""
    return {"name": "AIGCRegistry", "version": "1", "chainId": chain_id, "verifyingContract": registry}


def sign_generation(
    esp: LocalAccount,
    *,
    chain_id: int,
    registry: str,
    producer: str,
    content_hash: bytes,
    prompt_hash: bytes,
    perceptual_hash: int,
) -> bytes:
    """The ESP's 65-byte signature that it generated `content_hash` for `producer`."""
    message = {
        "producer": producer,
        "contentHash": content_hash,
        "promptHash": prompt_hash,
        "perceptualHash": perceptual_hash,
    }
    signed = Account.sign_typed_data(
        esp.key, domain_data=generation_domain(chain_id, registry), message_types=GENERATION_TYPES, message_data=message
    )
    return bytes(signed.signature)
