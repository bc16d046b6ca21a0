// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AIGCExchange} from "./AIGCExchange.sol";

/**
 * @title ReputationLedger
 * @notice Ratings of ESPs by the producers who paid them. A rating is tied to one settled
 * generation lock of the exchange, so only a real, finished interaction can be rated, once, by the
 * producer who paid; a refunded lock (the ESP never revealed the key) can only be rated negative.
 * @dev Per (producer, ESP) pair the ledger keeps counts and the time of the last rating in one
 * slot; the full history is in the {Rated} events, which off-chain reputation (MWSL) consumes.
 */
contract ReputationLedger {
    struct Stats {
        uint64 positives;
        uint64 negatives;
        uint64 lastRatedAt;
    }

    /// @notice The exchange whose generation locks can be rated.
    AIGCExchange public immutable exchange;

    mapping(bytes32 lockId => bool) private _rated;
    mapping(address producer => mapping(address esp => Stats)) private _stats;

    /// @notice `producer` rated `esp` for the generation paid through `lockId`.
    event Rated(
        address indexed producer, address indexed esp, bytes32 indexed lockId, bool positive, uint16 score, uint64 at
    );

    /// @dev The lock is not a generation lock of the exchange (unknown, or a purchase).
    error ReputationLedgerNotGenerationLock(bytes32 lockId);
    /// @dev Only the producer who locked the fee can rate.
    error ReputationLedgerNotSender(bytes32 lockId, address caller);
    /// @dev The lock is still open.
    error ReputationLedgerLockNotSettled(bytes32 lockId);
    /// @dev A refunded lock can only be rated negative.
    error ReputationLedgerPositiveRatingOfRefund(bytes32 lockId);
    /// @dev The lock was rated already.
    error ReputationLedgerAlreadyRated(bytes32 lockId);

    /// @param exchange_ the exchange whose generation locks are rated.
    constructor(AIGCExchange exchange_) {
        exchange = exchange_;
    }

    /**
     * @notice Rates the ESP that received generation lock `lockId`.
     * @param lockId a withdrawn or refunded generation lock whose sender is the caller.
     * @param positive whether the interaction was good.
     * @param score the producer's score of the content or service.
     */
    function rate(bytes32 lockId, bool positive, uint16 score) external {
        (address sender, address esp,,,,, AIGCExchange.LockKind kind, AIGCExchange.LockState state) =
            exchange.getLock(lockId);
        if (state == AIGCExchange.LockState.None || kind != AIGCExchange.LockKind.Generation) {
            revert ReputationLedgerNotGenerationLock(lockId);
        }
        if (sender != msg.sender) revert ReputationLedgerNotSender(lockId, msg.sender);
        if (state == AIGCExchange.LockState.Locked) revert ReputationLedgerLockNotSettled(lockId);
        if (positive && state == AIGCExchange.LockState.Refunded) {
            revert ReputationLedgerPositiveRatingOfRefund(lockId);
        }
        if (_rated[lockId]) revert ReputationLedgerAlreadyRated(lockId);

        _rated[lockId] = true;
        Stats storage s = _stats[msg.sender][esp];
        if (positive) s.positives += 1;
        else s.negatives += 1;
        s.lastRatedAt = uint64(block.timestamp);
        emit Rated(msg.sender, esp, lockId, positive, score, uint64(block.timestamp));
    }

    /// @notice Counts of `producer`'s ratings of `esp` and the time of the last one.
    function stats(address producer, address esp)
        external
        view
        returns (uint64 positives, uint64 negatives, uint64 lastRatedAt)
    {
        Stats storage s = _stats[producer][esp];
        return (s.positives, s.negatives, s.lastRatedAt);
    }

    /// @notice Whether generation lock `lockId` has been rated.
    function isRated(bytes32 lockId) external view returns (bool) {
        return _rated[lockId];
    }
}
