/// A `/proc/kallsyms` table for turning kernel addresses into function names.
///
/// Only text symbols (`t`, `T`, `w`, `W`) are kept; module symbols keep their `[module]` tag apart.
public struct Kallsyms: Sendable {
    public struct Symbol: Sendable {
        public var address: UInt64
        public var name: String
        public var module: String?
    }
    public private(set) var symbols: [Symbol] = []

    public init() {}

    public var isEmpty: Bool { symbols.isEmpty }

    /// Parses kallsyms text (`address type name [module]` per line). Lines that do not parse are skipped.
    /// All-zero addresses (kallsyms read without privilege) give an empty table.
    public init(text: [UInt8]) {
        var out: [Symbol] = []
        out.reserveCapacity(text.count / 40)
        var i = 0
        let n = text.count
        while i < n {
            var j = i
            while j < n && text[j] != 0x0A { j += 1 }
            // address
            var k = i
            var addr: UInt64 = 0
            var digits = 0
            while k < j, let d = hexDigit(text[k]) { addr = addr &<< 4 | UInt64(d); k += 1; digits += 1 }
            if digits > 0 && k + 3 < j && text[k] == 0x20 {
                let t = text[k + 1]
                if (t == UInt8(ascii: "t") || t == UInt8(ascii: "T") || t == UInt8(ascii: "w") || t == UInt8(ascii: "W"))
                    && text[k + 2] == 0x20 && addr != 0 {
                    var e = k + 3
                    while e < j && text[e] != 0x20 && text[e] != 0x09 { e += 1 }
                    let name = String(decoding: text[(k + 3)..<e], as: UTF8.self)
                    var module: String? = nil
                    var m = e
                    while m < j && (text[m] == 0x20 || text[m] == 0x09) { m += 1 }
                    if m < j && text[m] == UInt8(ascii: "[") {
                        var me = m + 1
                        while me < j && text[me] != UInt8(ascii: "]") { me += 1 }
                        module = String(decoding: text[(m + 1)..<me], as: UTF8.self)
                    }
                    out.append(Symbol(address: addr, name: name, module: module))
                }
            }
            i = j + 1
        }
        out.sort { $0.address < $1.address }
        symbols = out
    }

    /// The symbol containing `address` (the last symbol at or below it), with the offset into it.
    /// Addresses below the first symbol, or more than 1 MiB past the last one, do not resolve.
    public func lookup(_ address: UInt64) -> (symbol: Symbol, offset: UInt64)? {
        var lo = 0, hi = symbols.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if symbols[mid].address <= address { lo = mid + 1 } else { hi = mid }
        }
        if lo == 0 { return nil }
        let s = symbols[lo - 1]
        if lo == symbols.count && address - s.address > 1 << 20 { return nil }
        return (s, address - s.address)
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
