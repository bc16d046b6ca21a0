"""The attacks of the outside review on the old protocol, performed against protocol v2.

Each test plays the attacker on both backends (the `market` fixture runs it on eth-tester and on
anvil and checks the money invariants afterwards) and asserts that the attack fails: a revert with
the named custom error, or no gain, shown by exact balances, credits and ownership derived by hand.

| #  | attack on the old protocol | tests |
|----|----------------------------|-------|
| A1 | squatting: copy a pending registration's content hash, register it first through an own ESP | `test_a1_*` |
| A2 | priority theft: register the victim's pHash first, then challenge the victim's token | `test_a2_*` |
| A3 | free negative ratings: 1-wei lock to any ESP under a random hashlock, refund, rate negative | `test_a3_*` |
| A4 | cheap Sybil praise: 1-wei lock to an own second key acting as ESP, withdraw, rate positive | `test_a4_*` |
| A5 | exit scam: sell a near-copy D of one's original O, then challenge D with O | `test_a5_*` |
| A6 | payout griefing: a royalty receiver that reverts on receipt blocks every resale | `test_a6_*` |
| A7 | a purchase whose token is gone cannot be cancelled before its timelock; no timelock bound | `test_a7_*` |
| A8 | registration bonds are never released to an honest owner | `test_a8_*` |
| -- | equivocation: an ESP sells content already committed to another producer; proof, slash, refusals | `test_equivocation_*` |
| -- | unbonding: an exiting ESP's stake stays for the delay and can still be slashed | `test_unbonding_*` |
| -- | an honest ESP (`market.protocol`) never signs a slashable duplicate | `tests/market/test_protocol_guard.py` |

Slashing (`proveEquivocation`): two locks to different producers whose content is a duplicate (the
same content hash, or pHashes within the similarity threshold, from any two ESPs) slash the ESP of
the later lock: its producer is credited the later offer's fee + the registration bond (COMPENSATION
at the usual fee), at most half of what is left of the stake, and as much again is forfeited for
good (`totalForfeited`); each later lock once. The slashed ESP takes no jobs, cannot stake again,
exit or withdraw; the rest of its stake stays for its other victims. After one ordinary slash the
stake is STAKE - 2 * COMPENSATION.

Row by row (all on both backends):

- A1: `test_a1_a_squatter_who_registers_a_copied_content_hash_first_is_displaced_by_the_victim`,
  `..._displaced_squatter_ends_poorer_by_its_bond_and_its_gas`, `..._cannot_lock_the_victims_signed_offer`,
  `..._cannot_lock_the_victims_offer_rewritten_to_itself`, `..._cannot_register_from_the_victims_offer`,
  `..._cannot_register_the_victims_opening_under_its_own_commitment`, `..._cannot_register_before_paying_its_sybil`,
  `..._arriving_after_the_victim_is_refused`, `..._displaced_squatter_cannot_challenge_with_its_revoked_token`,
  and the variant where the squatter is the victim's own ESP with a second staked key, locked first:
  the victim's later lock sold a copy, so the victim's ESP is slashed in its favour
  (`test_a1_a_victim_whose_esp_squats_through_a_second_staked_key_is_compensated_from_that_esps_stake`).
- A2: `test_a2_the_squatters_challenge_of_the_earlier_generated_victim_is_rejected_and_pays_the_victim`,
  `..._the_victims_challenge_of_the_squatter_is_upheld`, `..._the_phash_squatter_ends_poorer_by_bond_deposit_and_gas`,
  and the variant where the squatter is the victim's own ESP, one key, selling a near-copy first: it
  is slashed and the victim made whole but for gas
  (`test_a2_a_customer_whose_esp_sold_a_near_copy_to_its_own_producer_first_is_made_whole_from_the_esps_stake`),
  also when a second staked key of that ESP signed the near-copy (`..._through_a_second_staked_key_...`).
- A3: `test_a3_*`: a lock under a forged ESP signature, below the fee floor, or to an unstaked ESP is
  refused; a rating of a lock that never existed, of a tampered offer or of another producer's job is
  refused; a negative rating needs a job the ESP accepted and costs its fee, paid to the ESP; once per job.
- A4: `test_a4_*`: an unstaked second key is refused, a fee below the floor is refused, and with a staked
  Sybil each self-rating costs its gas on top of a stake locked for at least the unbonding delay
  (through `withdrawStake`; a self-slash gives back only fee + bond, at most half the stake, and
  forfeits as much: see the unbonding rows).
- A5: `test_a5_*`: D cannot be sold before final; once final (and sold) it can be neither challenged
  nor displaced; the buyer keeps the token.
- A6: `test_a6_*`: with a producer of record that refuses ether (a `ReentrantReceiver` with
  `setRejectPayments`), resales go through, the royalty waits as credit, and the producer withdraws
  it once it accepts payments again.
- A7: `test_a7_*`: the buyer refunds at once when the seller gave the token away or sold it to someone
  else; the seller cannot claim a token it no longer owns; timelocks beyond `maxTimelock` are refused.
- A8: `test_a8_*`: the owner claims the bond once the product is final, also a buyer after a sale, once.
- Equivocation: the later producer is credited COMPENSATION whichever order the proof names the locks
  (`test_equivocation_anyone_proves_it_...`, `..._whichever_order_...`, `..._is_the_later_offers_fee_...`);
  as much is forfeited and the rest stays locked; a front-runner gains nothing; each later lock is
  compensated once (`..._the_same_later_lock_is_compensated_once*`), other victims from the rest
  until it is spent (`..._a_second_victim_...`, `..._capped_at_half_...`, `..._nothing_to_slash`); a
  slashed ESP takes no jobs and cannot stake again; what is not a duplicate (same producer, different
  content, one bit beyond the threshold), a wrong opening or an unlocked offer is refused; the same
  content, or a near-copy, from two ESPs slashes the later one only; an ESP front-running its
  victim's proof with a staged self-equivocation at an ordinary fee leaves the victim's compensation
  in place (hole 1).
- Unbonding: the delay holds to the second; an exiting ESP takes no jobs and is still slashed, then
  cannot withdraw; an ESP slashing itself to its own producer key gets back only fee + bond, forfeits
  as much and the rest is stuck (hole 2); with a staged fee the size of its stake it leaves at once
  with half of it and forfeits the other half.
- Hole 5 (an honest ESP drained by two producers asking one prompt of the deterministic generator):
  `market.protocol.Protocol` refuses the second commitment, `tests/market/test_protocol_guard.py`.

Residual risk with a bound (docs/protocol.md, row E): the compensation grows with a fee the ESP
itself chooses, so one staged self-equivocation priced at its stake empties the stake (half to its own
key, half forfeited) and a later victim finds nothing to slash; denying its victims costs the ESP half
its stake (`test_equivocation_an_esp_that_empties_its_stake_through_a_self_staged_job_forfeits_half_of_it`).
Predictable content is refused by construction: ESPs generate with a secret per-job seed
(`test_equivocation_an_honest_esp_is_not_slashed_for_a_prompt_whose_image_a_sybil_esp_committed_first`),
and one `Protocol` guards every ESP signing through it (`tests/market/test_protocol_guard.py`).

Residual risks (by design): once a Sybil ESP is staked, each self-praising rating costs only its
gas (the fee floor comes back to the Sybil; A4 quantifies it). Content leaked off chain and
registered by a squatter more than `challengeWindow` before the rightful producer registers becomes
final: the producer can then neither displace nor challenge it. Predictable content (the
deterministic stand-in generator: same prompt, same image) can be pre-generated by anyone, so
lock-time priority assumes unpredictable content (a secret seed per job); since a copy sold by any
later ESP is slashed, it is an ESP that skips the seed that pays when the assumption fails.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Sequence

from chain_helpers import (
    FEE,
    HOUR,
    PARAMS,
    PRICE,
    STAKE,
    flip_bits,
    make_content,
    make_final,
    offer,
    open_purchase,
    protocol,
    register,
    reverts,
    stake,
)
from eth_account.signers.local import LocalAccount

from market.chain.artifacts import load_artifact
from market.chain.connection import TxResult
from market.chain.contracts import EspInfo, EspState, LockState
from market.chain.deploy import Market
from market.chain.errors import ContractRevert
from market.chain.hashlocks import hashlock_of, new_secret
from market.chain.offers import Offer, Opening, SignedOffer, sign_offer
from market.content import DeterministicImageGenerator, content_hash, perceptual_hash
from market.protocol import Job

BOND = PARAMS.registration_bond
DEPOSIT = PARAMS.challenge_deposit
FLOOR = PARAMS.fee_floor
THRESHOLD = PARAMS.similarity_threshold
ROYALTY = PRICE * PARAMS.royalty_bps // 10_000
COMPENSATION = FEE + BOND
"""What the producer of a later lock at the usual fee is credited when its ESP is slashed (as much is forfeited)."""
OFFER_TTL = 300


# -- helpers ----------------------------------------------------------------------------------------


def _gas(*txs: TxResult) -> int:
    """Wei the senders of `txs` paid for gas."""
    return sum(tx.fee_wei for tx in txs)


def _wealth(market: Market, *accounts: LocalAccount) -> int:
    """Balances of `accounts` plus what the registry and the exchange owe them as credit."""
    return sum(
        market.chain.balance(a.address) + market.registry.credit_of(a.address) + market.exchange.credit_of(a.address)
        for a in accounts
    )


def _attempt(action: Callable[[], object]) -> str:
    """'ok', or the name of the custom error the call reverted with."""
    try:
        action()
    except ContractRevert as exc:
        return exc.error
    return "ok"


def _block_time(market: Market, tx: TxResult) -> int:
    return market.chain.block_timestamp(tx.block_number)


def _random_opening(phash: int | None = None) -> Opening:
    """Content the attacker makes up: a random content hash (and pHash, unless given)."""
    return Opening.of(secrets.token_bytes(32), secrets.randbits(64) if phash is None else phash, secrets.token_bytes(32))


def _sign(
    market: Market,
    signer: LocalAccount,
    esp: str,
    producer: str,
    commitment: bytes,
    *,
    fee: int = FLOOR,
    hashlock: bytes | None = None,
    timelock: int | None = None,
) -> tuple[SignedOffer, bytes]:
    """An offer naming `esp` and `producer`, signed by `signer` (the ESP itself, or a forger); and its key."""
    now = market.chain.now()
    key = new_secret()
    terms = Offer(
        esp=esp,
        producer=producer,
        hashlock=hashlock_of(key) if hashlock is None else hashlock,
        fee=fee,
        timelock=now + HOUR if timelock is None else timelock,
        expiry=now + OFFER_TTL,
        nonce=secrets.randbits(64),
        commitment=commitment,
    )
    return sign_offer(signer, terms, chain_id=market.chain.chain_id, exchange=market.exchange.address), key


def _paid_generation(
    market: Market, esp: LocalAccount, producer: LocalAccount, opening: Opening, fee: int = FLOOR
) -> tuple[Offer, list[TxResult]]:
    """`esp` (staked here if needed) signs an offer committing to `opening`; `producer` locks it; `esp` withdraws.

    Returns the offer and the lock and withdraw transactions (the stake is not among them).
    """
    stake(market, esp)
    signed, key = _sign(market, esp, esp.address, producer.address, opening.commitment(), fee=fee)
    lock = market.exchange.lock_generation(producer, signed)
    withdraw = market.exchange.withdraw_generation(esp, signed.offer, key)
    return signed.offer, [lock.tx, withdraw]


def _victim_paid(market: Market, victim: LocalAccount, esp: LocalAccount, label: str, phash: int | None = None) -> Job:
    """The victim's honest job: offered by `esp`, locked, key revealed; its `register` is about to be sent."""
    job = offer(market, victim, esp, make_content(label, phash))
    market.exchange.lock_generation(victim, job.signed)
    market.exchange.withdraw_generation(esp, job.offer, job.key)
    return job


