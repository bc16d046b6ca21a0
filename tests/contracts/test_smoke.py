from chain_helpers import FEE, make_content, open_generation, register, reverts


def test_generation_lock_is_withdrawn_with_its_key(market, actors):
    lock, key = open_generation(market, actors.producer, actors.esp)
    before = market.chain.balance(actors.esp.address)
    tx = market.exchange.withdraw(actors.esp, lock.lock_id, key)
    assert market.chain.balance(actors.esp.address) == before + FEE - tx.fee_wei


def test_registration_of_the_same_content_twice_reverts(market, actors):
    content = make_content("a")
    first = register(market, actors.producer, actors.esp, content)
    with reverts("AIGCRegistryDuplicateContent", tokenId=first.token_id):
        register(market, actors.producer, actors.esp, content)
