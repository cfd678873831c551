/// A `/proc/kallsyms` table for turning kernel addresses into function names.
///
/// Only text symbols (`t`, `T`, `w`, `W`) are kept; module symbols keep their `[module]` tag apart.
public struct Kallsyms: Sendable {
    public struct Symbol: Sendable {
        public var address: UInt64
        public var name: String
        public var module: String?
    }
    /// Sorted addresses and, for each, where its name starts in `text` (the name runs to the next blank;
    /// a `[module]` tag may follow). Names and modules are found again only when a symbol is looked up.
    private var addresses: [UInt64] = []
    private var nameStarts: [Int32] = []

    /// Which of several symbols at one address names it (aliases such as `__do_sys_vfork`,
    /// `__ia32_sys_vfork`, `__x64_sys_vfork`): trace-cmd takes the first listed; perf the last listed
    /// (its symbol ends are set from the next symbol's start, so only the last alias has a size).
    public enum Preference: Sendable { case firstListed, perf }
    private var text: ArraySlice<UInt8> = []

    public init() {}

    public var isEmpty: Bool { addresses.isEmpty }
    public var count: Int { addresses.count }

    /// Parses kallsyms text (`address type name [module]` per line). Lines that do not parse are skipped.
    /// All-zero addresses (kallsyms read without privilege) give an empty table. Names stay bytes until
    /// looked up.
    public init(text bytes: [UInt8]) {
        self.init(text: bytes[...])
    }

    /// Parses kallsyms text held in part of a larger buffer (kept, not copied).
    public init(text bytes: ArraySlice<UInt8>) {
        // Offsets are kept as Int32: a larger text is not a kallsyms file.
        guard bytes.count < Int(Int32.max) else { return }
        text = bytes
        var addrs: [UInt64] = []
        var starts: [Int32] = []
        addrs.reserveCapacity(bytes.count / 40 + 16)
        starts.reserveCapacity(bytes.count / 40 + 16)
        var sorted = true
        var last: UInt64 = 0
        bytes.withUnsafeBufferPointer { t in
            guard let base = t.baseAddress else { return }
            let n = t.count
            var i = 0
            while i < n {
                // End of this line.
                var j = n
                if let nl = memchr(base + i, 0x0A, n - i) {
                    j = UnsafePointer<UInt8>(nl.assumingMemoryBound(to: UInt8.self)) - base
                }
                var k = i
                var addr: UInt64 = 0
                while k < j {
                    let d = hexValue(base[k])
                    if d > 15 { break }
                    addr = addr &<< 4 | UInt64(d)
                    k += 1
                }
                if k > i && k + 3 < j && base[k] == 0x20 && base[k + 2] == 0x20 && addr != 0 {
                    let ty = base[k + 1] | 0x20
                    if ty == UInt8(ascii: "t") || ty == UInt8(ascii: "w") {
                        if addr < last { sorted = false }
                        last = addr
                        addrs.append(addr)
                        starts.append(Int32(k + 3))
                    }
                }
                i = j + 1
            }
        }
        if !sorted {
            // Equal addresses keep file order (the name offset grows with the line).
            var order = Array(0..<addrs.count)
            order.sort { addrs[$0] != addrs[$1] ? addrs[$0] < addrs[$1] : starts[$0] < starts[$1] }
            addrs = order.map { addrs[$0] }
            starts = order.map { starts[$0] }
        }
        addresses = addrs
        nameStarts = starts
    }

    public var symbols: [Symbol] { (0..<addresses.count).map(symbol(at:)) }

    /// Where the name and the module of symbol `i` lie in `text` (offsets from its start).
    private func spans(_ i: Int) -> (name: Range<Int>, module: Range<Int>?) {
        text.withUnsafeBufferPointer { t in
            let j = t.count
            let ns = Int(nameStarts[i])
            var e = ns
            while e < j && t[e] != 0x20 && t[e] != 0x09 && t[e] != 0x0A { e += 1 }
            var m = e
            while m < j && (t[m] == 0x20 || t[m] == 0x09) { m += 1 }
            var module: Range<Int>? = nil
            if m < j && t[m] == UInt8(ascii: "[") {
                var me = m + 1
                while me < j && t[me] != UInt8(ascii: "]") && t[me] != 0x0A { me += 1 }
                if me > m + 1 { module = (m + 1)..<me }
            }
            return (ns..<e, module)
        }
    }

    func symbol(at i: Int) -> Symbol {
        let s = spans(i)
        let b = text.startIndex
        let name = String(decoding: text[(b + s.name.lowerBound)..<(b + s.name.upperBound)], as: UTF8.self)
        let module = s.module.map { String(decoding: text[(b + $0.lowerBound)..<(b + $0.upperBound)], as: UTF8.self) }
        return Symbol(address: addresses[i], name: name, module: module)
    }

    /// Index of the symbol containing `address`, with the offset into it.
    private func find(_ address: UInt64, prefer: Preference) -> (index: Int, offset: UInt64)? {
        var lo = 0, hi = addresses.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if addresses[mid] <= address { lo = mid + 1 } else { hi = mid }
        }
        if lo == 0 { return nil }
        let a = addresses[lo - 1]
        if lo == addresses.count && address - a > 1 << 20 { return nil }
        var first = lo - 1
        while first > 0 && addresses[first - 1] == a { first -= 1 }
        let pick = prefer == .perf ? lo - 1 : first
        return (pick, address - a)
    }

    /// The symbol containing `address` (the last symbol at or below it), with the offset into it.
    /// Addresses below the first symbol, or more than 1 MiB past the last one, do not resolve.
    public func lookup(_ address: UInt64, prefer: Preference = .firstListed) -> (symbol: Symbol, offset: UInt64)? {
        guard let (i, off) = find(address, prefer: prefer) else { return nil }
        return (symbol(at: i), off)
    }

    /// Like `lookup`, but hands the name's bytes to `body` without building a `String`.
    public func withName<R>(_ address: UInt64, prefer: Preference = .firstListed,
                            _ body: (UnsafeRawBufferPointer) -> R) -> R? {
        guard let (i, _) = find(address, prefer: prefer) else { return nil }
        let r = spans(i).name
        return text.withUnsafeBytes { body(UnsafeRawBufferPointer(rebasing: $0[r])) }
    }
}

/// Value of a hexadecimal digit, or 0xFF.
@inline(__always)
func hexValue(_ c: UInt8) -> UInt8 {
    let d = c &- 0x30
    if d < 10 { return d }
    let l = (c | 0x20) &- 0x61
    return l < 6 ? l + 10 : 0xFF
}

@inline(__always)
public func hexDigit(_ c: UInt8) -> UInt8? {
    switch c {
    case 0x30...0x39: return c - 0x30
    case 0x61...0x66: return c - 0x61 + 10
    case 0x41...0x46: return c - 0x41 + 10
    default: return nil
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
