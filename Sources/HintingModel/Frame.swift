#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif
import Synchronization
import TraceModel

/// The state the model keeps per 4 KiB page frame (spec §1.4 and §9). 32 bytes (the host LRU's links,
/// kept only under a host budget, live beside it: `FrameTable.hostLinks`); frames live in one
/// reserved address range found through a pfn index, so the replay allocates nothing per event.
///
/// The pfn and the page index are kept in 32 bits (16 TiB of guest memory, files of 16 TiB); larger
/// values are `UInt32.max` here and kept whole in a side map (`FrameTable.pfn(_:)`,
/// `HintingModel.pageIndex(_:)`).
public struct Frame: Sendable {
    var pfnLow: UInt32 = 0
    /// Page index in the file while in the page cache (`flags & .inCache`).
    var indexLow: UInt32 = 0
    /// The cached file (s_dev, i_ino), interned by the model (`HintingModel.fileKey`); 0 before the frame
    /// was first cached.
    public var file: UInt32 = 0
    public var flags: FrameFlags = []
    public var refcount: Int16 = 0
    public var mapcount: Int16 = 0
    public var guestRaw: UInt8 = GuestState.unused.rawValue
    public var hostRaw: UInt8 = HostState.zero.rawValue
    /// Order of the folio this frame heads (0 for tail frames and order-0 folios).
    public var order: UInt8 = 0
    /// Guest LRU list (0 inactive_anon ... 4 unevictable), 255 when on none.
    public var lru: UInt8 = 255
    // Intrusive links of the simulated guest LRU (frame indices, -1 = none).
    var lruPrev: Int32 = -1, lruNext: Int32 = -1

    public var guest: GuestState {
        get { GuestState(rawValue: guestRaw)! }
        set { guestRaw = newValue.rawValue }
    }
    public var host: HostState {
        get { HostState(rawValue: hostRaw)! }
        set { hostRaw = newValue.rawValue }
    }
    /// The combined state, e.g. "Vz".
    public var combined: String { guest.letter + host.letter }
}

public struct FrameFlags: OptionSet, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let discarded = FrameFlags(rawValue: 1 << 0)     // PG_discarded
    public static let writable = FrameFlags(rawValue: 1 << 1)      // PG_writable
    public static let locked = FrameFlags(rawValue: 1 << 2)        // PG_locked
    public static let dirty = FrameFlags(rawValue: 1 << 3)
    public static let writeback = FrameFlags(rawValue: 1 << 4)
    public static let privateData = FrameFlags(rawValue: 1 << 5)  // buffer heads
    public static let uptodate = FrameFlags(rawValue: 1 << 6)
    public static let lru = FrameFlags(rawValue: 1 << 7)
    public static let active = FrameFlags(rawValue: 1 << 8)
    public static let anon = FrameFlags(rawValue: 1 << 9)
    public static let swapCache = FrameFlags(rawValue: 1 << 10)
    public static let reserved = FrameFlags(rawValue: 1 << 11)
    public static let inCache = FrameFlags(rawValue: 1 << 12)      // bound to (dev, ino, index): `mapping != nil`
    public static let mlocked = FrameFlags(rawValue: 1 << 13)      // mapping->mlocked
    public static let hwDirty = FrameFlags(rawValue: 1 << 14)      // s390 change bit
    public static let isolated = FrameFlags(rawValue: 1 << 15)     // taken off the LRU by reclaim
    public static let parked = FrameFlags(rawValue: 1 << 16)       // on the discard list
    public static let allocated = FrameFlags(rawValue: 1 << 17)    // between alloc and free
    public static let batchRef = FrameFlags(rawValue: 1 << 18)     // LRU add batch holds a reference
    public static let unlockPending = FrameFlags(rawValue: 1 << 19) // U1: unlock at next event naming it
    public static let writebackPending = FrameFlags(rawValue: 1 << 20) // W1: end of writeback pending
    public static let latentFault = FrameFlags(rawValue: 1 << 21)  // mapped while Vz
    public static let onHostLRU = FrameFlags(rawValue: 1 << 22)
    public static let tail = FrameFlags(rawValue: 1 << 23)         // tail page of a large folio
    /// On a folio's head: its pages' frames follow it in pfn order (frames `i + k` of pfn `pfn(i) + k`), as
    /// when they were created together. Without it the tails are found by pfn.
    public static let contiguous = FrameFlags(rawValue: 1 << 24)
    /// On a folio's head: its tails' page state is deferred (`Replay.deferSpread`); the bits that follow note
    /// what they are to take. Bookkeeping of the replay, not page state: never copied to another frame.
    public static let deferred = FrameFlags(rawValue: 1 << 25)
    public static let deferSetTail = FrameFlags(rawValue: 1 << 26)
    public static let deferClearTail = FrameFlags(rawValue: 1 << 27)
    public static let deferDropActive = FrameFlags(rawValue: 1 << 28)
    public static let deferKeysKnown = FrameFlags(rawValue: 1 << 29)
    public static let deferKeysPending = FrameFlags(rawValue: 1 << 30)
    public static let deferZeroOrder = FrameFlags(rawValue: 1 << 31)
    /// All of them.
    public static let deferral = FrameFlags(rawValue: 0x7F << 25)
}