def _lock_job(market: Market, producer: LocalAccount, esp: LocalAccount, opening: Opening) -> Job:
    """`esp` signs an offer to `producer` committing to `opening`; `producer` locks it (not withdrawn)."""
    stake(market, esp)
    signed, key = _sign(market, esp, esp.address, producer.address, opening.commitment(), fee=FEE)
    market.exchange.lock_generation(producer, signed)
    return Job(signed, opening, key, b"")


def _sold_to(
    market: Market,
    esp: LocalAccount,
    producers: Sequence[LocalAccount],
    label: str = "one image, sold twice",
    fees: Sequence[int] | None = None,
) -> list[Job]:
    """`esp` commits one content to each of `producers` (with `fees`); each locks, in this order."""
    content = make_content(label)
    jobs = []
    for producer, fee in zip(producers, fees or [FEE] * len(producers), strict=True):
        job = offer(market, producer, esp, content, fee=fee)
        market.exchange.lock_generation(producer, job.signed)
        jobs.append(job)
    return jobs


def _equivocate(
    market: Market, esp: LocalAccount, first: LocalAccount, second: LocalAccount, label: str = "one image, sold twice"
) -> tuple[Job, Job]:
    """`esp` commits one content to `first` and to `second`; both lock, `first` earlier."""
    a, b = _sold_to(market, esp, [first, second], label)
    return a, b


def _prove(market: Market, caller: LocalAccount, a: Job, b: Job) -> TxResult:
    return market.exchange.prove_equivocation(caller, a.offer, a.opening, b.offer, b.opening)


def _staged_self_equivocation(
    market: Market, esp: LocalAccount, own1: LocalAccount, own2: LocalAccount, later_fee: int = FEE
) -> tuple[Job, Job, list[TxResult]]:
    """`esp` commits one content to its own producer keys `own1`, then `own2` (at `later_fee`); both lock,
    and `esp` withdraws both fees (a wash). Returns the two jobs and every transaction sent."""
    content = make_content("staged")
    jobs, txs = [], []
    for own, fee in ((own1, FEE), (own2, later_fee)):
        job = offer(market, own, esp, content, fee=fee)
        txs.append(market.exchange.lock_generation(own, job.signed).tx)
        jobs.append(job)
    txs += [market.exchange.withdraw_generation(esp, job.offer, job.key) for job in jobs]
    return jobs[0], jobs[1], txs


def _final_token(market: Market, owner: LocalAccount, esp: LocalAccount, label: str) -> int:
    token = register(market, owner, esp, make_content(label)).token_id
    make_final(market, token)
    return token


# -- A1: squatting ----------------------------------------------------------------------------------


def test_a1_a_squatter_who_registers_a_copied_content_hash_first_is_displaced_by_the_victim(market, actors):
    victim, squatter, sybil = actors.producer, actors.attacker, actors.accomplice
    job = _victim_paid(market, victim, actors.esp, "victim's image")
    # The squatter reads (offer, opening) from the victim's pending `register` and gets its own staked
    # Sybil ESP to commit to the same opening: a later lock, since the victim's lock is already mined.
    squat_offer, _ = _paid_generation(market, sybil, squatter, job.opening)
    squat = market.registry.register(squatter, squat_offer, job.opening)

    mine = market.registry.register(victim, job.offer, job.opening)

    assert mine.tx.event("ProductDisplaced").args["displacedId"] == squat.token_id
    assert market.registry.is_revoked(squat.token_id)
    assert market.registry.owner_of(mine.token_id) == victim.address
    assert market.registry.token_of_content(job.opening.content_hash) == mine.token_id


def test_a1_the_displaced_squatter_ends_poorer_by_its_bond_and_its_gas(market, actors):
    victim, squatter, sybil = actors.producer, actors.attacker, actors.accomplice
    job = _victim_paid(market, victim, actors.esp, "victim's image")
    stake(market, sybil)
    before = _wealth(market, squatter, sybil)

    squat_offer, txs = _paid_generation(market, sybil, squatter, job.opening)
    squat = market.registry.register(squatter, squat_offer, job.opening)
    market.registry.register(victim, job.offer, job.opening)

    # The fee went from the squatter to its own Sybil (a wash); the bond went to the victim.
    assert _wealth(market, squatter, sybil) == before - BOND - _gas(*txs, squat.tx)
    assert market.registry.credit_of(victim.address) == BOND
    assert market.exchange.esp_info(sybil.address).stake == STAKE  # locked, not gained


def test_a1_a_squatter_cannot_lock_the_victims_signed_offer(market, actors):
    job = offer(market, actors.producer, actors.esp, make_content("victim's image"))
    # The victim's pending lockGeneration shows the signed offer: front-running it is refused.
    with reverts("AIGCExchangeOfferNotForCaller", producer=actors.producer.address, caller=actors.attacker.address):
        market.exchange.lock_generation(actors.attacker, job.signed)


def test_a1_a_squatter_cannot_lock_the_victims_offer_rewritten_to_itself(market, actors):
    job = offer(market, actors.producer, actors.esp, make_content("victim's image"))
    rewritten = SignedOffer(Offer(**{**job.offer.message(), "producer": actors.attacker.address}), job.signed.signature)
    with reverts("AIGCExchangeInvalidOfferSignature", esp=actors.esp.address):
        market.exchange.lock_generation(actors.attacker, rewritten)


