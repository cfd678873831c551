/// A `/proc/kallsyms` table for turning kernel addresses into function names.
///
/// Only text symbols (`t`, `T`, `w`, `W`) are kept; module symbols keep their `[module]` tag apart.
public struct Kallsyms: Sendable {
    public struct Symbol: Sendable {
        public var address: UInt64
        public var name: String
        public var module: String?
    }
    /// Sorted addresses and, for each, where its name (and module) lie in `text`.
    private var addresses: [UInt64] = []
    private var spans: [(nameStart: Int32, nameLen: Int32, modStart: Int32, modLen: Int32)] = []

    /// Which of several symbols at one address names it (aliases such as `__do_sys_vfork`,
    /// `__ia32_sys_vfork`, `__x64_sys_vfork`): trace-cmd takes the first listed; perf the last listed
    /// (its symbol ends are set from the next symbol's start, so only the last alias has a size).
    public enum Preference: Sendable { case firstListed, perf }
    private var text: [UInt8] = []

    public init() {}

    public var isEmpty: Bool { addresses.isEmpty }
    public var count: Int { addresses.count }

    /// Parses kallsyms text (`address type name [module]` per line). Lines that do not parse are skipped.
    /// All-zero addresses (kallsyms read without privilege) give an empty table. Names stay bytes until
    /// looked up.
    public init(text bytes: [UInt8]) {
        text = bytes
        var entries: [(UInt64, Int32, Int32, Int32, Int32, UInt8)] = []
        entries.reserveCapacity(bytes.count / 48)
        bytes.withUnsafeBufferPointer { t in
            var i = 0
            let n = t.count
            while i < n {
                var j = i
                while j < n && t[j] != 0x0A { j += 1 }
                var k = i
                var addr: UInt64 = 0
                var digits = 0
                while k < j, let d = hexDigit(t[k]) { addr = addr &<< 4 | UInt64(d); k += 1; digits += 1 }
                if digits > 0 && k + 3 < j && t[k] == 0x20 && t[k + 2] == 0x20 && addr != 0 {
                    let ty = t[k + 1] | 0x20
                    if ty == UInt8(ascii: "t") || ty == UInt8(ascii: "w") {
                        let ns = k + 3
                        var e = ns
                        while e < j && t[e] != 0x20 && t[e] != 0x09 { e += 1 }
                        var m = e
                        while m < j && (t[m] == 0x20 || t[m] == 0x09) { m += 1 }
                        var ms = 0, ml = 0
                        if m < j && t[m] == UInt8(ascii: "[") {
                            var me = m + 1
                            while me < j && t[me] != UInt8(ascii: "]") { me += 1 }
                            ms = m + 1
                            ml = me - ms
                        }
                        entries.append((addr, Int32(ns), Int32(e - ns), Int32(ms), Int32(ml), t[k + 1]))
                    }
                }
                i = j + 1
            }
        }
        // Equal addresses keep file order (the name offset grows with the line).
        entries.sort { $0.0 != $1.0 ? $0.0 < $1.0 : $0.1 < $1.1 }
        addresses = entries.map(\.0)
        spans = entries.map { ($0.1, $0.2, $0.3, $0.4) }
    }

    public var symbols: [Symbol] { (0..<addresses.count).map(symbol(at:)) }

    func symbol(at i: Int) -> Symbol {
        let s = spans[i]
        let name = String(decoding: text[Int(s.nameStart)..<Int(s.nameStart + s.nameLen)], as: UTF8.self)
        let module = s.modLen > 0 ? String(decoding: text[Int(s.modStart)..<Int(s.modStart + s.modLen)], as: UTF8.self) : nil
        return Symbol(address: addresses[i], name: name, module: module)
    }

    /// The symbol containing `address` (the last symbol at or below it), with the offset into it.
    /// Addresses below the first symbol, or more than 1 MiB past the last one, do not resolve.
    public func lookup(_ address: UInt64, prefer: Preference = .firstListed) -> (symbol: Symbol, offset: UInt64)? {
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
        return (symbol(at: pick), address - a)
    }


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