/// pfn → frame index, and the frames.
///
/// The frames live in one address range reserved at start (or taken over from a finished table:
/// `KeptRanges`) (`mmap`, `MAP_NORESERVE`): the kernel commits
/// memory only where it is written, so frames cost their 32 bytes each, and they never move — `base`
/// stays valid for the life of the table and the model reads frames through it with no checks or
/// reference counting. The range is committed ahead of use (`MADV_POPULATE_WRITE`, one call instead of a
/// page fault per 4 KiB) by a sixteenth of what is in use, one page to 1 MiB at a time.
///
/// The pfn index is an open-addressing hash table of 32-bit words, `frame index + 1` (0: empty), probed
/// from a hash of the pfn (`home`); a probe compares the pfn its frame holds (`pfnLow`: the frame is read
/// next anyway, and the slots take half the memory a pfn in each would). Runs of 4 consecutive pfns share a block of 4 slots; a
/// probe moves on to the same place in the next block, so the table is 4 interleaved tables, one per
/// `pfn % 4`, each probed linearly and each kept at most 70% full (a probe that moved one slot on ran into
/// the next run's block: twice as long on dense traces). It costs at most 5.7 to 11.4 bytes per tracked frame however
/// the frames are scattered over guest memory, once past about 1,430 frames (the first table has 4,096
/// slots, 16 KiB: every shipped trace grows past it, and the doublings up to it cost 1 to 4% of a short
/// trace's instructions), when the pfns spread over the four residues, as a folio's pages do (its groups' entries
/// all fall in residue 0, whose quarter then decides when the index doubles); up to four times that
/// when they share one (only the heads of large folios seen, say). A radix index by pfn costs what the spread of the
/// pfns costs: a small trace over a large host paid more for its index than for its frames. Pfns of
/// 2^32 - 1 and above have a map of their own. Frames are never removed: a freed frame keeps its slot
/// (state U), so memory grows with distinct frames, not with trace length.
///
/// A large folio's pages, created together (`indexRun`), enter as groups of 16: the pfns from a multiple
/// of 16, their frames consecutive, take one entry (the first pfn's, tagged). Creating 16 frames then costs
/// one entry, and the index holds, and a doubling enters again, a sixteenth of them: on traces of large
/// folios the index is half the size and a frame is created in about a quarter of the instructions. A
/// look-up of a pfn that finds no entry of its own probes again for its group's, when a filter of the
/// groups entered says it may be there.
public final class FrameTable {
    /// Frames the reservation holds: 2^30 frames is 4 TiB of distinct guest memory.
    public static let reservedFrames = 1 << 30
    /// Bytes committed ahead of use at a time, for `used` bytes in use: a sixteenth, one page to 1 MiB, in
    /// whole pages (`madvise` wants page-aligned ranges, and every range starts where the last ended).
    static func populateStep(_ used: Int) -> Int {
        let b = min(max(used / 16, pageSize), 1 << 20)
        return (b + pageSize - 1) / pageSize * pageSize
    }
    static let pageSize = max(4096, Int(sysconf(Int32(_SC_PAGESIZE))))
    /// Slots of a new index, and its fill limit in tenths.
    static let initialSlots = 1 << 12
    static let maxFillTenths = 7
    /// Groups: 16 pfns from a multiple of 16 whose frames follow one another (a large folio's, created
    /// together) take one entry, the first pfn's, tagged; a look-up of another of them that finds no entry
    /// of its own takes a second probe, for the first pfn of its group (`locate`).
    static let groupLength = 16
    static let groupMask = UInt64(groupLength - 1)
    static let groupTag: UInt32 = 1 << 31
    /// Consecutive pfns placed together: 2^runBits (`home`).
    static let runBits: UInt64 = 2
    static let runLength = 1 << Int(runBits)

    /// The frames, `count` of them, at a fixed address.
    public let base: UnsafeMutablePointer<Frame>
    /// The host LRU's links per frame, beside the frames (same index): reserved and committed only once a
    /// host budget makes the host keep an LRU (`enableHostLinks`), then committed ahead with the frames.
    public private(set) var hostLinks: UnsafeMutablePointer<HostLinks>? = nil
    private var linksPopulated = 0
    /// Bytes of the links' range the kernel has committed: `linksPopulated`, or more when the range was
    /// taken over from a finished table (`KeptRanges`).
    private var linksCommitted = 0
    private var ownsLinksHeap = false
    private let capacity: Int
    /// Bytes of the frame range committed so far, as this table's use asked for them (the memory it counts).
    private var framesPopulated = 0
    /// Bytes of the frame range the kernel has committed: `framesPopulated`, or more when the range was
    /// taken over from a finished table (`KeptRanges`): those need no second commit.
    private var framesCommitted = 0
    public private(set) var count = 0
    /// The pfn index: `slots` words (a power of two), frame index + 1 (with `groupTag`: the entry of a
    /// group of 16), 0 where empty; `usedIn[c]` of
    /// the `slots / 4` where `pfn % 4 == c` filled; `shift` takes the hash's top bits.
    private var table: UnsafeMutablePointer<UInt32>
    private var slots: Int
    private var usedIn = InlineArray<4, Int>(repeating: 0)
    /// The most pfns one residue's slots take before the index grows: 70% of them, rounded down.
    private var fillLimit = 0
    private var shift: UInt64
    /// A bit per hash of `pfn / 16`, set for every group entered (`groupTag`): a look-up of a pfn whose
    /// bit is clear takes no second probe, so a page alone does not pay for the groups of others (and
    /// without groups, nothing is allocated or probed). 2^15 bits (4 KiB) from the first group on, and
    /// 16 bits per group from 2,048 groups on (made again from `groupStarts`), so that at most about a
    /// sixteenth of the bits are set.
    private var groupFilter: UnsafeMutablePointer<UInt64>? = nil
    private var groupFilterBits = 15
    private var groupFilterShift: UInt64 = 64 - 15
    /// The first frame of every group, in frame order (groups are created in frame order): a doubling
    /// enters them again as groups without looking for them (4 bytes per 16 frames).
    private var groupStarts: [Int32] = []
    /// Frames of pfns 2^32 - 1 and above (not in `table`), and those pfns by frame index.
    private var bigIndex = FastMap<UInt64, Int32>(emptyKey: 0, emptyValue: -1, capacity: 16)
    private var bigPfn = FastMap<UInt64, UInt64>(emptyKey: .max, emptyValue: 0, capacity: 16)
    /// Whether `MADV_POPULATE_WRITE` works here (kernels before 5.14 refuse it: pages then fault in).
    private(set) var canPopulate = true
    /// Backing when the frame reservation was refused (fixed size, allocated at once).
    private let ownsHeap: Bool

    public init(reserving frames: Int = FrameTable.reservedFrames) {
        var cap = frames
        var p: UnsafeMutableRawPointer? = nil
        // The range a finished table left, committed as it was; else reserve, halving on refusal (strict
        // overcommit, address-space limits).
        if let k = KeptRanges.take(.frames, bytes: cap * MemoryLayout<Frame>.stride) {
            p = k.address
            framesCommitted = k.committed
        }
        while p == nil && cap >= 1 << 16 {
            p = reserve(bytes: cap * MemoryLayout<Frame>.stride)
            if p != nil { break }
            cap /= 2
        }
        if let p {
            base = p.bindMemory(to: Frame.self, capacity: cap)
            ownsHeap = false
        } else {
            cap = 1 << 16
            base = UnsafeMutablePointer<Frame>.allocate(capacity: cap)
            ownsHeap = true
        }
        capacity = cap
        slots = Self.initialSlots
        shift = UInt64(64 - Self.initialSlots.trailingZeroBitCount)
        table = Self.zeroedSlots(slots)
        fillLimit = Self.fillLimit(slots)
    }

    /// 70% of one residue's share of `slots`, rounded down (`usedIn[c] > limit` ⟺ more than 70% full).
    private static func fillLimit(_ slots: Int) -> Int { (slots / runLength) * maxFillTenths / 10 }

    deinit {
        groupFilter?.deallocate()
        if let hostLinks {
            if ownsLinksHeap {
                hostLinks.deallocate()
            } else {
                KeptRanges.give(.links, UnsafeMutableRawPointer(hostLinks), bytes: capacity * MemoryLayout<HostLinks>.stride,
                                committed: max(linksCommitted, linksPopulated))
            }
        }
        if ownsHeap {
            base.deallocate()
        } else {
            KeptRanges.give(.frames, UnsafeMutableRawPointer(base), bytes: capacity * MemoryLayout<Frame>.stride,
                            committed: max(framesCommitted, framesPopulated))
        }
        Self.releaseSlots(table, slots, keep: true)
    }

