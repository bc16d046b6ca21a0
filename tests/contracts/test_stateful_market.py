"""Stateful fuzzing of the protocol v2 registry, exchange and ledger together, and the mutation check.

The CI profile (30 examples x 30 steps) runs in `make test`; `AIGC_FUZZ_PROFILE=deep` (`make fuzz`)
runs 200 examples of 40 steps. Both write their counts to out/verification/ and print
"N fuzzed calls, M reverts, 0 invariant violations". See verification_helpers for the model.
"""

from __future__ import annotations

import time

import pytest
from hypothesis.stateful import run_state_machine_as_test
from verification_helpers import (
    NO_SHRINK,
    InvariantViolation,
    bind_machine,
    compile_mutant_exchange,
    deploy_market_with_exchange,
    fuzz_settings,
    make_setup,
    profile_name,
    write_report,
)

from market.chain.connection import Chain
from market.chain.deploy import deploy_market

#: Every contract function the machine calls; each must both succeed and be refused in a run.
RULES = {
    "registerEsp",
    "announceExit",
    "withdrawStake",
    "lockGeneration",
    "withdrawGeneration",
    "refundGeneration",
    "register",
    "challenge",
    "claimBond",
    "transfer",
    "approve",
    "lockPurchase",
    "withdrawPurchase",
    "refundPurchase",
    "withdrawCredit(registry)",
    "withdrawCredit(exchange)",
    "rate",
    "proveEquivocation",
}
#: Paths that every run must reach at least once.
PATHS = {
    "later generation displaced at registration",
    "challenge upheld",
    "challenge rejected",
    "bond claimed",
    "product sold",
    "purchase refunded at once (token moved away)",
    "ESP slashed for a duplicate",
    "stake withdrawn after unbonding",
}
#: Refusals that every run must see (the boundaries and attacks the suite is about).
ERRORS = {
    "AIGCExchangeLockSettled",
    "AIGCExchangeTimelockExpired",
    "AIGCExchangeTimelockNotExpired",
    "AIGCExchangeWrongPreimage",
    "AIGCExchangeInvalidOfferSignature",
    "AIGCExchangeEspNotActive",
    "AIGCExchangeEspRegistered",
    "AIGCExchangeUnbonding",
    "AIGCExchangeNotEquivocation",
    "AIGCExchangeAlreadyCompensated",
    "AIGCExchangeSellerNotOwner",
    "AIGCExchangeInvalidReceiver",
    "AIGCExchangeNoCredit",
    "AIGCRegistryNoCredit",
    "AIGCRegistryDuplicateContent",
    "AIGCRegistryNotFinal",
    "AIGCRegistryChallengeWindowClosed",
    "ReputationLedgerAlreadyRated",
    "ReputationLedgerPositiveRatingOfRefund",
    "ERC721InvalidApprover",
    "ERC721InsufficientApproval",
}


def test_stateful_market_holds_every_invariant():
    chain = Chain.embedded()
    market, _ = deploy_market(chain)
    setup = make_setup(market)
    profile = profile_name()
    started = time.monotonic()
    run_state_machine_as_test(bind_machine(setup), settings=fuzz_settings(profile))
    stats = setup.stats
    seconds = round(time.monotonic() - started, 1)
    report = write_report(f"stateful-{profile}", {"profile": profile, "seconds": seconds, **stats.to_json()})
    print(
        f"\nstateful ({profile}): {stats.summary()} over {stats.examples} examples "
        f"({stats.invariant_checks} invariant checks) in {seconds} s; report {report}"
    )
    print(f"paths: {dict(sorted(stats.paths.items()))}")
    assert stats.violations == 0
    # The suite must exercise both outcomes of every function, or it proves little.
    assert set(stats.by_rule) == RULES, set(stats.by_rule) ^ RULES
    for rule_name, (calls, reverts) in stats.by_rule.items():
        assert calls > reverts > 0 or rule_name == "approve", (rule_name, calls, reverts)
    missing_paths, missing_errors = PATHS - set(stats.paths), ERRORS - set(stats.errors)
    assert not missing_paths, missing_paths
    assert not missing_errors, missing_errors
    assert stats.calls >= 600


def test_mutant_exchange_with_unchecked_refund_is_caught():
    """The suite runs against an exchange whose refundGeneration skips the settled check and must find
    the double payout."""
    mutant = compile_mutant_exchange()
    chain = Chain.embedded()
    market = deploy_market_with_exchange(chain, mutant)
    setup = make_setup(market)
    machine = bind_machine(setup, strict_errors=False)
    with pytest.raises(InvariantViolation) as caught:
        run_state_machine_as_test(machine, settings=fuzz_settings("ci", max_examples=300, phases=NO_SHRINK))
    stats = setup.stats
    report = write_report("mutation", {"caught": str(caught.value), **stats.to_json()})
    print(
        f"\nmutant caught after {stats.calls_at_first_violation} fuzzed calls ({stats.examples} examples, "
        f"{stats.error_mismatches} other revert reasons seen first): {caught.value}; report {report}"
    )
    assert caught.value.invariant in {
        "lock settles at most once",
        "exchange balance == open locks + credits + stakes",
        "ether conserved",
    }, caught.value
    assert "double payout" in caught.value.detail or "paid" in caught.value.detail
