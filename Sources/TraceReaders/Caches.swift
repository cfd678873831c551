import TraceModel
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Kernel stacks as the trace recorded them (raw return addresses) mapped to their interned `StackID`,
/// so a stack seen before is found with one hash of its addresses instead of a symbol lookup per frame.
struct RawStackCache {
    private var addresses: [UInt64] = []
    /// Per entry: start in `addresses`, frame count, stack id.
    private var entries: [(start: Int, count: Int, id: StackID)] = []
    private var slots: [Int32] = Array(repeating: -1, count: 256)
    private var mask = 255

    @inline(__always)
    static func hash(_ p: UnsafeBufferPointer<UInt64>) -> Int {
        // Four independent lanes: a stack is tens of addresses, and one multiply chain over all of them
        // is a long dependency.
        var h0: UInt64 = 0x9e37_79b9_7f4a_7c15 ^ UInt64(p.count), h1: UInt64 = 0x6a09_e667_f3bc_c909
        var h2: UInt64 = 0xbb67_ae85_84ca_a73b, h3: UInt64 = 0x3c6e_f372_fe94_f82b
        var i = 0
        let n = p.count
        while i + 4 <= n {
            h0 = (h0 ^ p[i]) &* 0xff51_afd7_ed55_8ccd
            h1 = (h1 ^ p[i + 1]) &* 0xc4ce_b9fe_1a85_ec53
            h2 = (h2 ^ p[i + 2]) &* 0xff51_afd7_ed55_8ccd
            h3 = (h3 ^ p[i + 3]) &* 0xc4ce_b9fe_1a85_ec53
            i += 4
        }
        while i < n {
            h0 = (h0 ^ p[i]) &* 0xff51_afd7_ed55_8ccd
            i += 1
        }
        var h = h0 ^ (h1 >> 29 | h1 << 35) ^ (h2 >> 17 | h2 << 47) ^ (h3 >> 41 | h3 << 23)
        h ^= h >> 33
        h &*= 0xff51_afd7_ed55_8ccd
        h ^= h >> 33
        return Int(truncatingIfNeeded: h)
    }

    /// The stack id recorded for these addresses, if any.
    func find(_ p: UnsafeBufferPointer<UInt64>) -> StackID? {
        var i = Self.hash(p) & mask
        return slots.withUnsafeBufferPointer { sl in
            entries.withUnsafeBufferPointer { en in
                addresses.withUnsafeBufferPointer { a in
                    while true {
                        let s = sl[i]
                        if s < 0 { return nil }
                        let e = en[Int(s)]
                        if e.count == p.count && (p.count == 0 || memcmp(a.baseAddress! + e.start, p.baseAddress!, 8 * p.count) == 0) {
                            return e.id
                        }
                        i = (i + 1) & mask
                    }
                }
            }
        }
    }

    /// Records the stack id of these addresses (not already recorded).
    mutating func insert(_ p: UnsafeBufferPointer<UInt64>, _ id: StackID) {
        // Bounded: a trace with very many distinct stacks just stops caching new ones.
        if entries.count >= 1 << 20 { return }
        entries.append((addresses.count, p.count, id))
        addresses.append(contentsOf: p)
        if entries.count * 2 > slots.count {
            slots = Array(repeating: -1, count: slots.count * 2)
            mask = slots.count - 1
            for (n, en) in entries.enumerated() {
                let h = addresses.withUnsafeBufferPointer { Self.hash(UnsafeBufferPointer(rebasing: $0[en.start..<(en.start + en.count)])) }
                var i = h & mask
                while slots[i] >= 0 { i = (i + 1) & mask }
                slots[i] = Int32(n)
            }
        } else {
            var i = Self.hash(p) & mask
            while slots[i] >= 0 { i = (i + 1) & mask }
            slots[i] = Int32(entries.count - 1)
        }
    }
}

/// A pid → interned string map (comm of each task) with a cheap integer hash.
struct PidMap {
    private var keys: [Int32]
    private var values: [StringID]
    private var used: [Bool]
    private var mask: Int
    private(set) var count = 0

    init() {
        keys = Array(repeating: 0, count: 64)
        values = Array(repeating: 0, count: 64)
        used = Array(repeating: false, count: 64)
        mask = 63
    }

    @inline(__always)
    static func slot(_ k: Int32, _ mask: Int) -> Int {
        Int(truncatingIfNeeded: (UInt64(UInt32(bitPattern: k)) &* 0x9e37_79b9_7f4a_7c15) >> 32) & mask
    }

    subscript(_ k: Int32) -> StringID? {
        get {
            var i = Self.slot(k, mask)
            while used[i] {
                if keys[i] == k { return values[i] }
                i = (i + 1) & mask
            }
            return nil
        }
        set {
            // Only insertion and update are needed (comms are never forgotten).
            guard let v = newValue else { return }
            var i = Self.slot(k, mask)
            while used[i] {
                if keys[i] == k { values[i] = v; return }
                i = (i + 1) & mask
            }
            keys[i] = k
            values[i] = v
            used[i] = true
            count += 1
            if count * 2 > keys.count { grow() }
        }
    }

    private mutating func grow() {
        let ok = keys, ov = values, ou = used
        let n = keys.count * 2
        keys = Array(repeating: 0, count: n)
        values = Array(repeating: 0, count: n)
        used = Array(repeating: false, count: n)
        mask = n - 1
        for j in 0..<ok.count where ou[j] {
            var i = Self.slot(ok[j], mask)
            while used[i] { i = (i + 1) & mask }
            keys[i] = ok[j]
            values[i] = ov[j]
            used[i] = true
        }
    }
}
