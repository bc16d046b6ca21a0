// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AIGCRegistry} from "../../AIGCRegistry.sol";
import {AIGCExchange} from "../../AIGCExchange.sol";
import {ReputationLedger} from "../../ReputationLedger.sol";
import {EspState, LockKind, LockState, Offer, Opening, Purchase} from "../../AIGCTypes.sol";
import {VM} from "./Vm.sol";

/**
 * @notice The fuzzed actor of protocol v2: forge calls these functions with random arguments in
 * random order. Each acts as one of six actors (vm.prank) whose keys the handler holds, so that it
 * can sign ESP offers (EIP-712, vm.sign): staking, exits and stake withdrawals; offers (signed, by
 * the wrong key, tampered after signing, expired, with a fee under the floor or a timelock too soon)
 * and their locks; withdrawals with the right or a wrong key and refunds; registrations from locks
 * (displacements, duplicates, wrong openings); challenges; bond claims; purchases, sales and
 * refunds; token transfers and approvals; credit withdrawals; ratings; equivocation proofs; and
 * time moves (past timelocks, the challenge window, the unbonding delay). A call the contracts
 * refuse reverts (forge counts it) and leaves no trace; ghost counters record what must never happen.
 */
contract MarketHandler {
    /// @dev The handler has nothing to act on yet (no lock, no purchase): counted as a revert.
    error NothingToDo();

    uint256 internal constant ACTORS = 6;
    uint256 internal constant KEY_BASE = 0xA16C;
    uint256 internal constant CONTENTS = 9; // two families of four near-duplicates + a zero content hash

    AIGCRegistry public immutable registry;
    AIGCExchange public immutable exchange;
    ReputationLedger public immutable ledger;
    /// @notice All ether there is: the actors' at the start (the contracts started empty).
    uint256 public immutable totalEther;

    address[ACTORS] public actors;

    /// @dev Every offer that was locked (unique: its lock id is its digest), its opening and key.
    Offer[] internal _offers;
    Opening[] internal _openings;
    bytes32[] internal _keys;
    /// @dev Every purchase lock's terms and secret.
    Purchase[] internal _purchases;
    bytes32[] internal _secrets;
    uint256 internal _nonce;
    mapping(uint256 tokenId => bool) internal _revoked;

    /// @dev Counts of impossible events; every invariant requires them to stay 0.
    uint256 public doubleSettlements;
    uint256 public revokedProductMoves;
    uint256 public ratingsOfUnsettled;
    uint256 public purchasesBeforeFinal;
    mapping(bytes32 id => uint256) public settlements;

    constructor(AIGCRegistry registry_, AIGCExchange exchange_, ReputationLedger ledger_) {
        registry = registry_;
        exchange = exchange_;
        ledger = ledger_;
        uint256 total;
        for (uint256 i = 0; i < ACTORS; i++) {
            actors[i] = VM.addr(KEY_BASE + i);
            VM.deal(actors[i], 1_000 ether);
            total += 1_000 ether;
        }
        totalEther = total;
        // Actors 0, 1, 2 are staked ESPs; each generated a product for actor 3, 4, 5 (contents 0, 1, 2:
        // 0 and 2 are near-duplicates, so the third can be challenged and its ESP slashed). The first
        // two products are final when the runs start.
        uint256 stake = exchange_.minStake();
        for (uint256 i = 0; i < 3; i++) {
            VM.prank(actors[i]);
            exchange_.registerEsp{value: stake}();
        }
        _generateAndRegister(0, 3, 0);
        _generateAndRegister(1, 4, 1);
        VM.warp(block.timestamp + registry_.challengeWindow()); // the first two are final, the third is not
        _generateAndRegister(2, 5, 2);
    }

    function _generateAndRegister(uint256 esp, uint256 producer, uint256 content) private {
        (Offer memory offer, Opening memory opening, bytes32 key, bytes memory signature) =
            _offer(producer, esp, content, 0, 0, 0);
        VM.prank(actors[producer]);
        exchange.lockGeneration{value: offer.fee}(offer, signature);
        _recordOffer(offer, opening, key);
        VM.prank(actors[esp]);
        exchange.withdrawGeneration(offer, key);
        uint256 bond = registry.registrationBond();
        VM.prank(actors[producer]);
        registry.register{value: bond}(offer, opening, "");
    }

    // -- views for the invariants -----------------------------------------------------------------

    function offerCount() external view returns (uint256) {
        return _offers.length;
    }

    function offerAt(uint256 i) external view returns (Offer memory) {
        return _offers[i];
    }

    function purchaseCount() external view returns (uint256) {
        return _purchases.length;
    }

    function purchaseAt(uint256 i) external view returns (Purchase memory) {
        return _purchases[i];
    }

    // -- ESPs ---------------------------------------------------------------------------------------

    function registerEsp(uint256 actorSeed, uint256 stakeSeed) external {
        uint256 minStake = exchange.minStake();
        uint256 stake = stakeSeed % 5 == 0 ? minStake - 1 : minStake + stakeSeed % minStake;
        VM.prank(actors[actorSeed % ACTORS]);
        exchange.registerEsp{value: stake}();
    }

    /// @notice Mostly an active ESP announces its exit.
    function announceExit(uint256 actorSeed) external {
        address esp = actors[actorSeed % 4 == 0 ? actorSeed % ACTORS : _activeEsp(actorSeed, ACTORS)];
        VM.prank(esp);
        exchange.announceExit();
    }

    /// @notice An ESP withdraws its stake; with `wait`, an exiting one at the end of its unbonding delay.
    function withdrawStake(uint256 actorSeed, bool wait) external {
        address esp = actors[actorSeed % ACTORS];
        (EspState state,, uint64 availableAt) = exchange.espInfo(esp);
        if (wait && state == EspState.Exiting && block.timestamp < availableAt) VM.warp(availableAt);
        VM.prank(esp);
        exchange.withdrawStake();
    }

    // -- generation -----------------------------------------------------------------------------------

    /// @dev Content i of the pool: families (i even / odd) of pHashes at distances 0, 3, 20, 1 from a base.
    function _content(uint256 i) private pure returns (bytes32 contentHash, uint64 phash, bytes32 promptHash) {
        i %= CONTENTS;
        if (i == 8) return (bytes32(0), 0, bytes32(0));
        uint64 base = i % 2 == 0 ? 0x9E3779B97F4A7C15 : 0x0123456789ABCDEF;
        uint64[4] memory offsets = [uint64(0), 0x7, 0xFFFFF, uint64(1) << 63];
        return (keccak256(abi.encode("content", i)), base ^ offsets[i / 2], keccak256(abi.encode("prompt", i)));
    }

    /**
     * @dev An offer of actor `esp` to actor `producer`, signed by the ESP's key. Faults (fault % 24):
     * 1 signed by another key, 2 tampered after signing (fee + 1), 3 malleated (high-s), 4 truncated
     * signature, 5 fee under the floor, 6 timelock too soon, 7 timelock too late, 8 expired; else valid.
     */
    function _offer(uint256 producer, uint256 esp, uint256 content, uint256 feeSeed, uint256 durationSeed, uint256 fault)
        private
        returns (Offer memory offer, Opening memory opening, bytes32 key, bytes memory signature)
    {
        uint256 nonce = ++_nonce;
        opening = _opening(content, nonce);
        key = keccak256(abi.encode("key", nonce));
        fault %= 24;
        offer.esp = actors[esp % ACTORS];
        offer.producer = actors[producer % ACTORS];
        offer.hashlock = sha256(abi.encodePacked(key));
        offer.fee = fault == 5 ? exchange.feeFloor() - 1 : exchange.feeFloor() + feeSeed % 0.05 ether;
        offer.timelock = uint64(block.timestamp) + _duration(fault, durationSeed);
        offer.expiry = fault == 8 ? uint64(block.timestamp) - 1 : uint64(block.timestamp) + 300;
        offer.nonce = nonce;
        offer.commitment =
            keccak256(abi.encode(opening.contentHash, opening.perceptualHash, opening.promptHash, opening.salt));
        signature = _sign(KEY_BASE + (fault == 1 ? esp + 1 : esp) % ACTORS, exchange.offerId(offer));
        if (fault == 2) offer.fee += 1;
        if (fault == 3) signature = _highS(signature);
        if (fault == 4) signature = _truncated(signature);
    }

    function _opening(uint256 content, uint256 nonce) private pure returns (Opening memory opening) {
        (opening.contentHash, opening.perceptualHash, opening.promptHash) = _content(content);
        opening.salt = keccak256(abi.encode("salt", nonce));
    }

    function _duration(uint256 fault, uint256 durationSeed) private view returns (uint64) {
        uint64 minTimelock = exchange.minTimelock();
        if (fault == 6) return minTimelock - 1;
        if (fault == 7) return exchange.maxTimelock() + 1;
        return minTimelock + uint64(durationSeed % 2 hours);
    }

    function _sign(uint256 key, bytes32 digest) private pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = VM.sign(key, digest);
        return abi.encodePacked(r, s, v);
    }

    /// @dev The malleated twin (r, n - s, v ^ 1): valid for ecrecover, refused by OpenZeppelin's ECDSA.
    function _highS(bytes memory signature) private pure returns (bytes memory) {
        bytes32 r;
        bytes32 s;
        assembly ("memory-safe") {
            r := mload(add(signature, 32))
            s := mload(add(signature, 64))
        }
        uint256 n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141;
        return abi.encodePacked(r, bytes32(n - uint256(s)), uint8(signature[64]) == 27 ? uint8(28) : uint8(27));
    }

    function _truncated(bytes memory signature) private pure returns (bytes memory out) {
        out = new bytes(64);
        for (uint256 i = 0; i < 64; i++) {
            out[i] = signature[i];
        }
    }

    function _recordOffer(Offer memory offer, Opening memory opening, bytes32 key) private {
        _offers.push(offer);
        _openings.push(opening);
        _keys.push(key);
    }

    /// @notice A producer locks an ESP's offer (valid, or with one of the faults of `_offer`).
    function lockGeneration(
        uint256 producerSeed,
        uint256 espSeed,
        uint256 content,
        uint256 feeSeed,
        uint256 durationSeed,
        uint256 fault
    ) external {
        uint256 producer = producerSeed % ACTORS;
        uint256 esp = espSeed % 4 == 0 ? espSeed % ACTORS : _activeEsp(espSeed, producer); // mostly an active ESP
        if (esp == producer && fault % 16 != 15) esp = (esp + 1) % ACTORS; // self-dealing, one time in 16
        (Offer memory offer, Opening memory opening, bytes32 key, bytes memory signature) =
            _offer(producer, esp, content, feeSeed, durationSeed, fault);
        VM.prank(actors[producer]);
        exchange.lockGeneration{value: offer.fee}(offer, signature);
        _recordOffer(offer, opening, key);
    }

    function _activeEsp(uint256 seed, uint256 producer) private view returns (uint256) {
        for (uint256 k = 0; k < ACTORS; k++) {
            uint256 i = (seed + k) % ACTORS;
            if (i != producer && exchange.isActiveEsp(actors[i])) return i;
        }
        return seed % ACTORS;
    }

    /// @notice A whole honest generation: an active ESP's valid offer, locked by its producer, the key
    /// revealed, and (`andRegister`) the content registered (refused for a duplicate).
    function generate(uint256 producerSeed, uint256 espSeed, uint256 content, bool andRegister) external {
        uint256 producer = producerSeed % ACTORS;
        uint256 esp = _activeEsp(espSeed, producer);
        (Offer memory offer, Opening memory opening, bytes32 key, bytes memory signature) =
            _offer(producer, esp, content, espSeed, producerSeed, 0);
        VM.prank(actors[producer]);
        exchange.lockGeneration{value: offer.fee}(offer, signature);
        _recordOffer(offer, opening, key);
        VM.prank(actors[esp]);
        exchange.withdrawGeneration(offer, key);
        if (!andRegister) return;
        uint256 bond = registry.registrationBond();
        uint256 holder = registry.tokenOfContent(opening.contentHash);
        VM.prank(actors[producer]);
        registry.register{value: bond}(offer, opening, "");
        if (holder != 0 && registry.isRevoked(holder)) _revoked[holder] = true; // displaced
    }

    /**
     * @dev A locked offer: three times in four the first from `seed` on whose lock is in state
     * `wanted` (and, for Withdrawn, not registered yet), else any; one time in eight a tampered copy
     * that names no lock.
     */
    function _pickOffer(uint256 seed, LockState wanted) private view returns (uint256 i, Offer memory offer) {
        uint256 n = _offers.length;
        i = seed % n;
        if (seed % 4 != 3) {
            for (uint256 k = 0; k < n; k++) {
                uint256 j = (seed + k) % n;
                (bytes32 id, LockState state,,) = exchange.generationLock(_offers[j]);
                if (state == wanted && (wanted != LockState.Withdrawn || registry.tokenOfLock(id) == 0)) {
                    i = j;
                    break;
                }
            }
        }
        offer = _offers[i];
        if (seed % 8 == 7) offer.fee += 1;
    }

    function withdrawGeneration(uint256 offerSeed, uint256 callerSeed, uint8 keySeed, bytes32 wrongKey) external {
        if (_offers.length == 0) revert NothingToDo();
        (uint256 i, Offer memory offer) = _pickOffer(offerSeed, LockState.Locked);
        (bytes32 id, LockState before,,) = exchange.generationLock(offer);
        address caller = callerSeed % 4 == 0 ? actors[callerSeed % ACTORS] : offer.esp;
        bytes32 preimage = keySeed % 4 != 0 ? _keys[i] : wrongKey; // mostly the right key
        VM.prank(caller);
        exchange.withdrawGeneration(offer, preimage);
        _settled(id, before);
    }

    /// @notice The producer (mostly) refunds a lock; with `wait`, at its timelock.
    function refundGeneration(uint256 offerSeed, uint256 callerSeed, bool wait) external {
        if (_offers.length == 0) revert NothingToDo();
        (, Offer memory offer) = _pickOffer(offerSeed, LockState.Locked);
        (bytes32 id, LockState before,,) = exchange.generationLock(offer);
        address caller = callerSeed % 4 == 0 ? actors[callerSeed % ACTORS] : offer.producer;
        if (wait && block.timestamp < offer.timelock) VM.warp(offer.timelock);
        VM.prank(caller);
        exchange.refundGeneration(offer);
        _settled(id, before);
    }

    // -- registry -------------------------------------------------------------------------------------

    function register(uint256 offerSeed, uint256 callerSeed, uint8 openingSeed) external {
        if (_offers.length == 0) revert NothingToDo();
        (uint256 i, Offer memory offer) = _pickOffer(offerSeed, LockState.Withdrawn);
        Opening memory opening = _openings[i];
        if (openingSeed % 4 == 0) opening.perceptualHash ^= 1; // one time in four not what was committed
        address caller = callerSeed % 4 == 0 ? actors[callerSeed % ACTORS] : offer.producer;
        uint256 holder = registry.tokenOfContent(opening.contentHash);
        uint256 bond = registry.registrationBond();
        VM.prank(caller);
        registry.register{value: bond}(offer, opening, "");
        if (holder != 0 && registry.isRevoked(holder)) _revoked[holder] = true; // displaced
    }

    function _pickToken(uint256 seed) private view returns (uint256) {
        uint256 total = registry.totalRegistered();
        return seed % 8 == 0 ? seed % (total + 2) : 1 + seed % total; // mostly existing ids; 0 and total + 1
    }

    /// @dev The first final product from `seed` on, or any id.
    function _finalToken(uint256 seed) private view returns (uint256) {
        uint256 total = registry.totalRegistered();
        for (uint256 k = 0; k < total; k++) {
            uint256 id = 1 + (seed + k) % total;
            if (registry.isFinal(id)) return id;
        }
        return _pickToken(seed);
    }

    function _ownerOr(uint256 tokenId, address other) private view returns (address) {
        if (tokenId == 0 || tokenId > registry.totalRegistered() || registry.isRevoked(tokenId)) return other;
        return registry.ownerOf(tokenId);
    }

    function challenge(uint256 challengerSeed, uint256 originalSeed, uint256 duplicateSeed, bool moreDeposit) external {
        uint256 original = _pickToken(originalSeed);
        uint256 duplicate = _pickToken(duplicateSeed);
        if (duplicate == original && registry.totalRegistered() > 1) duplicate = original % registry.totalRegistered() + 1;
        address challenger = challengerSeed % 3 == 0
            ? actors[challengerSeed % ACTORS]
            : _ownerOr(original, actors[challengerSeed % ACTORS]);
        uint256 deposit = registry.challengeDeposit() + (moreDeposit ? 1 ether / 100 : 0);
        VM.prank(challenger);
        registry.challenge{value: deposit}(original, duplicate);
        if (registry.isRevoked(duplicate)) _revoked[duplicate] = true;
    }

    function claimBond(uint256 tokenSeed, uint256 callerSeed) external {
        uint256 tokenId = _pickToken(tokenSeed);
        address caller = callerSeed % 4 == 0 ? actors[callerSeed % ACTORS] : _ownerOr(tokenId, actors[callerSeed % ACTORS]);
        VM.prank(caller);
        registry.claimBond(tokenId);
    }

    function approve(uint256 tokenSeed, uint256 callerSeed, bool forAll) external {
        uint256 tokenId = _pickToken(tokenSeed);
        address caller = callerSeed % 4 == 0 ? actors[callerSeed % ACTORS] : _ownerOr(tokenId, actors[callerSeed % ACTORS]);
        VM.prank(caller);
        if (forAll) registry.setApprovalForAll(address(exchange), callerSeed % 2 == 0);
        else registry.approve(address(exchange), tokenId);
    }

    function transfer(uint256 tokenSeed, uint256 toSeed, uint256 fromSeed) external {
        uint256 tokenId = _pickToken(tokenSeed);
        address from = fromSeed % 4 == 0 ? actors[fromSeed % ACTORS] : _ownerOr(tokenId, actors[fromSeed % ACTORS]);
        bool revoked = _revoked[tokenId];
        VM.prank(from);
        registry.transferFrom(from, actors[toSeed % ACTORS], tokenId);
        if (revoked) revokedProductMoves += 1;
    }

    // -- trading --------------------------------------------------------------------------------------

    function lockPurchase(uint256 buyerSeed, uint256 tokenSeed, uint256 priceSeed, uint256 durationSeed, bytes32 secret)
        external
    {
        uint256 tokenId = tokenSeed % 4 == 3 ? _pickToken(tokenSeed) : _finalToken(tokenSeed);
        address buyer = actors[buyerSeed % ACTORS];
        address seller = _ownerOr(tokenId, address(0));
        if (buyer == seller && buyerSeed % 8 != 0) buyer = actors[(buyerSeed + 1) % ACTORS];
        bool finalBefore = seller != address(0) && registry.isFinal(tokenId);
        uint256 price = priceSeed % 16 == 0 ? 0 : 1 + priceSeed % 1 ether;
        uint64 timelock = uint64(block.timestamp) + exchange.minTimelock() + uint64(durationSeed % 2 hours);
        bytes32 hashlock = sha256(abi.encodePacked(secret)); // before the prank: sha256 is a call too
        VM.prank(buyer);
        exchange.lockPurchase{value: price}(tokenId, hashlock, timelock);
        if (!finalBefore) purchasesBeforeFinal += 1;
        _purchases.push(Purchase(buyer, seller, tokenId, price, hashlock, timelock));
        _secrets.push(secret);
    }

    /// @dev Three times in four the first open purchase lock from `seed` on; one time in eight tampered terms.
    function _pickPurchase(uint256 seed) private view returns (uint256 i, Purchase memory terms) {
        uint256 n = _purchases.length;
        i = seed % n;
        if (seed % 4 != 3) {
            for (uint256 k = 0; k < n; k++) {
                (, LockState state,,) = exchange.getLock(exchange.purchaseId(_purchases[(seed + k) % n]));
                if (state == LockState.Locked) {
                    i = (seed + k) % n;
                    break;
                }
            }
        }
        terms = _purchases[i];
        if (seed % 8 == 7) terms.price += 1;
    }

    function withdrawPurchase(uint256 purchaseSeed, uint256 callerSeed, uint8 secretSeed, bytes32 wrong, bool approveFirst)
        external
    {
        if (_purchases.length == 0) revert NothingToDo();
        (uint256 i, Purchase memory terms) = _pickPurchase(purchaseSeed);
        bytes32 id = exchange.purchaseId(terms);
        (, LockState before,,) = exchange.getLock(id);
        address caller = callerSeed % 4 == 0 ? actors[callerSeed % ACTORS] : terms.seller;
        bool revoked = _revoked[terms.tokenId];
        if (approveFirst && _ownerOr(terms.tokenId, address(0)) == caller) {
            VM.prank(caller);
            registry.approve(address(exchange), terms.tokenId);
        }
        bytes32 preimage = secretSeed % 4 != 0 ? _secrets[i] : wrong;
        VM.prank(caller);
        exchange.withdrawPurchase(terms, preimage);
        if (revoked) revokedProductMoves += 1;
        _settled(id, before);
    }

    /// @notice The buyer (mostly) refunds a purchase lock; with `wait`, at its timelock (else it
    /// succeeds only if the token can no longer be delivered).
    function refundPurchase(uint256 purchaseSeed, uint256 callerSeed, bool wait) external {
        if (_purchases.length == 0) revert NothingToDo();
        (, Purchase memory terms) = _pickPurchase(purchaseSeed);
        bytes32 id = exchange.purchaseId(terms);
        (, LockState before,,) = exchange.getLock(id);
        address caller = callerSeed % 4 == 0 ? actors[callerSeed % ACTORS] : terms.buyer;
        if (wait && block.timestamp < terms.timelock) VM.warp(terms.timelock);
        VM.prank(caller);
        exchange.refundPurchase(terms);
        _settled(id, before);
    }

    // -- credits, ratings, equivocation, time ----------------------------------------------------------

    function withdrawCredit(uint256 actorSeed, bool fromRegistry) external {
        VM.prank(actors[actorSeed % ACTORS]);
        if (fromRegistry) registry.withdrawCredit();
        else exchange.withdrawCredit();
    }

    function rate(uint256 offerSeed, uint256 callerSeed, bool positive, uint16 score) external {
        if (_offers.length == 0) revert NothingToDo();
        (, Offer memory offer) = _pickOffer(offerSeed, offerSeed % 2 == 0 ? LockState.Withdrawn : LockState.Refunded);
        (, LockState state,,) = exchange.generationLock(offer);
        address caller = callerSeed % 4 == 0 ? actors[callerSeed % ACTORS] : offer.producer;
        VM.prank(caller);
        ledger.rate(offer, positive, score);
        bool settled = state == LockState.Withdrawn || (state == LockState.Refunded && !positive);
        if (!settled || caller != offer.producer) ratingsOfUnsettled += 1;
    }

    /// @notice Anyone shows two locks; one time in two, the first pair of duplicates found from `seed`.
    function proveEquivocation(uint256 aSeed, uint256 bSeed, uint256 callerSeed, bool search) external {
        uint256 n = _offers.length;
        if (n == 0) revert NothingToDo();
        uint256 a = aSeed % n;
        uint256 b = bSeed % n;
        if (search) (a, b) = _findDuplicates(aSeed);
        Offer memory offerA = _offers[a];
        Offer memory offerB = _offers[b];
        Opening memory openingA = _openings[a];
        Opening memory openingB = _openings[b];
        VM.prank(actors[callerSeed % ACTORS]);
        exchange.proveEquivocation(offerA, openingA, offerB, openingB);
    }

    function _findDuplicates(uint256 seed) private view returns (uint256, uint256) {
        uint256 n = _offers.length;
        uint8 threshold = registry.similarityThreshold();
        for (uint256 k = 0; k < n * n; k++) {
            uint256 a = (seed + k / n) % n;
            uint256 b = (seed + k) % n;
            if (_offers[a].producer == _offers[b].producer) continue;
            bool duplicate = _openings[a].contentHash == _openings[b].contentHash
                || _distance(_openings[a].perceptualHash, _openings[b].perceptualHash) <= threshold;
            if (duplicate) return (a, b);
        }
        return (seed % n, seed % n);
    }

    function _distance(uint64 a, uint64 b) private pure returns (uint256 bits) {
        for (uint64 x = a ^ b; x != 0; x &= x - 1) {
            bits += 1;
        }
    }

    /// @notice Time moves: a few seconds to a quarter hour, past the challenge window, or past the unbonding delay.
    function warp(uint256 seed) external {
        uint256 kind = seed % 10;
        uint256 dt = kind < 6 ? 1 + seed % 900 : kind < 9 ? registry.challengeWindow() : exchange.unbondingDelay();
        VM.warp(block.timestamp + dt);
    }

    function _settled(bytes32 id, LockState before) private {
        settlements[id] += 1;
        if (before != LockState.Locked || settlements[id] > 1) doubleSettlements += 1;
    }

    /// @notice The action functions forge calls (not the views above).
    function actions() external pure returns (bytes4[] memory selectors) {
        selectors = new bytes4[](19);
        selectors[0] = this.registerEsp.selector;
        selectors[1] = this.announceExit.selector;
        selectors[2] = this.withdrawStake.selector;
        selectors[3] = this.lockGeneration.selector;
        selectors[4] = this.withdrawGeneration.selector;
        selectors[5] = this.refundGeneration.selector;
        selectors[6] = this.register.selector;
        selectors[7] = this.challenge.selector;
        selectors[8] = this.claimBond.selector;
        selectors[9] = this.approve.selector;
        selectors[10] = this.transfer.selector;
        selectors[11] = this.lockPurchase.selector;
        selectors[12] = this.withdrawPurchase.selector;
        selectors[13] = this.refundPurchase.selector;
        selectors[14] = this.withdrawCredit.selector;
        selectors[15] = this.rate.selector;
        selectors[16] = this.proveEquivocation.selector;
        selectors[17] = this.warp.selector;
        selectors[18] = this.generate.selector;
    }
}

