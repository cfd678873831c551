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

/// pfn → frame index, open addressing with linear probing. Frames are never removed: a freed frame
/// keeps its slot (state U), so memory grows with distinct frames, not with trace length.
public struct FrameTable {
    public private(set) var frames: [Frame] = []
    private var keys: [UInt64]
    private var slots: [Int32]
    private var mask: Int

    public init(capacity: Int = 1 << 16) {
        var c = 1024
        while c < capacity * 2 { c <<= 1 }
        keys = Array(repeating: UInt64.max, count: c)
        slots = Array(repeating: -1, count: c)
        mask = c - 1
        frames.reserveCapacity(capacity)
    }

    public var count: Int { frames.count }

    @inline(__always)
    static func hash(_ k: UInt64) -> Int {
        Int(truncatingIfNeeded: (k &* 0x9E37_79B9_7F4A_7C15) >> 20)
    }

    /// Index of `pfn`, if the model has seen it.
    @inline(__always)
    public func find(_ pfn: UInt64) -> Int? {
        var i = Self.hash(pfn) & mask
        while true {
            let k = keys[i]
            if k == pfn { return Int(slots[i]) }
            if k == UInt64.max { return nil }
            i = (i + 1) & mask
        }
    }

    /// Index of `pfn`, creating a fresh frame (U, z) when new.
    @inline(__always)
    public mutating func index(_ pfn: UInt64) -> Int {
        var i = Self.hash(pfn) & mask
        while true {
            let k = keys[i]
            if k == pfn { return Int(slots[i]) }
            if k == UInt64.max { break }
            i = (i + 1) & mask
        }
        let idx = frames.count
        var f = Frame()
        f.pfn = pfn
        frames.append(f)
        keys[i] = pfn
        slots[i] = Int32(idx)
        if frames.count * 2 > keys.count { grow() }
        return idx
    }

    private mutating func grow() {
        let n = keys.count * 2
        keys = Array(repeating: UInt64.max, count: n)
        slots = Array(repeating: -1, count: n)
        mask = n - 1
        for (idx, f) in frames.enumerated() {
            var i = Self.hash(f.pfn) & mask
            while keys[i] != UInt64.max { i = (i + 1) & mask }
            keys[i] = f.pfn
            slots[i] = Int32(idx)
        }
    }

    @inline(__always)
    public subscript(i: Int) -> Frame {
        get { frames[i] }
        _modify { yield &frames[i] }
    }

    /// Bytes held per tracked frame (frame + table slots).
    public var bytesPerFrame: Double {
        frames.isEmpty ? 0 : Double(MemoryLayout<Frame>.stride * frames.capacity + keys.count * 12) / Double(frames.count)
    }
}

/// A doubly linked list threaded through frames (the host LRU, or one guest LRU list).
struct FrameList {
    var head: Int32 = -1   // hot end
    var tail: Int32 = -1   // cold end
    var count = 0
}

/// The cache key of a page: (s_dev, i_ino, index).
public struct CacheKey: Hashable, Sendable {
    public var dev: UInt32
    public var ino: UInt64
    public var index: UInt64
    public init(dev: UInt32, ino: UInt64, index: UInt64) {
        self.dev = dev
        self.ino = ino
        self.index = index
    }
}
