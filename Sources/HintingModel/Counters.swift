import TraceModel

/// Everything the replay counts for one (hook, call site, event type, traced/inferred) key (spec §6.A).
/// The model adds to these with `&+=`: a count of 2^64 pages is out of reach (a step weighs at most 4,096
/// pages), and a checked add costs a branch on every count of every hook step.
public struct HookCounts: Sendable {
    public var executions: UInt64 = 0
    /// `page_host_discards()` evaluations (spec §4.10 accounting rule).
    public var phd: UInt64 = 0
    /// `PageDiscarded()` flag tests (G07/G09's replacement of the open-coded G06 sites).
    public var flagTests: UInt64 = 0
    /// State-change lock: try-lock attempts, attempts that found it busy, spins (make_stable waits).
    public var lockTry: UInt64 = 0
    public var lockBusy: UInt64 = 0
    public var lockSpin: UInt64 = 0
    public var essa = InlineArray<7, UInt64>(repeating: 0)
    public var makeStable: UInt64 = 0
    public var makeStableFailed: UInt64 = 0
    public var makeVolatile: UInt64 = 0
    public var checkWritable: UInt64 = 0
    public var resetWritable: UInt64 = 0
    /// Guest transitions, from × 4 + to (GuestState raw values).
    public var transitions = InlineArray<16, UInt64>(repeating: 0)
    /// Predicate clause that kept a page stable (first failing clause), by `Clause`.
    public var clauses = InlineArray<14, UInt64>(repeating: 0)
    public var syncDiscards: UInt64 = 0
    public var discardFaults: UInt64 = 0
    public var reloadIO: UInt64 = 0
    public var hostDiscards: UInt64 = 0
    public var hostWrites: UInt64 = 0
    public var hostReads: UInt64 = 0
    /// Host victims dropped without I/O (U, V, clean P) and preserved copies the guest made unnecessary.
    public var hostDrops: UInt64 = 0
    public var doubleRemovalSuppressed: UInt64 = 0
    public var lruReaddSuppressed: UInt64 = 0
    public var pteSkipped: UInt64 = 0
    public var parked: UInt64 = 0
    /// A2a: `page_still_in_mapping()` executions and those that found `PG_discarded` set.
    public var stillInMappingTests: UInt64 = 0
    public var stillInMappingHits: UInt64 = 0
    /// A3a: discard checks inside `lru_to_page()` (one per LRU traversal step) and those that found a
    /// discarded page (only known for pages the model holds; skipped pages are unknown).
    public var lruToPageTests: UInt64 = 0
    public var lruToPageHits: UInt64 = 0
    /// A4: seqlock read sections (one per replaced `PageDiscarded` test), retries (a write section on the
    /// same block within the critical-section window on another CPU), side-list nodes visited, write sections.
    public var seqlockReads: UInt64 = 0
    public var seqlockRetries: UInt64 = 0
    public var sideListVisits: UInt64 = 0
    public var seqlockWrites: UInt64 = 0
    /// A5: `discard_lock` acquisitions, acquisitions while another CPU held it, and correctness violations:
    /// a removal, LRU re-add or pte establishment on a page discarded earlier but not yet freed, which
    /// `PG_discarded` would have stopped.
    public var discardLockTaken: UInt64 = 0
    public var discardLockContended: UInt64 = 0
    public var correctnessViolations: UInt64 = 0

    public init() {}

    /// Host paging I/O performed (writes to and reads from the host's swap).
    public var hostIO: UInt64 { hostWrites + hostReads }
    public var essaTotal: UInt64 { var s: UInt64 = 0; for i in 0..<7 { s += essa[i] }; return s }
    public var transitionTotal: UInt64 { var s: UInt64 = 0; for i in 0..<16 where i / 4 != i % 4 { s += transitions[i] }; return s }
    public func transition(_ a: GuestState, _ b: GuestState) -> UInt64 { transitions[Int(a.rawValue) * 4 + Int(b.rawValue)] }
    /// Transitions into V or P.
    public var toVolatile: UInt64 {
        var s: UInt64 = 0
        for a in 0..<4 where a != 2 && a != 3 { s += transitions[a * 4 + 2] + transitions[a * 4 + 3] }
        return s
    }
    /// Transitions into S from V or P.
    public var toStable: UInt64 { transitions[2 * 4 + 0] + transitions[3 * 4 + 0] }

