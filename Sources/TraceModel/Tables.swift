/// Interns byte strings to dense ids. Id 0 is the empty string.
///
/// Lookups hash the raw bytes, so a reader can intern a slice of its input without building a `String`.
public final class StringTable: @unchecked Sendable {
    public private(set) var strings: [String] = []
    /// The interned bytes one after another: string k is `arena[offsets[k] ..< offsets[k + 1]]`; its hash
    /// is `hashes[k]`. Held in buffers of their own (grown by doubling) so a look-up compares hashes,
    /// lengths and bytes with no reference counting.
    private var arena: UnsafeMutablePointer<UInt8>
    private var arenaCapacity = 1 << 14
    private var offsets: UnsafeMutablePointer<Int>
    private var hashes: UnsafeMutablePointer<UInt64>
    private var idCapacity = 1 << 9
    /// Open addressing: string ids, `UInt32.max` where empty.
    private var slots: UnsafeMutablePointer<UInt32>
    private var mask: Int

    public init() {
        arena = .allocate(capacity: arenaCapacity)
        offsets = .allocate(capacity: idCapacity + 1)
        offsets[0] = 0
        hashes = .allocate(capacity: idCapacity)
        slots = .allocate(capacity: 1024)
        slots.initialize(repeating: UInt32.max, count: 1024)
        mask = 1023
        _ = add(UnsafeRawBufferPointer(start: nil, count: 0), hash: Self.hash(UnsafeRawBufferPointer(start: nil, count: 0)))
    }

    deinit {
        arena.deallocate()
        offsets.deallocate()
        hashes.deallocate()
        slots.deallocate()
    }

    public var count: Int { strings.count }

    public subscript(id: StringID) -> String { strings[Int(id)] }

