"""One honest pass through protocol v2: a paid generation, its registration, and a duplicate refused."""

from chain_helpers import FEE, make_content, open_generation, register, reverts

from market.chain.contracts import LockState


def test_generation_lock_is_withdrawn_with_its_key(market, actors):
    lock, job = open_generation(market, actors.producer, actors.esp)
    before = market.chain.balance(actors.esp.address)
    tx = market.exchange.withdraw_generation(actors.esp, job.offer, job.key)
    assert market.chain.balance(actors.esp.address) == before + FEE - tx.fee_wei
    assert market.exchange.get_lock(lock.lock_id).state is LockState.WITHDRAWN


def test_registration_of_the_same_content_twice_reverts(market, actors):
    content = make_content("a")
    first = register(market, actors.producer, actors.esp, content)
    with reverts("AIGCRegistryDuplicateContent", contentHash=content.content_hash, tokenId=first.token_id):
        register(market, actors.producer, actors.esp, content)
