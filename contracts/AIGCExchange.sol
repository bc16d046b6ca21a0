// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {AIGCRegistry} from "./AIGCRegistry.sol";
import {
    Commitments, EspState, IGenerationLocks, LockKind, LockState, Offer, Opening, Purchase
} from "./AIGCTypes.sol";

/**
 * @title AIGCExchange
 * @notice Protocol v2 (`docs/protocol.md`): staked ESPs, hashed-timelock (HTLC) escrows for
 * generation fees and product purchases, and a credit ledger for payouts to third parties.
 *
 * ESPs: an ESP stakes at least `minStake` to become active; only an active ESP's signed offer can
 * be locked. It may announce its exit and withdraw the stake after `unbondingDelay`. An ESP that
 * sold content already committed to another producer by an earlier lock (the same content or a
 * near-copy) is slashed by anyone who shows the two locks: the later lock's producer is compensated
 * from its stake, as much again is forfeited, and the rest stays locked for its other victims.
 *
 * Generation: the ESP encrypts the content under a key `k`, commits to the content, and signs an
 * {Offer} with `sha256(k)` as hashlock; the producer locks the fee with that offer; the ESP claims
 * the fee by revealing `k`, or the producer refunds after the timelock.
 *
 * Trading: only a final product (past its challenge window) can be sold. The buyer locks the price
 * under the seller's `sha256(s)`; the seller claims by revealing `s`, the token moves to the buyer
 * and price and royalty are credited. A buyer can refund at once when the token can no longer be
 * delivered (revoked, or no longer the seller's).
 *
 * @dev A lock is one storage slot: its terms (the offer or the purchase) are hashed into its id and
 * passed back by whoever settles it (as Boltz's EtherSwap does); every term is in the lock's event.
 * Invariant: `address(this).balance` equals open locks + unclaimed credits + stakes not withdrawn
 * (slashed ESPs' included) + forfeited stakes.
 * Payouts go only to `msg.sender` (a settling party) or into {creditOf}; never pushed to a third party.
 */
