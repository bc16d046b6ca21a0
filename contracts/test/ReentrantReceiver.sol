// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AIGCExchange} from "../AIGCExchange.sol";
import {AIGCRegistry} from "../AIGCRegistry.sol";
import {Offer, Opening} from "../AIGCTypes.sol";

/**
 * @title ReentrantReceiver
 * @notice Test-only attacker: a contract party (ESP through ERC-1271, or producer) whose `receive`
 * calls back into the exchange to settle the same lock (or withdraw the same credit) a second time
 * while the first payout is in flight, or, with `rejectPayments`, refuses every payment (a
 * royalty receiver that would grief every resale if royalties were pushed).
 * @dev With `bubble == false` the failed re-entry is swallowed and recorded (so the outer call can
 * finish); with `bubble == true` the failure is re-raised, reverting the whole outer call.
 */
contract ReentrantReceiver {
    enum Attack {
        None,
        Withdraw,
        Refund,
        WithdrawCredit
    }

    bytes4 private constant _ERC1271_MAGIC = 0x1626ba7e;

    AIGCExchange public immutable exchange;
    bool public immutable bubble;
    address private immutable _owner;

    Attack private _attack;
    Offer private _offer;
    bytes32 private _preimage;
    mapping(bytes32 digest => bool) private _approved;

    /// @notice Whether `receive` reverts (a payee that refuses ether).
    bool public rejectPayments;
    /// @notice How many times ether arrived.
    uint256 public payments;
    /// @notice How many re-entrant calls were tried and how many went through.
    uint256 public reentryAttempts;
    uint256 public reentrySuccesses;
    /// @notice Revert data of the last failed re-entry.
    bytes public lastReentryError;

    event ReentryTried(bool success, bytes returnData);

    error ReentrantReceiverRejects();

    constructor(AIGCExchange exchange_, bool bubble_) {
        exchange = exchange_;
        bubble = bubble_;
        _owner = msg.sender;
    }

    /// @notice Stakes `msg.value` as an ESP.
    function registerEsp() external payable {
        exchange.registerEsp{value: msg.value}();
    }

    /// @notice Signs (ERC-1271) the offer whose EIP-712 digest is `digest`.
    function approveOffer(bytes32 digest) external {
        _approved[digest] = true;
    }

    /// @notice ERC-1271: valid for every digest approved with {approveOffer}.
    function isValidSignature(bytes32 digest, bytes calldata) external view returns (bytes4) {
        return _approved[digest] ? _ERC1271_MAGIC : bytes4(0xffffffff);
    }

    /// @notice Makes `receive` refuse (or accept again) every payment.
    function setRejectPayments(bool reject) external {
        rejectPayments = reject;
    }

    /// @notice Locks an offer with this contract as producer (to attack `refundGeneration`).
    function lockGeneration(Offer calldata offer, bytes calldata signature) external payable returns (bytes32) {
        return exchange.lockGeneration{value: msg.value}(offer, signature);
    }

    /// @notice Registers a paid generation with this contract as producer.
    function register(Offer calldata offer, Opening calldata opening) external payable returns (uint256) {
        return exchange.registry().register{value: msg.value}(offer, opening, "");
    }

    /// @notice Withdraws the lock of `offer` as its ESP; `receive` will try to withdraw it again.
    function attackWithdraw(Offer calldata offer, bytes32 preimage) external {
        (_attack, _offer, _preimage) = (Attack.Withdraw, offer, preimage);
        exchange.withdrawGeneration(offer, preimage);
        _attack = Attack.None;
    }

    /// @notice Refunds the lock of `offer` as its producer; `receive` will try to refund it again.
    function attackRefund(Offer calldata offer) external {
        (_attack, _offer) = (Attack.Refund, offer);
        exchange.refundGeneration(offer);
        _attack = Attack.None;
    }

    /// @notice Withdraws this contract's credit; `receive` will try to withdraw it again.
    function attackWithdrawCredit() external {
        _attack = Attack.WithdrawCredit;
        exchange.withdrawCredit();
        _attack = Attack.None;
    }

    /// @notice Approves `spender` for this contract's token `tokenId` (so the exchange can sell it).
    function approveToken(address spender, uint256 tokenId) external {
        exchange.registry().approve(spender, tokenId);
    }

    /// @notice Transfers this contract's token `tokenId` to `to`.
    function transferToken(address to, uint256 tokenId) external {
        exchange.registry().transferFrom(address(this), to, tokenId);
    }

    /// @notice Withdraws this contract's credit in the registry.
    function withdrawRegistryCredit() external {
        exchange.registry().withdrawCredit();
    }

    /// @notice Sends this contract's balance to its deployer.
    function sweep() external {
        (bool ok,) = _owner.call{value: address(this).balance}("");
        require(ok);
    }

    receive() external payable {
        if (rejectPayments) revert ReentrantReceiverRejects();
        payments += 1;
        if (_attack == Attack.None) return;
        reentryAttempts += 1;
        bytes memory call;
        if (_attack == Attack.Withdraw) call = abi.encodeCall(AIGCExchange.withdrawGeneration, (_offer, _preimage));
        else if (_attack == Attack.Refund) call = abi.encodeCall(AIGCExchange.refundGeneration, (_offer));
        else call = abi.encodeCall(AIGCExchange.withdrawCredit, ());
        (bool ok, bytes memory data) = address(exchange).call(call);
        emit ReentryTried(ok, data);
        if (ok) {
            reentrySuccesses += 1;
        } else {
            lastReentryError = data;
            if (bubble) {
                assembly {
                    revert(add(data, 32), mload(data))
                }
            }
        }
    }
}