/// @dev What forge reads from `targetSelectors()`.
struct FuzzSelector {
    address addr;
    bytes4[] selectors;
}

/**
 * @notice Invariants of the three contracts together, checked by forge after every handler call.
 */
contract MarketInvariantsTest {
    AIGCRegistry internal registry;
    AIGCExchange internal exchange;
    ReputationLedger internal ledger;
    MarketHandler internal handler;

    function setUp() public {
        VM.warp(1_700_000_000);
        // The registry names the exchange, which is deployed next: this contract's next CREATE address.
        address predicted = _createAddress(address(this), VM.getNonce(address(this)) + 1);
        registry = new AIGCRegistry(1e15, 2e15, 10, 500, 1800, predicted);
        exchange = new AIGCExchange(registry, 60, 7 days, 1e14, 1e17, 7 days + 1800);
        require(address(exchange) == predicted, "exchange address mispredicted");
        ledger = new ReputationLedger(exchange);
        handler = new MarketHandler(registry, exchange, ledger);
    }

    /// @dev keccak256(rlp([deployer, nonce]))[12:] for nonces 1..255.
    function _createAddress(address deployer, uint64 nonce) private pure returns (address) {
        bytes memory rlp = nonce < 0x80
            ? abi.encodePacked(bytes1(0xd6), bytes1(0x94), deployer, uint8(nonce))
            : abi.encodePacked(bytes1(0xd7), bytes1(0x94), deployer, bytes1(0x81), uint8(nonce));
        require(nonce > 0 && nonce <= 0xff, "nonce out of range");
        return address(uint160(uint256(keccak256(rlp))));
    }

    /// @dev Read by forge: only the handler is fuzzed ...
    function targetContracts() public view returns (address[] memory targets) {
        targets = new address[](1);
        targets[0] = address(handler);
    }

    /// @dev ... and only its actions.
    function targetSelectors() public view returns (FuzzSelector[] memory targets) {
        targets = new FuzzSelector[](1);
        targets[0] = FuzzSelector(address(handler), handler.actions());
    }

    function _actorsSum(function (address) external view returns (uint256) f) private view returns (uint256 sum) {
        for (uint256 i = 0; i < 6; i++) {
            sum += f(handler.actors(i));
        }
    }

    function _stake(address esp) external view returns (uint256 stake) {
        (, stake,) = exchange.espInfo(esp);
    }

    function _openLocks() private view returns (uint256 open) {
        uint256 n = handler.offerCount();
        for (uint256 i = 0; i < n; i++) {
            Offer memory offer = handler.offerAt(i);
            (, LockState state,,) = exchange.generationLock(offer);
            if (state == LockState.Locked) open += offer.fee;
        }
        n = handler.purchaseCount();
        for (uint256 i = 0; i < n; i++) {
            Purchase memory terms = handler.purchaseAt(i);
            (, LockState state,,) = exchange.getLock(exchange.purchaseId(terms));
            if (state == LockState.Locked) open += terms.price;
        }
    }

    function invariant_etherConserved() public view {
        uint256 held;
        for (uint256 i = 0; i < 6; i++) {
            held += handler.actors(i).balance;
        }
        held += address(exchange).balance + address(registry).balance + address(ledger).balance + address(handler).balance;
        require(held == handler.totalEther(), "ether created or destroyed");
    }

    function invariant_exchangeHoldsOpenLocksCreditsAndStakes() public view {
        uint256 owed = _openLocks() + _actorsSum(exchange.creditOf) + _actorsSum(this._stake) + exchange.totalForfeited();
        require(address(exchange).balance == owed, "exchange balance != open locks + credits + stakes + forfeited");
    }

    function invariant_registryHoldsBondsAndCredits() public view {
        uint256 total = registry.totalRegistered();
        uint256 unreleased;
        for (uint256 id = 1; id <= total; id++) {
            (,,,,,, bool revoked,,,, bool bondReleased) = registry.product(id);
            if (!revoked && !bondReleased) unreleased += 1;
        }
        uint256 owed = unreleased * registry.registrationBond() + _actorsSum(registry.creditOf);
        require(address(registry).balance == owed, "registry balance != unreleased bonds + credits");
    }

    function invariant_liveProductsHaveOneOwner() public view {
        uint256 total = registry.totalRegistered();
        uint256 live;
        for (uint256 id = 1; id <= total; id++) {
            bool revoked = registry.isRevoked(id);
            (bool ok, bytes memory ret) = address(registry).staticcall(abi.encodeCall(registry.ownerOf, (id)));
            if (revoked) {
                require(!ok, "a revoked product has an owner");
            } else {
                require(ok && abi.decode(ret, (address)) != address(0), "a live product has no owner");
                live += 1;
            }
        }
        require(_actorsSum(registry.balanceOf) == live, "token balances != live products");
        require(handler.revokedProductMoves() == 0, "a revoked product changed hands");
    }

    function invariant_nothingBoughtBeforeFinal() public view {
        require(handler.purchasesBeforeFinal() == 0, "a product was purchase-locked before it was final");
        uint256 n = handler.purchaseCount();
        uint64 window = registry.challengeWindow();
        for (uint256 i = 0; i < n; i++) {
            Purchase memory terms = handler.purchaseAt(i);
            (,,,,, uint64 registeredAt,,,,,) = registry.product(terms.tokenId);
            (,,, uint64 lockedAt) = exchange.getLock(exchange.purchaseId(terms));
            require(lockedAt >= registeredAt + window, "a purchase lock predates finality");
        }
    }

    function invariant_lockSettlesAtMostOnce() public view {
        require(handler.doubleSettlements() == 0, "a lock settled twice");
    }

    function invariant_ratingOnlyForSettledAcceptedLock() public view {
        require(handler.ratingsOfUnsettled() == 0, "a rating of an open lock (or by another account) was accepted");
        uint256 n = handler.offerCount();
        for (uint256 i = 0; i < n; i++) {
            Offer memory offer = handler.offerAt(i);
            (bytes32 id, LockState state,,) = exchange.generationLock(offer);
            if (!ledger.isRated(id)) continue;
            require(state == LockState.Withdrawn || state == LockState.Refunded, "an open lock was rated");
            (LockKind kind,,,) = exchange.getLock(id);
            require(kind == LockKind.Generation, "a purchase lock was rated");
        }
    }

    function invariant_espStakesBacked() public view {
        for (uint256 i = 0; i < 6; i++) {
            (EspState state, uint256 stake,) = exchange.espInfo(handler.actors(i));
            require(state != EspState.None || stake == 0, "an unregistered ESP holds stake");
        }
    }
}