    /// Index sizes from which slots are mapped pages of their own: the kernel hands them out zeroed, so
    /// a doubling of the index writes each new slot once (the re-entry), not twice (a memset first).
    /// (From 64 KiB: below it the table's pages are a few and the allocator's.) A finished table's slots,
    /// when of the size asked for, are taken over instead (`KeptRanges`): clearing 64 KiB costs a tenth of
    /// what the kernel takes to commit it.
    static let mappedSlots = 1 << 14

    /// `n` zeroed slots, aligned to a cache line (so that the slots of a run of pfns never straddle two).
    private static func zeroedSlots(_ n: Int) -> UnsafeMutablePointer<UInt32> {
        if n >= mappedSlots, let k = KeptRanges.take(.slots, bytes: n * 4) {
            memset(k.address, 0, n * 4)
            return k.address.bindMemory(to: UInt32.self, capacity: n)
        }
        if n >= mappedSlots, let m = mmap(nil, n * 4, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), m != MAP_FAILED {
            // Every page of it is written at once (the re-entry spreads over all of it): committed in one
            // call, not a page fault per 4 KiB (where the kernel refuses, before 5.14 or short of memory,
            // the pages fault in).
            _ = madvise(m, n * 4, 23 /* MADV_POPULATE_WRITE */)
            return m.bindMemory(to: UInt32.self, capacity: n)
        }
        if n >= mappedSlots { outOfMemory("a pfn index of \(n) slots") }
        var p: UnsafeMutableRawPointer? = nil
        guard posix_memalign(&p, 64, n * 4) == 0, let p else { outOfMemory("a pfn index of \(n) slots") }
        memset(p, 0, n * 4)
        return p.bindMemory(to: UInt32.self, capacity: n)
    }

    /// Gives back slots from `zeroedSlots(n)`: a finished table's (`keep`) to `KeptRanges`, when mapped; the
    /// slots a doubling leaves to the kernel (kept, each size on the way would stay resident for the rest of
    /// the process: as much again as the index, for a replay that may be the process's only one).
    private static func releaseSlots(_ p: UnsafeMutablePointer<UInt32>, _ n: Int, keep: Bool) {
        if n < mappedSlots {
            free(p)
        } else if keep {
            KeptRanges.give(.slots, UnsafeMutableRawPointer(p), bytes: n * 4, committed: n * 4)
        } else {
            munmap(UnsafeMutableRawPointer(p), n * 4)
        }
    }

    /// Reserves the host LRU's links for every frame the table can hold and commits those in use.
    public func enableHostLinks() {
        guard hostLinks == nil else { return }
        let bytes = capacity * MemoryLayout<HostLinks>.stride
        if !ownsHeap, let k = KeptRanges.take(.links, bytes: bytes) {
            hostLinks = k.address.bindMemory(to: HostLinks.self, capacity: capacity)
            linksCommitted = k.committed
            commitLinks()
        } else if !ownsHeap, let p = reserve(bytes: bytes) {
            hostLinks = p.bindMemory(to: HostLinks.self, capacity: capacity)
            commitLinks()
        } else {
            let p = UnsafeMutablePointer<HostLinks>.allocate(capacity: capacity)
            p.initialize(repeating: HostLinks(), count: capacity)
            hostLinks = p
            ownsLinksHeap = true
        }
    }

    /// Commits the links of the frames in use, and ahead of them.
    private func commitLinks() {
        guard let hostLinks, !ownsLinksHeap else { return }
        let need = count * MemoryLayout<HostLinks>.stride
        while linksPopulated < need || linksPopulated == 0 {
            let total = capacity * MemoryLayout<HostLinks>.stride
            let n = min(Self.populateStep(linksPopulated), total - linksPopulated)
            if n <= 0 { break }
            commit(UnsafeMutableRawPointer(hostLinks), from: linksPopulated, n, committed: &linksCommitted)
            linksPopulated += n
        }
    }

    /// Commits bytes [at, at + n) of the range at `p`, but those of them below `committed` (committed
    /// already: a kept range's), and moves `committed` past them.
    private func commit(_ p: UnsafeMutableRawPointer, from at: Int, _ n: Int, committed: inout Int) {
        let from = max(at, committed)
        if at + n > from { populate(p + from, at + n - from) }
        committed = max(committed, at + n)
    }

    /// Commits [p, p + bytes) now, if the kernel can.
    private func populate(_ p: UnsafeMutableRawPointer, _ bytes: Int) {
        guard canPopulate else { return }
        if madvise(p, bytes, 23 /* MADV_POPULATE_WRITE */) != 0 { canPopulate = false }
    }

    /// The home slot of `pfn`: runs of 2^`runBits` consecutive pfns (a folio's pages) share 16 bytes of
    /// slots, a quarter of a cache line, the run placed by Fibonacci hashing (the top bits of run × 2^64/φ).
    /// (Runs of 8, a whole line of the 8-byte slots the index had, collided as blocks on dense traces and
    /// lengthened probes; single pfns lose the locality: both measured no faster.)
    @inline(__always)
    private func home(_ pfn: UInt64) -> Int { Self.home(pfn, shift: shift &+ Self.runBits) }

    /// `home` for a table whose hash is shifted right by `shift` (the index's `shift + runBits`).
    @inline(__always)
    private static func home(_ pfn: UInt64, shift: UInt64) -> Int {
        Int(truncatingIfNeeded: (((pfn >> runBits) &* 0x9E37_79B9_7F4A_7C15) &>> shift) << runBits | (pfn & ((1 << runBits) - 1)))
    }

    /// The slot of `pfn` (below 2^32 - 1) in the index: its frame index when found, else the empty slot
    /// that ends its probe (where it would be entered) and -1.
    @inline(__always)
    private func probe(_ pfn: UInt64) -> (slot: Int, frame: Int) { walk(from: home(pfn), UInt32(truncatingIfNeeded: pfn), mask: slots - 1) }

    /// A probe from slot `s` for the entry whose frame holds pfn `low` (`pfnLow`): that frame and its
    /// slot, or -1 and the empty slot that ends the probe. `mask`: the index's `slots - 1`.
    @inline(__always)
    private func walk(from start: Int, _ low: UInt32, mask: Int) -> (slot: Int, frame: Int) {
        var s = start
        var steps = 0
        while true {
            let e = table[s]
            if e == 0 { return (s, -1) }
            // The pfn is the frame's own (`pfnLow`, whole below 2^32 - 1); a group's entry names its first.
            let f = Int(truncatingIfNeeded: e & ~Self.groupTag) &- 1
            if base[f].pfnLow == low { return (s, f) }
            s = (s &+ Self.runLength) & mask
            // A probe visits the slots of its residue once at most: one class filled up would loop.
            steps += 1
            assert(steps < (mask + 1) / Self.runLength, "pfn index: the slots of pfn % 4 == \(low % 4) are full")
        }
    }

