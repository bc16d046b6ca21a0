// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {AIGCRegistry} from "../../AIGCRegistry.sol";
import {AIGCExchange} from "../../AIGCExchange.sol";
import {ReputationLedger} from "../../ReputationLedger.sol";
import {VM} from "./Vm.sol";

/**
 * @notice The fuzzed actor: forge calls these functions with random arguments in random order.
 * Each one acts as a randomly chosen producer, ESP or buyer (vm.prank) with valid or invalid
 * arguments; a call the contracts refuse reverts (forge counts it) and leaves no trace here.
 * Ghost variables record what the contracts paid, so that the invariants can compare.
 */
contract MarketHandler {
    uint256 internal constant ACTORS = 6;
    uint256 internal constant KEY_BASE = 0xA16C;
    uint64 internal constant MIN_TIMELOCK = 60;

    AIGCRegistry public immutable registry;
    AIGCExchange public immutable exchange;
    ReputationLedger public immutable ledger;

    address[ACTORS] public actors;
    bytes32[] public lockIds;
    mapping(bytes32 id => bytes32 preimage) public preimageOf;
    mapping(bytes32 id => uint256 payouts) public payoutsOf;
    mapping(uint256 tokenId => bool) public revokedSeen;

    uint256 public totalDeposited;
    uint256 public totalPaidOut;
    uint256 public openSum;
    /// @dev Counts of impossible events; every invariant requires them to stay 0.
    uint256 public doubleSettlements;
    uint256 public revokedTokenMoves;
    uint256 public ratingsOfUnsettled;

    constructor(AIGCRegistry registry_, AIGCExchange exchange_, ReputationLedger ledger_) {
        registry = registry_;
        exchange = exchange_;
        ledger = ledger_;
        for (uint256 i = 0; i < ACTORS; i++) {
            actors[i] = VM.addr(KEY_BASE + i);
            VM.deal(actors[i], 1_000 ether);
        }
    }

    function lockCount() external view returns (uint256) {
        return lockIds.length;
    }

    // -- exchange ------------------------------------------------------------------------------

    function lockGeneration(uint256 from, uint256 to, uint256 amount, uint256 duration, bytes32 key) external {
        address sender = actors[from % ACTORS];
        address esp = to % 7 == 6 ? address(0) : actors[to % ACTORS]; // sometimes zero, sometimes self
        amount = amount % 4 ether; // 0 is an invalid amount
        uint64 timelock = uint64(block.timestamp) + uint64(duration % (2 * MIN_TIMELOCK + 600)); // may be too soon
        bytes32 hashlock = sha256(abi.encodePacked(key));
        VM.prank(sender);
        bytes32 id = exchange.lockGeneration{value: amount}(esp, hashlock, timelock);
        _opened(id, key, amount);
    }

    function lockPurchase(uint256 from, uint256 tokenSeed, uint256 price, uint256 duration, bytes32 secret) external {
        address buyer = actors[from % ACTORS];
        uint256 tokenId = tokenSeed % (registry.totalRegistered() + 2); // 0 and the next id are unknown
        price = price % 4 ether;
        uint64 timelock = uint64(block.timestamp) + uint64(duration % (2 * MIN_TIMELOCK + 600));
        bytes32 hashlock = sha256(abi.encodePacked(secret)); // before the prank: sha256 is a call too
        VM.prank(buyer);
        bytes32 id = exchange.lockPurchase{value: price}(tokenId, hashlock, timelock);
        _opened(id, secret, price);
    }

    function withdraw(uint256 lockSeed, uint256 callerSeed, bool rightPreimage, bytes32 wrong) external {
        bytes32 id = _pickLock(lockSeed);
        (, address receiver, uint256 amount,,, uint256 tokenId, AIGCExchange.LockKind kind, AIGCExchange.LockState st) =
            exchange.getLock(id);
        address caller = callerSeed % 4 == 0 ? actors[callerSeed % ACTORS] : receiver;
        bytes32 preimage = rightPreimage ? preimageOf[id] : wrong;
        bool revokedBefore = kind == AIGCExchange.LockKind.Purchase && tokenId != 0 && registry.isRevoked(tokenId);
        VM.prank(caller);
        exchange.withdraw(id, preimage);
        if (revokedBefore) revokedTokenMoves += 1;
        _settled(id, amount, st);
    }

    function refund(uint256 lockSeed, uint256 callerSeed) external {
        bytes32 id = _pickLock(lockSeed);
        (address sender,, uint256 amount,,,,, AIGCExchange.LockState st) = exchange.getLock(id);
        address caller = callerSeed % 4 == 0 ? actors[callerSeed % ACTORS] : sender;
        VM.prank(caller);
        exchange.refund(id);
        _settled(id, amount, st);
    }

    function warp(uint256 seconds_) external {
        VM.warp(block.timestamp + 1 + (seconds_ % (15 * MIN_TIMELOCK)));
    }

    // -- registry ------------------------------------------------------------------------------

    function register(uint256 producerSeed, uint256 espSeed, uint8 contentSeed, uint64 phash, uint8 signatureMode)
        external
    {
        address producer = actors[producerSeed % ACTORS];
        uint256 espKey = KEY_BASE + (espSeed % ACTORS);
        bytes32 contentHash = keccak256(abi.encode("content", contentSeed % 16)); // a small pool: duplicates
        bytes32 promptHash = keccak256(abi.encode("prompt", contentSeed));
        // Near-duplicates are likely: pHashes of one content family differ in a few low bits.
        phash = (uint64(uint256(contentHash)) & ~uint64(0xff)) | (phash & 0x3f);
        // One in eight signatures is the ESP's, but for another producer: a replay that must fail.
        address signedFor = signatureMode % 8 == 0 ? actors[(producerSeed + 1) % ACTORS] : producer;
        bytes memory signature = _sign(espKey, registry.generationDigest(signedFor, contentHash, promptHash, phash));
        uint256 bond = registry.registrationBond();
        address esp = VM.addr(espKey);
        VM.prank(producer);
        registry.register{value: bond}(contentHash, phash, promptHash, esp, signature, "");
    }

    function _sign(uint256 key, bytes32 digest) private pure returns (bytes memory) {
        (uint8 v, bytes32 r, bytes32 s) = VM.sign(key, digest);
        return abi.encodePacked(r, s, v);
    }

    function challenge(uint256 challengerSeed, uint256 originalSeed, uint256 duplicateSeed) external {
        uint256 total = registry.totalRegistered();
        // Mostly existing ids; one in eight is 0 or the next id (unknown).
        uint256 original = originalSeed % 8 == 0 ? originalSeed % (total + 2) : 1 + originalSeed % (total + 1);
        uint256 duplicate = duplicateSeed % 8 == 0 ? duplicateSeed % (total + 2) : 1 + duplicateSeed % (total + 1);
        if (duplicate == original && duplicateSeed % 8 != 0 && total > 1) duplicate = original % total + 1;
        address challenger = challengerSeed % 3 == 0 || original == 0 || original > total
            || registry.isRevoked(original) ? actors[challengerSeed % ACTORS] : registry.ownerOf(original);
        uint256 deposit = registry.challengeDeposit();
        VM.prank(challenger);
        registry.challenge{value: deposit}(original, duplicate);
        if (registry.isRevoked(duplicate)) revokedSeen[duplicate] = true;
    }

    function approve(uint256 tokenSeed) external {
        uint256 total = registry.totalRegistered();
        if (total == 0) return;
        uint256 tokenId = 1 + tokenSeed % total;
        address owner = registry.isRevoked(tokenId) ? actors[tokenSeed % ACTORS] : registry.ownerOf(tokenId);
        VM.prank(owner);
        registry.approve(address(exchange), tokenId);
    }

    function transfer(uint256 tokenSeed, uint256 toSeed, uint256 fromSeed) external {
        uint256 total = registry.totalRegistered();
        if (total == 0) return;
        uint256 tokenId = 1 + tokenSeed % total;
        address from = actors[fromSeed % ACTORS];
        bool revoked = registry.isRevoked(tokenId);
        VM.prank(from);
        registry.transferFrom(from, actors[toSeed % ACTORS], tokenId);
        if (revoked) revokedTokenMoves += 1;
    }

    // -- ledger --------------------------------------------------------------------------------

    function rate(uint256 lockSeed, uint256 callerSeed, bool positive, uint16 score) external {
        bytes32 id = _pickLock(lockSeed);
        (address sender,,,,,, AIGCExchange.LockKind kind, AIGCExchange.LockState st) = exchange.getLock(id);
        address caller = callerSeed % 4 == 0 ? actors[callerSeed % ACTORS] : sender;
        VM.prank(caller);
        ledger.rate(id, positive, score);
        bool settled = st == AIGCExchange.LockState.Withdrawn || st == AIGCExchange.LockState.Refunded;
        if (!settled || kind != AIGCExchange.LockKind.Generation) ratingsOfUnsettled += 1;
    }

    // -- bookkeeping ---------------------------------------------------------------------------

    function _pickLock(uint256 seed) private view returns (bytes32) {
        uint256 n = lockIds.length;
        if (n == 0 || seed % 8 == 7) return keccak256(abi.encode("unknown", seed)); // an id that was never locked
        return lockIds[seed % n];
    }

    function _opened(bytes32 id, bytes32 preimage, uint256 amount) private {
        lockIds.push(id);
        preimageOf[id] = preimage;
        totalDeposited += amount;
        openSum += amount;
    }

    function _settled(bytes32 id, uint256 amount, AIGCExchange.LockState before) private {
        payoutsOf[id] += 1;
        totalPaidOut += amount;
        if (before != AIGCExchange.LockState.Locked || payoutsOf[id] > 1) doubleSettlements += 1;
        else openSum -= amount;
    }
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
        registry = new AIGCRegistry(1e15, 2e15, 10, 500);
        exchange = new AIGCExchange(registry, 60);
        ledger = new ReputationLedger(exchange);
        handler = new MarketHandler(registry, exchange, ledger);
    }

    /// @dev Read by forge: only the handler is fuzzed.
    function targetContracts() public view returns (address[] memory targets) {
        targets = new address[](1);
        targets[0] = address(handler);
    }

    function invariant_exchangeBalanceEqualsOpenLocks() public view {
        uint256 open;
        uint256 n = handler.lockCount();
        for (uint256 i = 0; i < n; i++) {
            (,, uint256 amount,,,,, AIGCExchange.LockState st) = exchange.getLock(handler.lockIds(i));
            if (st == AIGCExchange.LockState.Locked) open += amount;
        }
        require(address(exchange).balance == open, "exchange balance != sum of open locks");
        require(open == handler.openSum(), "open locks on chain != the handler's ledger");
    }

    function invariant_lockSettlesAtMostOnce() public view {
        require(handler.doubleSettlements() == 0, "a lock settled twice");
    }

    function invariant_paidOutNeverExceedsDeposited() public view {
        require(handler.totalPaidOut() <= handler.totalDeposited(), "paid out more than deposited");
        require(handler.totalDeposited() - handler.totalPaidOut() == address(exchange).balance, "ether unaccounted");
    }

    function invariant_liveTokensHaveOneOwnerRevokedNone() public view {
        uint256 total = registry.totalRegistered();
        uint256 live;
        for (uint256 id = 1; id <= total; id++) {
            bool revoked = registry.isRevoked(id);
            (bool ok, bytes memory ret) = address(registry).staticcall(abi.encodeCall(registry.ownerOf, (id)));
            if (revoked) {
                require(!ok, "a revoked token has an owner");
            } else {
                require(ok && abi.decode(ret, (address)) != address(0), "a live token has no owner");
                live += 1;
            }
        }
        uint256 held;
        for (uint256 i = 0; i < 6; i++) {
            held += registry.balanceOf(handler.actors(i));
        }
        require(held == live, "token balances != live tokens");
        require(address(registry).balance == live * registry.registrationBond(), "registry bonds != live tokens");
    }

    function invariant_revokedTokenNeverMoves() public view {
        require(handler.revokedTokenMoves() == 0, "a revoked token changed hands");
    }

    function invariant_ratingOnlyForSettledGenerationLock() public view {
        require(handler.ratingsOfUnsettled() == 0, "a rating of an open or purchase lock was accepted");
        uint256 n = handler.lockCount();
        for (uint256 i = 0; i < n; i++) {
            bytes32 id = handler.lockIds(i);
            if (!ledger.isRated(id)) continue;
            (,,,,,, AIGCExchange.LockKind kind, AIGCExchange.LockState st) = exchange.getLock(id);
            require(kind == AIGCExchange.LockKind.Generation, "a purchase lock was rated");
            require(
                st == AIGCExchange.LockState.Withdrawn || st == AIGCExchange.LockState.Refunded, "an open lock was rated"
            );
        }
    }
}