def test_a1_a_squatter_cannot_register_from_the_victims_offer(market, actors):
    job = _victim_paid(market, actors.producer, actors.esp, "victim's image")
    lock_id = market.exchange.offer_id(job.offer)
    with reverts("AIGCRegistryNotGenerationSender", lockId=lock_id, caller=actors.attacker.address):
        market.registry.register(actors.attacker, job.offer, job.opening)


def test_a1_a_squatter_cannot_register_the_victims_opening_under_its_own_commitment(market, actors):
    job = _victim_paid(market, actors.producer, actors.esp, "victim's image")
    own_offer, _ = _paid_generation(market, actors.accomplice, actors.attacker, _random_opening())
    with reverts("AIGCRegistryCommitmentMismatch", lockId=market.exchange.offer_id(own_offer)):
        market.registry.register(actors.attacker, own_offer, job.opening)


def test_a1_a_squatter_cannot_register_before_paying_its_sybil(market, actors):
    job = _victim_paid(market, actors.producer, actors.esp, "victim's image")
    squat = _lock_job(market, actors.attacker, actors.accomplice, job.opening)  # locked, never withdrawn
    with reverts("AIGCRegistryGenerationNotPaid", state=LockState.LOCKED):
        market.registry.register(actors.attacker, squat.offer, job.opening)


def test_a1_a_squatter_arriving_after_the_victim_is_refused(market, actors):
    job = _victim_paid(market, actors.producer, actors.esp, "victim's image")
    mine = market.registry.register(actors.producer, job.offer, job.opening)
    squat_offer, _ = _paid_generation(market, actors.accomplice, actors.attacker, job.opening)
    with reverts("AIGCRegistryDuplicateContent", contentHash=job.opening.content_hash, tokenId=mine.token_id):
        market.registry.register(actors.attacker, squat_offer, job.opening)


def test_a1_a_displaced_squatter_cannot_challenge_with_its_revoked_token(market, actors):
    squatter = actors.attacker
    job = _victim_paid(market, actors.producer, actors.esp, "victim's image")
    squat_offer, _ = _paid_generation(market, actors.accomplice, squatter, job.opening)
    squat = market.registry.register(squatter, squat_offer, job.opening)
    mine = market.registry.register(actors.producer, job.offer, job.opening)
    with reverts("AIGCRegistryNotOwner", tokenId=squat.token_id, caller=squatter.address):
        market.registry.challenge(squatter, squat.token_id, mine.token_id)


def test_a1_a_victim_whose_esp_squats_through_a_second_staked_key_is_compensated_from_that_esps_stake(market, actors):
    """The squatter is the victim's own ESP: it knows the content before the victim locks.

    It commits the content to its own producer through a second staked ESP key, has that offer
    locked first, and registers first: the victim's later lock cannot displace it. But the victim's
    lock is the later one, so its ESP sold a copy of content committed earlier: it is slashed.
    """
    victim, esp = actors.producer, actors.esp
    esp_key2, esp_producer = actors.accomplice, actors.attacker  # the ESP operator's other accounts
    content = make_content("victim's image")
    stake(market, esp)
    job = offer(market, victim, esp, content)  # the victim's offer, not yet locked
    squat = Opening.of(content.content_hash, content.phash, content.prompt_hash)
    squat_offer, _ = _paid_generation(market, esp_key2, esp_producer, squat)  # locked before the victim's lock
    market.exchange.lock_generation(victim, job.signed)
    market.exchange.withdraw_generation(esp, job.offer, job.key)
    market.registry.register(esp_producer, squat_offer, squat)

    tx = market.exchange.prove_equivocation(victim, squat_offer, squat, job.offer, job.opening)

    slashed = tx.event("EspSlashed").args
    assert (slashed["esp"], slashed["beneficiary"], slashed["compensation"]) == (esp.address, victim.address, COMPENSATION)
    assert market.exchange.credit_of(victim.address) == COMPENSATION
    assert market.exchange.esp_info(esp.address) == EspInfo(EspState.SLASHED, STAKE - 2 * COMPENSATION, 0)
    assert market.exchange.is_active_esp(esp_key2.address)  # the earlier lock's ESP sold nothing twice


# -- A2: priority theft by pHash ----------------------------------------------------------------------


def _phash_squat(market, actors) -> tuple[int, int]:
    """The squatter registers made-up content with the victim's pHash first; then the victim registers.

    Returns (squatter's token, victim's token).
    """
    victim, squatter = actors.producer, actors.attacker
    job = _victim_paid(market, victim, actors.esp, "victim's image")
    decoy = _random_opening(phash=job.opening.perceptual_hash)  # read from the pending register
    decoy_offer, _ = _paid_generation(market, actors.accomplice, squatter, decoy)
    squat = market.registry.register(squatter, decoy_offer, decoy)
    mine = market.registry.register(victim, job.offer, job.opening)
    return squat.token_id, mine.token_id


def test_a2_the_squatters_challenge_of_the_earlier_generated_victim_is_rejected_and_pays_the_victim(market, actors):
    squat, mine = _phash_squat(market, actors)
    # The squatter registered first, but generated later: its lock came after the victim's.
    assert squat < mine
    assert market.registry.product(squat).generation_seq > market.registry.product(mine).generation_seq

    outcome = market.registry.challenge(actors.attacker, squat, mine)

    assert not outcome.upheld and outcome.distance == 0
    assert not market.registry.is_revoked(mine)
    assert market.registry.owner_of(mine) == actors.producer.address
    assert market.registry.credit_of(actors.producer.address) == DEPOSIT
    assert market.registry.credit_of(actors.attacker.address) == 0


def test_a2_the_victims_challenge_of_the_squatter_is_upheld(market, actors):
    squat, mine = _phash_squat(market, actors)

    outcome = market.registry.challenge(actors.producer, mine, squat)

    assert outcome.upheld
    assert market.registry.is_revoked(squat)
    assert market.registry.credit_of(actors.producer.address) == DEPOSIT + BOND


def test_a2_the_phash_squatter_ends_poorer_by_bond_deposit_and_gas(market, actors):
    victim, squatter, sybil = actors.producer, actors.attacker, actors.accomplice
    job = _victim_paid(market, victim, actors.esp, "victim's image")
    stake(market, sybil)
    before = _wealth(market, squatter, sybil)
    decoy = _random_opening(phash=job.opening.perceptual_hash)
    decoy_offer, txs = _paid_generation(market, sybil, squatter, decoy)
    squat = market.registry.register(squatter, decoy_offer, decoy)
    mine = market.registry.register(victim, job.offer, job.opening)
    rejected = market.registry.challenge(squatter, squat.token_id, mine.token_id)
    upheld = market.registry.challenge(victim, mine.token_id, squat.token_id)

    assert (rejected.upheld, upheld.upheld) == (False, True)
    assert _wealth(market, squatter, sybil) == before - BOND - DEPOSIT - _gas(*txs, squat.tx, rejected.tx)
    # The victim: the squatter's deposit, its own deposit back and the squatter's bond.
    assert market.registry.credit_of(victim.address) == DEPOSIT + DEPOSIT + BOND


def test_a2_a_customer_whose_esp_sold_a_near_copy_to_its_own_producer_first_is_made_whole_from_the_esps_stake(market, actors):
    """The squatter is the victim's own ESP, with one key: it knows the pHash before the victim locks.

    It commits a near-copy (another content hash, a pHash 2 bits away) to its own producer, has that
    locked first, and challenges the victim's token with it: upheld, the victim loses token and bond.
    The victim's later lock is a near-copy of the ESP's own earlier work: the ESP is slashed, and the
    victim gets back its fee and its bond.
    """
    victim, esp, esp_producer = actors.producer, actors.esp, actors.attacker
    content = make_content("victim's image")
    stake(market, esp)
    job = offer(market, victim, esp, content)
    copy = Opening.of(hashlib.sha256(b"near copy").digest(), flip_bits(content.phash, 2), content.prompt_hash)
    copy_offer, _ = _paid_generation(market, esp, esp_producer, copy)  # same ESP key, locked first
    before = _wealth(market, victim)
    lock = market.exchange.lock_generation(victim, job.signed)
    market.exchange.withdraw_generation(esp, job.offer, job.key)
    mine = market.registry.register(victim, job.offer, job.opening)
    theirs = market.registry.register(esp_producer, copy_offer, copy)
    outcome = market.registry.challenge(esp_producer, theirs.token_id, mine.token_id)
    assert outcome.upheld and market.registry.is_revoked(mine.token_id)

    proof = market.exchange.prove_equivocation(victim, copy_offer, copy, job.offer, job.opening)

    assert market.exchange.credit_of(victim.address) == COMPENSATION
    assert _wealth(market, victim) == before - _gas(lock.tx, mine.tx, proof)
    assert market.exchange.esp_info(esp.address) == EspInfo(EspState.SLASHED, STAKE - 2 * COMPENSATION, 0)


