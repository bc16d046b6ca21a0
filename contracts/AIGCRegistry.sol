// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC721} from "@openzeppelin/contracts/token/ERC721/ERC721.sol";
import {ERC2981} from "@openzeppelin/contracts/token/common/ERC2981.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";

/**
 * @title AIGCRegistry
 * @notice Proof-of-AIGC: every AI-generated product is an ERC-721 token registered with an
 * EIP-712 signature of the edge service provider (ESP) that generated it for the producer, a
 * registration bond, and a 64-bit perceptual hash that lets owners challenge near-duplicates.
 * @dev A challenge is adjudicated on chain: it is upheld when the original was registered strictly
 * earlier and the Hamming distance of the two perceptual hashes is at most `similarityThreshold`.
 * "Earlier" is registration order (token ids increase with every registration), which is strict
 * even for two registrations in the same block or second, where timestamps would tie.
 * An upheld challenge burns the duplicate (its record stays, marked revoked) and pays the challenger
 * its deposit plus the duplicate's bond; a rejected one pays the deposit to the accused owner.
 * Royalties (EIP-2981) go to the producer of record at `royaltyBps` of the sale price.
 */
contract AIGCRegistry is ERC721, ERC2981, EIP712, ReentrancyGuardTransient {
    /// @dev EIP-712 type of the ESP's proof of generation.
    bytes32 public constant GENERATION_TYPEHASH =
        keccak256("Generation(address producer,bytes32 contentHash,bytes32 promptHash,uint64 perceptualHash)");

    /// @dev Storage layout packs the record into five slots (plus the uri).
    struct Product {
        address producer;
        uint64 registeredAt;
        bool revoked;
        address esp;
        uint64 perceptualHash;
        bytes32 contentHash;
        bytes32 promptHash;
        string uri;
    }

    /// @notice Ether that `register` must send; it stays locked with the product.
    uint256 public immutable registrationBond;
    /// @notice Smallest `msg.value` that `challenge` accepts; the whole value is at stake.
    uint256 public immutable challengeDeposit;
    /// @notice Largest Hamming distance (of 64 bits) at which two products count as duplicates.
    uint8 public immutable similarityThreshold;
    /// @notice Royalty paid to the producer on every resale through the exchange, in basis points.
    uint96 public immutable royaltyBps;

    uint256 private _lastTokenId;
    mapping(uint256 tokenId => Product) private _products;
    mapping(bytes32 contentHash => uint256 tokenId) private _tokenOfContent;

    /// @notice A product was registered and its token minted to `producer`.
    event ProductRegistered(
        uint256 indexed tokenId, address indexed producer, address indexed esp, bytes32 contentHash, uint64 perceptualHash
    );
    /// @notice A challenge was adjudicated; `distance` is the Hamming distance of the two pHashes.
    event ChallengeResolved(
        uint256 indexed originalId, uint256 indexed duplicateId, address indexed challenger, bool upheld, uint8 distance
    );
    /// @notice A product was revoked (burned) after an upheld challenge; its record is kept.
    event ProductRevoked(uint256 indexed tokenId, address indexed formerOwner);

    /// @dev A constructor parameter is out of range.
    error AIGCRegistryInvalidConfig();
    /// @dev `register` was sent `sent` wei instead of the bond.
    error AIGCRegistryWrongBond(uint256 sent, uint256 required);
    /// @dev The content hash is zero.
    error AIGCRegistryInvalidContentHash();
    /// @dev The content hash is already registered as `tokenId`.
    error AIGCRegistryDuplicateContent(bytes32 contentHash, uint256 tokenId);
    /// @dev The ESP address is zero.
    error AIGCRegistryInvalidEsp();
    /// @dev The signature is missing, malformed, or not by `esp` over this producer's generation.
    error AIGCRegistryInvalidSignature(address esp);
    /// @dev `challenge` was sent less than the deposit.
    error AIGCRegistryDepositTooSmall(uint256 sent, uint256 required);
    /// @dev No product has this id.
    error AIGCRegistryUnknownProduct(uint256 tokenId);
    /// @dev A product cannot be challenged as a duplicate of itself.
    error AIGCRegistrySameProduct(uint256 tokenId);
    /// @dev The caller does not own the product it claims as original.
    error AIGCRegistryNotOwner(uint256 tokenId, address caller);
    /// @dev The product is already revoked.
    error AIGCRegistryAlreadyRevoked(uint256 tokenId);
    /// @dev The caller owns the accused product itself (a challenge would only reclaim its bond).
    error AIGCRegistrySelfChallenge(uint256 tokenId);
    /// @dev Sending ether to `to` failed.
    error AIGCRegistryTransferFailed(address to, uint256 amount);

    /**
     * @param bond_ wei locked with each registration.
     * @param deposit_ minimum wei a challenger puts at stake.
     * @param threshold_ largest Hamming distance (0-64) at which products are duplicates.
     * @param royaltyBps_ producer's royalty on resales, at most 10,000 basis points.
     */
    constructor(uint256 bond_, uint256 deposit_, uint8 threshold_, uint96 royaltyBps_)
        ERC721("AIGC Product", "AIGC")
        EIP712("AIGCRegistry", "1")
    {
        if (threshold_ > 64 || royaltyBps_ > _feeDenominator()) revert AIGCRegistryInvalidConfig();
        registrationBond = bond_;
        challengeDeposit = deposit_;
        similarityThreshold = threshold_;
        royaltyBps = royaltyBps_;
    }

    /**
     * @notice Registers content generated by `esp` for the caller and mints its token to the caller.
     * @param contentHash sha256 of the content bytes; each can be registered once.
     * @param perceptualHash 64-bit perceptual hash (pHash) of the content.
     * @param promptHash hash of the prompt the content was generated from.
     * @param esp the edge service provider that generated the content.
     * @param espSignature EIP-712 signature by `esp` over Generation(caller, contentHash, promptHash, perceptualHash).
     * @param uri where the (encrypted) content can be fetched.
     * @return tokenId the new token's id (ids start at 1).
     */
    function register(
        bytes32 contentHash,
        uint64 perceptualHash,
        bytes32 promptHash,
        address esp,
        bytes calldata espSignature,
        string calldata uri
    ) external payable returns (uint256 tokenId) {
        if (msg.value != registrationBond) revert AIGCRegistryWrongBond(msg.value, registrationBond);
        if (contentHash == bytes32(0)) revert AIGCRegistryInvalidContentHash();
        uint256 existing = _tokenOfContent[contentHash];
        if (existing != 0) revert AIGCRegistryDuplicateContent(contentHash, existing);
        if (esp == address(0)) revert AIGCRegistryInvalidEsp();
        bytes32 digest = generationDigest(msg.sender, contentHash, promptHash, perceptualHash);
        if (!SignatureChecker.isValidSignatureNow(esp, digest, espSignature)) {
            revert AIGCRegistryInvalidSignature(esp);
        }

        tokenId = ++_lastTokenId;
        _tokenOfContent[contentHash] = tokenId;
        _products[tokenId] = Product({
            producer: msg.sender,
            registeredAt: uint64(block.timestamp),
            revoked: false,
            esp: esp,
            perceptualHash: perceptualHash,
            contentHash: contentHash,
            promptHash: promptHash,
            uri: uri
        });
        _mint(msg.sender, tokenId);
        emit ProductRegistered(tokenId, msg.sender, esp, contentHash, perceptualHash);
    }

    /**
     * @notice Challenges `duplicateId` as a near-copy of the caller's `originalId`, with a deposit.
     * @dev Malformed challenges revert and change nothing; well-formed ones are adjudicated and paid.
     * @param originalId a product the caller owns now.
     * @param duplicateId the product accused of copying it; must not be revoked nor owned by the caller.
     * @return upheld whether the duplicate was revoked.
     */
    function challenge(uint256 originalId, uint256 duplicateId) external payable nonReentrant returns (bool upheld) {
        if (msg.value < challengeDeposit) revert AIGCRegistryDepositTooSmall(msg.value, challengeDeposit);
        _requireKnown(originalId);
        _requireKnown(duplicateId);
        if (originalId == duplicateId) revert AIGCRegistrySameProduct(originalId);
        if (_ownerOf(originalId) != msg.sender) revert AIGCRegistryNotOwner(originalId, msg.sender);
        Product storage duplicate = _products[duplicateId];
        if (duplicate.revoked) revert AIGCRegistryAlreadyRevoked(duplicateId);
        address accused = _ownerOf(duplicateId);
        if (accused == msg.sender) revert AIGCRegistrySelfChallenge(duplicateId);

        uint8 distance = hammingDistance(_products[originalId].perceptualHash, duplicate.perceptualHash);
        upheld = originalId < duplicateId && distance <= similarityThreshold;
        address payee;
        uint256 payout;
        if (upheld) {
            duplicate.revoked = true;
            _burn(duplicateId);
            (payee, payout) = (msg.sender, msg.value + registrationBond);
            emit ProductRevoked(duplicateId, accused);
        } else {
            (payee, payout) = (accused, msg.value);
        }
        emit ChallengeResolved(originalId, duplicateId, msg.sender, upheld, distance);
        _sendValue(payee, payout);
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
            string memory uri
        )
    {
        _requireKnown(tokenId);
        Product storage p = _products[tokenId];
        return (p.producer, p.esp, p.contentHash, p.perceptualHash, p.promptHash, p.registeredAt, p.revoked, p.uri);
    }

    /// @notice The token registered for `contentHash`, or 0 if none.
    function tokenOfContent(bytes32 contentHash) external view returns (uint256) {
        return _tokenOfContent[contentHash];
    }

    /// @notice Whether `tokenId` was revoked by an upheld challenge (reverts for unknown ids).
    function isRevoked(uint256 tokenId) external view returns (bool) {
        _requireKnown(tokenId);
        return _products[tokenId].revoked;
    }

    /// @notice Number of products ever registered (revoked ones included); the highest token id.
    function totalRegistered() external view returns (uint256) {
        return _lastTokenId;
    }

    /// @notice The EIP-712 digest an ESP signs to prove it generated content for `producer`.
    function generationDigest(address producer, bytes32 contentHash, bytes32 promptHash, uint64 perceptualHash)
        public
        view
        returns (bytes32)
    {
        return _hashTypedDataV4(
            keccak256(abi.encode(GENERATION_TYPEHASH, producer, contentHash, promptHash, perceptualHash))
        );
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

    function _requireKnown(uint256 tokenId) private view {
        if (tokenId == 0 || tokenId > _lastTokenId) revert AIGCRegistryUnknownProduct(tokenId);
    }

    function _sendValue(address to, uint256 amount) private {
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert AIGCRegistryTransferFailed(to, amount);
    }
}