    /// A hash of the bytes, eight at a time.
    @inline(__always)
    static func hash(_ p: UnsafeRawBufferPointer) -> UInt64 {
        let n = p.count
        var h: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ UInt64(n)
        guard let b = p.baseAddress else { return fastMix(h) }
        var i = 0
        while i + 8 <= n {
            h = (h ^ b.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &* 0xFF51_AFD7_ED55_8CCD
            h ^= h >> 29
            i += 8
        }
        if i < n {
            var tail: UInt64 = 0
            var shift: UInt64 = 0
            while i < n {
                tail |= UInt64(b.load(fromByteOffset: i, as: UInt8.self)) << shift
                shift += 8
                i += 1
            }
            h = (h ^ tail) &* 0xFF51_AFD7_ED55_8CCD
        }
        return fastMix(h)
    }

    /// The slot holding the bytes of `p` (hash `h`), or the empty slot where they would go.
    @inline(__always)
    private func probe(_ p: UnsafeRawBufferPointer, _ h: UInt64) -> Int {
        var i = Int(truncatingIfNeeded: h) & mask
        while true {
            let s = slots[i]
            if s == UInt32.max { return i }
            let k = Int(s)
            if hashes[k] == h {
                let from = offsets[k]
                let len = offsets[k + 1] - from
                if len == p.count && (len == 0 || memcmp(arena + from, p.baseAddress!, len) == 0) { return i }
            }
            i = (i + 1) & mask
        }
    }

    /// Interns the bytes of `p`.
    public func intern(_ p: UnsafeRawBufferPointer) -> StringID {
        let h = Self.hash(p)
        let i = probe(p, h)
        if slots[i] != UInt32.max { return slots[i] }
        return add(p, hash: h)
    }

    /// The id of the bytes of `p` when they are interned already, else nil (nothing is added).
    public func lookup(_ p: UnsafeRawBufferPointer) -> StringID? {
        let s = slots[probe(p, Self.hash(p))]
        return s == UInt32.max ? nil : s
    }

    public func intern(_ s: String) -> StringID {
        var s = s
        return s.withUTF8 { intern(UnsafeRawBufferPointer($0)) }
    }

    public func intern(_ b: [UInt8]) -> StringID {
        b.withUnsafeBytes { intern($0) }
    }

    private func add(_ p: UnsafeRawBufferPointer, hash h: UInt64) -> StringID {
        let id = strings.count
        if id == idCapacity {
            let n = idCapacity * 2
            regrow(&offsets, count: idCapacity + 1, capacity: n + 1)
            regrow(&hashes, count: idCapacity, capacity: n)
            idCapacity = n
        }
        let start = offsets[id]
        if start + p.count > arenaCapacity {
            var n = arenaCapacity * 2
            while start + p.count > n { n *= 2 }
            regrow(&arena, count: start, capacity: n)
            arenaCapacity = n
        }
        if let b = p.baseAddress, p.count > 0 {
            (arena + start).update(from: b.assumingMemoryBound(to: UInt8.self), count: p.count)
        }
        offsets[id + 1] = start + p.count
        hashes[id] = h
        strings.append(String(decoding: UnsafeBufferPointer(start: arena + start, count: p.count), as: UTF8.self))
        if strings.count * 2 > mask + 1 { grow() } else { place(id: UInt32(id), hash: h) }
        return UInt32(id)
    }

    private func place(id: UInt32, hash h: UInt64) {
        var i = Int(truncatingIfNeeded: h) & mask
        while slots[i] != UInt32.max { i = (i + 1) & mask }
        slots[i] = id
    }

    private func grow() {
        let n = (mask + 1) * 2
        slots.deallocate()
        slots = .allocate(capacity: n)
        slots.initialize(repeating: UInt32.max, count: n)
        mask = n - 1
        for id in 0..<strings.count { place(id: UInt32(id), hash: hashes[id]) }
    }
}

@inline(__always)
func memEqual(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
    if a.count != b.count { return false }
    if a.count == 0 { return true }
    return memcmp(a.baseAddress!, b.baseAddress!, a.count) == 0
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Interned kernel stacks. A stack is an array of symbol ids, innermost frame first, exactly as the
/// trace recorded it (tracing frames included). Id 0 is "no stack".
public final class StackTable: @unchecked Sendable {
    /// All frames of all stacks, back to back.
    public private(set) var frames: [SymbolID] = []
    /// `starts[id]..<starts[id+1]` are the frames of stack `id`.
    public private(set) var starts: [Int] = [0, 0]
    private var slots: [UInt32]
    private var mask: Int

    public init() {
        slots = Array(repeating: UInt32.max, count: 1024)
        mask = 1023
    }

    /// Number of distinct stacks, including the empty stack 0.
    public var count: Int { starts.count - 1 }

    public func frames(of id: StackID) -> ArraySlice<SymbolID> {
        frames[starts[Int(id)]..<starts[Int(id) + 1]]
    }

    @inline(__always)
    private static func hash(_ p: UnsafeBufferPointer<SymbolID>) -> UInt64 {
        var h: UInt64 = 0x9e37_79b9_7f4a_7c15
        for s in p { h = (h ^ UInt64(s)) &* 0xff51_afd7_ed55_8ccd }
        return h ^ UInt64(p.count)
    }

    /// Interns a stack given innermost frame first. An empty stack is id 0.
    public func intern(_ p: UnsafeBufferPointer<SymbolID>) -> StackID {
        if p.isEmpty { return 0 }
        let h = Self.hash(p)
        var i = Int(truncatingIfNeeded: h) & mask
        while true {
            let s = slots[i]
            if s == UInt32.max { break }
            let a = starts[Int(s)], b = starts[Int(s) + 1]
            if b - a == p.count {
                var same = true
                for k in 0..<p.count where frames[a + k] != p[k] { same = false; break }
                if same { return s }
            }
            i = (i + 1) & mask
        }
        let id = UInt32(count)
        frames.append(contentsOf: p)
        starts.append(frames.count)
        if count * 2 > slots.count {
            slots = Array(repeating: UInt32.max, count: slots.count * 2)
            mask = slots.count - 1
            for sid in 1..<count {
                let f = frames[starts[sid]..<starts[sid + 1]]
                let hh = f.withUnsafeBufferPointer { Self.hash($0) }
                var j = Int(truncatingIfNeeded: hh) & mask
                while slots[j] != UInt32.max { j = (j + 1) & mask }
                slots[j] = UInt32(sid)
            }
        } else {
            var j = Int(truncatingIfNeeded: h) & mask
            while slots[j] != UInt32.max { j = (j + 1) & mask }
            slots[j] = id
        }
        return id
    }

    public func intern(_ a: [SymbolID]) -> StackID {
        a.withUnsafeBufferPointer { intern($0) }
    }
}