def test_a2_a_customer_whose_esp_sold_a_near_copy_through_a_second_staked_key_first_is_made_whole_from_the_esps_stake(
    market, actors
):
    """As above, but the near-copy is signed by a second staked key of the victim's ESP: a near-copy of
    another ESP's earlier content is a duplicate too, so the key that sold the victim's lock is slashed."""
    victim, esp, esp_key2, esp_producer = actors.producer, actors.esp, actors.accomplice, actors.attacker
    content = make_content("victim's image")
    stake(market, esp)
    job = offer(market, victim, esp, content)
    copy = Opening.of(hashlib.sha256(b"near copy").digest(), flip_bits(content.phash, 2), content.prompt_hash)
    copy_offer, _ = _paid_generation(market, esp_key2, esp_producer, copy)  # second key, locked first
    before = _wealth(market, victim)
    lock = market.exchange.lock_generation(victim, job.signed)
    market.exchange.withdraw_generation(esp, job.offer, job.key)
    mine = market.registry.register(victim, job.offer, job.opening)
    theirs = market.registry.register(esp_producer, copy_offer, copy)
    assert market.registry.challenge(esp_producer, theirs.token_id, mine.token_id).upheld

    proof = market.exchange.prove_equivocation(victim, copy_offer, copy, job.offer, job.opening)

    assert market.exchange.credit_of(victim.address) == COMPENSATION
    assert _wealth(market, victim) == before - _gas(lock.tx, mine.tx, proof)
    assert market.exchange.esp_info(esp.address) == EspInfo(EspState.SLASHED, STAKE - 2 * COMPENSATION, 0)


# -- A3: free negative ratings ------------------------------------------------------------------------


def test_a3_a_lock_under_a_forged_esp_signature_is_refused(market, actors):
    stake(market, actors.esp)
    forged, _ = _sign(
        market,
        actors.attacker,
        actors.esp.address,
        actors.attacker.address,
        secrets.token_bytes(32),
        hashlock=secrets.token_bytes(32),
    )  # a hashlock whose preimage the ESP cannot know
    with reverts("AIGCExchangeInvalidOfferSignature", esp=actors.esp.address):
        market.exchange.lock_generation(actors.attacker, forged)


def test_a3_a_lock_without_any_signature_is_refused(market, actors):
    stake(market, actors.esp)
    forged, _ = _sign(market, actors.attacker, actors.esp.address, actors.attacker.address, secrets.token_bytes(32))
    with reverts("AIGCExchangeInvalidOfferSignature", esp=actors.esp.address):
        market.exchange.lock_generation(actors.attacker, SignedOffer(forged.offer, b""))


def test_a3_a_one_wei_lock_is_refused_below_the_fee_floor(market, actors):
    stake(market, actors.esp)
    forged, _ = _sign(market, actors.attacker, actors.esp.address, actors.attacker.address, secrets.token_bytes(32), fee=1)
    with reverts("AIGCExchangeFeeBelowFloor", fee=1, floor=FLOOR):
        market.exchange.lock_generation(actors.attacker, forged)


def test_a3_a_lock_naming_an_unstaked_esp_is_refused(market, actors):
    target = actors.other  # never staked
    forged, _ = _sign(market, actors.attacker, target.address, actors.attacker.address, secrets.token_bytes(32))
    with reverts("AIGCExchangeEspNotActive", esp=target.address):
        market.exchange.lock_generation(actors.attacker, forged)


def test_a3_a_rating_of_a_lock_that_never_existed_is_refused(market, actors):
    stake(market, actors.esp)
    made_up, _ = _sign(market, actors.attacker, actors.esp.address, actors.attacker.address, secrets.token_bytes(32))
    with reverts("ReputationLedgerNotGenerationLock", lockId=market.exchange.offer_id(made_up.offer)):
        market.ledger.rate(actors.attacker, made_up.offer, False, 0)
    assert market.ledger.stats(actors.attacker.address, actors.esp.address).negatives == 0


def test_a3_a_rating_of_a_tampered_copy_of_a_real_job_is_refused(market, actors):
    job = _victim_paid(market, actors.attacker, actors.esp, "a job")
    tampered = Offer(**{**job.offer.message(), "fee": 1})
    with reverts("ReputationLedgerNotGenerationLock", lockId=market.exchange.offer_id(tampered)):
        market.ledger.rate(actors.attacker, tampered, False, 0)


def test_a3_a_rating_of_another_producers_job_is_refused(market, actors):
    job = _victim_paid(market, actors.producer, actors.esp, "someone else's job")
    with reverts("ReputationLedgerNotSender", caller=actors.attacker.address):
        market.ledger.rate(actors.attacker, job.offer, False, 0)


def test_a3_a_job_the_esp_accepted_cannot_be_rated_while_it_is_open_nor_refunded_early(market, actors):
    job = offer(market, actors.attacker, actors.esp, make_content("a job"))
    market.exchange.lock_generation(actors.attacker, job.signed)
    with reverts("ReputationLedgerLockNotSettled"):
        market.ledger.rate(actors.attacker, job.offer, False, 0)
    with reverts("AIGCExchangeTimelockNotExpired", timelock=job.offer.timelock):
        market.exchange.refund_generation(actors.attacker, job.offer)


def test_a3_a_negative_rating_costs_the_attacker_the_fee_paid_to_the_rated_esp(market, actors):
    rater, esp = actors.attacker, actors.esp
    job = offer(market, rater, esp, make_content("a job"))  # the ESP accepted this job: it signed the offer
    rater_before, esp_before = _wealth(market, rater), _wealth(market, esp)

    lock = market.exchange.lock_generation(rater, job.signed)
    reveal = market.exchange.withdraw_generation(esp, job.offer, job.key)  # the ESP delivers, and is paid
    rating = market.ledger.rate(rater, job.offer, False, 0)

    assert market.ledger.stats(rater.address, esp.address).negatives == 1
    assert _wealth(market, rater) == rater_before - FEE - _gas(lock.tx, rating)
    assert _wealth(market, esp) == esp_before + FEE - _gas(reveal)


def test_a3_a_job_is_rated_once(market, actors):
    job = _victim_paid(market, actors.attacker, actors.esp, "a job")
    market.ledger.rate(actors.attacker, job.offer, False, 0)
    with reverts("ReputationLedgerAlreadyRated", lockId=market.exchange.offer_id(job.offer)):
        market.ledger.rate(actors.attacker, job.offer, False, 0)
    assert market.ledger.stats(actors.attacker.address, actors.esp.address).negatives == 1


# -- A4: cheap Sybil praise ---------------------------------------------------------------------------


def test_a4_a_self_payment_to_an_unstaked_second_key_is_refused(market, actors):
    rater, second_key = actors.attacker, actors.accomplice
    signed, _ = _sign(market, second_key, second_key.address, rater.address, secrets.token_bytes(32))
    with reverts("AIGCExchangeEspNotActive", esp=second_key.address):
        market.exchange.lock_generation(rater, signed)


def test_a4_a_one_wei_self_payment_to_a_staked_sybil_is_refused_below_the_fee_floor(market, actors):
    rater, sybil = actors.attacker, actors.accomplice
    stake(market, sybil)
    signed, _ = _sign(market, sybil, sybil.address, rater.address, secrets.token_bytes(32), fee=1)
    with reverts("AIGCExchangeFeeBelowFloor", fee=1, floor=FLOOR):
        market.exchange.lock_generation(rater, signed)


def test_a4_each_self_rating_through_a_staked_sybil_costs_its_gas_on_top_of_the_locked_stake(market, actors):
    """The residual risk, quantified: the fee floor comes back to the Sybil; gas and the stake do not."""
    rater, sybil = actors.attacker, actors.accomplice
    before = _wealth(market, rater, sybil)
    stake_tx = market.exchange.register_esp(sybil, STAKE)
    per_rating = []
    for _ in range(3):
        signed, key = _sign(market, sybil, sybil.address, rater.address, secrets.token_bytes(32), fee=FLOOR)
        lock = market.exchange.lock_generation(rater, signed)
        withdraw = market.exchange.withdraw_generation(sybil, signed.offer, key)  # at once
        rating = market.ledger.rate(rater, signed.offer, True, 100)
        per_rating.append(_gas(lock.tx, withdraw, rating))

    assert market.ledger.stats(rater.address, sybil.address).positives == 3
    assert all(cost > 0 for cost in per_rating)
    assert before - _wealth(market, rater, sybil) == STAKE + stake_tx.fee_wei + sum(per_rating)
    assert market.exchange.esp_info(sybil.address).stake == STAKE


