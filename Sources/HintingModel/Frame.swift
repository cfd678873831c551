import TraceModel

/// The state the model keeps per 4 KiB page frame (spec §1.4 and §9). 56 bytes; frames live in one flat
/// array indexed through a pfn-keyed open-addressing table, so the replay allocates nothing per event.
public struct Frame: Sendable {
    public var pfn: UInt64 = 0
    /// Cache key while in the page cache (`flags & .inCache`).
    public var ino: UInt64 = 0
    public var index: UInt64 = 0
    public var dev: UInt32 = 0
    public var flags: FrameFlags = []
    public var refcount: Int16 = 0
    public var mapcount: Int16 = 0
    public var guestRaw: UInt8 = GuestState.unused.rawValue
    public var hostRaw: UInt8 = HostState.zero.rawValue
    /// Order of the folio this frame heads (0 for tail frames and order-0 folios).
    public var order: UInt8 = 0
    /// Guest LRU list (0 inactive_anon ... 4 unevictable), 255 when on none.
    public var lru: UInt8 = 255
    // Intrusive links: the host LRU and the simulated guest LRU (frame indices, -1 = none).
    var hostPrev: Int32 = -1, hostNext: Int32 = -1
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
}

/// pfn → frame index, and the frames. Frames live in one manually grown buffer (no copy-on-write check
/// on every field update); the index is direct: chunks of 4096 pfns (16 MiB of guest memory) hold the
/// frame index of each pfn, found through a small map of chunk numbers, the last chunk cached — the
/// consecutive pfns of a large folio cost one array access each. Frames are never removed: a freed frame
/// keeps its slot (state U), so memory grows with distinct frames, not with trace length.
public final class FrameTable {
    static let chunkShift = 12
    static let chunkSize = 1 << chunkShift
    private var base: UnsafeMutablePointer<Frame>
    private var capacity: Int
    public private(set) var count = 0
    private var chunkOf = FastMap<UInt64, Int32>(emptyKey: 0, emptyValue: -1, capacity: 64)
    private var chunks: [UnsafeMutablePointer<Int32>] = []
    private var lastChunkNumber = UInt64.max
    private var lastChunk: UnsafeMutablePointer<Int32>? = nil

    public init(capacity: Int = 1 << 14) {
        self.capacity = max(16, capacity)
        base = UnsafeMutablePointer<Frame>.allocate(capacity: self.capacity)
    }

    deinit {
        base.deinitialize(count: count)
        base.deallocate()
        for c in chunks { c.deallocate() }
    }

    /// The chunk of pfns holding `pfn`, if any frame of it was created.
    @inline(__always)
    private func chunk(_ pfn: UInt64, create: Bool) -> UnsafeMutablePointer<Int32>? {
        let n = pfn >> UInt64(Self.chunkShift)
        if n == lastChunkNumber { return lastChunk }
        var c: UnsafeMutablePointer<Int32>
        if let k = chunkOf[n] {
            c = chunks[Int(k)]
        } else {
            guard create else { return nil }
            c = UnsafeMutablePointer<Int32>.allocate(capacity: Self.chunkSize)
            c.initialize(repeating: -1, count: Self.chunkSize)
            chunkOf.set(n, Int32(chunks.count))
            chunks.append(c)
        }
        lastChunkNumber = n
        lastChunk = c
        return c
    }

    /// Index of `pfn`, if the model has seen it.
    @inline(__always)
    public func find(_ pfn: UInt64) -> Int? {
        guard let c = chunk(pfn, create: false) else { return nil }
        let i = c[Int(pfn & UInt64(Self.chunkSize - 1))]
        return i >= 0 ? Int(i) : nil
    }

