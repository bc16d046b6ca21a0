"""Boundary and attack tables (issue 9): timelock instants, 1,000 wrong preimages, forged ESP signatures.

Runs on eth-tester and on anvil, like every contract test; the `market` fixture checks the money
invariants afterwards.
"""

from __future__ import annotations

import hashlib

import pytest
from chain_helpers import ETHER, FEE, HOUR, Content, make_content, open_generation, register, reverts
from eth_account import Account
from eth_utils import to_checksum_address

from market.chain.contracts import LockState
from market.chain.errors import ContractRevert
from market.chain.signing import sign_generation

#: secp256k1 group order: (r, s) and (r, n - s) both verify under plain ecrecover.
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def _try(fn) -> str:
    try:
        fn()
    except ContractRevert as exc:
        return exc.error
    return "ok"


def test_withdraw_and_refund_at_the_timelock_boundary_exactly_one_succeeds(market, actors):
    chain, exchange = market.chain, market.exchange
    lock, key = open_generation(market, actors.producer, actors.esp, duration=HOUR)
    timelock = exchange.get_lock(lock.lock_id).timelock
    table = {}
    for offset in (-1, 0, 1):
        outcomes = {}
        for action, attempt in (
            ("withdraw", lambda: exchange.withdraw(actors.esp, lock.lock_id, key)),
            ("refund", lambda: exchange.refund(actors.producer, lock.lock_id)),
        ):
            snapshot = chain.snapshot()
            chain.set_next_block_timestamp(timelock + offset)
            outcomes[action] = _try(attempt)
            if outcomes[action] == "ok":
                assert exchange.get_lock(lock.lock_id).state in (LockState.WITHDRAWN, LockState.REFUNDED)
            chain.revert(snapshot)
        table[offset] = outcomes
    assert table == {
        -1: {"withdraw": "ok", "refund": "AIGCExchangeTimelockNotExpired"},
        0: {"withdraw": "AIGCExchangeTimelockExpired", "refund": "ok"},
        1: {"withdraw": "AIGCExchangeTimelockExpired", "refund": "ok"},
    }
    for outcomes in table.values():
        assert sum(outcome == "ok" for outcome in outcomes.values()) == 1


def test_a_thousand_wrong_preimages_pay_nothing(market, actors):
    exchange = market.exchange
    lock, key = open_generation(market, actors.producer, actors.esp, fee=FEE)
    withdraw = exchange.contract.functions.withdraw
    # Near misses first (each bit of the key flipped in turn, the hashlock itself, zero), then random.
    wrong = [bytes(a ^ b for a, b in zip(key, (1 << i).to_bytes(32, "big"), strict=True)) for i in range(256)]
    wrong += [hashlib.sha256(key).digest(), b"\x00" * 32, b"\xff" * 32]
    wrong += [hashlib.sha256(b"wrong %d" % i).digest() for i in range(1_000 - len(wrong))]
    assert len(set(wrong)) == 1_000 and key not in wrong
    held = exchange.balance()
    payouts, errors = 0, set()
    for preimage in wrong:  # eth_call from the receiver: the exact check a mined transaction runs
        try:
            withdraw(lock.lock_id, preimage).call({"from": actors.esp.address})
            payouts += 1
        except Exception as exc:  # web3 raises several types; the revert data decides
            errors.add(market.chain._as_revert(exc).__str__().split("(")[0])
    assert payouts == 0
    assert errors == {"AIGCExchange.AIGCExchangeWrongPreimage"}
    # A few as mined transactions too (estimation rejects them: nothing is ever sent).
    for preimage in wrong[:5]:
        with reverts("AIGCExchangeWrongPreimage"):
            exchange.withdraw(actors.esp, lock.lock_id, preimage)
    assert exchange.balance() == held
    assert exchange.get_lock(lock.lock_id).state is LockState.LOCKED
    exchange.withdraw(actors.esp, lock.lock_id, key)  # the right key still works


