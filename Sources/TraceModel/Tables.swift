/// Interns byte strings to dense ids. Id 0 is the empty string.
///
/// Lookups hash the raw bytes, so a reader can intern a slice of its input without building a `String`.
public final class StringTable: @unchecked Sendable {
    public private(set) var strings: [String] = []
    private var bytes: [[UInt8]] = []
    private var slots: [UInt32]
    private var mask: Int

    public init() {
        slots = Array(repeating: UInt32.max, count: 1024)
        mask = 1023
        _ = insert(hash: Self.hash(UnsafeRawBufferPointer(start: nil, count: 0)), bytes: [], string: "")
    }

    public var count: Int { strings.count }

    public subscript(id: StringID) -> String { strings[Int(id)] }

    @inline(__always)
    static func hash(_ p: UnsafeRawBufferPointer) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in p {
            h = (h ^ UInt64(b)) &* 0x100_0000_01b3
        }
        return h
    }

    /// Interns the bytes of `p`.
    public func intern(_ p: UnsafeRawBufferPointer) -> StringID {
        let h = Self.hash(p)
        var i = Int(truncatingIfNeeded: h) & mask
        while true {
            let s = slots[i]
            if s == UInt32.max { break }
            let cand = bytes[Int(s)]
            if cand.count == p.count && cand.withUnsafeBytes({ memEqual($0, p) }) { return s }
            i = (i + 1) & mask
        }
        let arr = Array(p)
        return insert(hash: h, bytes: arr, string: String(decoding: arr, as: UTF8.self))
    }

    /// The id of the bytes of `p` when they are interned already, else nil (nothing is added).
    public func lookup(_ p: UnsafeRawBufferPointer) -> StringID? {
        var i = Int(truncatingIfNeeded: Self.hash(p)) & mask
        while true {
            let s = slots[i]
            if s == UInt32.max { return nil }
            let cand = bytes[Int(s)]
            if cand.count == p.count && cand.withUnsafeBytes({ memEqual($0, p) }) { return s }
            i = (i + 1) & mask
        }
    }

    public func intern(_ s: String) -> StringID {
        var s = s
        return s.withUTF8 { intern(UnsafeRawBufferPointer($0)) }
    }

    public func intern(_ b: [UInt8]) -> StringID {
        b.withUnsafeBytes { intern($0) }
    }

    private func insert(hash h: UInt64, bytes arr: [UInt8], string: String) -> StringID {
        let id = UInt32(strings.count)
        strings.append(string)
        bytes.append(arr)
        if strings.count * 2 > slots.count { grow() } else { place(id: id, hash: h) }
        return id
    }

    private func place(id: UInt32, hash h: UInt64) {
        var i = Int(truncatingIfNeeded: h) & mask
        while slots[i] != UInt32.max { i = (i + 1) & mask }
        slots[i] = id
    }

    private func grow() {
        slots = Array(repeating: UInt32.max, count: slots.count * 2)
        mask = slots.count - 1
        for (id, b) in bytes.enumerated() {
            place(id: UInt32(id), hash: b.withUnsafeBytes { Self.hash($0) })
        }
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