    /// The frame of `pfn` (below 2^32 - 1) when the index holds it, alone or in a group, else -1; with the
    /// empty slot where it would be entered alone (`probe`).
    @inline(__always)
    private func locate(_ pfn: UInt64) -> (slot: Int, frame: Int) {
        let p = probe(pfn)
        if p.frame >= 0 || pfn & Self.groupMask == 0 || !mayHoldGroup(pfn) { return p }
        let g = groupFrame(pfn & ~Self.groupMask)
        return g >= 0 ? (p.slot, g + Int(truncatingIfNeeded: pfn & Self.groupMask)) : p
    }

    /// The filter's bit of the group of `pfn`: its word, and the bit in it.
    @inline(__always)
    private func groupBit(_ pfn: UInt64) -> (word: Int, bit: UInt64) {
        let h = Int(truncatingIfNeeded: ((pfn >> 4) &* 0x9E37_79B9_7F4A_7C15) &>> groupFilterShift)
        return (h >> 6, 1 << UInt64(h & 63))
    }

    /// Whether the group of `pfn` may be in the index (its filter bit is set).
    @inline(__always)
    private func mayHoldGroup(_ pfn: UInt64) -> Bool {
        guard let g = groupFilter else { return false }
        let b = groupBit(pfn)
        return g[b.word] & b.bit != 0
    }

    /// Lists a new group, of pfns from `pfn` and frames from `frame`, and sets its filter bit (the filter
    /// made larger first when the groups outgrow it).
    private func addGroup(_ pfn: UInt64, frame: Int) {
        groupStarts.append(Int32(truncatingIfNeeded: frame))
        var bits = groupFilterBits
        while groupStarts.count << 4 > 1 << bits { bits += 1 }
        if groupFilter == nil || bits != groupFilterBits {
            groupFilter?.deallocate()
            groupFilterBits = bits
            groupFilterShift = UInt64(64 - bits)
            let w = 1 << (bits - 6)
            let g = UnsafeMutablePointer<UInt64>.allocate(capacity: w)
            g.initialize(repeating: 0, count: w)
            groupFilter = g
            // Every group listed so far, this one included, from its first frame's pfn.
            for i in groupStarts { setGroupBit(UInt64(base[Int(i)].pfnLow)) }
        } else {
            setGroupBit(pfn)
        }
    }

    @inline(__always)
    private func setGroupBit(_ pfn: UInt64) {
        let b = groupBit(pfn)
        groupFilter![b.word] |= b.bit
    }

    /// The first frame of the group of pfns from `g` (a multiple of 16), -1 when the index holds none.
    @inline(never)
    private func groupFrame(_ g: UInt64) -> Int {
        // The entry of pfn g: a group's, or g's alone (then g's group is not in the index).
        let w = probe(g)
        return w.frame >= 0 && table[w.slot] & Self.groupTag != 0 ? w.frame : -1
    }

    /// The last pfn looked up or created below 2^32 - 1, and its frame (frames never move or go, so it
    /// holds for good): an event naming the page the one before it named (an allocation, then the
    /// page-cache insertion of that page) takes no probe. None until the first (`lastFrame` -1).
    private var lastPfn = UInt64(UInt32.max)
    private var lastFrame = -1

    /// Index of `pfn`, if the model has seen it.
    @inline(__always)
    public func find(_ pfn: UInt64) -> Int? {
        if pfn == lastPfn && lastFrame >= 0 { return lastFrame }
        guard pfn < UInt64(UInt32.max) else { return findBig(pfn) }
        let f = locate(pfn).frame
        guard f >= 0 else { return nil }
        lastPfn = pfn
        lastFrame = f
        return f
    }

    /// Index of `pfn`, creating a fresh frame (U, z) when new.
    @inline(__always)
    public func index(_ pfn: UInt64) -> Int {
        if pfn == lastPfn && lastFrame >= 0 { return lastFrame }
        guard pfn < UInt64(UInt32.max) else { return indexBig(pfn) }
        let p = locate(pfn)
        let f = p.frame >= 0 ? p.frame : insert(pfn, at: p.slot)
        lastPfn = pfn
        lastFrame = f
        return f
    }

    /// A new frame for `pfn`, entered at empty slot `s` of the index (which then grows if too full).
    @inline(never)
    private func insert(_ pfn: UInt64, at s: Int) -> Int {
        let i = append(pfn)
        enter(pfn, at: s, frame: i)
        return i
    }

    /// Whether none of the 16 pfns from `p` (a multiple of 16) is in the index.
    @inline(__always)
    private func absent(_ p: UInt64) -> Bool {
        // Run by run of four: an empty slot where a probe starts ends it (an empty block, all four).
        let mask = slots - 1
        for q in stride(from: p, to: p &+ UInt64(Self.groupLength), by: Self.runLength) {
            let b = home(q)
            if blockIsEmpty(b) { continue }
            let low = UInt32(truncatingIfNeeded: q)
            for r in 0..<Self.runLength where walk(from: b &+ r, low &+ UInt32(r), mask: mask).frame >= 0 {
                return false
            }
        }
        return true
    }

    /// Whether the four slots of the block at `s` (a multiple of 4: 16 aligned bytes) are empty.
    @inline(__always)
    private func blockIsEmpty(_ s: Int) -> Bool {
        let w = UnsafeRawPointer(table + s)
        return w.load(as: UInt64.self) | w.load(fromByteOffset: 8, as: UInt64.self) == 0
    }

    /// Enters `pfn` → frame `i` at empty slot `s` (with `tag`, a group of 16 from there), then grows the
    /// index if too full.
    @inline(__always)
    private func enter(_ pfn: UInt64, at s: Int, frame i: Int, tag: UInt32 = 0) {
        table[s] = UInt32(truncatingIfNeeded: i &+ 1) | tag   // below 2^30 + 1: the reservation's frames
        let c = Int(truncatingIfNeeded: pfn) & (Self.runLength - 1)
        usedIn[c] &+= 1
        // Each interleaved table is kept at most 70% full, however the pfns fall (pfns of one residue only
        // fill a quarter of the slots), so a probe always ends at an empty slot.
        if usedIn[c] > fillLimit { growIndex() }
    }

