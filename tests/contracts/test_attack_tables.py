"""Boundary and attack tables of protocol v2: timelock instants, 1,000 wrong preimages, forged ESP offers.

Runs on eth-tester and on anvil, like every contract test; the `market` fixture checks the money
invariants afterwards (ether conserved; the exchange holds open locks + credits + stakes; the
registry its bonds + credits).
"""

from __future__ import annotations

import dataclasses
import hashlib

import pytest
from chain_helpers import ETHER, FEE, HOUR, final_product, open_generation, open_purchase, reverts, stake
from eth_abi import encode as abi_encode
from eth_account import Account
from eth_utils import function_signature_to_4byte_selector, to_checksum_address

from market.chain.contracts import LockState
from market.chain.errors import ChainError, ContractRevert
from market.chain.offers import DOMAIN_VERSION, OFFER_FIELDS, SignedOffer, exchange_domain, offer_id, sign_offer

#: secp256k1 group order: (r, s) and (r, n - s) both verify under plain ecrecover.
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
OFFER_TUPLE = "(address,address,bytes32,uint256,uint64,uint64,uint256,bytes32)"
WITHDRAW_GENERATION = function_signature_to_4byte_selector(f"withdrawGeneration({OFFER_TUPLE},bytes32)")


def _try(fn) -> str:
    try:
        fn()
    except ContractRevert as exc:
        return exc.error
    return "ok"


def _boundary_table(chain, timelock: int, attempts: dict) -> dict[int, dict[str, str]]:
    """Each attempt, alone, at timelock - 1, timelock and timelock + 1 (a snapshot around each)."""
    table = {}
    for offset in (-1, 0, 1):
        outcomes = {}
        for action, attempt in attempts.items():
            snapshot = chain.snapshot()
            chain.set_next_block_timestamp(timelock + offset)
            outcomes[action] = _try(attempt)
            chain.revert(snapshot)
        table[offset] = outcomes
    return table


def test_generation_withdraw_and_refund_at_the_timelock_boundary_exactly_one_succeeds(market, actors):
    chain, exchange = market.chain, market.exchange
    _, job = open_generation(market, actors.producer, actors.esp, duration=HOUR)
    table = _boundary_table(
        chain,
        job.offer.timelock,
        {
            "withdrawGeneration": lambda: exchange.withdraw_generation(actors.esp, job.offer, job.key),
            "refundGeneration": lambda: exchange.refund_generation(actors.producer, job.offer),
        },
    )
    assert table == {
        -1: {"withdrawGeneration": "ok", "refundGeneration": "AIGCExchangeTimelockNotExpired"},
        0: {"withdrawGeneration": "AIGCExchangeTimelockExpired", "refundGeneration": "ok"},
        1: {"withdrawGeneration": "AIGCExchangeTimelockExpired", "refundGeneration": "ok"},
    }
    for outcomes in table.values():
        assert sum(outcome == "ok" for outcome in outcomes.values()) == 1
    assert exchange.generation_lock(job.offer).state is LockState.LOCKED  # every attempt was rolled back


def test_purchase_withdraw_and_refund_at_the_timelock_boundary_exactly_one_succeeds(market, actors):
    chain, exchange = market.chain, market.exchange
    token_id = final_product(market, actors.producer, actors.esp)
    opened, secret = open_purchase(market, actors.buyer, token_id, duration=HOUR)
    table = _boundary_table(
        chain,
        opened.terms.timelock,
        {
            "withdrawPurchase": lambda: exchange.withdraw_purchase(actors.producer, opened.terms, secret),
            "refundPurchase": lambda: exchange.refund_purchase(actors.buyer, opened.terms),
        },
    )
    assert table == {
        -1: {"withdrawPurchase": "ok", "refundPurchase": "AIGCExchangeTimelockNotExpired"},
        0: {"withdrawPurchase": "AIGCExchangeTimelockExpired", "refundPurchase": "ok"},
        1: {"withdrawPurchase": "AIGCExchangeTimelockExpired", "refundPurchase": "ok"},
    }
    for outcomes in table.values():
        assert sum(outcome == "ok" for outcome in outcomes.values()) == 1
    assert exchange.get_lock(opened.lock_id).state is LockState.LOCKED