    /// Index of `pfn`, creating a fresh frame (U, z) when new.
    @inline(__always)
    public func index(_ pfn: UInt64) -> Int {
        let c = chunk(pfn, create: true)!
        let slot = Int(pfn & UInt64(Self.chunkSize - 1))
        let i = c[slot]
        if i >= 0 { return Int(i) }
        if count == capacity { grow() }
        var f = Frame()
        f.pfn = pfn
        (base + count).initialize(to: f)
        c[slot] = Int32(count)
        count += 1
        return count - 1
    }

    private func grow() {
        let n = capacity * 2
        let b = UnsafeMutablePointer<Frame>.allocate(capacity: n)
        b.moveInitialize(from: base, count: count)
        base.deallocate()
        base = b
        capacity = n
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

    /// Bytes held per tracked frame: the frames' buffer and the pfn chunks.
    public var bytesPerFrame: Double {
        count == 0 ? 0 : Double(MemoryLayout<Frame>.stride * capacity + chunks.count * Self.chunkSize * 4) / Double(count)
    }
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

/// (dev, ino, index) → frame index of the page cache. Indices are grouped in blocks of 64 consecutive
/// pages of one file, found through a `FastMap`, the last block cached: a read of a range, or a large
/// folio's pages, cost one hash probe per 64 pages. A block whose pages all left the cache is recycled.
struct PageCacheIndex {
    struct BlockKey: FastHashable {
        var dev: UInt32
        var ino: UInt64
        var block: UInt64
        var fastHash: UInt64 { fastMix((ino &* 0x9E37_79B9_7F4A_7C15) ^ block ^ (UInt64(dev) &* 0xC2B2_AE3D_27D4_EB4F)) }
    }
    static let shift: UInt64 = 6
    static let size = 1 << 6
    private var blockOf = FastMap<BlockKey, Int32>(emptyKey: BlockKey(dev: 0, ino: 0, block: 0), emptyValue: -1, capacity: 1 << 12)
    /// Frame indices, `size` per block, -1 where no page is cached.
    private var slots: [Int32] = []
    /// Cached pages per block.
    private var live: [Int32] = []
    private var free: [Int32] = []
    private var last = BlockKey(dev: 0, ino: UInt64.max, block: UInt64.max)
    private var lastBlock: Int32 = -1

    @inline(__always)
    private mutating func block(_ k: CacheKey, create: Bool) -> Int? {
        let bk = BlockKey(dev: k.dev, ino: k.ino, block: k.index >> Self.shift)
        if bk == last { return lastBlock >= 0 ? Int(lastBlock) : nil }
        var b = blockOf[bk] ?? -1
        if b < 0 && create {
            if let f = free.popLast() {
                b = f
            } else {
                b = Int32(live.count)
                live.append(0)
                slots.append(contentsOf: repeatElement(-1, count: Self.size))
            }
            blockOf.set(bk, b)
        }
        if b < 0 { return nil }   // a miss is not cached: the block may be created later
        last = bk
        lastBlock = b
        return Int(b)
    }

    subscript(_ k: CacheKey) -> Int32? {
        mutating get {
            guard let b = block(k, create: false) else { return nil }
            let v = slots[b * Self.size + Int(k.index & UInt64(Self.size - 1))]
            return v >= 0 ? v : nil
        }
    }

    mutating func set(_ k: CacheKey, _ v: Int32) {
        let b = block(k, create: true)!
        let s = b * Self.size + Int(k.index & UInt64(Self.size - 1))
        if slots[s] < 0 { live[b] += 1 }
        slots[s] = v
    }

    mutating func remove(_ k: CacheKey) {
        guard let b = block(k, create: false) else { return }
        let s = b * Self.size + Int(k.index & UInt64(Self.size - 1))
        guard slots[s] >= 0 else { return }
        slots[s] = -1
        live[b] -= 1
        if live[b] == 0 {
            blockOf.remove(BlockKey(dev: k.dev, ino: k.ino, block: k.index >> Self.shift))
            free.append(Int32(b))
            last = BlockKey(dev: 0, ino: UInt64.max, block: UInt64.max)
            lastBlock = -1
        }
    }
}
