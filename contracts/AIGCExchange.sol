// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {AIGCRegistry} from "./AIGCRegistry.sol";

/**
 * @title AIGCExchange
 * @notice Hashed-timelock (HTLC) escrow with a two-way guarantee for the AIGC lifecycle.
 *
 * Generation: the ESP encrypts the content under a fresh key `k` and gives the producer the
 * ciphertext and `sha256(k)`; the producer locks the fee under that hash; the ESP claims the fee by
 * revealing `k` (which is what the producer needs to decrypt), or the producer refunds after the
 * timelock.
 *
 * Trading: the seller approves this contract for the token and publishes `sha256(s)`; the buyer
 * locks the price; the seller claims by revealing `s` and, in the same transaction, the token moves
 * to the buyer, the price less royalty to the seller and the royalty to the producer.
 *
 * @dev Invariant: `address(this).balance` equals the sum of `amount` over locks in state Locked.
 * Locks are packed into three storage slots (four for purchases); the preimage is not stored
 * (clients read it from {Withdrawn}); the reentrancy guard lives in transient storage.
 * Every payout is an inline `call` checked at the call site, in a function that has checked its caller
 * (the lock's fixed receiver or sender), never a shared send-to-any-address helper (see SECURITY.md).
 */
contract AIGCExchange is ReentrancyGuardTransient {
    /// @notice What a lock pays for.
    enum LockKind {
        Generation,
        Purchase
    }

    /// @notice Life cycle of a lock; `None` means the id is unknown.
    enum LockState {
        None,
        Locked,
        Withdrawn,
        Refunded
    }

    struct Lock {
        address sender;
        uint64 timelock;
        LockKind kind;
        LockState state;
        address receiver;
        uint96 amount;
        bytes32 hashlock;
        uint256 tokenId;
    }

    /// @notice The registry whose tokens are traded here.
    AIGCRegistry public immutable registry;
    /// @notice A new lock's timelock must lie at least this many seconds after the block's timestamp.
    uint64 public immutable minTimelock;

    /// @dev Starts nonzero so that each lock pays a 5,000-gas update instead of a 22,100-gas first write.
    uint256 private _nonce = 1;
    mapping(bytes32 id => Lock) private _locks;

    /// @notice `sender` locked `amount` for `receiver` under `hashlock` until `timelock`.
    event Locked(
        bytes32 indexed id,
        address indexed sender,
        address indexed receiver,
        uint256 amount,
        bytes32 hashlock,
        uint64 timelock,
        uint8 kind,
        uint256 tokenId
    );
    /// @notice The receiver withdrew the lock by revealing `preimage`.
    event Withdrawn(bytes32 indexed id, bytes32 preimage);
    /// @notice The sender took the lock's amount back after the timelock.
    event Refunded(bytes32 indexed id);

    /// @dev A lock must carry ether.
    error AIGCExchangeZeroAmount();
    /// @dev The amount does not fit the packed 96-bit field.
    error AIGCExchangeAmountTooLarge(uint256 amount);
    /// @dev The receiver is the zero address or the sender itself.
    error AIGCExchangeInvalidReceiver(address receiver);
    /// @dev The timelock lies less than `minTimelock` in the future.
    error AIGCExchangeTimelockTooSoon(uint64 timelock, uint256 earliest);
    /// @dev No lock has this id.
    error AIGCExchangeUnknownLock(bytes32 id);
    /// @dev The lock is already withdrawn or refunded.
    error AIGCExchangeLockSettled(bytes32 id, LockState state);
    /// @dev Only the lock's receiver can withdraw.
    error AIGCExchangeNotReceiver(bytes32 id, address caller);
    /// @dev Only the lock's sender can refund.
    error AIGCExchangeNotSender(bytes32 id, address caller);
    /// @dev sha256(preimage) is not the hashlock.
    error AIGCExchangeWrongPreimage(bytes32 id);
    /// @dev Withdrawal at or after the timelock.
    error AIGCExchangeTimelockExpired(bytes32 id, uint64 timelock);
    /// @dev Refund before the timelock.
    error AIGCExchangeTimelockNotExpired(bytes32 id, uint64 timelock);
    /// @dev The token was revoked by an upheld challenge and cannot be traded.
    error AIGCExchangeTokenRevoked(uint256 tokenId);
    /// @dev The seller of record no longer owns the token.
    error AIGCExchangeSellerNotOwner(uint256 tokenId, address seller);
    /// @dev The seller has not approved this contract for the token.
    error AIGCExchangeNotApproved(uint256 tokenId);
    /// @dev Sending ether to `to` failed.
    error AIGCExchangeTransferFailed(address to, uint256 amount);

    /**
     * @param registry_ the AIGCRegistry whose tokens this exchange trades.
     * @param minTimelock_ shortest allowed lock duration in seconds.
     */
    constructor(AIGCRegistry registry_, uint64 minTimelock_) {
        registry = registry_;
        minTimelock = minTimelock_;
    }

    /**
     * @notice Locks the generation fee (`msg.value`) for `esp` under `hashlock` until `timelock`.
     * @param esp the ESP that can withdraw by revealing the content key.
     * @param hashlock sha256 of the 32-byte content key.
     * @param timelock unix time from which the caller can refund.
     * @return id the new lock's id.
     */
    function lockGeneration(address esp, bytes32 hashlock, uint64 timelock)
        external
        payable
        nonReentrant
        returns (bytes32 id)
    {
        return _lock(esp, hashlock, timelock, LockKind.Generation, 0);
    }

    /**
     * @notice Locks the price (`msg.value`) of `tokenId` for its current owner under `hashlock`.
     * @param tokenId the product to buy; it must not be revoked.
     * @param hashlock sha256 of the seller's 32-byte secret.
     * @param timelock unix time from which the caller can refund.
     * @return id the new lock's id.
     */
    function lockPurchase(uint256 tokenId, bytes32 hashlock, uint64 timelock)
        external
        payable
        nonReentrant
        returns (bytes32 id)
    {
        if (registry.isRevoked(tokenId)) revert AIGCExchangeTokenRevoked(tokenId);
        return _lock(registry.ownerOf(tokenId), hashlock, timelock, LockKind.Purchase, tokenId);
    }

    /**
     * @notice The receiver claims lock `id` by revealing `preimage`, strictly before the timelock.
     * @dev For a purchase the token moves to the buyer and the royalty to the producer in the same call.
     * @param id the lock.
     * @param preimage the 32-byte secret whose sha256 is the hashlock.
     */
    function withdraw(bytes32 id, bytes32 preimage) external nonReentrant {
        Lock storage lock = _openLock(id);
        if (msg.sender != lock.receiver) revert AIGCExchangeNotReceiver(id, msg.sender);
        if (block.timestamp >= lock.timelock) revert AIGCExchangeTimelockExpired(id, lock.timelock);
        if (sha256(abi.encodePacked(preimage)) != lock.hashlock) revert AIGCExchangeWrongPreimage(id);

        lock.state = LockState.Withdrawn;
        emit Withdrawn(id, preimage);

        uint256 amount = lock.amount;
        if (lock.kind == LockKind.Generation) {
            (bool ok,) = msg.sender.call{value: amount}("");
            if (!ok) revert AIGCExchangeTransferFailed(msg.sender, amount);
        } else {
            _settlePurchase(lock.tokenId, lock.sender, amount);
        }
    }

    /**
     * @notice The sender takes lock `id` back, at or after the timelock, if it was never withdrawn.
     * @param id the lock.
     */
    function refund(bytes32 id) external nonReentrant {
        Lock storage lock = _openLock(id);
        if (msg.sender != lock.sender) revert AIGCExchangeNotSender(id, msg.sender);
        if (block.timestamp < lock.timelock) revert AIGCExchangeTimelockNotExpired(id, lock.timelock);

        lock.state = LockState.Refunded;
        emit Refunded(id);
        uint256 amount = lock.amount;
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert AIGCExchangeTransferFailed(msg.sender, amount);
    }

    /**
     * @notice A lock's fields; all zero (state None) for an unknown id.
     */
    function getLock(bytes32 id)
        external
        view
        returns (
            address sender,
            address receiver,
            uint256 amount,
            bytes32 hashlock,
            uint64 timelock,
            uint256 tokenId,
            LockKind kind,
            LockState state
        )
    {
        Lock storage lock = _locks[id];
        return (lock.sender, lock.receiver, lock.amount, lock.hashlock, lock.timelock, lock.tokenId, lock.kind, lock.state);
    }

    function _lock(address receiver, bytes32 hashlock, uint64 timelock, LockKind kind, uint256 tokenId)
        private
        returns (bytes32 id)
    {
        if (msg.value == 0) revert AIGCExchangeZeroAmount();
        if (msg.value > type(uint96).max) revert AIGCExchangeAmountTooLarge(msg.value);
        if (receiver == address(0) || receiver == msg.sender) revert AIGCExchangeInvalidReceiver(receiver);
        uint256 earliest = block.timestamp + minTimelock;
        if (timelock < earliest) revert AIGCExchangeTimelockTooSoon(timelock, earliest);

        uint256 nonce = ++_nonce;
        id = keccak256(abi.encode(msg.sender, receiver, hashlock, timelock, nonce));
        Lock storage lock = _locks[id];
        lock.sender = msg.sender;
        lock.timelock = timelock;
        lock.kind = kind;
        lock.state = LockState.Locked;
        lock.receiver = receiver;
        lock.amount = uint96(msg.value);
        lock.hashlock = hashlock;
        if (tokenId != 0) lock.tokenId = tokenId;
        emit Locked(id, msg.sender, receiver, msg.value, hashlock, timelock, uint8(kind), tokenId);
    }

    function _openLock(bytes32 id) private view returns (Lock storage lock) {
        lock = _locks[id];
        LockState state = lock.state;
        if (state == LockState.None) revert AIGCExchangeUnknownLock(id);
        if (state != LockState.Locked) revert AIGCExchangeLockSettled(id, state);
    }

    function _settlePurchase(uint256 tokenId, address buyer, uint256 price) private {
        if (registry.isRevoked(tokenId)) revert AIGCExchangeTokenRevoked(tokenId);
        address seller = msg.sender;
        if (registry.ownerOf(tokenId) != seller) revert AIGCExchangeSellerNotOwner(tokenId, seller);
        if (registry.getApproved(tokenId) != address(this) && !registry.isApprovedForAll(seller, address(this))) {
            revert AIGCExchangeNotApproved(tokenId);
        }
        (address producer, uint256 royalty) = registry.royaltyInfo(tokenId, price);

        registry.transferFrom(seller, buyer, tokenId);
        if (producer == seller) royalty = 0;
        uint256 proceeds = price - royalty;
        (bool ok,) = seller.call{value: proceeds}("");
        if (!ok) revert AIGCExchangeTransferFailed(seller, proceeds);
        if (royalty != 0) {
            (ok,) = producer.call{value: royalty}("");
            if (!ok) revert AIGCExchangeTransferFailed(producer, royalty);
        }
    }
}
