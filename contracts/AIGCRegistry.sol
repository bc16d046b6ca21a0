// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";
import {ERC2981} from "@openzeppelin/contracts/token/common/ERC2981.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {Commitments, IGenerationLocks, LockState, Offer, Opening} from "./AIGCTypes.sol";

/**
 * @title AIGCRegistry
 * @notice Proof-of-AIGC, protocol v2 (`docs/protocol.md`): every AI-generated product is an ERC-721
 * token registered from a paid generation lock of the exchange. The lock exists only with the ESP's
 * signed offer, which committed to the content (content hash, perceptual hash, prompt hash) before
 * the producer paid; registration opens that commitment. Each lock backs at most one product.
 * @dev Priority between two products is the order (`seq`) of their generation locks, not of their
 * registrations: an observer who copies a content hash or a pHash from a pending registration can
 * only obtain a later lock. A challenge is upheld when the original's lock is earlier and the
 * Hamming distance of the two pHashes is at most `similarityThreshold`; registering content whose
 * hash a later-generated, not yet final product holds displaces (revokes) that product.
 * A product can be challenged for `challengeWindow` seconds after registration; afterwards it is
 * final: it can be sold through the exchange and its owner can reclaim its registration bond.
 * Payouts (bonds, deposits) are credited and withdrawn by their owner (pull payments).
 * Royalties (EIP-2981) go to the producer of record at `royaltyBps` of the sale price.
 */