    public mutating func add(_ o: HookCounts) {
        executions += o.executions; phd += o.phd; flagTests += o.flagTests
        lockTry += o.lockTry; lockBusy += o.lockBusy; lockSpin += o.lockSpin
        for i in 0..<7 { essa[i] += o.essa[i] }
        makeStable += o.makeStable; makeStableFailed += o.makeStableFailed; makeVolatile += o.makeVolatile
        checkWritable += o.checkWritable; resetWritable += o.resetWritable
        for i in 0..<16 { transitions[i] += o.transitions[i] }
        for i in 0..<14 { clauses[i] += o.clauses[i] }
        syncDiscards += o.syncDiscards; discardFaults += o.discardFaults; reloadIO += o.reloadIO
        hostDiscards += o.hostDiscards; hostWrites += o.hostWrites; hostReads += o.hostReads
        hostDrops += o.hostDrops; doubleRemovalSuppressed += o.doubleRemovalSuppressed
        lruReaddSuppressed += o.lruReaddSuppressed; pteSkipped += o.pteSkipped; parked += o.parked
        stillInMappingTests += o.stillInMappingTests; stillInMappingHits += o.stillInMappingHits
        lruToPageTests += o.lruToPageTests; lruToPageHits += o.lruToPageHits
        seqlockReads += o.seqlockReads; seqlockRetries += o.seqlockRetries; sideListVisits += o.sideListVisits
        seqlockWrites += o.seqlockWrites
        discardLockTaken += o.discardLockTaken; discardLockContended += o.discardLockContended
        correctnessViolations += o.correctnessViolations
    }

    /// The clause seen most often, if any.
    public var topClause: Clause? {
        var best = -1
        var n: UInt64 = 0
        for i in 0..<14 where clauses[i] > n { n = clauses[i]; best = i }
        return best >= 0 ? Clause(rawValue: best) : nil
    }
}

/// The key counters are kept under.
public struct CounterKey: Hashable, Sendable, Comparable, FastHashable {
    /// The key is kept as two words, compared and hashed whole (every hook execution compares one):
    /// `hook | policy << 8 | inferred << 16 | eventType << 32` and `site | stack << 32`.
    private(set) var word0: UInt64
    private(set) var word1: UInt64

    public var hook: Hook {
        get { Hook(rawValue: UInt8(truncatingIfNeeded: word0))! }
        set { word0 = word0 & ~0xFF | UInt64(newValue.rawValue) }
    }
    /// Interned call site (CallSiteResolver.sites) of the event that drove the hook.
    public var site: UInt32 {
        get { UInt32(truncatingIfNeeded: word1) }
        set { word1 = word1 & ~0xFFFF_FFFF | UInt64(newValue) }
    }
    /// Event type id (TraceContext.types) of the driving event.
    public var eventType: UInt32 {
        get { UInt32(truncatingIfNeeded: word0 >> 32) }
        set { word0 = word0 & 0xFFFF_FFFF | UInt64(newValue) << 32 }
    }
    /// True when the hook execution was inferred by a policy (§6.C), not traced.
    public var inferred: Bool {
        get { word0 & 1 << 16 != 0 }
        set { word0 = word0 & ~(1 << 16) | (newValue ? 1 << 16 : 0) }
    }
    /// Inference policy tag ("U0", "R0", ...) or empty.
    public var policy: UInt8 {
        get { UInt8(truncatingIfNeeded: word0 >> 8) }
        set { word0 = word0 & ~0xFF00 | UInt64(newValue) << 8 }
    }
    /// Interned kernel stack of the driving event (TraceContext.stacks), so a site drills down to stacks.
    public var stack: UInt32 {
        get { UInt32(truncatingIfNeeded: word1 >> 32) }
        set { word1 = word1 & 0xFFFF_FFFF | UInt64(newValue) << 32 }
    }

    @inline(__always)
    public init(hook: Hook, site: UInt32, eventType: UInt32, inferred: Bool, policy: UInt8, stack: UInt32 = 0) {
        word0 = UInt64(hook.rawValue) | UInt64(policy) << 8 | (inferred ? 1 << 16 : 0) | UInt64(eventType) << 32
        word1 = UInt64(site) | UInt64(stack) << 32
    }

    public var fastHash: UInt64 { fastMix(word0 &* 0x9E37_79B9_7F4A_7C15 ^ word1) }

    @inline(__always)
    public static func == (a: CounterKey, b: CounterKey) -> Bool {
        ((a.word0 ^ b.word0) | (a.word1 ^ b.word1)) == 0
    }

    public static func < (a: CounterKey, b: CounterKey) -> Bool {
        (a.hook.rawValue, a.eventType, a.site, a.inferred ? 1 : 0, a.policy, a.stack) < (b.hook.rawValue, b.eventType, b.site, b.inferred ? 1 : 0, b.policy, b.stack)
    }
}

/// Inference policies that can tag an operation (spec §6.C).
public enum InferencePolicy: UInt8, Sendable, CaseIterable {
    case none = 0, U0, U1, W0, W1, R0, M0, T0, T1, lruPutback, writeBegin, discardFlush, implicitAlloc
    public var name: String {
        switch self {
        case .none: return ""
        case .lruPutback: return "putback"
        case .writeBegin: return "write_begin"
        case .discardFlush: return "discard-flush"
        case .implicitAlloc: return "implicit-SS"
        default: return "\(self)"
        }
    }
}