    /// Doubles the index and enters every pfn again.
    private func growIndex() {
        let old = table, n = slots
        slots = n * 2
        shift -= 1
        fillLimit = Self.fillLimit(slots)
        table = Self.zeroedSlots(slots)
        let mask = slots - 1
        // Every frame below 2^32 - 1 is in the index: entered again in frame order, which reads the frames
        // once, in order, for their pfns; a group's frames as the group. (The loop keeps the table and the
        // shift in locals: the class's fields would be read again after every store.)
        var f = UnsafePointer(base)
        var i = 0
        let total = count, t = table, sh = shift &+ Self.runBits
        groupStarts.withUnsafeBufferPointer { starts in
            var g = 0
            var nextGroup = starts.isEmpty ? Int.max : Int(starts[0])
            while i < total {
                let p = f.pointee.pfnLow
                var e = UInt32(truncatingIfNeeded: i &+ 1)
                var step = 1
                if i == nextGroup {
                    e |= Self.groupTag
                    step = Self.groupLength
                    g &+= 1
                    nextGroup = g < starts.count ? Int(starts[g]) : Int.max
                } else if p == UInt32.max {   // kept aside (`bigIndex`)
                    f += 1
                    i &+= 1
                    continue
                }
                var s = Self.home(UInt64(p), shift: sh)
                #if DEBUG
                var steps = 0
                while t[s] != 0 {
                    s = (s &+ Self.runLength) & mask
                    steps += 1
                    assert(steps < mask / Self.runLength, "pfn index: the slots of pfn % 4 == \(p % 4) are full (entries miscounted)")
                }
                #else
                while t[s] != 0 { s = (s &+ Self.runLength) & mask }
                #endif
                t[s] = e
                f += step
                i &+= step
            }
            assert(g == starts.count, "pfn index: \(starts.count - g) groups not entered again")
        }
        #if DEBUG
        // The entries per residue are those counted as they were made (a group is one entry).
        var entered = InlineArray<4, Int>(repeating: 0)
        for k in 0..<slots where t[k] != 0 { entered[k & 3] += 1 }
        for c in 0..<4 { assert(entered[c] == usedIn[c], "pfn index: \(entered[c]) entries of residue \(c), \(usedIn[c]) counted") }
        #endif
        Self.releaseSlots(old, n, keep: false)
    }

    /// Indices of pfns `pfn ..< pfn + n` (a folio's pages), creating fresh frames (U, z) for those not seen,
    /// in pfn order: what `index` gives page by page (the index grows where it would), in one pass without a
    /// call per page. Returns the first pfn's index and how many were created.
    public func indexRun(_ pfn: UInt64, _ n: Int) -> (first: Int, created: Int) {
        let before = count
        // Page by page: a run reaching 2^32 - 1 (those pfns are kept aside), or one that might not fit the
        // reservation if every page were new (`append` then stops at the exact page).
        guard n > 1, pfn <= UInt64(UInt32.max) - UInt64(n), count + n <= capacity, count + n <= Int(Int32.max) else {
            let first = index(pfn)
            if n > 1 { for k in 1..<n { _ = index(pfn + UInt64(k)) } }
            return (first, count - before)
        }
        // Committed for n new frames at once: at most one step ahead of page by page when some were seen.
        commitFrames(upTo: count + n)
        var first = -1
        var k = 0
        while k < n {
            let p = pfn + UInt64(k)
            // Sixteen pfns from a multiple of 16, none of them indexed (the probe of the first finds no
            // group either): sixteen fresh frames, one entry.
            if p & Self.groupMask == 0 && k &+ Self.groupLength <= n && absent(p) {
                let i = count
                var fr = Frame()
                var q = base + i
                for r in 0..<Self.groupLength {
                    fr.pfnLow = UInt32(truncatingIfNeeded: p &+ UInt64(r))
                    q.initialize(to: fr)
                    q += 1
                }
                count = i &+ Self.groupLength
                addGroup(p, frame: i)
                enter(p, at: probe(p).slot, frame: i, tag: Self.groupTag)
                if k == 0 { first = i }
                k &+= Self.groupLength
                continue
            }
            let (s, f) = locate(p)
            var i = f
            if f < 0 {
                i = count
                var fr = Frame()
                fr.pfnLow = UInt32(truncatingIfNeeded: p)
                (base + i).initialize(to: fr)
                count = i + 1
                enter(p, at: s, frame: i)
            }
            if k == 0 { first = i }
            k &+= 1
        }
        commitLinksIfNeeded()
        return (first, count - before)
    }

    /// Commits the frame range ahead of use until it holds `frames` frames.
    @inline(__always)
    private func commitFrames(upTo frames: Int) {
        guard !ownsHeap else { return }
        let total = capacity * MemoryLayout<Frame>.stride
        while frames * MemoryLayout<Frame>.stride > framesPopulated {
            let n = min(Self.populateStep(framesPopulated), total - framesPopulated)
            if n <= 0 { return }   // the whole range is committed (callers stay within it)
            commit(UnsafeMutableRawPointer(base), from: framesPopulated, n, committed: &framesCommitted)
            framesPopulated += n
        }
    }

    @inline(never)
    private func findBig(_ pfn: UInt64) -> Int? {
        let v = bigIndex[pfn] ?? -1
        return v >= 0 ? Int(v) : nil
    }

    @inline(never)
    private func indexBig(_ pfn: UInt64) -> Int {
        if let i = findBig(pfn) { return i }
        let i = append(pfn)
        bigIndex.set(pfn, Int32(i))
        return i
    }

    @inline(never)
    private func append(_ pfn: UInt64) -> Int {
        guard count < capacity, count < Int(Int32.max) else { Self.full(capacity) }
        return newFrame(pfn)
    }

    /// Frame `count`, fresh (U, z), for `pfn`: the range committed ahead of it, and its host links. The
    /// caller has checked that the reservation has room.
    @inline(__always)
    private func newFrame(_ pfn: UInt64) -> Int {
        commitFrames(upTo: count + 1)
        var f = Frame()
        if pfn < UInt64(UInt32.max) {
            f.pfnLow = UInt32(pfn)
        } else {
            f.pfnLow = UInt32.max
            bigPfn.set(UInt64(count), pfn)
        }
        (base + count).initialize(to: f)
        count += 1
        commitLinksIfNeeded()
        return count - 1
    }

    /// Commits the host links of the frames in use, when kept and not yet committed.
    @inline(__always)
    private func commitLinksIfNeeded() {
        if hostLinks != nil && count * MemoryLayout<HostLinks>.stride > linksPopulated { commitLinks() }
    }

    /// More distinct frames than the reservation holds (4 TiB of guest memory, less where the machine
    /// refused that): nothing sensible can go on.
    private static func full(_ n: Int) -> Never {
        exitWithLine("the replay tracks more than \(n) distinct page frames, more than this machine let it reserve",
                     status: 70)
    }

    /// The pfn of frame `i`.
    public func pfn(_ i: Int) -> UInt64 {
        let p = base[i].pfnLow
        return p != UInt32.max ? UInt64(p) : bigPfn[UInt64(i)] ?? UInt64(p)
    }