contract AIGCExchange is IGenerationLocks, EIP712, ReentrancyGuardTransient {
    /// @dev EIP-712 type of an ESP's offer.
    bytes32 public constant OFFER_TYPEHASH = keccak256(
        "Offer(address esp,address producer,bytes32 hashlock,uint256 fee,uint64 timelock,uint64 expiry,uint256 nonce,bytes32 commitment)"
    );
    /// @dev EIP-712 type of a purchase's terms (ids only; nobody signs them).
    bytes32 public constant PURCHASE_TYPEHASH = keccak256(
        "Purchase(address buyer,address seller,uint256 tokenId,uint256 price,bytes32 hashlock,uint64 timelock)"
    );

    /// @dev One slot per lock; `seq` orders locks strictly (the priority of a generation).
    struct LockRecord {
        LockKind kind;
        LockState state;
        uint64 seq;
        uint64 lockedAt;
    }

    /// @dev One slot per ESP.
    struct EspRecord {
        EspState state;
        uint64 availableAt;
        uint128 stake;
    }

    /// @notice The registry whose tokens are traded here.
    AIGCRegistry public immutable registry;
    /// @notice A new lock's timelock must lie at least this many seconds after the block's timestamp.
    uint64 public immutable minTimelock;
    /// @notice ... and at most this many.
    uint64 public immutable maxTimelock;
    /// @notice Smallest generation fee an offer may ask.
    uint256 public immutable feeFloor;
    /// @notice Smallest stake with which an ESP registers.
    uint256 public immutable minStake;
    /// @notice Seconds between an ESP's exit announcement and the withdrawal of its stake.
    uint64 public immutable unbondingDelay;

    uint256 private _lastSeq;
    // slither 0.11.6 misses writes through a storage pointer (`_open`); see SECURITY.md.
    // slither-disable-next-line uninitialized-state
    mapping(bytes32 id => LockRecord) private _locks;
    mapping(address esp => EspRecord) private _esps;
    mapping(address account => uint256) private _credits;
    mapping(bytes32 laterLock => bool) private _compensated;
    uint256 private _forfeited;

    /// @notice `producer` locked `fee` for `esp` with the ESP's offer; `seq` is the lock's priority.
    event GenerationLocked(
        bytes32 indexed id,
        address indexed producer,
        address indexed esp,
        uint256 fee,
        bytes32 hashlock,
        uint64 timelock,
        uint64 expiry,
        uint256 nonce,
        bytes32 commitment,
        uint64 seq
    );
    /// @notice `buyer` locked `price` for `seller`'s token `tokenId` under `hashlock`.
    event PurchaseLocked(
        bytes32 indexed id,
        address indexed buyer,
        address indexed seller,
        uint256 tokenId,
        uint256 price,
        bytes32 hashlock,
        uint64 timelock,
        uint64 seq
    );
    /// @notice The receiver withdrew the lock by revealing `preimage`.
    event Withdrawn(bytes32 indexed id, bytes32 preimage);
    /// @notice The sender took the lock's amount back.
    event Refunded(bytes32 indexed id);
    /// @notice `amount` wei were credited to `account` (sale proceeds, royalty or a slashed stake).
    event Credited(address indexed account, uint256 amount, bytes32 indexed reason);
    /// @notice `account` withdrew its credit.
    event CreditWithdrawn(address indexed account, uint256 amount);
    /// @notice `esp` registered with `stake` wei.
    event EspRegistered(address indexed esp, uint256 stake);
    /// @notice `esp` announced its exit; its stake can be withdrawn from `availableAt`.
    event EspExitAnnounced(address indexed esp, uint64 availableAt);
    /// @notice `esp` withdrew its stake and is no longer registered.
    event StakeWithdrawn(address indexed esp, uint256 stake);
    /// @notice `esp` sold content already committed by `earlierLock`; `compensation` of its stake went to `beneficiary`.
    event EspSlashed(
        address indexed esp, address indexed beneficiary, uint256 compensation, bytes32 earlierLock, bytes32 laterLock
    );

    /// @dev A constructor parameter is out of range.
    error AIGCExchangeInvalidConfig();
    /// @dev The registry was deployed for another exchange.
    error AIGCExchangeRegistryMismatch(address expected);
    /// @dev A lock must carry ether.
    error AIGCExchangeZeroAmount();
    /// @dev The receiver is the zero address or the sender itself.
    error AIGCExchangeInvalidReceiver(address receiver);
    /// @dev The timelock lies less than `minTimelock` in the future.
    error AIGCExchangeTimelockTooSoon(uint64 timelock, uint256 earliest);
    /// @dev The timelock lies more than `maxTimelock` in the future.
    error AIGCExchangeTimelockTooLate(uint64 timelock, uint256 latest);
    /// @dev No lock has this id (for generation: the offer was never locked, or its terms differ).
    error AIGCExchangeUnknownLock(bytes32 id);
    /// @dev A lock with these terms exists already (an offer is locked at most once).
    error AIGCExchangeLockExists(bytes32 id);
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
    /// @dev Refund before the timelock (of a lock that can still be delivered).
    error AIGCExchangeTimelockNotExpired(bytes32 id, uint64 timelock);
    /// @dev The token was revoked and cannot be traded.
    error AIGCExchangeTokenRevoked(uint256 tokenId);
    /// @dev The token is still inside its challenge window.
    error AIGCExchangeNotFinal(uint256 tokenId);
    /// @dev The seller of record no longer owns the token.
    error AIGCExchangeSellerNotOwner(uint256 tokenId, address seller);
    /// @dev The seller has not approved this contract for the token.
    error AIGCExchangeNotApproved(uint256 tokenId);
    /// @dev Sending ether to `to` failed.
    error AIGCExchangeTransferFailed(address to, uint256 amount);
    /// @dev `msg.value` is not the offer's fee.
    error AIGCExchangeWrongFee(uint256 sent, uint256 fee);
    /// @dev The offer's fee is below the fee floor.
    error AIGCExchangeFeeBelowFloor(uint256 fee, uint256 floor);
    /// @dev The offer can no longer be locked.
    error AIGCExchangeOfferExpired(uint64 expiry);
    /// @dev The offer was made to another producer.
    error AIGCExchangeOfferNotForCaller(address producer, address caller);
    /// @dev The signature is missing, malformed, or not the offer's ESP's.
    error AIGCExchangeInvalidOfferSignature(address esp);
    /// @dev The ESP is not registered and active.
    error AIGCExchangeEspNotActive(address esp);
    /// @dev `registerEsp` was sent less than the minimum stake.
    error AIGCExchangeStakeTooSmall(uint256 sent, uint256 required);
    /// @dev The ESP is registered already (or was slashed).
    error AIGCExchangeEspRegistered(address esp, EspState state);
    /// @dev The ESP has not announced its exit.
    error AIGCExchangeEspNotExiting(address esp);
    /// @dev The unbonding delay is not over.
    error AIGCExchangeUnbonding(address esp, uint64 availableAt);
    /// @dev The two locks do not show duplicate content sold to two producers.
    error AIGCExchangeNotEquivocation();
    /// @dev The opening does not match the commitment of lock `id`.
    error AIGCExchangeOpeningMismatch(bytes32 id);
    /// @dev The ESP has no stake left to slash.
    error AIGCExchangeNothingToSlash(address esp);
    /// @dev The later lock's producer was compensated already.
    error AIGCExchangeAlreadyCompensated(bytes32 laterLock);
    /// @dev The caller has no credit.
    error AIGCExchangeNoCredit(address account);

    /**
     * @param registry_ the AIGCRegistry whose tokens this exchange trades; it must name this exchange.
     * @param minTimelock_ shortest allowed lock duration in seconds.
     * @param maxTimelock_ longest allowed lock duration in seconds.
     * @param feeFloor_ smallest generation fee, in wei (nonzero).
     * @param minStake_ smallest ESP stake, in wei (nonzero).
     * @param unbondingDelay_ seconds from an exit announcement to the stake's withdrawal; at least
     * `maxTimelock_` plus the registry's challenge window, so that equivocation can still be proven.
     */
    constructor(
        AIGCRegistry registry_,
        uint64 minTimelock_,
        uint64 maxTimelock_,
        uint256 feeFloor_,
        uint256 minStake_,
        uint64 unbondingDelay_
    ) EIP712("AIGCExchange", "2") {
        if (registry_.exchange() != address(this)) revert AIGCExchangeRegistryMismatch(address(this));
        if (
            minTimelock_ == 0 || maxTimelock_ < minTimelock_ || feeFloor_ == 0 || minStake_ == 0
                || minStake_ > type(uint128).max
                || uint256(unbondingDelay_) < uint256(maxTimelock_) + registry_.challengeWindow()
        ) revert AIGCExchangeInvalidConfig();
        registry = registry_;
        minTimelock = minTimelock_;
        maxTimelock = maxTimelock_;
        feeFloor = feeFloor_;
        minStake = minStake_;
        unbondingDelay = unbondingDelay_;
    }

    // -- ESPs ---------------------------------------------------------------------------------------

    /// @notice Registers the caller as an ESP with `msg.value` as stake (at least `minStake`).
    function registerEsp() external payable {
        EspRecord storage esp = _esps[msg.sender];
        if (esp.state != EspState.None) revert AIGCExchangeEspRegistered(msg.sender, esp.state);
        if (msg.value < minStake) revert AIGCExchangeStakeTooSmall(msg.value, minStake);
        if (msg.value > type(uint128).max) revert AIGCExchangeStakeTooSmall(msg.value, minStake);
        esp.state = EspState.Active;
        esp.stake = uint128(msg.value);
        emit EspRegistered(msg.sender, msg.value);
    }

    /// @notice The caller stops accepting jobs; its stake can be withdrawn after `unbondingDelay`.
    function announceExit() external {
        EspRecord storage esp = _esps[msg.sender];
        if (esp.state != EspState.Active) revert AIGCExchangeEspNotActive(msg.sender);
        uint64 availableAt = uint64(block.timestamp) + unbondingDelay;
        esp.state = EspState.Exiting;
        esp.availableAt = availableAt;
        emit EspExitAnnounced(msg.sender, availableAt);
    }

    /// @notice After the unbonding delay, the caller takes its stake back and is no longer registered.
    function withdrawStake() external nonReentrant {
        EspRecord storage esp = _esps[msg.sender];
        if (esp.state != EspState.Exiting) revert AIGCExchangeEspNotExiting(msg.sender);
        if (block.timestamp < esp.availableAt) revert AIGCExchangeUnbonding(msg.sender, esp.availableAt);
        uint256 stake = esp.stake;
        delete _esps[msg.sender];
        emit StakeWithdrawn(msg.sender, stake);
        (bool ok,) = msg.sender.call{value: stake}("");
        if (!ok) revert AIGCExchangeTransferFailed(msg.sender, stake);
    }

    /**
     * @notice Proves that the ESP of a later lock sold content that was already committed to another
     * producer by an earlier lock, and slashes it in favour of the later lock's producer.
     * @dev Duplicate content is what the registry calls a duplicate: the same content hash, or
     * perceptual hashes within its similarity threshold (whichever ESPs signed the two offers: the
     * later one sold a copy or a near-copy of content committed before). Both offers must have been
     * locked: a lock exists only with its ESP's valid signature, so the locks are the signed offers.
     * The later lock's producer is credited `compensation` = its fee plus the registration bond (what
     * the duplicate cost it), at most half of the remaining stake, and as much again is forfeited
     * (kept by the contract for good, {totalForfeited}); each later lock is compensated once. A
     * slashed ESP can no longer accept jobs nor withdraw what is left of its stake, which stays to
     * compensate its other victims. So an ESP that slashes itself through its own producer keys
     * (with any fee) loses at least as much as it recovers, and anyone may call: a front-runner of
     * the proof gains nothing.
     * @param a one locked offer, with `openingA` opening its commitment.
     * @param b another locked offer to another producer, with `openingB`.
     */
    function proveEquivocation(
        Offer calldata a,
        Opening calldata openingA,
        Offer calldata b,
        Opening calldata openingB
    ) external {
        bytes32 idA = offerId(a);
        bytes32 idB = offerId(b);
        LockRecord storage lockA = _knownLock(idA);
        LockRecord storage lockB = _knownLock(idB);
        if (Commitments.commit(openingA) != a.commitment) revert AIGCExchangeOpeningMismatch(idA);
        if (Commitments.commit(openingB) != b.commitment) revert AIGCExchangeOpeningMismatch(idB);
        if (a.producer == b.producer || !_duplicates(openingA, openingB)) revert AIGCExchangeNotEquivocation();
        bool aFirst = lockA.seq < lockB.seq;
        (Offer calldata later, bytes32 earlierId, bytes32 laterId) = aFirst ? (b, idA, idB) : (a, idB, idA);
        if (_compensated[laterId]) revert AIGCExchangeAlreadyCompensated(laterId);
        EspRecord storage esp = _esps[later.esp];
        uint256 stake = esp.stake;
        uint256 compensation = later.fee + registry.registrationBond();
        if (compensation > stake / 2) compensation = stake / 2;
        if (compensation == 0) revert AIGCExchangeNothingToSlash(later.esp);

        _compensated[laterId] = true;
        esp.state = EspState.Slashed;
        esp.stake = uint128(stake - 2 * compensation);
        esp.availableAt = 0;
        _forfeited += compensation;
        _credit(later.producer, compensation, "slash");
        emit EspSlashed(later.esp, later.producer, compensation, earlierId, laterId);
    }

    // -- generation ---------------------------------------------------------------------------------

    /**
     * @notice Locks the generation fee (`msg.value`) for the ESP of `offer`.
     * @param offer the ESP's offer; its producer must be the caller.
     * @param signature the ESP's EIP-712 signature of `offer` (EOA or ERC-1271).
     * @return id the new lock's id: the offer's EIP-712 digest.
     */
    function lockGeneration(Offer calldata offer, bytes calldata signature)
        external
        payable
        nonReentrant
        returns (bytes32 id)
    {
        if (offer.producer != msg.sender) revert AIGCExchangeOfferNotForCaller(offer.producer, msg.sender);
        if (offer.esp == msg.sender || offer.esp == address(0)) revert AIGCExchangeInvalidReceiver(offer.esp);
        if (msg.value != offer.fee) revert AIGCExchangeWrongFee(msg.value, offer.fee);
        if (offer.fee < feeFloor) revert AIGCExchangeFeeBelowFloor(offer.fee, feeFloor);
        if (block.timestamp > offer.expiry) revert AIGCExchangeOfferExpired(offer.expiry);
        _checkTimelock(offer.timelock);
        if (_esps[offer.esp].state != EspState.Active) revert AIGCExchangeEspNotActive(offer.esp);
        id = offerId(offer);
        if (!SignatureChecker.isValidSignatureNow(offer.esp, id, signature)) {
            revert AIGCExchangeInvalidOfferSignature(offer.esp);
        }
        uint64 seq = _open(id, LockKind.Generation);
        emit GenerationLocked(
            id,
            msg.sender,
            offer.esp,
            offer.fee,
            offer.hashlock,
            offer.timelock,
            offer.expiry,
            offer.nonce,
            offer.commitment,
            seq
        );
    }

    /**
     * @notice The ESP claims the fee of `offer`'s lock by revealing the key, strictly before the timelock.
     * @param offer the locked offer.
     * @param preimage the 32-byte key whose sha256 is the hashlock.
     */
    function withdrawGeneration(Offer calldata offer, bytes32 preimage) external nonReentrant {
        bytes32 id = offerId(offer);
        LockRecord storage lock = _openLock(id);
        if (msg.sender != offer.esp) revert AIGCExchangeNotReceiver(id, msg.sender);
        if (block.timestamp >= offer.timelock) revert AIGCExchangeTimelockExpired(id, offer.timelock);
        if (sha256(abi.encodePacked(preimage)) != offer.hashlock) revert AIGCExchangeWrongPreimage(id);

        lock.state = LockState.Withdrawn;
        emit Withdrawn(id, preimage);
        uint256 fee = offer.fee;
        (bool ok,) = msg.sender.call{value: fee}("");
        if (!ok) revert AIGCExchangeTransferFailed(msg.sender, fee);
    }

    /**
     * @notice The producer takes the fee of `offer`'s lock back, at or after the timelock.
     * @param offer the locked offer.
     */
    function refundGeneration(Offer calldata offer) external nonReentrant {
        bytes32 id = offerId(offer);
        LockRecord storage lock = _openLock(id);
        if (msg.sender != offer.producer) revert AIGCExchangeNotSender(id, msg.sender);
        if (block.timestamp < offer.timelock) revert AIGCExchangeTimelockNotExpired(id, offer.timelock);

        lock.state = LockState.Refunded;
        emit Refunded(id);
        uint256 fee = offer.fee;
        (bool ok,) = msg.sender.call{value: fee}("");
        if (!ok) revert AIGCExchangeTransferFailed(msg.sender, fee);
    }

    /// @inheritdoc IGenerationLocks
    function generationLock(Offer calldata offer)
        external
        view
        returns (bytes32 id, LockState state, uint64 seq, uint64 lockedAt)
    {
        id = offerId(offer);
        LockRecord storage lock = _locks[id];
        return (id, lock.state, lock.seq, lock.lockedAt);
    }

    /// @notice The EIP-712 digest of `offer`: what its ESP signs, and the id of its lock.
    function offerId(Offer calldata offer) public view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(OFFER_TYPEHASH, offer)));
    }

    // -- trading ------------------------------------------------------------------------------------

    /**
     * @notice Locks the price (`msg.value`) of the final product `tokenId` for its current owner.
     * @param tokenId the product to buy; it must be final (past its challenge window) and not revoked.
     * @param hashlock sha256 of the seller's 32-byte secret.
     * @param timelock unix time from which the caller can refund.
     * @return id the new lock's id: the digest of its {Purchase} terms.
     */
    function lockPurchase(uint256 tokenId, bytes32 hashlock, uint64 timelock)
        external
        payable
        nonReentrant
        returns (bytes32 id)
    {
        if (msg.value == 0) revert AIGCExchangeZeroAmount();
        if (registry.isRevoked(tokenId)) revert AIGCExchangeTokenRevoked(tokenId);
        if (!registry.isFinal(tokenId)) revert AIGCExchangeNotFinal(tokenId);
        address seller = registry.ownerOf(tokenId);
        if (seller == msg.sender) revert AIGCExchangeInvalidReceiver(seller);
        _checkTimelock(timelock);
        Purchase memory terms = Purchase(msg.sender, seller, tokenId, msg.value, hashlock, timelock);
        id = _purchaseId(terms);
        uint64 seq = _open(id, LockKind.Purchase);
        emit PurchaseLocked(id, msg.sender, seller, tokenId, msg.value, hashlock, timelock, seq);
    }

    /**
     * @notice The seller claims a purchase by revealing its secret, strictly before the timelock: the
     * token moves to the buyer, and the price less royalty and the royalty are credited.
     * @param terms the purchase's terms, as in its {PurchaseLocked} event.
     * @param preimage the 32-byte secret whose sha256 is the hashlock.
     */
    function withdrawPurchase(Purchase calldata terms, bytes32 preimage) external nonReentrant {
        bytes32 id = _purchaseId(terms);
        LockRecord storage lock = _openLock(id);
        if (msg.sender != terms.seller) revert AIGCExchangeNotReceiver(id, msg.sender);
        if (block.timestamp >= terms.timelock) revert AIGCExchangeTimelockExpired(id, terms.timelock);
        if (sha256(abi.encodePacked(preimage)) != terms.hashlock) revert AIGCExchangeWrongPreimage(id);
        uint256 tokenId = terms.tokenId;
        if (registry.isRevoked(tokenId)) revert AIGCExchangeTokenRevoked(tokenId);
        if (registry.ownerOf(tokenId) != msg.sender) revert AIGCExchangeSellerNotOwner(tokenId, msg.sender);
        if (registry.getApproved(tokenId) != address(this) && !registry.isApprovedForAll(msg.sender, address(this))) {
            revert AIGCExchangeNotApproved(tokenId);
        }

        lock.state = LockState.Withdrawn;
        emit Withdrawn(id, preimage);
        (address producer, uint256 royalty) = registry.royaltyInfo(tokenId, terms.price);
        if (producer == msg.sender) royalty = 0;
        _credit(msg.sender, terms.price - royalty, "proceeds");
        if (royalty != 0) _credit(producer, royalty, "royalty");
        registry.transferFrom(msg.sender, terms.buyer, tokenId);
    }

    /**
     * @notice The buyer takes the price back: at or after the timelock, or at once when the token
     * can no longer be delivered (revoked, or no longer owned by the seller).
     * @param terms the purchase's terms, as in its {PurchaseLocked} event.
     */
    function refundPurchase(Purchase calldata terms) external nonReentrant {
        bytes32 id = _purchaseId(terms);
        LockRecord storage lock = _openLock(id);
        if (msg.sender != terms.buyer) revert AIGCExchangeNotSender(id, msg.sender);
        if (block.timestamp < terms.timelock && _deliverable(terms.tokenId, terms.seller)) {
            revert AIGCExchangeTimelockNotExpired(id, terms.timelock);
        }

        lock.state = LockState.Refunded;
        emit Refunded(id);
        uint256 price = terms.price;
        (bool ok,) = msg.sender.call{value: price}("");
        if (!ok) revert AIGCExchangeTransferFailed(msg.sender, price);
    }

    /// @notice The id of a purchase lock with these terms.
    function purchaseId(Purchase calldata terms) external view returns (bytes32) {
        return _purchaseId(terms);
    }

    // -- credits ------------------------------------------------------------------------------------

    /// @notice Pays the caller everything credited to it.
    function withdrawCredit() external nonReentrant {
        uint256 amount = _credits[msg.sender];
        if (amount == 0) revert AIGCExchangeNoCredit(msg.sender);
        _credits[msg.sender] = 0;
        emit CreditWithdrawn(msg.sender, amount);
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert AIGCExchangeTransferFailed(msg.sender, amount);
    }

    // -- views --------------------------------------------------------------------------------------

    /// @notice Wei credited to `account` and not yet withdrawn.
    function creditOf(address account) external view returns (uint256) {
        return _credits[account];
    }

    /// @notice A lock's kind, state, priority and lock time; state None for an unknown id.
    function getLock(bytes32 id) external view returns (LockKind kind, LockState state, uint64 seq, uint64 lockedAt) {
        LockRecord storage lock = _locks[id];
        return (lock.kind, lock.state, lock.seq, lock.lockedAt);
    }

    /// @notice An ESP's state, stake, and when an exiting ESP may withdraw it.
    function espInfo(address esp) external view returns (EspState state, uint256 stake, uint64 availableAt) {
        EspRecord storage record = _esps[esp];
        return (record.state, record.stake, record.availableAt);
    }

    /// @notice Whether `esp` is registered and may accept jobs.
    function isActiveEsp(address esp) external view returns (bool) {
        return _esps[esp].state == EspState.Active;
    }

    /// @notice Wei of slashed stakes forfeited for good (as much as their victims were compensated).
    function totalForfeited() external view returns (uint256) {
        return _forfeited;
    }

    /// @notice Number of locks ever opened; the `seq` of the latest.
    function totalLocks() external view returns (uint256) {
        return _lastSeq;
    }

    // -- internals ----------------------------------------------------------------------------------

    function _checkTimelock(uint64 timelock) private view {
        uint256 earliest = block.timestamp + minTimelock;
        if (timelock < earliest) revert AIGCExchangeTimelockTooSoon(timelock, earliest);
        uint256 latest = block.timestamp + maxTimelock;
        if (timelock > latest) revert AIGCExchangeTimelockTooLate(timelock, latest);
    }

    function _open(bytes32 id, LockKind kind) private returns (uint64 seq) {
        LockRecord storage lock = _locks[id];
        if (lock.state != LockState.None) revert AIGCExchangeLockExists(id);
        seq = uint64(++_lastSeq);
        lock.kind = kind;
        lock.state = LockState.Locked;
        lock.seq = seq;
        lock.lockedAt = uint64(block.timestamp);
    }

    function _knownLock(bytes32 id) private view returns (LockRecord storage lock) {
        lock = _locks[id];
        if (lock.state == LockState.None) revert AIGCExchangeUnknownLock(id);
    }

    function _openLock(bytes32 id) private view returns (LockRecord storage lock) {
        lock = _knownLock(id);
        LockState state = lock.state;
        if (state != LockState.Locked) revert AIGCExchangeLockSettled(id, state);
    }

    function _purchaseId(Purchase memory terms) private view returns (bytes32) {
        return _hashTypedDataV4(keccak256(abi.encode(PURCHASE_TYPEHASH, terms)));
    }

    function _deliverable(uint256 tokenId, address seller) private view returns (bool) {
        return !registry.isRevoked(tokenId) && registry.ownerOf(tokenId) == seller;
    }

    /// @dev The registry's notion of a duplicate: the same content hash, or pHashes within its threshold.
    function _duplicates(Opening calldata a, Opening calldata b) private view returns (bool) {
        return a.contentHash == b.contentHash
            || registry.hammingDistance(a.perceptualHash, b.perceptualHash) <= registry.similarityThreshold();
    }

    function _credit(address account, uint256 amount, bytes32 reason) private {
        _credits[account] += amount;
        emit Credited(account, amount, reason);
    }
}
