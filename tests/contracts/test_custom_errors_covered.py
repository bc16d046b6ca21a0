"""Every custom error of the three market contracts is triggered by some test.

The names come from the committed ABIs; a test "triggers" an error when its source calls
`reverts("<name>"` (chain_helpers.reverts checks the decoded error name, and its parameters where
given). A new error in a contract fails this test until a test makes the contract raise it.

The ABIs also list the errors of the OpenZeppelin code the contracts inherit. Those are held to the
same rule, except the few below that these contracts can never raise to a caller, each with the
reason; an entry that is no longer in an ABI, or that a test now triggers, fails the check too.
"""

from __future__ import annotations

import re

from market.chain.artifacts import MARKET_CONTRACTS, load_artifact
from market.chain.paths import REPO_ROOT

TESTS_DIR = REPO_ROOT / "tests"

#: Inherited errors that no call can make a market contract revert with, and why.
NEVER_RAISED = {
    "InvalidShortString": "EIP712's ShortStrings, raised only for a domain name or version over 31 bytes; the "
    'exchange\'s are the constants "AIGCExchange" and "2"',
    "StringTooLong": "EIP712's ShortStrings, as InvalidShortString",
    "ReentrancyGuardReentrantCall": "raised only inside a re-entrant call, whose caller (the payee's receive hook) "
    "sees it while the outer call fails with TransferFailed; test_reentrancy.py "
    "decodes it from the attacker's lastReentryError",
    "ERC2981InvalidDefaultRoyalty": "ERC2981's royalty setters are never called: royaltyInfo is overridden",
    "ERC2981InvalidDefaultRoyaltyReceiver": "as ERC2981InvalidDefaultRoyalty",
    "ERC2981InvalidTokenRoyalty": "as ERC2981InvalidDefaultRoyalty",
    "ERC2981InvalidTokenRoyaltyReceiver": "as ERC2981InvalidDefaultRoyalty",
    "ERC721InvalidSender": "raised by _mint for an existing id; the registry mints each new id once",
}
REVERTS_CALL = re.compile(r"""\breverts\(\s*["']([A-Za-z_][A-Za-z0-9_]*)["']""")


def declared_errors() -> dict[str, str]:
    """Error name -> contract, for every `error` in the ABIs of the market contracts (inherited ones included)."""
    return {
        entry["name"]: contract
        for contract in MARKET_CONTRACTS
        for entry in load_artifact(contract).abi
        if entry["type"] == "error"
    }


def own_errors() -> dict[str, str]:
    """The errors the market contracts declare themselves (named after the contract, by convention)."""
    return {name: contract for name, contract in declared_errors().items() if name.startswith(contract)}


def errors_expected_by_tests() -> set[str]:
    return {match for path in TESTS_DIR.rglob("*.py") for match in REVERTS_CALL.findall(path.read_text())}


def test_the_market_contracts_declare_custom_errors():
    errors = own_errors()
    assert set(MARKET_CONTRACTS) == {"AIGCRegistry", "AIGCExchange", "ReputationLedger"}
    assert set(errors.values()) == set(MARKET_CONTRACTS)
    assert "AIGCExchangeLockExists" in errors and "ReputationLedgerAlreadyRated" in errors


def test_every_custom_error_of_the_market_contracts_is_triggered_by_a_test():
    expected = errors_expected_by_tests()
    missing = sorted(f"{contract}.{name}" for name, contract in own_errors().items() if name not in expected)
    assert not missing, 'custom errors no test triggers with reverts("<name>", ...):\n' + "\n".join(missing)


def test_every_inherited_error_is_triggered_by_a_test_or_can_never_be_raised():
    expected = errors_expected_by_tests()
    inherited = {name: contract for name, contract in declared_errors().items() if name not in own_errors()}
    missing = sorted(
        f"{contract}.{name}" for name, contract in inherited.items() if name not in expected and name not in NEVER_RAISED
    )
    assert not missing, "inherited errors neither triggered by a test nor listed in NEVER_RAISED:\n" + "\n".join(missing)


def test_the_never_raised_list_holds_only_inherited_errors_that_no_test_triggers():
    inherited = set(declared_errors()) - set(own_errors())
    assert set(NEVER_RAISED) <= inherited, f"not in any ABI (stale): {sorted(set(NEVER_RAISED) - inherited)}"
    assert not set(NEVER_RAISED) & errors_expected_by_tests(), "triggered by a test: remove it from NEVER_RAISED"


def test_the_scan_finds_reverts_calls_across_lines_and_quotes():
    source = "with reverts(\n    \"AIGCExchangeWrongFee\", sent=1):\n    pass\nreverts('ReputationLedgerAlreadyRated')\n"
    assert set(REVERTS_CALL.findall(source)) == {"AIGCExchangeWrongFee", "ReputationLedgerAlreadyRated"}
    assert REVERTS_CALL.findall('not_reverts("X")  # prefixed name') == []
