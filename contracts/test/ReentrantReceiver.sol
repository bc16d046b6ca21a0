// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AIGCExchange} from "../AIGCExchange.sol";

/**
 * @title ReentrantReceiver
 * @notice Test-only attacker: a lock party whose `receive` calls back into the exchange to claim
 * the same lock a second time while the first payout is still in flight.
 * @dev With `bubble == false` the failed re-entry is swallowed and recorded (so the outer call can
 * finish); with `bubble == true` the failure is re-raised, reverting the whole outer call.
 */
contract ReentrantReceiver {
    enum Attack {
        None,
        Withdraw,
        Refund
    }

    AIGCExchange public immutable exchange;
    bool public immutable bubble;

    Attack private _attack;
    bytes32 private _lockId;
    bytes32 private _preimage;

    /// @notice How many times ether arrived.
    uint256 public payments;
    /// @notice How many re-entrant calls were tried and how many went through.
    uint256 public reentryAttempts;
    uint256 public reentrySuccesses;
    /// @notice Revert data of the last failed re-entry.
    bytes public lastReentryError;

    event ReentryTried(bool success, bytes returnData);

    constructor(AIGCExchange exchange_, bool bubble_) {
        exchange = exchange_;
        bubble = bubble_;
    }

    /// @notice Opens a generation lock with this contract as sender (to attack `refund`).
    function lockGeneration(address esp, bytes32 hashlock, uint64 timelock) external payable returns (bytes32) {
        return exchange.lockGeneration{value: msg.value}(esp, hashlock, timelock);
    }

    /// @notice Withdraws `lockId` as its receiver; `receive` will try to withdraw it again.
    function attackWithdraw(bytes32 lockId, bytes32 preimage) external {
        (_attack, _lockId, _preimage) = (Attack.Withdraw, lockId, preimage);
        exchange.withdraw(lockId, preimage);
        _attack = Attack.None;
    }

    /// @notice Refunds `lockId` as its sender; `receive` will try to refund it again.
    function attackRefund(bytes32 lockId) external {
        (_attack, _lockId) = (Attack.Refund, lockId);
        exchange.refund(lockId);
        _attack = Attack.None;
    }

    receive() external payable {
        payments += 1;
        if (_attack == Attack.None) return;
        reentryAttempts += 1;
        bytes memory call = _attack == Attack.Withdraw
            ? abi.encodeCall(AIGCExchange.withdraw, (_lockId, _preimage))
            : abi.encodeCall(AIGCExchange.refund, (_lockId));
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