def test_a4_the_sybils_stake_stays_locked_for_the_unbonding_delay(market, actors):
    """Through `withdrawStake`; a self-slash frees only fee + bond, at most half, and forfeits as much."""
    sybil = actors.accomplice
    stake(market, sybil)
    exit_tx = market.exchange.announce_exit(sybil)
    available_at = _block_time(market, exit_tx) + market.exchange.unbonding_delay()
    assert market.exchange.unbonding_delay() >= PARAMS.max_timelock + PARAMS.challenge_window
    with reverts("AIGCExchangeUnbonding", esp=sybil.address, availableAt=available_at):
        market.exchange.withdraw_stake(sybil)


# -- A5: exit scam with a near-copy -------------------------------------------------------------------


def _original_and_near_copy(market, actors) -> tuple[int, int]:
    seller = actors.producer
    original = make_content("original O")
    o = register(market, seller, actors.esp, original).token_id
    d = register(market, seller, actors.esp, make_content("near-copy D", phash=flip_bits(original.phash, 3))).token_id
    return o, d


def test_a5_a_near_copy_cannot_be_sold_inside_its_challenge_window(market, actors):
    _, d = _original_and_near_copy(market, actors)
    with reverts("AIGCExchangeNotFinal", tokenId=d):
        open_purchase(market, actors.buyer, d)


def test_a5_a_sold_near_copy_cannot_be_challenged_by_the_seller_and_the_buyer_keeps_it(market, actors):
    seller, buyer = actors.producer, actors.buyer
    o, d = _original_and_near_copy(market, actors)
    make_final(market, d)
    protocol(market).sell(seller, buyer, d)

    closed_at = market.registry.product(d).registered_at + PARAMS.challenge_window
    with reverts("AIGCRegistryChallengeWindowClosed", tokenId=d, closedAt=closed_at):
        market.registry.challenge(seller, o, d)

    assert market.registry.owner_of(d) == buyer.address
    assert not market.registry.is_revoked(d)
    assert market.exchange.credit_of(seller.address) == PRICE  # the seller is D's producer: no royalty


def test_a5_a_sold_product_cannot_be_displaced_by_the_sellers_earlier_unregistered_generation(market, actors):
    seller, buyer, esp = actors.producer, actors.buyer, actors.esp
    content = make_content("sold twice")
    held_back = _victim_paid(market, seller, esp, "sold twice")  # earlier lock, kept unregistered
    sold = _victim_paid(market, seller, esp, "sold twice")
    d = market.registry.register(seller, sold.offer, sold.opening).token_id
    make_final(market, d)
    protocol(market).sell(seller, buyer, d)

    with reverts("AIGCRegistryDuplicateContent", contentHash=content.content_hash, tokenId=d):
        market.registry.register(seller, held_back.offer, held_back.opening)

    assert market.registry.owner_of(d) == buyer.address


# -- A6: payout griefing by the royalty receiver ---------------------------------------------------------


class _Wallet:
    """A producer that is a contract (`contracts/test/ReentrantReceiver.sol`, not re-entering) and its owner.

    It locks, registers, passes its token on and withdraws its credit through its own functions, and
    refuses every payment while `setRejectPayments(true)`.
    """

    def __init__(self, market: Market, owner: LocalAccount) -> None:
        self.market, self.owner = market, owner
        self.contract, _ = market.chain.deploy(load_artifact("ReentrantReceiver"), owner, market.exchange.address, False)
        self.address = str(self.contract.address)

    def send(self, function: str, *args, value: int = 0) -> TxResult:
        return self.market.chain.transact(getattr(self.contract.functions, function)(*args), self.owner, value=value)

    def withdraw_exchange_credit(self) -> TxResult:
        """`exchange.withdrawCredit()` from the wallet (its `receive` tries a second one: refused, swallowed)."""
        return self.send("attackWithdrawCredit")


def _royalty_owned_by_refusing_wallet(market, actors) -> tuple[_Wallet, int]:
    """A wallet produces a product, passes it to a seller, and then refuses ether; returns (wallet, token)."""
    wallet = _Wallet(market, actors.attacker)
    job = offer(market, wallet.address, actors.esp, make_content("wallet's image"))
    wallet.send("lockGeneration", job.offer.as_tuple(), job.signed.signature, value=FEE)
    market.exchange.withdraw_generation(actors.esp, job.offer, job.key)
    registered = wallet.send("register", job.offer.as_tuple(), job.opening.as_tuple(), value=BOND)
    token = registered.event("ProductRegistered").args["tokenId"]
    make_final(market, token)
    wallet.send("transferToken", actors.producer.address, token)
    wallet.send("setRejectPayments", True)
    assert market.registry.royalty_info(token, PRICE) == (wallet.address, ROYALTY)
    return wallet, token


def test_a6_a_resale_goes_through_when_the_royalty_receiver_refuses_ether(market, actors):
    wallet, token = _royalty_owned_by_refusing_wallet(market, actors)

    protocol(market).sell(actors.producer, actors.buyer, token)

    assert market.registry.owner_of(token) == actors.buyer.address
    assert market.exchange.credit_of(actors.producer.address) == PRICE - ROYALTY


def test_a6_every_later_resale_goes_through_too(market, actors):
    wallet, token = _royalty_owned_by_refusing_wallet(market, actors)
    market_protocol = protocol(market)
    market_protocol.sell(actors.producer, actors.buyer, token)
    market_protocol.sell(actors.buyer, actors.other, token)

    assert market.registry.owner_of(token) == actors.other.address
    assert market.exchange.credit_of(actors.buyer.address) == PRICE - ROYALTY
    assert market.exchange.credit_of(wallet.address) == 2 * ROYALTY


def test_a6_the_refused_royalty_waits_as_credit(market, actors):
    wallet, token = _royalty_owned_by_refusing_wallet(market, actors)
    protocol(market).sell(actors.producer, actors.buyer, token)

    with reverts("AIGCExchangeTransferFailed", to=wallet.address, amount=ROYALTY):
        wallet.withdraw_exchange_credit()

    assert market.exchange.credit_of(wallet.address) == ROYALTY
    assert market.chain.balance(wallet.address) == 0


def test_a6_the_royalty_is_withdrawn_once_the_producer_accepts_payments_again(market, actors):
    wallet, token = _royalty_owned_by_refusing_wallet(market, actors)
    protocol(market).sell(actors.producer, actors.buyer, token)

    wallet.send("setRejectPayments", False)
    wallet.withdraw_exchange_credit()

    assert market.chain.balance(wallet.address) == ROYALTY
    assert market.exchange.credit_of(wallet.address) == 0


# -- A7: purchase locks that cannot deliver; timelock bounds ---------------------------------------------


def test_a7_the_buyer_refunds_at_once_when_the_seller_gave_the_token_away(market, actors):
    seller, buyer = actors.producer, actors.buyer
    token = _final_token(market, seller, actors.esp, "for sale")
    before = _wealth(market, buyer)
    lock, _ = open_purchase(market, buyer, token)
    market.registry.transfer(seller, actors.accomplice.address, token)

    refund = market.exchange.refund_purchase(buyer, lock.terms)  # long before the timelock

    assert market.chain.now() < lock.terms.timelock
    assert market.exchange.get_lock(lock.lock_id).state is LockState.REFUNDED
    assert _wealth(market, buyer) == before - _gas(lock.tx, refund)


def test_a7_a_buyer_whose_seller_sold_to_someone_else_refunds_at_once(market, actors):
    seller, outbid, winner = actors.producer, actors.buyer, actors.other
    token = _final_token(market, seller, actors.esp, "for sale")
    first, _ = open_purchase(market, outbid, token)
    second, secret = open_purchase(market, winner, token)
    protocol(market).claim_sale(seller, second.terms, secret)

    market.exchange.refund_purchase(outbid, first.terms)

    assert market.exchange.get_lock(first.lock_id).state is LockState.REFUNDED
    assert market.registry.owner_of(token) == winner.address


def test_a7_a_seller_cannot_claim_the_price_of_a_token_it_gave_away(market, actors):
    seller = actors.producer
    token = _final_token(market, seller, actors.esp, "for sale")
    lock, secret = open_purchase(market, actors.buyer, token)
    market.registry.approve(seller, market.exchange.address, token)
    market.registry.transfer(seller, actors.accomplice.address, token)

    with reverts("AIGCExchangeSellerNotOwner", tokenId=token, seller=seller.address):
        market.exchange.withdraw_purchase(seller, lock.terms, secret)


