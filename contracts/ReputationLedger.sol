// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {IGenerationLocks, LockState, Offer} from "./AIGCTypes.sol";

/**
 * @title ReputationLedger
 * @notice Ratings of ESPs by the producers who paid them (protocol v2, `docs/protocol.md`). A
 * rating is tied to one settled generation lock of the exchange, which exists only for a job the
 * ESP accepted with its signed offer: so only a real, finished job can be rated, once, by the
 * producer who paid; a refunded lock (the ESP took the job and never revealed the key) can only be
 * rated negative.
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
    IGenerationLocks public immutable exchange;

    mapping(bytes32 lockId => bool) private _rated;
    mapping(address producer => mapping(address esp => Stats)) private _stats;

    /// @notice `producer` rated `esp` for the job paid through `lockId` (a fee of `fee` wei).
    event Rated(
        address indexed producer,
        address indexed esp,
        bytes32 indexed lockId,
        bool positive,
        uint16 score,
        uint64 at,
        uint256 fee
    );

    /// @dev The offer was never locked (or its terms differ from the locked ones).
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
    constructor(IGenerationLocks exchange_) {
        exchange = exchange_;
    }

    /**
     * @notice Rates the ESP of a settled generation lock.
     * @param offer the ESP's offer of a withdrawn or refunded lock whose producer is the caller.
     * @param positive whether the job was done well.
     * @param score the producer's score of the content or service.
     */
    function rate(Offer calldata offer, bool positive, uint16 score) external {
        (bytes32 lockId, LockState state,,) = exchange.generationLock(offer);
        if (state == LockState.None) revert ReputationLedgerNotGenerationLock(lockId);
        if (offer.producer != msg.sender) revert ReputationLedgerNotSender(lockId, msg.sender);
        if (state == LockState.Locked) revert ReputationLedgerLockNotSettled(lockId);
        if (positive && state == LockState.Refunded) revert ReputationLedgerPositiveRatingOfRefund(lockId);
        if (_rated[lockId]) revert ReputationLedgerAlreadyRated(lockId);

        _rated[lockId] = true;
        Stats storage s = _stats[msg.sender][offer.esp];
        if (positive) s.positives += 1;
        else s.negatives += 1;
        s.lastRatedAt = uint64(block.timestamp);
        emit Rated(msg.sender, offer.esp, lockId, positive, score, uint64(block.timestamp), offer.fee);
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