def _high_s(signature: bytes) -> bytes:
    r, s, v = signature[:32], int.from_bytes(signature[32:64], "big"), signature[64]
    return r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])  # v 27 <-> 28


def _forgeries(market, actors, content: Content) -> dict[str, tuple[str, bytes, dict]]:
    """name -> (who submits, signature, register arguments overriding the content's)."""
    producer, esp = actors.producer, actors.esp
    base = {"chain_id": market.chain.chain_id, "registry": market.registry.address, "producer": producer.address,
            "content_hash": content.content_hash, "prompt_hash": content.prompt_hash,
            "perceptual_hash": content.phash}

    def signed(**changes) -> bytes:
        return sign_generation(esp, **{**base, **changes})

    valid = signed()
    other_contract = to_checksum_address("0x" + hashlib.sha256(b"another registry").hexdigest()[:40])
    return {
        "tampered producer": ("producer", signed(producer=actors.other.address), {}),
        "tampered contentHash": ("producer", valid, {"content_hash": hashlib.sha256(b"other content").digest()}),
        "tampered promptHash": ("producer", valid, {"prompt_hash": hashlib.sha256(b"other prompt").digest()}),
        "tampered perceptualHash": ("producer", valid, {"perceptual_hash": content.phash ^ 1}),
        "tampered signature byte": ("producer", valid[:10] + bytes([valid[10] ^ 1]) + valid[11:], {}),
        "wrong chain id": ("producer", signed(chain_id=market.chain.chain_id + 1), {}),
        "wrong verifying contract": ("producer", signed(registry=other_contract), {}),
        "replay for another producer": ("other", valid, {}),
        "signed by someone else": ("producer", sign_generation(actors.attacker, **base), {}),
        "high-s (malleated)": ("producer", _high_s(valid), {}),
        "truncated": ("producer", valid[:64], {}),
        "empty": ("producer", b"", {}),
    }


def test_forged_esp_signatures_are_never_accepted(market, actors):
    content = make_content("signed content")
    registry = market.registry
    forgeries = _forgeries(market, actors, content)
    accepted = []
    for name, (who, signature, overrides) in forgeries.items():
        args = {"content_hash": content.content_hash, "perceptual_hash": content.phash,
                "prompt_hash": content.prompt_hash} | overrides
        submitter = getattr(actors, who)
        try:
            registry.register(submitter, esp=actors.esp.address, signature=signature, **args)
            accepted.append(name)
        except ContractRevert as exc:
            assert exc.error == "AIGCRegistryInvalidSignature", (name, exc)
    assert accepted == []
    assert len(forgeries) == 12
    assert registry.total_registered() == 0
    # The malleated twin really is a valid secp256k1 signature of the same digest: only the low-s rule rejects it.
    digest = registry.contract.functions.generationDigest(
        actors.producer.address, content.content_hash, content.prompt_hash, content.phash
    ).call()
    high_s = forgeries["high-s (malleated)"][1]
    v = high_s[64] - 27
    recovered = Account._recover_hash(digest, vrs=(v, int.from_bytes(high_s[:32], "big"), int.from_bytes(high_s[32:64], "big")))
    assert recovered == actors.esp.address
    # Control: the genuine signature registers.
    assert register(market, actors.producer, actors.esp, content).token_id == 1


@pytest.mark.parametrize("amount", [1, ETHER])
def test_wrong_preimage_from_anyone_else_also_fails(market, actors, amount):
    """Even the right preimage is useless to anyone but the receiver (a mempool observer)."""
    lock, key = open_generation(market, actors.producer, actors.esp, fee=amount)
    for thief in (actors.attacker, actors.producer, actors.buyer):
        with reverts("AIGCExchangeNotReceiver"):
            market.exchange.withdraw(thief, lock.lock_id, key)
    assert market.exchange.get_lock(lock.lock_id).state is LockState.LOCKED