def test_a7_the_buyer_cannot_refund_early_while_the_token_can_still_be_delivered(market, actors):
    token = _final_token(market, actors.producer, actors.esp, "for sale")
    lock, _ = open_purchase(market, actors.buyer, token)
    with reverts("AIGCExchangeTimelockNotExpired", timelock=lock.terms.timelock):
        market.exchange.refund_purchase(actors.buyer, lock.terms)


def test_a7_a_purchase_timelock_beyond_max_timelock_is_refused(market, actors):
    token = _final_token(market, actors.producer, actors.esp, "for sale")
    at = market.chain.now() + 10
    market.chain.set_next_block_timestamp(at)
    latest = at + PARAMS.max_timelock
    with reverts("AIGCExchangeTimelockTooLate", timelock=latest + 1, latest=latest):
        market.exchange.lock_purchase(actors.buyer, token, hashlock_of(new_secret()), latest + 1, PRICE)


def test_a7_a_purchase_timelock_of_exactly_max_timelock_is_accepted(market, actors):
    token = _final_token(market, actors.producer, actors.esp, "for sale")
    at = market.chain.now() + 10
    market.chain.set_next_block_timestamp(at)
    lock = market.exchange.lock_purchase(actors.buyer, token, hashlock_of(new_secret()), at + PARAMS.max_timelock, PRICE)
    assert lock.terms.timelock == at + PARAMS.max_timelock


def test_a7_a_generation_offer_with_a_timelock_beyond_max_timelock_cannot_be_locked(market, actors):
    stake(market, actors.esp)
    at = market.chain.now() + 10
    latest = at + PARAMS.max_timelock
    signed, _ = _sign(market, actors.esp, actors.esp.address, actors.producer.address, secrets.token_bytes(32), timelock=latest + 1)
    market.chain.set_next_block_timestamp(at)
    with reverts("AIGCExchangeTimelockTooLate", timelock=latest + 1, latest=latest):
        market.exchange.lock_generation(actors.producer, signed)


# -- A8: registration bonds -----------------------------------------------------------------------------


def test_a8_the_owner_claims_the_bond_once_the_product_is_final(market, actors):
    owner = actors.producer
    token = _final_token(market, owner, actors.esp, "bonded")
    before = market.chain.balance(owner.address)

    claim = market.registry.claim_bond(owner, token)
    withdraw = market.registry.withdraw_credit(owner)

    assert market.chain.balance(owner.address) == before + BOND - _gas(claim, withdraw)
    assert market.registry.product(token).bond_released


def test_a8_the_bond_cannot_be_claimed_inside_the_challenge_window(market, actors):
    token = register(market, actors.producer, actors.esp, make_content("bonded")).token_id
    final_at = market.registry.product(token).registered_at + PARAMS.challenge_window
    with reverts("AIGCRegistryNotFinal", tokenId=token, finalAt=final_at):
        market.registry.claim_bond(actors.producer, token)


def test_a8_after_a_sale_the_buyer_claims_the_bond_as_owner(market, actors):
    seller, buyer = actors.producer, actors.buyer
    token = _final_token(market, seller, actors.esp, "bonded")
    protocol(market).sell(seller, buyer, token)

    with reverts("AIGCRegistryNotOwner", tokenId=token, caller=seller.address):
        market.registry.claim_bond(seller, token)
    market.registry.claim_bond(buyer, token)

    assert market.registry.credit_of(buyer.address) == BOND
    assert market.registry.credit_of(seller.address) == 0


def test_a8_a_bond_is_released_once(market, actors):
    owner = actors.producer
    token = _final_token(market, owner, actors.esp, "bonded")
    market.registry.claim_bond(owner, token)
    with reverts("AIGCRegistryBondReleased", tokenId=token):
        market.registry.claim_bond(owner, token)
    assert market.registry.credit_of(owner.address) == BOND


def test_a8_a_bond_the_seller_claimed_cannot_be_claimed_again_by_the_buyer(market, actors):
    seller, buyer = actors.producer, actors.buyer
    token = _final_token(market, seller, actors.esp, "bonded")
    market.registry.claim_bond(seller, token)
    protocol(market).sell(seller, buyer, token)
    with reverts("AIGCRegistryBondReleased", tokenId=token):
        market.registry.claim_bond(buyer, token)


# -- equivocation -----------------------------------------------------------------------------------------


def test_equivocation_anyone_proves_it_and_the_producer_of_the_later_lock_is_credited_its_fee_and_the_bond(market, actors):
    first, second = actors.producer, actors.buyer
    a, b = _equivocate(market, actors.esp, first, second)

    tx = _prove(market, actors.other, a, b)

    slashed = tx.event("EspSlashed").args
    assert dict(slashed) == {
        "esp": actors.esp.address,
        "beneficiary": second.address,
        "compensation": COMPENSATION,
        "earlierLock": market.exchange.offer_id(a.offer),
        "laterLock": market.exchange.offer_id(b.offer),
    }
    assert market.exchange.credit_of(second.address) == COMPENSATION
    assert market.exchange.credit_of(first.address) == 0


def test_equivocation_as_much_as_the_compensation_is_forfeited_and_the_rest_of_the_stake_stays_locked(market, actors):
    a, b = _equivocate(market, actors.esp, actors.producer, actors.buyer)
    held = market.exchange.balance()

    _prove(market, actors.other, a, b)

    assert market.exchange.esp_info(actors.esp.address) == EspInfo(EspState.SLASHED, STAKE - 2 * COMPENSATION, 0)
    assert market.exchange.total_forfeited() == COMPENSATION
    assert market.exchange.balance() == held  # credited, forfeited or still staked: none of it left


def test_equivocation_the_later_producer_is_paid_whichever_order_the_proof_names_the_locks(market, actors):
    a, b = _equivocate(market, actors.esp, actors.producer, actors.buyer)
    _prove(market, actors.other, b, a)
    assert market.exchange.credit_of(actors.buyer.address) == COMPENSATION
    assert market.exchange.credit_of(actors.producer.address) == 0


def test_equivocation_the_compensation_is_the_later_offers_fee_plus_the_bond(market, actors):
    a, b = _sold_to(market, actors.esp, [actors.producer, actors.buyer], fees=[FEE, 3 * FEE])
    _prove(market, actors.other, a, b)
    assert market.exchange.credit_of(actors.buyer.address) == 3 * FEE + BOND


def test_equivocation_a_front_runner_who_proves_it_gains_nothing(market, actors):
    front_runner = actors.attacker
    a, b = _equivocate(market, actors.esp, actors.producer, actors.buyer)
    before = _wealth(market, front_runner)

    tx = _prove(market, front_runner, a, b)

    assert _wealth(market, front_runner) == before - _gas(tx)
    assert market.exchange.credit_of(actors.buyer.address) == COMPENSATION


def test_equivocation_a_second_victim_of_the_same_esp_is_compensated_from_the_rest_of_its_stake(market, actors):
    first, second, third = actors.producer, actors.buyer, actors.other
    a, b, c = _sold_to(market, actors.esp, [first, second, third], "sold three times")

    _prove(market, actors.attacker, a, b)
    _prove(market, actors.attacker, a, c)

    assert market.exchange.credit_of(second.address) == COMPENSATION
    assert market.exchange.credit_of(third.address) == COMPENSATION
    assert market.exchange.esp_info(actors.esp.address) == EspInfo(EspState.SLASHED, STAKE - 4 * COMPENSATION, 0)


def test_equivocation_the_same_later_lock_is_compensated_once(market, actors):
    a, b = _equivocate(market, actors.esp, actors.producer, actors.buyer)
    _prove(market, actors.other, a, b)

    with reverts("AIGCExchangeAlreadyCompensated", laterLock=market.exchange.offer_id(b.offer)):
        _prove(market, actors.attacker, a, b)

    assert market.exchange.credit_of(actors.buyer.address) == COMPENSATION
    assert market.exchange.credit_of(actors.attacker.address) == 0
    assert market.exchange.esp_info(actors.esp.address).stake == STAKE - 2 * COMPENSATION


def test_equivocation_the_same_later_lock_is_compensated_once_whichever_earlier_lock_the_proof_shows(market, actors):
    a, b, c = _sold_to(market, actors.esp, [actors.producer, actors.buyer, actors.other], "sold three times")
    _prove(market, actors.attacker, a, c)

    with reverts("AIGCExchangeAlreadyCompensated", laterLock=market.exchange.offer_id(c.offer)):
        _prove(market, actors.attacker, b, c)

    assert market.exchange.credit_of(actors.other.address) == COMPENSATION
    assert market.exchange.credit_of(actors.buyer.address) == 0  # b is the earlier lock here, not a victim