    @inline(__always)
    public subscript(i: Int) -> Frame {
        get {
            precondition(i >= 0 && i < count, "frame index out of range")
            return base[i]
        }
        _modify {
            precondition(i >= 0 && i < count, "frame index out of range")
            yield &base[i]
        }
    }

    /// Bytes of memory the table holds per tracked frame: the resident pages (`mincore`) of the frame
    /// range (pages committed ahead of use count too: this errs high) and the pfn index's slots.
    public var bytesPerFrame: Double {
        guard count > 0 else { return 0 }
        let r = residentBytes
        return Double(r.frames + r.index) / Double(count)
    }

    /// Resident bytes of the frame range (with the host LRU's links when kept) and of the index (its slots,
    /// counted whole, and the maps of pfns of 2^32 - 1 and above).
    public var residentBytes: (frames: Int, index: Int) {
        var fr = ownsHeap ? capacity * MemoryLayout<Frame>.stride
            : resident(UnsafeMutableRawPointer(base), max(framesPopulated, count * MemoryLayout<Frame>.stride))
        if let hostLinks {
            fr += ownsLinksHeap ? capacity * MemoryLayout<HostLinks>.stride
                : resident(UnsafeMutableRawPointer(hostLinks), max(linksPopulated, count * MemoryLayout<HostLinks>.stride))
        }
        return (fr, slots * 4 + bigIndex.bytes + bigPfn.bytes + (groupFilter == nil ? 0 : 1 << (groupFilterBits - 3))
                + groupStarts.capacity * MemoryLayout<Int32>.stride)
    }

    /// Groups of 16 pages entered as one (`groupTag`).
    public var groups: Int { groupStarts.count }

    /// Slots of the pfn index.
    public var indexSlots: Int { slots }

    /// The bytes of the resident pages of [p, p + length).
    private func resident(_ p: UnsafeMutableRawPointer, _ length: Int) -> Int {
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let pages = (length + page - 1) / page
        guard pages > 0 else { return 0 }
        var vec = [UInt8](repeating: 0, count: pages)
        guard mincore(p, pages * page, &vec) == 0 else { return pages * page }
        var n = 0
        for v in vec where v & 1 != 0 { n += 1 }
        return n * page
    }
}

/// Committed ranges of finished tables, for the next tables to take over, as a memory allocator keeps what
/// was freed for the next allocation instead of giving it back to the kernel: a command that replays a
/// trace several times, one replay after another (`compare`, `bench-replay`), commits its frames' memory once, not once
/// per replay (the kernel takes about 1 µs per 4 KiB page it commits here, 9 ns per 32-byte frame).
/// Kept: the frame range, the host links' range and the pfn index's final slots (when mapped) of the last
/// table to finish, one range of each kind and size (a range given replaces the one kept, which is
/// unmapped). A table writes every frame it creates in whole and reads none it has not created, so a
/// frame range needs no clearing; slots are zeroed when taken. What is kept stays resident until the next
/// table takes it or the process ends: after a replay, at most its frames, links and final index.
enum KeptRanges {
    enum Kind: Sendable { case frames, links, slots }
    struct Range: Sendable {
        var kind: Kind
        var address: UInt
        var bytes: Int
        var committed: Int
    }
    private static let kept = Mutex<[Range]>([])

    /// A kept range of `kind` and `bytes` bytes: its address and the bytes committed from its start.
    static func take(_ kind: Kind, bytes: Int) -> (address: UnsafeMutableRawPointer, committed: Int)? {
        let r: Range? = kept.withLock { k in
            guard let at = k.firstIndex(where: { $0.kind == kind && $0.bytes == bytes }) else { return nil }
            return k.remove(at: at)
        }
        guard let r, let p = UnsafeMutableRawPointer(bitPattern: r.address) else { return nil }
        return (p, r.committed)
    }

    /// Whether a range of `kind` and `bytes` bytes is kept (for the tests).
    static func holds(_ kind: Kind, bytes: Int) -> Bool { kept.withLock { k in k.contains { $0.kind == kind && $0.bytes == bytes } } }

    /// Unmaps every kept range (for the tests: a known start).
    static func unmapAll() {
        let all = kept.withLock { k in
            defer { k.removeAll() }
            return k
        }
        for r in all { if let q = UnsafeMutableRawPointer(bitPattern: r.address) { munmap(q, r.bytes) } }
    }

    /// Keeps the range [p, p + bytes), `committed` bytes of it committed, in place of the one of its kind
    /// and size kept before (unmapped).
    static func give(_ kind: Kind, _ p: UnsafeMutableRawPointer, bytes: Int, committed: Int) {
        #if DEBUG
        // Debug builds fill what they keep with a pattern no table writes, so that a read of a frame a
        // table did not create shows (the tests replay many times in one process).
        memset(p, 0xA5, committed)
        #endif
        let new = Range(kind: kind, address: UInt(bitPattern: p), bytes: bytes, committed: committed)
        let drop: Range? = kept.withLock { k in
            guard let at = k.firstIndex(where: { $0.kind == kind && $0.bytes == bytes }) else {
                k.append(new)
                return nil
            }
            defer { k[at] = new }
            return k[at]
        }
        if let drop, let q = UnsafeMutableRawPointer(bitPattern: drop.address) { munmap(q, drop.bytes) }
    }
}

/// An anonymous, private, unreserved mapping of `bytes` (zero-filled on first touch), or nil when refused.
/// Transparent huge pages are turned off on it, so sparse use commits 4 KiB at a time.
private func reserve(bytes: Int) -> UnsafeMutableRawPointer? {
    let p = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0)
    guard let p, p != MAP_FAILED else { return nil }
    _ = madvise(p, bytes, MADV_NOHUGEPAGE)
    return p
}

/// A frame's links on the host LRU (frame indices, -1 = none; never read while the frame is off it).
public struct HostLinks: Sendable {
    var prev: Int32 = -1
    var next: Int32 = -1
}

/// A doubly linked list threaded through frames (the host LRU, or one guest LRU list).
struct FrameList {
    var head: Int32 = -1   // hot end
    var tail: Int32 = -1   // cold end
    var count = 0
}

/// The cache key of a page: (s_dev, i_ino, index).
public struct CacheKey: Hashable, Sendable, FastHashable {
    public var dev: UInt32
    public var ino: UInt64
    public var index: UInt64
    public init(dev: UInt32, ino: UInt64, index: UInt64) {
        self.dev = dev
        self.ino = ino
        self.index = index
    }
    @inline(__always)
    public var fastHash: UInt64 { fastMix((ino &* 0x9E37_79B9_7F4A_7C15) ^ index ^ (UInt64(dev) &* 0xC2B2_AE3D_27D4_EB4F)) }
}

