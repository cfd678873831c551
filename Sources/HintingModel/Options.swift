/// Replay options: series, inference policies (spec §6.C), host emulator (spec §5.1), design alternative.
public struct ReplayOptions: Sendable {
    public enum Unlock: String, Sendable, CaseIterable {
        /// Unlock (D1) right at `mm_filemap_add_to_page_cache` (I/O latency 0).
        case U0
        /// Unlock at the first later event naming the page (default).
        case U1
    }
    public enum Writeback: String, Sendable, CaseIterable {
        /// End of writeback (D3) right after `mm_vmscan_write_folio` (default).
        case W0
        /// End of writeback at `folio_wait_writeback` or the next event naming the page.
        case W1
    }
    public enum Touches: String, Sendable, CaseIterable {
        /// Only traced events touch pages: a mapped, discarded page faults at its next traced access (default).
        case T0
        /// Every mapped page is touched again: a host discard of a mapped page is a discard fault.
        case T1
    }
    public enum HostPolicy: String, Sendable, CaseIterable {
        /// Evict from the cold end of the host LRU (default).
        case lru
        /// Evict a random resident frame (`--seed`).
        case random
        /// Evict guest-volatile, unused and clean potentially-volatile frames first: the upper bound of the benefit.
        case oracle
    }
    /// How the guest remembers that the host discarded a page it is removing (spec §7.2 A4, A5).
    public enum DiscardTracking: String, Sendable, CaseIterable {
        /// `PG_discarded`, one page flag (the series).
        case pageFlag = "flag"
        /// A4: a seqlock per block of frames and a side list of discarded pages (Dave Hansen, Sep 2006).
        case seqlock
        /// A5: one global `discard_lock` around the removal functions, no persistent flag.
        case discardLock = "lock"
    }
    /// The block a frame's A4 seqlock and side list belong to.
    public enum SeqlockBlock: Sendable, Equatable {
        /// One block per NUMA node (the captures here are single-node: one block).
        case node
        /// x86-64 zones by pfn: DMA (< 16 MiB), DMA32 (< 4 GiB), Normal.
        case zone
        /// Memory sections of 128 MiB (x86-64 SECTION_SIZE_BITS 27).
        case section
        /// A hashed table of K seqlocks.
        case hash(Int)
        /// The page's mapping (file: device and inode; anonymous pages share one block).
        case mapping

        public var name: String {
            switch self {
            case .node: return "node"
            case .zone: return "zone"
            case .section: return "section"
            case .hash(let k): return "hash:\(k)"
            case .mapping: return "mapping"
            }
        }
        public init?(_ s: String) {
            switch s {
            case "node": self = .node
            case "zone": self = .zone
            case "section": self = .section
            case "mapping": self = .mapping
            default:
                guard s.hasPrefix("hash:"), let k = Int(s.dropFirst(5)), k > 0, k <= 1 << 24 else { return nil }
                self = .hash(k)
            }
        }
    }
    public enum Budget: Sendable, Equatable {
        /// Percent of the frames the guest touched in the trace.
        case percent(Double)
        case bytes(UInt64)
        case unlimited
    }

    public var series: Series = .g09
    public var unlock: Unlock = .U1
    public var writeback: Writeback = .W0
    public var touches: Touches = .T0
    /// Reference pairs (R0, symbolic) are the only reference policy without `page_ref` events.
    public let references = "R0"
    /// Mapping drops (M0: at process exit) are the only mapping policy without munmap data.
    public let mappings = "M0"
    /// The minor-fault optimization (H05b-4, G06-7, G07/G09-5); off = design alternative A10.
    public var minorFaultOptimization = true
    /// G06/H05b flush the discard list at every direct reclaim pass; count memcg reclaim as direct reclaim.
    public var memcgIsDirectReclaim = true
    public var hostBudget: Budget = .percent(60)
    public var hostPolicy: HostPolicy = .lru
    public var seed: UInt64 = 1
    /// Timeline sample interval in trace nanoseconds.
    public var timelineInterval: UInt64 = 10_000_000
    /// Scheduler tick for the G07/G09 discard-list sign-off (HZ=250).
    public var tickNs: UInt64 = 4_000_000
    /// s390 has a per-page dirty bit: writable volatile pages become P. Off: per-pte-dirty arch (P → S).
    public var perPageDirty = true
    /// Check the model invariants after every event (slower; tests and debug builds).
    public var checkInvariants = false
    /// Folio batching (docs/model.md): a page step that every page of a large folio takes alike runs once.
    /// The results are the same without it; it is not recorded with the run.
    public var folioBatching = true
    /// No hinting at all: the guest never declares a page unused or volatile (every frame stays S for the
    /// host). The host I/O of this run is the baseline that `host_io_saved` is measured against.
    public var baseline = false
    /// Design alternative A1 (spec §7.2): every implied reference get is a make_stable and every put a
    /// make_volatile, in place of the look-up (C) and release (E, B4) hooks. Reference pairs follow the
    /// R0 table of §7.2.
    public var a1 = false
    /// Design alternative A2a: `page_still_in_mapping()` (mapping recheck + `PageDiscarded` test) at every
    /// "lock the page, then recheck the mapping" point.
    public var a2a = false
    /// Design alternative A3a: the discard check moves into `lru_to_page()`: one flag test per LRU traversal
    /// step, in place of the put-back checks.
    public var a3a = false
    /// Design alternative A3c: pages are made stable when taken off an LRU and volatile again when put back.
    public var a3c = false
    /// Design alternatives A4 (seqlock + side list) and A5 (global discard lock) replace `PG_discarded`.
    public var discardTracking: DiscardTracking = .pageFlag
    /// A4: the block a seqlock covers.
    public var seqlockBlock: SeqlockBlock = .section
    /// A4/A5: length of a write-side (A4) or lock-held (A5) critical section, in trace nanoseconds. A
    /// reader (A4) or another CPU's acquisition (A5) inside that window retries or contends.
    public var criticalSectionNs: UInt64 = 1000
    /// Call path depth used for counter keys.
    public var depth = 1

    public init() {}

    /// Options as `name=value` pairs, recorded with every run.
    public var recorded: [(String, String)] {
        let b: String
        switch hostBudget {
        case .percent(let p): b = "\(p)%"
        case .bytes(let n): b = "\(n)B"
        case .unlimited: b = "unlimited"
        }
        return [("series", series.rawValue), ("unlock", unlock.rawValue), ("writeback", writeback.rawValue),
                ("references", references), ("mappings", mappings), ("touches", touches.rawValue),
                ("minor_fault_optimization", String(minorFaultOptimization)),
                ("memcg_is_direct_reclaim", String(memcgIsDirectReclaim)), ("host_budget", b),
                ("host_policy", hostPolicy.rawValue), ("seed", String(seed)),
                ("timeline_interval_ns", String(timelineInterval)), ("tick_ns", String(tickNs)),
                ("per_page_dirty", String(perPageDirty)), ("alternative_a1", String(a1)),
                ("alternative_a2a", String(a2a)), ("alternative_a3a", String(a3a)), ("alternative_a3c", String(a3c)),
                ("discard_tracking", discardTracking.rawValue), ("seqlock_block", seqlockBlock.name),
                ("critical_section_ns", String(criticalSectionNs)), ("depth", String(depth))]
    }
}
