// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/**
 * @title Types of protocol v2 shared by the exchange, the registry and the ledger
 * @notice See `docs/protocol.md` for the actors, the states and who may call what.
 */

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

/// @notice Life cycle of an ESP's registration; `None`: never registered, or its stake was withdrawn.
enum EspState {
    None,
    Active,
    Exiting,
    Slashed
}

/**
 * @notice A job that an ESP accepted: it signs this (EIP-712, the exchange's domain) and hands it
 * to the producer with the ciphertext; the producer locks the fee with it.
 * @dev The lock's id is the offer's EIP-712 digest, so an offer can back one lock only.
 */
struct Offer {
    /// the ESP that generated the content and receives the fee.
    address esp;
    /// the only account that may lock this offer (and later register and rate it).
    address producer;
    /// sha256 of the 32-byte key that decrypts the content.
    bytes32 hashlock;
    /// wei the producer locks; at least the exchange's fee floor.
    uint256 fee;
    /// unix time from which the producer can refund if the ESP never revealed the key.
    uint64 timelock;
    /// last unix time at which the offer can be locked.
    uint64 expiry;
    /// distinguishes offers with otherwise equal fields.
    uint256 nonce;
    /// keccak256(abi.encode(contentHash, perceptualHash, promptHash, salt)): the content, fixed before payment.
    bytes32 commitment;
}

/// @notice The content an offer committed to, revealed at registration (or to prove equivocation).
struct Opening {
    /// sha256 of the content bytes.
    bytes32 contentHash;
    /// 64-bit perceptual hash (pHash) of the content.
    uint64 perceptualHash;
    /// hash of the prompt the content was generated from.
    bytes32 promptHash;
    /// the ESP's random salt, so the commitment reveals nothing before registration.
    bytes32 salt;
}

/// @notice The terms of a purchase lock; its id is their EIP-712 digest.
struct Purchase {
    address buyer;
    address seller;
    uint256 tokenId;
    uint256 price;
    bytes32 hashlock;
    uint64 timelock;
}

/**
 * @notice The exchange's view of its generation locks, as the registry and the ledger read it.
 */
interface IGenerationLocks {
    /**
     * @notice The lock of `offer`: its id (the offer's digest), state, priority and lock time.
     * @dev `seq` is a strictly increasing counter over all locks: a smaller `seq` was locked earlier.
     */
    function generationLock(Offer calldata offer)
        external
        view
        returns (bytes32 id, LockState state, uint64 seq, uint64 lockedAt);
}

/// @notice The commitment an offer carries to the content of an opening.
library Commitments {
    function commit(Opening calldata opening) internal pure returns (bytes32) {
        return keccak256(abi.encode(opening.contentHash, opening.perceptualHash, opening.promptHash, opening.salt));
    }
}
