/// A `/proc/kallsyms` table for turning kernel addresses into function names.
///
/// Only text symbols (`t`, `T`, `w`, `W`) are kept; module symbols keep their `[module]` tag apart.
public struct Kallsyms: Sendable {
    public struct Symbol: Sendable {
        public var address: UInt64
        public var name: String
        public var module: String?
    }
    /// Sorted addresses and, for each, where its name starts in the text (the name runs to the next
    /// blank; a `[module]` tag may follow). Names and modules are found again only when a symbol is
    /// looked up.
    private var addresses: [UInt64] = []
    private var nameStarts: [Int32] = []

    /// Which of several symbols at one address names it (aliases such as `__do_sys_vfork`,
    /// `__ia32_sys_vfork`, `__x64_sys_vfork`): trace-cmd takes the first listed; perf the last listed
    /// (its symbol ends are set from the next symbol's start, so only the last alias has a size).
    public enum Preference: Sendable { case firstListed, perf }

    /// The kallsyms text: part of an array, or memory an owner keeps valid (a file mapping).
    private enum Text: @unchecked Sendable {
        case bytes(ArraySlice<UInt8>)
        case external(UnsafeRawBufferPointer, owner: AnyObject)
    }
    private var text: Text = .bytes([])

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
        text = .bytes(bytes)
        (addresses, nameStarts) = bytes.withUnsafeBytes { Self.index($0) }
    }

    /// Parses kallsyms text in memory that `owner` keeps valid for as long as it lives (a file mapping);
    /// the memory is kept, not copied.
    public init(text bytes: UnsafeRawBufferPointer, owner: AnyObject) {
        guard bytes.count < Int(Int32.max) else { return }
        text = .external(bytes, owner: owner)
        (addresses, nameStarts) = Self.index(bytes)
    }

    private func withText<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        switch text {
        case .bytes(let b): return b.withUnsafeBytes(body)
        case .external(let p, let owner): return withExtendedLifetime(owner) { body(p) }
        }
    }

    /// Addresses of the text symbols (`t`, `T`, `w`, `W`, non-zero address) in address order, equal
    /// addresses in file order, with the offset of each name.
    private static func index(_ t: UnsafeRawBufferPointer) -> ([UInt64], [Int32]) {
        guard let p = t.baseAddress else { return ([], []) }
        let n = t.count
        var addrs: [UInt64] = []
        var starts: [Int32] = []
        addrs.reserveCapacity(n / 40 + 16)
        starts.reserveCapacity(n / 40 + 16)
        var sorted = true
        var last: UInt64 = 0
        var i = 0
        while i < n {
            var k = i
            var addr: UInt64 = 0
            if i + 17 <= n, p.load(fromByteOffset: i + 16, as: UInt8.self) == 0x20, let a = hex16(p + i) {
                // A 64-bit kernel's line: 16 digits and a blank.
                addr = a
                k = i + 16
            } else {
                while k < n {
                    let d = hexValue(p.load(fromByteOffset: k, as: UInt8.self))
                    if d > 15 { break }
                    addr = addr &<< 4 | UInt64(d)
                    k += 1
                }
            }
            let j = lineEnd(p, from: k, n)
            if k > i && k + 3 < j && p.load(fromByteOffset: k, as: UInt8.self) == 0x20
                && p.load(fromByteOffset: k + 2, as: UInt8.self) == 0x20 && addr != 0 {
                let ty = p.load(fromByteOffset: k + 1, as: UInt8.self) | 0x20
                if ty == UInt8(ascii: "t") || ty == UInt8(ascii: "w") {
                    if addr < last { sorted = false }
                    last = addr
                    addrs.append(addr)
                    starts.append(Int32(k + 3))
                }
            }
            i = j + 1
        }
        if !sorted {
            // Module symbols are listed per module, not by address. Equal addresses keep file order (the
            // name offset grows with the line).
            var pairs: [(UInt64, Int32)] = []
            pairs.reserveCapacity(addrs.count)
            for x in 0..<addrs.count { pairs.append((addrs[x], starts[x])) }
            pairs.sort { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
            for x in 0..<pairs.count {
                addrs[x] = pairs[x].0
                starts[x] = pairs[x].1
            }
        }
        return (addrs, starts)
    }

    /// The value of 16 hexadecimal digits at `p`, or nil when one of them is not a digit.
    @inline(__always)
    private static func hex16(_ p: UnsafeRawPointer) -> UInt64? {
        guard let hi = hex8(p.loadUnaligned(as: UInt64.self)),
              let lo = hex8(p.loadUnaligned(fromByteOffset: 8, as: UInt64.self)) else { return nil }
        return hi << 32 | lo
    }

    /// The value of 8 hexadecimal digits (either case) loaded as one word, or nil when one of them is not
    /// a digit; eight bytes at a time: a kallsyms file is mostly addresses.
    @inline(__always)
    static func hex8(_ w: UInt64) -> UInt64? {
        let x = UInt64(littleEndian: w)  // first digit in the low byte
        let ones: UInt64 = 0x0101_0101_0101_0101
        let high: UInt64 = 0x8080_8080_8080_8080
        if x & high != 0 { return nil }
        // Per byte, the high bit says: in '0'...'9'; in 'a'...'f' once folded to lower case.
        let digits = (x &+ 0x50 &* ones) & ~(x &+ 0x46 &* ones) & high
        let y = x | 0x2020_2020_2020_2020
        let letters = (y &+ 0x1F &* ones) & ~(y &+ 0x19 &* ones) & high
        if digits | letters != high { return nil }
        // Nibble values, then pairs, quads and the eight merged with the first digit most significant.
        let v = (x & 0x0F0F_0F0F_0F0F_0F0F) &+ (letters >> 7) &* 9
        var t = ((v & 0x000F_000F_000F_000F) << 4) | ((v >> 8) & 0x000F_000F_000F_000F)
        t = ((t & 0x0000_00FF_0000_00FF) << 8) | ((t >> 16) & 0x0000_00FF_0000_00FF)
        return ((t & 0xFFFF) << 16) | ((t >> 32) & 0xFFFF)
    }

    /// Offset of the first newline at or after `from` (or `n`), eight bytes at a time.
    @inline(__always)
    private static func lineEnd(_ p: UnsafeRawPointer, from: Int, _ n: Int) -> Int {
        var e = from
        while e + 8 <= n {
            let x = UInt64(littleEndian: p.loadUnaligned(fromByteOffset: e, as: UInt64.self)) ^ 0x0A0A_0A0A_0A0A_0A0A
            // High bit set in each zero byte of x (exact for the first one, the lowest).
            let z = (x &- 0x0101_0101_0101_0101) & ~x & 0x8080_8080_8080_8080
            if z != 0 { return e + z.trailingZeroBitCount >> 3 }
            e += 8
        }
        while e < n && p.load(fromByteOffset: e, as: UInt8.self) != 0x0A { e += 1 }
        return e
    }

    public var symbols: [Symbol] { (0..<addresses.count).map(symbol(at:)) }

    /// Where the name and the module of symbol `i` lie in the text (offsets from its start).
    private static func spans(_ t: UnsafeRawBufferPointer, _ ns: Int) -> (name: Range<Int>, module: Range<Int>?) {
        let j = t.count
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

    func symbol(at i: Int) -> Symbol {
        let ns = Int(nameStarts[i])
        return withText { t in
            let s = Self.spans(t, ns)
            let name = String(decoding: UnsafeRawBufferPointer(rebasing: t[s.name]), as: UTF8.self)
            let module = s.module.map { String(decoding: UnsafeRawBufferPointer(rebasing: t[$0]), as: UTF8.self) }
            return Symbol(address: addresses[i], name: name, module: module)
        }
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
        let ns = Int(nameStarts[i])
        return withText { t in body(UnsafeRawBufferPointer(rebasing: t[Self.spans(t, ns).name])) }
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