def test_a_thousand_wrong_preimages_pay_nothing(market, actors):
    chain, exchange = market.chain, market.exchange
    _, job = open_generation(market, actors.producer, actors.esp, fee=FEE)
    key = job.key
    # Near misses first (each bit of the key flipped in turn, the hashlock itself, zero), then random.
    wrong = [bytes(a ^ b for a, b in zip(key, (1 << i).to_bytes(32, "big"), strict=True)) for i in range(256)]
    wrong += [hashlib.sha256(key).digest(), b"\x00" * 32, b"\xff" * 32]
    wrong += [hashlib.sha256(b"wrong %d" % i).digest() for i in range(1_000 - len(wrong))]
    assert len(set(wrong)) == 1_000 and key not in wrong
    held = exchange.balance()
    offer = job.offer.as_tuple()
    payouts, errors = 0, set()
    for preimage in wrong:  # eth_call from the ESP: the exact check a mined transaction runs
        data = "0x" + (WITHDRAW_GENERATION + abi_encode([OFFER_TUPLE, "bytes32"], [offer, preimage])).hex()
        try:
            chain.call_raw(exchange.address, data, sender=actors.esp.address)
            payouts += 1
        except ChainError as exc:  # a revert comes back decoded (ContractRevert); anything else is named
            errors.add(exc.error if isinstance(exc, ContractRevert) else repr(exc))
    assert payouts == 0
    assert errors == {"AIGCExchangeWrongPreimage"}
    # A few as transactions too (the pre-send check refuses them: nothing is ever sent).
    for preimage in wrong[:5]:
        with reverts("AIGCExchangeWrongPreimage"):
            exchange.withdraw_generation(actors.esp, job.offer, preimage)
    assert exchange.balance() == held
    assert exchange.generation_lock(job.offer).state is LockState.LOCKED
    exchange.withdraw_generation(actors.esp, job.offer, key)  # the right key still works


def _high_s(signature: bytes) -> bytes:
    r, s, v = signature[:32], int.from_bytes(signature[32:64], "big"), signature[64]
    return r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])  # v 27 <-> 28


def _signed_in(domain: dict, esp, offer) -> bytes:
    return bytes(
        Account.sign_typed_data(
            esp.key, domain_data=domain, message_types={"Offer": OFFER_FIELDS}, message_data=offer.message()
        ).signature
    )