/// (file, index) → frame index of the page cache, for file ids of the model (`HintingModel.fileID`).
///
/// A file with one page cached keeps it in its own entry (`FileEntry`: the index and the frame), with no
/// block: a trace of small files (one page each, and most files are small) costs 16 bytes per file here.
/// A file's second page moves its pages into blocks of 64 consecutive indices, found through a `FastMap`
/// by (file, index / 64), the last block cached: a read of a range, or a large folio's pages, cost one hash
/// probe per 64 pages. (Before, every file had blocks: 260 bytes and a map entry for a one-page file,
/// 342 and 465 bytes per tracked frame on the two small-files traces.) A block whose pages all left the cache is
/// recycled; a file whose pages all left starts again with its own entry. Slots and counts live in
/// buffers of their own, read without checks, grown by half at a time.
/// A noncopyable struct held in the model, not a class: a method called on a class instance read from the
/// model retains and releases it (two atomic operations per call).
struct PageCacheIndex: ~Copyable {
    struct BlockKey: FastHashable {
        var file: UInt32
        var block: UInt64
        var fastHash: UInt64 { fastMix(block &* 0x9E37_79B9_7F4A_7C15 ^ UInt64(file)) }
    }
    /// Per file id: its pages bound, and while it has one page not in a block (`frame >= 0`), that page.
    struct FileEntry {
        var pages: UInt32 = 0
        var frame: Int32 = -1
        var index: UInt64 = 0
    }
    static let shift: UInt64 = 6
    static let size = 1 << 6
    private var blockOf = FastMap<BlockKey, Int32>(emptyKey: BlockKey(file: 0, block: 0), emptyValue: -1, capacity: 16)
    /// Frame indices, `size` per block, -1 where no page is cached; cached pages per block.
    private var slots: UnsafeMutablePointer<Int32>
    private var live: UnsafeMutablePointer<Int32>
    private var blocks = 0
    private var capacity = 16
    private var free: [Int32] = []
    private var files: UnsafeMutablePointer<FileEntry>
    private var filesCapacity = 64
    private var last = BlockKey(file: .max, block: UInt64.max)
    private var lastBlock: Int32 = -1
    /// The last block looked up and not found (until a block is created): a range read or mapped over
    /// pages the model never saw cached looks each of them up.
    private var lastMiss = BlockKey(file: .max, block: UInt64.max)

    init() {
        slots = .allocate(capacity: capacity * Self.size)
        live = .allocate(capacity: capacity)
        files = .allocate(capacity: filesCapacity)
        files.initialize(repeating: FileEntry(), count: filesCapacity)
    }

    deinit {
        slots.deallocate()
        live.deallocate()
        files.deallocate()
    }

    /// Bytes the index holds: for pages (blocks, their counts, the block map, the free list) and for
    /// files (an entry per file id).
    var bytes: (pages: Int, files: Int) {
        (capacity * (Self.size + 1) * MemoryLayout<Int32>.stride + blockOf.bytes + free.capacity * MemoryLayout<Int32>.stride,
         filesCapacity * MemoryLayout<FileEntry>.stride)
    }

    /// Blocks in use.
    var blocksInUse: Int { blocks - free.count }

    /// Pages of `file` bound.
    @inline(__always)
    func pageCount(file: UInt32) -> Int { Int(file) < filesCapacity ? Int(files[Int(file)].pages) : 0 }

    /// The entry of `file`, nil when it has no page bound.
    @inline(__always)
    private func entry(_ file: UInt32) -> FileEntry? {
        guard Int(file) < filesCapacity else { return nil }
        let e = files[Int(file)]
        return e.pages > 0 ? e : nil
    }

    @inline(__always)
    private mutating func fileEntry(_ file: UInt32) -> UnsafeMutablePointer<FileEntry> {
        if Int(file) >= filesCapacity { growFiles(Int(file)) }
        return files + Int(file)
    }

    private mutating func growFiles(_ file: Int) {
        var n = filesCapacity * 2
        while n <= file { n *= 2 }
        regrow(&files, count: filesCapacity, capacity: n)
        (files + filesCapacity).initialize(repeating: FileEntry(), count: n - filesCapacity)
        filesCapacity = n
    }

    @inline(__always)
    private mutating func block(_ file: UInt32, _ index: UInt64, create: Bool) -> Int? {
        let bk = BlockKey(file: file, block: index >> Self.shift)
        if bk == last { return lastBlock >= 0 ? Int(lastBlock) : nil }
        if !create && bk == lastMiss { return nil }
        return lookUp(bk, create: create)
    }

    @inline(never)
    private mutating func lookUp(_ bk: BlockKey, create: Bool) -> Int? {
        let (at, found) = blockOf.probe(bk)
        var b = found ?? -1
        if b < 0 && create {
            if let f = free.popLast() {
                b = f
            } else {
                if blocks == capacity { grow() }
                b = Int32(blocks)
                blocks += 1
                live[Int(b)] = 0
                (slots + Int(b) * Self.size).initialize(repeating: -1, count: Self.size)
            }
            blockOf.insert(bk, b, at: at)   // the block's own buffers changed, not the map
            if bk == lastMiss { lastMiss = BlockKey(file: .max, block: UInt64.max) }
        }
        if b < 0 {
            // Not `last`: a look-up that may create must not stop at it. The block may be created later,
            // which forgets the miss.
            lastMiss = bk
            return nil
        }
        last = bk
        lastBlock = b
        return Int(b)
    }

    /// Half as many blocks again: doubling left up to half the blocks' memory unused.
    private mutating func grow() {
        let n = capacity + capacity / 2
        regrow(&slots, count: blocks * Self.size, capacity: n * Self.size)
        regrow(&live, count: blocks, capacity: n)
        capacity = n
    }

    /// The frame bound to (file, index x), if any.
    subscript(file file: UInt32, index x: UInt64) -> Int32? {
        @inline(__always) mutating get {
            guard let e = entry(file) else { return nil }
            if e.frame >= 0 { return e.index == x ? e.frame : nil }
            guard let b = block(file, x, create: false) else { return nil }
            let v = slots[b * Self.size + Int(x & UInt64(Self.size - 1))]
            return v >= 0 ? v : nil
        }
    }

    /// `firstCached` looking at `x` itself first, inline: a range read or mapped is mostly cached.
    @inline(__always)
    mutating func nextCached(file: UInt32, from x: UInt64, through last: UInt64) -> (index: UInt64, frame: Int32)? {
        if let f = self[file: file, index: x] { return (x, f) }
        return firstCached(file: file, from: x, through: last)
    }