contract AIGCRegistry is ERC721, ERC2981, ReentrancyGuardTransient {
    /// @dev Storage: three packed slots, two hashes and the uri.
    struct Product {
        address producer;
        uint64 registeredAt;
        bool revoked;
        bool bondReleased;
        address esp;
        uint64 perceptualHash;
        uint64 generationSeq;
        uint64 generatedAt;
        bytes32 contentHash;
        bytes32 promptHash;
        string uri;
    }

    /// @notice The exchange whose generation locks back registrations.
    address public immutable exchange;
    /// @notice Ether that `register` must send; released to the owner once the product is final.
    uint256 public immutable registrationBond;
    /// @notice Smallest `msg.value` that `challenge` accepts; the whole value is at stake.
    uint256 public immutable challengeDeposit;
    /// @notice Largest Hamming distance (of 64 bits) at which two products count as duplicates.
    uint8 public immutable similarityThreshold;
    /// @notice Royalty paid to the producer on every resale through the exchange, in basis points.
    uint96 public immutable royaltyBps;
    /// @notice Seconds after registration during which a product can be challenged or displaced.
    uint64 public immutable challengeWindow;

    uint256 private _lastTokenId;
    mapping(uint256 tokenId => Product) private _products;
    mapping(bytes32 contentHash => uint256 tokenId) private _tokenOfContent;
    mapping(bytes32 lockId => uint256 tokenId) private _tokenOfLock;
    mapping(address account => uint256) private _credits;

    /// @notice A product was registered from generation lock `lockId` and minted to `producer`.
    event ProductRegistered(
        uint256 indexed tokenId,
        address indexed producer,
        address indexed esp,
        bytes32 contentHash,
        uint64 perceptualHash,
        bytes32 lockId,
        uint64 generationSeq
    );
    /// @notice A challenge was adjudicated; `distance` is the Hamming distance of the two pHashes.
    event ChallengeResolved(
        uint256 indexed originalId, uint256 indexed duplicateId, address indexed challenger, bool upheld, uint8 distance
    );
    /// @notice A product was revoked (burned); its record is kept.
    event ProductRevoked(uint256 indexed tokenId, address indexed formerOwner);
    /// @notice `displacedId` held `tokenId`'s content hash with a later generation and was revoked.
    event ProductDisplaced(uint256 indexed displacedId, uint256 indexed tokenId);
    /// @notice The owner of final product `tokenId` had its registration bond credited.
    event BondReleased(uint256 indexed tokenId, address indexed owner, uint256 amount);
    /// @notice `amount` wei were credited to `account`.
    event Credited(address indexed account, uint256 amount, bytes32 indexed reason);
    /// @notice `account` withdrew its credit.
    event CreditWithdrawn(address indexed account, uint256 amount);

    /// @dev A constructor parameter is out of range.
    error AIGCRegistryInvalidConfig();
    /// @dev `register` was sent `sent` wei instead of the bond.
    error AIGCRegistryWrongBond(uint256 sent, uint256 required);
    /// @dev The content hash is zero.
    error AIGCRegistryInvalidContentHash();
    /// @dev The content hash is held by `tokenId`, generated earlier or already final.
    error AIGCRegistryDuplicateContent(bytes32 contentHash, uint256 tokenId);
    /// @dev The offer was never locked (or its terms differ from the locked ones).
    error AIGCRegistryUnknownGeneration(bytes32 lockId);
    /// @dev The generation lock is not withdrawn: the ESP was not paid (yet), or the fee was refunded.
    error AIGCRegistryGenerationNotPaid(bytes32 lockId, LockState state);
    /// @dev Only the producer who locked the fee can register from the lock.
    error AIGCRegistryNotGenerationSender(bytes32 lockId, address caller);
    /// @dev The opening does not match the offer's commitment.
    error AIGCRegistryCommitmentMismatch(bytes32 lockId);
    /// @dev The generation lock backs `tokenId` already.
    error AIGCRegistryGenerationUsed(bytes32 lockId, uint256 tokenId);
    /// @dev `challenge` was sent less than the deposit.
    error AIGCRegistryDepositTooSmall(uint256 sent, uint256 required);
    /// @dev No product has this id.
    error AIGCRegistryUnknownProduct(uint256 tokenId);
    /// @dev A product cannot be challenged as a duplicate of itself.
    error AIGCRegistrySameProduct(uint256 tokenId);
    /// @dev The caller does not own the product.
    error AIGCRegistryNotOwner(uint256 tokenId, address caller);
    /// @dev The product is already revoked.
    error AIGCRegistryAlreadyRevoked(uint256 tokenId);
    /// @dev The caller owns the accused product itself.
    error AIGCRegistrySelfChallenge(uint256 tokenId);
    /// @dev The product's challenge window closed at `closedAt`: it is final.
    error AIGCRegistryChallengeWindowClosed(uint256 tokenId, uint256 closedAt);
    /// @dev The product is still inside its challenge window (final from `finalAt`).
    error AIGCRegistryNotFinal(uint256 tokenId, uint256 finalAt);
    /// @dev The product's bond was released already.
    error AIGCRegistryBondReleased(uint256 tokenId);
    /// @dev The caller has no credit.
    error AIGCRegistryNoCredit(address account);
    /// @dev Sending ether to `to` failed.
    error AIGCRegistryTransferFailed(address to, uint256 amount);

    /**
     * @param bond_ wei locked with each registration.
     * @param deposit_ minimum wei a challenger puts at stake.
     * @param threshold_ largest Hamming distance (0-64) at which products are duplicates.
     * @param royaltyBps_ producer's royalty on resales, at most 10,000 basis points.
     * @param challengeWindow_ seconds during which a new product can be challenged (nonzero).
     * @param exchange_ the exchange of the generation locks (deployed next: its address is predicted).
     */
    constructor(
        uint256 bond_,
        uint256 deposit_,
        uint8 threshold_,
        uint96 royaltyBps_,
        uint64 challengeWindow_,
        address exchange_
    ) ERC721("AIGC Product", "AIGC") {
        if (threshold_ > 64 || royaltyBps_ > _feeDenominator() || challengeWindow_ == 0 || exchange_ == address(0)) {
            revert AIGCRegistryInvalidConfig();
        }
        registrationBond = bond_;
        challengeDeposit = deposit_;
        similarityThreshold = threshold_;
        royaltyBps = royaltyBps_;
        challengeWindow = challengeWindow_;
        exchange = exchange_;
    }

    /**
     * @notice Registers the content of a paid generation and mints its token to the caller.
     * @param offer the ESP's offer whose lock the caller paid and the ESP withdrew.
     * @param opening the content the offer committed to.
     * @param uri where the (encrypted) content can be fetched.
     * @return tokenId the new token's id (ids start at 1).
     */
    function register(Offer calldata offer, Opening calldata opening, string calldata uri)
        external
        payable
        returns (uint256 tokenId)
    {
        if (msg.value != registrationBond) revert AIGCRegistryWrongBond(msg.value, registrationBond);
        (bytes32 lockId, LockState state, uint64 seq, uint64 lockedAt) = IGenerationLocks(exchange).generationLock(offer);
        if (state == LockState.None) revert AIGCRegistryUnknownGeneration(lockId);
        if (state != LockState.Withdrawn) revert AIGCRegistryGenerationNotPaid(lockId, state);
        if (offer.producer != msg.sender) revert AIGCRegistryNotGenerationSender(lockId, msg.sender);
        if (Commitments.commit(opening) != offer.commitment) revert AIGCRegistryCommitmentMismatch(lockId);
        uint256 used = _tokenOfLock[lockId];
        if (used != 0) revert AIGCRegistryGenerationUsed(lockId, used);
        bytes32 contentHash = opening.contentHash;
        if (contentHash == bytes32(0)) revert AIGCRegistryInvalidContentHash();

        tokenId = ++_lastTokenId;
        uint256 holder = _tokenOfContent[contentHash];
        if (holder != 0 && !_products[holder].revoked) {
            // Registration order does not decide: the earlier generation does, until the holder is final.
            if (_products[holder].generationSeq < seq || _isFinal(holder)) {
                revert AIGCRegistryDuplicateContent(contentHash, holder);
            }
            _revoke(holder);
            _credit(msg.sender, registrationBond, "displaced");
            emit ProductDisplaced(holder, tokenId);
        }
        _tokenOfContent[contentHash] = tokenId;
        _tokenOfLock[lockId] = tokenId;
        _products[tokenId] = Product({
            producer: msg.sender,
            registeredAt: uint64(block.timestamp),
            revoked: false,
            bondReleased: false,
            esp: offer.esp,
            perceptualHash: opening.perceptualHash,
            generationSeq: seq,
            generatedAt: lockedAt,
            contentHash: contentHash,
            promptHash: opening.promptHash,
            uri: uri
        });
        _mint(msg.sender, tokenId);
        emit ProductRegistered(tokenId, msg.sender, offer.esp, contentHash, opening.perceptualHash, lockId, seq);
    }

    /**
     * @notice Challenges `duplicateId` as a near-copy of the caller's `originalId`, with a deposit.
     * @dev Malformed challenges revert and change nothing; well-formed ones are adjudicated and credited:
     * upheld, the challenger gets its deposit and the duplicate's bond; rejected, the accused owner
     * gets the deposit.
     * @param originalId a product the caller owns now.
     * @param duplicateId the product accused of copying it: not revoked, not final, not the caller's.
     * @return upheld whether the duplicate was revoked.
     */
    function challenge(uint256 originalId, uint256 duplicateId) external payable returns (bool upheld) {
        if (msg.value < challengeDeposit) revert AIGCRegistryDepositTooSmall(msg.value, challengeDeposit);
        _requireKnown(originalId);
        _requireKnown(duplicateId);
        if (originalId == duplicateId) revert AIGCRegistrySameProduct(originalId);
        if (_ownerOf(originalId) != msg.sender) revert AIGCRegistryNotOwner(originalId, msg.sender);
        Product storage duplicate = _products[duplicateId];
        if (duplicate.revoked) revert AIGCRegistryAlreadyRevoked(duplicateId);
        address accused = _ownerOf(duplicateId);
        if (accused == msg.sender) revert AIGCRegistrySelfChallenge(duplicateId);
        if (_isFinal(duplicateId)) {
            revert AIGCRegistryChallengeWindowClosed(duplicateId, uint256(duplicate.registeredAt) + challengeWindow);
        }

        Product storage original = _products[originalId];
        uint8 distance = hammingDistance(original.perceptualHash, duplicate.perceptualHash);
        upheld = original.generationSeq < duplicate.generationSeq && distance <= similarityThreshold;
        if (upheld) {
            _revoke(duplicateId);
            _credit(msg.sender, msg.value + registrationBond, "challenge upheld");
        } else {
            _credit(accused, msg.value, "challenge rejected");
        }
        emit ChallengeResolved(originalId, duplicateId, msg.sender, upheld, distance);
    }

    /**
     * @notice Credits the registration bond of final product `tokenId` to its owner, once.
     * @param tokenId a final product the caller owns.
     */
    function claimBond(uint256 tokenId) external {
        _requireKnown(tokenId);
        if (_ownerOf(tokenId) != msg.sender) revert AIGCRegistryNotOwner(tokenId, msg.sender);
        Product storage p = _products[tokenId];
        if (!_isFinal(tokenId)) revert AIGCRegistryNotFinal(tokenId, uint256(p.registeredAt) + challengeWindow);
        if (p.bondReleased) revert AIGCRegistryBondReleased(tokenId);
        p.bondReleased = true;
        _credit(msg.sender, registrationBond, "bond");
        emit BondReleased(tokenId, msg.sender, registrationBond);
    }

    /// @notice Pays the caller everything credited to it.
    function withdrawCredit() external nonReentrant {
        uint256 amount = _credits[msg.sender];
        if (amount == 0) revert AIGCRegistryNoCredit(msg.sender);
        _credits[msg.sender] = 0;
        emit CreditWithdrawn(msg.sender, amount);
        (bool ok,) = msg.sender.call{value: amount}("");
        if (!ok) revert AIGCRegistryTransferFailed(msg.sender, amount);
    }

    /**
     * @notice The record of a product, revoked ones included.
     * @param tokenId the product's id.
     */
    function product(uint256 tokenId)
        external
        view
        returns (
            address producer,
            address esp,
            bytes32 contentHash,
            uint64 perceptualHash,
            bytes32 promptHash,
            uint64 registeredAt,
            bool revoked,
            string memory uri,
            uint64 generationSeq,
            uint64 generatedAt,
            bool bondReleased
        )
    {
        _requireKnown(tokenId);
        Product storage p = _products[tokenId];
        return (
            p.producer,
            p.esp,
            p.contentHash,
            p.perceptualHash,
            p.promptHash,
            p.registeredAt,
            p.revoked,
            p.uri,
            p.generationSeq,
            p.generatedAt,
            p.bondReleased
        );
    }

    /// @notice The token that holds `contentHash` (possibly revoked), or 0 if none.
    function tokenOfContent(bytes32 contentHash) external view returns (uint256) {
        return _tokenOfContent[contentHash];
    }

    /// @notice The token registered from generation lock `lockId`, or 0 if none.
    function tokenOfLock(bytes32 lockId) external view returns (uint256) {
        return _tokenOfLock[lockId];
    }

    /// @notice Whether `tokenId` was revoked (reverts for unknown ids).
    function isRevoked(uint256 tokenId) external view returns (bool) {
        _requireKnown(tokenId);
        return _products[tokenId].revoked;
    }

    /// @notice Whether `tokenId` is past its challenge window and not revoked (reverts for unknown ids).
    function isFinal(uint256 tokenId) external view returns (bool) {
        _requireKnown(tokenId);
        return _isFinal(tokenId);
    }

    /// @notice Wei credited to `account` and not yet withdrawn.
    function creditOf(address account) external view returns (uint256) {
        return _credits[account];
    }

    /// @notice Number of products ever registered (revoked ones included); the highest token id.
    function totalRegistered() external view returns (uint256) {
        return _lastTokenId;
    }

    /// @notice Number of differing bits between two 64-bit hashes (constant-time popcount).
    function hammingDistance(uint64 a, uint64 b) public pure returns (uint8) {
        uint64 x = a ^ b;
        unchecked {
            x = x - ((x >> 1) & 0x5555555555555555);
            x = (x & 0x3333333333333333) + ((x >> 2) & 0x3333333333333333);
            x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0f;
            return uint8((x * 0x0101010101010101) >> 56);
        }
    }

    /// @notice EIP-2981: the producer of record receives `royaltyBps` of `salePrice`; (0, 0) for unknown ids.
    function royaltyInfo(uint256 tokenId, uint256 salePrice)
        public
        view
        override
        returns (address receiver, uint256 amount)
    {
        receiver = _products[tokenId].producer;
        if (receiver != address(0)) amount = (salePrice * royaltyBps) / _feeDenominator();
    }

    /// @inheritdoc ERC721
    function supportsInterface(bytes4 interfaceId) public view override(ERC721, ERC2981) returns (bool) {
        return super.supportsInterface(interfaceId);
    }

    function _isFinal(uint256 tokenId) private view returns (bool) {
        Product storage p = _products[tokenId];
        return !p.revoked && block.timestamp >= uint256(p.registeredAt) + challengeWindow;
    }

    function _revoke(uint256 tokenId) private {
        address formerOwner = _ownerOf(tokenId);
        _products[tokenId].revoked = true;
        _burn(tokenId);
        emit ProductRevoked(tokenId, formerOwner);
    }

    function _credit(address account, uint256 amount, bytes32 reason) private {
        if (amount == 0) return;
        _credits[account] += amount;
        emit Credited(account, amount, reason);
    }

    function _requireKnown(uint256 tokenId) private view {
        if (tokenId == 0 || tokenId > _lastTokenId) revert AIGCRegistryUnknownProduct(tokenId);
    }
}