def _forgeries(market, actors, offer) -> dict[str, tuple[str, object, bytes]]:
    """name -> (who locks it, the offer it presents, the signature): none is the ESP's signature of that offer."""
    chain_id, exchange = market.chain.chain_id, market.exchange.address
    esp, producer = actors.esp, actors.producer
    valid = sign_offer(esp, offer, chain_id=chain_id, exchange=exchange).signature

    def tampered(**changes):
        return ("producer", dataclasses.replace(offer, **changes), valid)

    other_exchange = to_checksum_address("0x" + hashlib.sha256(b"another exchange").hexdigest()[:40])
    domain = exchange_domain(chain_id, exchange)
    return {
        "signed by someone else": (
            "producer",
            offer,
            sign_offer(actors.attacker, offer, chain_id=chain_id, exchange=exchange).signature,
        ),
        "signed by the producer itself": (
            "producer",
            offer,
            sign_offer(producer, offer, chain_id=chain_id, exchange=exchange).signature,
        ),
        "tampered fee": tampered(fee=offer.fee + 1),
        "tampered hashlock": tampered(hashlock=hashlib.sha256(b"another key").digest()),
        "tampered timelock": tampered(timelock=offer.timelock + 1),
        "tampered expiry": tampered(expiry=offer.expiry + 1),
        "tampered nonce": tampered(nonce=offer.nonce + 1),
        "tampered commitment": tampered(commitment=hashlib.sha256(b"other content").digest()),
        "another (active) ESP named": tampered(esp=actors.other.address),
        "replayed by another producer": ("accomplice", dataclasses.replace(offer, producer=actors.accomplice.address), valid),
        "wrong chain id": ("producer", offer, sign_offer(esp, offer, chain_id=chain_id + 1, exchange=exchange).signature),
        "wrong verifying contract": (
            "producer",
            offer,
            sign_offer(esp, offer, chain_id=chain_id, exchange=other_exchange).signature,
        ),
        "wrong domain version": ("producer", offer, _signed_in({**domain, "version": DOMAIN_VERSION + "0"}, esp, offer)),
        "wrong domain name": ("producer", offer, _signed_in({**domain, "name": "AIGCRegistry"}, esp, offer)),
        "flipped signature byte": ("producer", offer, valid[:10] + bytes([valid[10] ^ 1]) + valid[11:]),
        "v not 27 or 28": ("producer", offer, valid[:64] + bytes([valid[64] - 27])),
        "high-s (malleated)": ("producer", offer, _high_s(valid)),
        "truncated to 64 bytes": ("producer", offer, valid[:64]),
        "empty": ("producer", offer, b""),
        "all zero": ("producer", offer, b"\x00" * 65),
    }


def test_forged_or_tampered_esp_offers_are_never_locked(market, actors):
    exchange = market.exchange
    stake(market, actors.other)  # so that naming it passes the active-ESP check and meets the signature check
    _, job = open_generation(market, actors.producer, actors.esp, fee=FEE)  # stakes the ESP; a first, genuine lock
    offer = dataclasses.replace(job.offer, nonce=job.offer.nonce + 1)  # a fresh offer of the same job
    forgeries = _forgeries(market, actors, offer)
    assert len(forgeries) >= 12
    locks, held = exchange.contract.functions.totalLocks().call(), exchange.balance()
    outcomes = {}
    for name, (who, presented, signature) in forgeries.items():
        locker, signed = getattr(actors, who), SignedOffer(presented, signature)
        outcomes[name] = _try(lambda locker=locker, signed=signed: exchange.lock_generation(locker, signed))
    assert outcomes == dict.fromkeys(forgeries, "AIGCExchangeInvalidOfferSignature")
    assert exchange.contract.functions.totalLocks().call() == locks and exchange.balance() == held
    # The malleated twin really is a valid secp256k1 signature of the offer's digest: only the low-s rule rejects it.
    digest = offer_id(offer, chain_id=market.chain.chain_id, exchange=exchange.address)
    assert digest == exchange.offer_id(offer)
    high_s = forgeries["high-s (malleated)"][2]
    recovered = Account._recover_hash(
        digest, vrs=(high_s[64] - 27, int.from_bytes(high_s[:32], "big"), int.from_bytes(high_s[32:64], "big"))
    )
    assert recovered == actors.esp.address
    # Control: the genuine signature of the same offer locks.
    valid = sign_offer(actors.esp, offer, chain_id=market.chain.chain_id, exchange=exchange.address)
    assert exchange.lock_generation(actors.producer, valid).lock_id == digest


@pytest.mark.parametrize("amount", [FEE, ETHER])
def test_the_right_key_is_useless_to_anyone_but_the_esp(market, actors, amount):
    """A mempool observer who learns the key cannot withdraw: only the offer's ESP can."""
    _, job = open_generation(market, actors.producer, actors.esp, fee=amount)
    for thief in (actors.attacker, actors.producer, actors.buyer):
        with reverts("AIGCExchangeNotReceiver"):
            market.exchange.withdraw_generation(thief, job.offer, job.key)
    assert market.exchange.generation_lock(job.offer).state is LockState.LOCKED