def test_equivocation_the_compensation_is_capped_at_half_of_what_is_left_of_the_stake(market, actors):
    first, second, third = actors.producer, actors.buyer, actors.other
    a, b, c = _sold_to(market, actors.esp, [first, second, third], "sold three times", fees=[FEE, 3 * FEE, STAKE])
    left = STAKE - 2 * (3 * FEE + BOND)  # after b: 3 FEE + BOND credited, as much forfeited

    _prove(market, actors.attacker, a, b)
    _prove(market, actors.attacker, a, c)  # STAKE + BOND asked, half of what is left paid

    assert market.exchange.credit_of(second.address) == 3 * FEE + BOND
    assert market.exchange.credit_of(third.address) == left // 2
    assert market.exchange.total_forfeited() == 3 * FEE + BOND + left // 2
    assert market.exchange.esp_info(actors.esp.address) == EspInfo(EspState.SLASHED, left - 2 * (left // 2), 0)
    assert left % 2 == 0


def test_equivocation_once_the_stake_is_spent_a_further_victim_finds_nothing_to_slash(market, actors):
    esp = actors.esp
    a, b, c = _sold_to(market, esp, [actors.producer, actors.buyer, actors.other], "sold three times", fees=[FEE, STAKE, FEE])
    _prove(market, actors.attacker, a, b)  # STAKE + BOND asked: half paid, half forfeited
    assert market.exchange.esp_info(esp.address) == EspInfo(EspState.SLASHED, 0, 0)

    with reverts("AIGCExchangeNothingToSlash", esp=esp.address):
        _prove(market, actors.attacker, a, c)

    assert market.exchange.credit_of(actors.other.address) == 0


def test_equivocation_a_slashed_esp_can_no_longer_accept_offers(market, actors):
    esp = actors.esp
    a, b = _equivocate(market, esp, actors.producer, actors.buyer)
    _prove(market, actors.other, a, b)
    signed, _ = _sign(market, esp, esp.address, actors.other.address, secrets.token_bytes(32), fee=FEE)
    with reverts("AIGCExchangeEspNotActive", esp=esp.address):
        market.exchange.lock_generation(actors.other, signed)


def test_equivocation_a_slashed_esp_cannot_stake_again(market, actors):
    a, b = _equivocate(market, actors.esp, actors.producer, actors.buyer)
    _prove(market, actors.other, a, b)
    with reverts("AIGCExchangeEspRegistered", esp=actors.esp.address, state=EspState.SLASHED):
        market.exchange.register_esp(actors.esp, STAKE)


def test_equivocation_is_not_two_offers_to_the_same_producer(market, actors):
    a, b = _equivocate(market, actors.esp, actors.producer, actors.producer)
    with reverts("AIGCExchangeNotEquivocation"):
        _prove(market, actors.other, a, b)
    assert market.exchange.is_active_esp(actors.esp.address)


def test_equivocation_is_not_two_different_contents(market, actors):
    far = (1 << 64) - 1  # pHashes 64 bits apart
    a = _lock_job(market, actors.producer, actors.esp, _random_opening(phash=0))
    b = _lock_job(market, actors.buyer, actors.esp, _random_opening(phash=far))
    with reverts("AIGCExchangeNotEquivocation"):
        _prove(market, actors.other, a, b)


def test_equivocation_one_content_sold_by_two_esps_slashes_only_the_esp_of_the_later_lock(market, actors):
    """The later ESP sold a copy of content another ESP committed earlier (a copy-seller)."""
    earlier_esp, later_esp = actors.esp, actors.other
    content = make_content("one image, two ESPs")
    opening = Opening.of(content.content_hash, content.phash, content.prompt_hash)
    a = _lock_job(market, actors.producer, earlier_esp, opening)
    b = _lock_job(market, actors.buyer, later_esp, Opening.of(content.content_hash, content.phash, content.prompt_hash))

    tx = _prove(market, actors.attacker, a, b)

    assert tx.event("EspSlashed").args["esp"] == later_esp.address
    assert market.exchange.credit_of(actors.buyer.address) == COMPENSATION
    assert market.exchange.esp_info(later_esp.address) == EspInfo(EspState.SLASHED, STAKE - 2 * COMPENSATION, 0)
    assert market.exchange.esp_info(earlier_esp.address) == EspInfo(EspState.ACTIVE, STAKE, 0)


def test_equivocation_a_near_copy_of_another_esps_earlier_content_slashes_the_esp_of_the_later_lock(market, actors):
    earlier_esp, later_esp = actors.esp, actors.other
    a = _lock_job(market, actors.producer, earlier_esp, _random_opening(phash=0))
    b = _lock_job(market, actors.buyer, later_esp, _random_opening(phash=flip_bits(0, 2)))

    tx = _prove(market, actors.attacker, a, b)

    assert tx.event("EspSlashed").args["esp"] == later_esp.address
    assert market.exchange.credit_of(actors.buyer.address) == COMPENSATION
    assert market.exchange.is_active_esp(earlier_esp.address)


def test_equivocation_a_near_copy_at_the_similarity_threshold_sold_by_one_esp_slashes_it(market, actors):
    a = _lock_job(market, actors.producer, actors.esp, _random_opening(phash=0))
    b = _lock_job(market, actors.buyer, actors.esp, _random_opening(phash=flip_bits(0, THRESHOLD)))

    _prove(market, actors.other, a, b)

    assert market.exchange.credit_of(actors.buyer.address) == COMPENSATION
    assert market.exchange.esp_info(actors.esp.address).state is EspState.SLASHED


def test_equivocation_is_not_a_near_copy_one_bit_beyond_the_similarity_threshold(market, actors):
    a = _lock_job(market, actors.producer, actors.esp, _random_opening(phash=0))
    b = _lock_job(market, actors.buyer, actors.esp, _random_opening(phash=flip_bits(0, THRESHOLD + 1)))
    with reverts("AIGCExchangeNotEquivocation"):
        _prove(market, actors.other, a, b)
    assert market.exchange.is_active_esp(actors.esp.address)


def test_equivocation_with_an_opening_that_does_not_match_the_commitment_is_refused(market, actors):
    a, b = _equivocate(market, actors.esp, actors.producer, actors.buyer)
    wrong = Opening(b.opening.content_hash, b.opening.perceptual_hash, b.opening.prompt_hash, secrets.token_bytes(32))
    with reverts("AIGCExchangeOpeningMismatch", id=market.exchange.offer_id(b.offer)):
        market.exchange.prove_equivocation(actors.other, a.offer, a.opening, b.offer, wrong)


def test_equivocation_cannot_be_shown_with_an_offer_that_was_never_locked(market, actors):
    content = make_content("one image")
    a = offer(market, actors.producer, actors.esp, content)
    market.exchange.lock_generation(actors.producer, a.signed)
    # A producer who received an offer for the same content but never locked it (or a forger) proves nothing.
    b = offer(market, actors.attacker, actors.esp, content)
    with reverts("AIGCExchangeUnknownLock", id=market.exchange.offer_id(b.offer)):
        _prove(market, actors.attacker, a, b)


def test_equivocation_an_esp_front_running_its_victims_proof_with_a_staged_self_equivocation_still_pays_the_victim(market, actors):
    """Hole 1, closed: the ESP stages one content committed to two producer keys of its own, sells
    another content to two honest producers, and front-runs the later one's proof with the staged pair.

    Its own key gets fee + bond of the stake (as much forfeited); the victim's proof is still
    compensated from the rest.
    """
    esp, first, victim = actors.esp, actors.producer, actors.buyer
    own1, own2 = actors.attacker, actors.accomplice  # the ESP operator's producers
    stake(market, esp)
    staged1, staged2, _ = _staged_self_equivocation(market, esp, own1, own2)
    a, b = _equivocate(market, esp, first, victim, label="sold twice")
    for job in (a, b):
        market.exchange.withdraw_generation(esp, job.offer, job.key)

    _prove(market, esp, staged1, staged2)
    _prove(market, victim, a, b)

    assert market.exchange.credit_of(own2.address) == COMPENSATION
    assert market.exchange.credit_of(victim.address) == COMPENSATION
    assert market.exchange.esp_info(esp.address) == EspInfo(EspState.SLASHED, STAKE - 4 * COMPENSATION, 0)


def test_equivocation_an_esp_that_empties_its_stake_through_a_self_staged_job_forfeits_half_of_it(market, actors):
    """RESIDUAL RISK (docs/protocol.md, row E): the compensation is the later offer's fee + bond, and
    the ESP picks that fee. Staging one content for two of its own producer keys, the later offer
    priced at its whole stake (a wash), and proving it first, the ESP empties its stake: a victim who
    proves afterwards finds nothing to slash. What bounds it: the ESP forfeits half its stake (it gets
    back only the other half, at once), far more than the victims' claims (fee + bond each) unless its
    duplicate sales are worth half its stake. Next step: per-lock collateral reserved from the stake.
    """
    esp, first, victim = actors.esp, actors.producer, actors.buyer
    own1, own2 = actors.attacker, actors.accomplice
    stake(market, esp)
    staged1, staged2, _ = _staged_self_equivocation(market, esp, own1, own2, later_fee=STAKE)
    a, b = _equivocate(market, esp, first, victim, label="sold twice")
    for job in (a, b):
        market.exchange.withdraw_generation(esp, job.offer, job.key)

    _prove(market, esp, staged1, staged2)
    with reverts("AIGCExchangeNothingToSlash", esp=esp.address):
        _prove(market, victim, a, b)

    assert market.exchange.credit_of(own2.address) == STAKE // 2  # all the ESP's side gets back
    assert market.exchange.total_forfeited() == STAKE // 2  # what it paid to deny the victim
    assert STAKE // 2 > 4 * COMPENSATION  # at these terms the price of denial exceeds four victims' claims
    assert market.exchange.credit_of(victim.address) == 0


def test_equivocation_an_honest_esp_is_not_slashed_for_a_prompt_whose_image_a_sybil_esp_committed_first(market, actors):
    """The attacker pre-generates a prompt's image with the public generator and has its own staked
    Sybil ESP commit it to its first key (a lock, a wash of the fee floor). Its second key then asks
    an honest ESP for that prompt. The honest ESP generates with its secret per-job seed (as
    `market/flows.py` does), so its content is not the pre-committed one and the proof is refused.
    """
    honest_esp, sybil, asker1, asker2 = actors.esp, actors.accomplice, actors.attacker, actors.other
    prompt = "a red fox at dawn"
    prompt_hash = hashlib.sha256(prompt.encode()).digest()
    stake(market, honest_esp)
    stake(market, sybil)
    image = DeterministicImageGenerator().generate(prompt)  # anyone can run it without the ESP's seed
    pre = Opening.of(content_hash(image), perceptual_hash(image), prompt_hash)
    pre_offer, _ = _paid_generation(market, sybil, asker1, pre)

    honest = protocol(market)  # the honest ESP's side, as the API and the simulation run it
    secret_seed = hashlib.sha256(b"the honest ESP's secret seed for this job").digest()
    content = DeterministicImageGenerator().generate(prompt, seed=secret_seed)
    job = honest.make_offer(honest_esp, asker2.address, content, prompt_hash, fee=FEE)
    honest.lock(asker2, job.signed)
    honest.reveal(honest_esp, job.offer, job.key)
    assert (job.opening.perceptual_hash ^ pre.perceptual_hash).bit_count() > market.registry.similarity_threshold()
    with reverts("AIGCExchangeNotEquivocation"):
        market.exchange.prove_equivocation(asker1, pre_offer, pre, job.offer, job.opening)
    assert market.exchange.esp_info(honest_esp.address) == EspInfo(EspState.ACTIVE, STAKE, 0)


# -- unbonding ------------------------------------------------------------------------------------------


def test_unbonding_an_exiting_esp_cannot_withdraw_its_stake_a_second_before_the_delay(market, actors):
    esp = actors.esp
    stake(market, esp)
    exit_tx = market.exchange.announce_exit(esp)
    available_at = _block_time(market, exit_tx) + PARAMS.unbonding_delay
    assert market.exchange.esp_info(esp.address) == EspInfo(EspState.EXITING, STAKE, available_at)

    market.chain.set_next_block_timestamp(available_at - 1)
    with reverts("AIGCExchangeUnbonding", esp=esp.address, availableAt=available_at):
        market.exchange.withdraw_stake(esp)


def test_unbonding_an_exiting_esp_withdraws_its_stake_once_the_delay_is_over(market, actors):
    esp = actors.esp
    stake(market, esp)
    exit_tx = market.exchange.announce_exit(esp)
    market.chain.set_next_block_timestamp(_block_time(market, exit_tx) + PARAMS.unbonding_delay)
    before = market.chain.balance(esp.address)

    tx = market.exchange.withdraw_stake(esp)

    assert market.chain.balance(esp.address) == before + STAKE - _gas(tx)
    assert market.exchange.esp_info(esp.address) == EspInfo(EspState.NONE, 0, 0)


def test_unbonding_an_exiting_esp_accepts_no_new_jobs(market, actors):
    esp = actors.esp
    job = offer(market, actors.producer, esp, make_content("after exit"))
    market.exchange.announce_exit(esp)
    with reverts("AIGCExchangeEspNotActive", esp=esp.address):
        market.exchange.lock_generation(actors.producer, job.signed)


def test_unbonding_an_exiting_esp_is_still_slashed_for_an_earlier_equivocation(market, actors):
    esp, victim = actors.esp, actors.buyer
    a, b = _equivocate(market, esp, actors.producer, victim)
    exit_tx = market.exchange.announce_exit(esp)
    market.chain.set_next_block_timestamp(_block_time(market, exit_tx) + PARAMS.unbonding_delay - 1)

    _prove(market, actors.other, a, b)

    assert market.exchange.credit_of(victim.address) == COMPENSATION
    assert market.exchange.esp_info(esp.address) == EspInfo(EspState.SLASHED, STAKE - 2 * COMPENSATION, 0)


def test_unbonding_a_slashed_exiting_esp_cannot_withdraw_the_rest_of_its_stake_after_the_delay(market, actors):
    esp = actors.esp
    a, b = _equivocate(market, esp, actors.producer, actors.buyer)
    exit_tx = market.exchange.announce_exit(esp)
    _prove(market, actors.other, a, b)
    market.chain.set_next_block_timestamp(_block_time(market, exit_tx) + PARAMS.unbonding_delay)

    with reverts("AIGCExchangeEspNotExiting", esp=esp.address):
        market.exchange.withdraw_stake(esp)

    assert market.exchange.esp_info(esp.address).stake == STAKE - 2 * COMPENSATION


def test_unbonding_an_esp_slashing_itself_to_its_own_producer_gets_back_only_the_fee_and_the_bond(market, actors):
    """Hole 2, closed: an ESP proves a staged equivocation between two of its own producer keys at once.

    Its own key gets fee + bond; as much is forfeited and the rest stays locked for good.
    """
    esp, own1, own2 = actors.esp, actors.attacker, actors.accomplice
    before = _wealth(market, esp, own1, own2)
    stake_tx = market.exchange.register_esp(esp, STAKE)
    a, b, txs = _staged_self_equivocation(market, esp, own1, own2)

    proof = _prove(market, esp, a, b)
    withdraw = market.exchange.withdraw_credit(own2)

    assert before - _wealth(market, esp, own1, own2) == STAKE - COMPENSATION + _gas(stake_tx, *txs, proof, withdraw)


def test_unbonding_an_esp_that_slashed_itself_can_neither_exit_nor_withdraw_the_rest_of_its_stake(market, actors):
    esp, own1, own2 = actors.esp, actors.attacker, actors.accomplice
    stake(market, esp)
    a, b, _ = _staged_self_equivocation(market, esp, own1, own2)
    _prove(market, esp, a, b)

    with reverts("AIGCExchangeEspNotActive", esp=esp.address):
        market.exchange.announce_exit(esp)
    with reverts("AIGCExchangeEspNotExiting", esp=esp.address):
        market.exchange.withdraw_stake(esp)

    assert market.exchange.esp_info(esp.address) == EspInfo(EspState.SLASHED, STAKE - 2 * COMPENSATION, 0)


def test_unbonding_an_esp_leaving_at_once_through_a_self_staged_job_priced_at_its_stake_forfeits_half_of_it(market, actors):
    """As hole 2, but the staged later offer's fee is the ESP's whole stake.

    The own key locks STAKE, the ESP withdraws it (a wash), and the proof credits the own key half of
    the stake and forfeits the other half: the ESP can leave before the unbonding delay, at that price.
    (What it does to the ESP's victims is the open front-running hole of the equivocation tests.)
    """
    esp, own1, own2 = actors.esp, actors.attacker, actors.accomplice
    before = _wealth(market, esp, own1, own2)
    stake_tx = market.exchange.register_esp(esp, STAKE)
    a, b, txs = _staged_self_equivocation(market, esp, own1, own2, later_fee=STAKE)

    proof = _prove(market, esp, a, b)
    withdraw = market.exchange.withdraw_credit(own2)

    assert before - _wealth(market, esp, own1, own2) == STAKE - STAKE // 2 + _gas(stake_tx, *txs, proof, withdraw)
    assert market.exchange.total_forfeited() == STAKE // 2
    assert market.exchange.esp_info(esp.address) == EspInfo(EspState.SLASHED, 0, 0)