    /// The first index in [x, last] at which the file has a page, and its frame; nil when none. A block
    /// that does not exist is passed over whole, one that does is scanned slot by slot: what looking up
    /// each index in turn finds first, without a look-up per index (a read past the end of a small file
    /// names fifteen indices that hold nothing).
    mutating func firstCached(file: UInt32, from x: UInt64, through last: UInt64) -> (index: UInt64, frame: Int32)? {
        guard let e = entry(file) else { return nil }
        if e.frame >= 0 { return e.index >= x && e.index <= last ? (e.index, e.frame) : nil }
        var x = x
        while x <= last {
            let blockLast = x | UInt64(Self.size - 1)
            if let b = block(file, x, create: false) {
                let base = slots + b * Self.size
                let end = Int(min(blockLast, last) & UInt64(Self.size - 1))
                var j = Int(x & UInt64(Self.size - 1))
                while j <= end {
                    let v = base[j]
                    if v >= 0 { return ((x & ~UInt64(Self.size - 1)) | UInt64(j), v) }
                    j += 1
                }
            }
            if blockLast >= last { return nil }
            x = blockLast + 1
        }
        return nil
    }

    /// Binds (file, x) to frame `v`.
    @inline(__always)
    mutating func set(file: UInt32, index x: UInt64, _ v: Int32) {
        let e = fileEntry(file)
        if e.pointee.pages == 0 {
            e.pointee = FileEntry(pages: 1, frame: v, index: x)
            return
        }
        if e.pointee.frame >= 0 {
            if e.pointee.index == x { e.pointee.frame = v; return }
            toBlocks(file, e)
        }
        if blockSet(file, x, v) { e.pointee.pages += 1 }
    }

    /// A file's one page moves from its entry into a block (it is to have more).
    @inline(never)
    private mutating func toBlocks(_ file: UInt32, _ e: UnsafeMutablePointer<FileEntry>) {
        _ = blockSet(file, e.pointee.index, e.pointee.frame)
        e.pointee.frame = -1
    }

    /// Binds (file, x) to `v` in a block; whether the key was unbound.
    @inline(__always)
    private mutating func blockSet(_ file: UInt32, _ x: UInt64, _ v: Int32) -> Bool {
        let b = block(file, x, create: true)!
        let s = b * Self.size + Int(x & UInt64(Self.size - 1))
        let added = slots[s] < 0
        if added { live[b] += 1 }
        slots[s] = v
        return added
    }

    /// Unbinds (file, x).
    mutating func remove(file: UInt32, index x: UInt64) { remove(file: file, index: x, ifBoundTo: nil) }

    /// Unbinds (file, x) if it is bound to `frame` (any frame when nil), in one look-up.
    mutating func remove(file: UInt32, index x: UInt64, ifBoundTo frame: Int32?) {
        guard entry(file) != nil else { return }
        let e = files + Int(file)
        if e.pointee.frame >= 0 {
            if e.pointee.index == x && (frame == nil || e.pointee.frame == frame) { e.pointee = FileEntry() }
            return
        }
        guard let b = block(file, x, create: false) else { return }
        let s = b * Self.size + Int(x & UInt64(Self.size - 1))
        guard slots[s] >= 0 && (frame == nil || slots[s] == frame) else { return }
        slots[s] = -1
        live[b] -= 1
        e.pointee.pages -= 1
        if live[b] == 0 { recycle(b, BlockKey(file: file, block: x >> Self.shift)) }
    }

    private mutating func recycle(_ b: Int, _ bk: BlockKey) {
        blockOf.remove(bk)
        free.append(Int32(b))
        last = BlockKey(file: .max, block: UInt64.max)
        lastBlock = -1
    }

    /// Walks keys (file, x + k), k < n, a block at a time: `body(slots of x + k, k, count)`, with the
    /// slots nil where no block exists (and `create` is false). `body` returns how many of the block's keys
    /// it bound (negative: unbound), or nil to stop; a block left with none is recycled. The file's count
    /// of pages moves with them.
    @inline(__always)
    private mutating func eachBlock(_ file: UInt32, _ x: UInt64, _ n: Int, create: Bool,
                                    _ body: (UnsafeMutablePointer<Int32>?, Int, Int) -> Int32?) {
        var k = 0
        while k < n {
            let idx = x &+ UInt64(k)
            let offset = Int(idx & UInt64(Self.size - 1))
            let inBlock = min(n - k, Self.size - offset)
            let b = block(file, idx, create: create)
            guard let delta = body(b.map { slots + ($0 * Self.size + offset) }, k, inBlock) else { return }
            if let b, delta != 0 {
                live[b] += delta
                files[Int(file)].pages = UInt32(bitPattern: Int32(bitPattern: files[Int(file)].pages) &+ delta)
                if live[b] == 0 { recycle(b, BlockKey(file: file, block: idx >> Self.shift)) }
            }
            k += inBlock
        }
    }

    /// Whether each key (file, x + k), k < n, is unbound or bound to frame `frame + k`.
    mutating func isFree(file: UInt32, x: UInt64, frame: Int, _ n: Int) -> Bool {
        guard let e = entry(file) else { return true }
        if e.frame >= 0 {
            return e.index < x || e.index - x >= UInt64(n) || Int(e.frame) == frame + Int(e.index - x)
        }
        var unbound = true
        eachBlock(file, x, n, create: false) { s, k, count in
            guard let s else { return 0 }
            let f = Int32(truncatingIfNeeded: frame + k)   // frame indices fit in Int32 (FrameTable)
            for j in 0..<count where s[j] >= 0 && s[j] != f &+ Int32(truncatingIfNeeded: j) { unbound = false; return nil }
            return 0
        }
        return unbound
    }

    /// Binds keys (file, x + k) to frames `frame + k`, k < n.
    mutating func setRun(file: UInt32, x: UInt64, frame: Int, _ n: Int) {
        if n == 1 { set(file: file, index: x, Int32(truncatingIfNeeded: frame)); return }
        let e = fileEntry(file)
        if e.pointee.frame >= 0 { toBlocks(file, e) }
        eachBlock(file, x, n, create: true) { s, k, count in
            let s = s.unsafelyUnwrapped
            var added: Int32 = 0
            var f = Int32(frame + k)
            for j in 0..<count {
                if s[j] < 0 { added &+= 1 }
                s[j] = f
                f &+= 1
            }
            return added
        }
    }

    /// Unbinds each key (file, x + k), k < n, that is bound to frame `frame + k`.
    mutating func removeRun(file: UInt32, x: UInt64, frame: Int, _ n: Int) {
        guard let e = entry(file) else { return }
        if e.frame >= 0 {
            if e.index >= x && e.index - x < UInt64(n) && Int(e.frame) == frame + Int(e.index - x) { files[Int(file)] = FileEntry() }
            return
        }
        eachBlock(file, x, n, create: false) { s, k, count in
            guard let s else { return 0 }
            var gone: Int32 = 0
            let f = Int32(truncatingIfNeeded: frame + k)
            for j in 0..<count where s[j] == f &+ Int32(truncatingIfNeeded: j) {
                s[j] = -1
                gone &+= 1
            }
            return -gone
        }
    }
}
