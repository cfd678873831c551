#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Turns kernel stacks into call sites that compare across kernel versions.
///
/// Rules and renames are data: `Sources/TraceModel/Data/callsite-rules.txt` and `renames.txt` (embedded
/// as the defaults; `--rules` / `--renames` files replace or extend them). See docs/callsites.md.
public struct CallSiteRules: Sendable {
    struct Pattern: Sendable {
        let text: String
        let prefix: Bool
        /// The pattern's bytes: names are compared as UTF-8 bytes (what `==` and `hasPrefix` compare for
        /// the ASCII symbol names kernels have), with no String comparison per pattern.
        var bytes: [UInt8]
        init(text: String, prefix: Bool) {
            self.text = text
            self.prefix = prefix
            bytes = Array(text.utf8)
        }
        func matches(_ s: String) -> Bool {
            var s = s
            return s.withUTF8 { matches($0) }
        }
        @inline(__always)
        func matches(_ b: UnsafeBufferPointer<UInt8>) -> Bool {
            if prefix ? b.count < bytes.count : b.count != bytes.count { return false }
            return bytes.withUnsafeBufferPointer { p in
                // The first byte tells most names apart without a call.
                p.count == 0 || (p[0] == b[0] && memcmp(p.baseAddress!, b.baseAddress!, p.count) == 0)
            }
        }
    }
    var tracing: [Pattern] = []
    var perEvent: [String: [Pattern]] = [:]
    public private(set) var renames: [String: String] = [:]
    /// `renames` found by a hash of the old name's bytes (`byteHash`, the index into `renameList`), so that
    /// a symbol's name is looked up before a String is made of it. Two old names of one hash (never seen)
    /// send every look-up to `renames`.
    private var renameSlot = FastMap<UInt64, Int32>(emptyKey: 0, emptyValue: -1, capacity: 64)
    private var renameList: [(old: [UInt8], new: String)] = []
    private var renameHashesCollide = false

    public static let defaultRulesText = String(decoding: PackageResources.callsite_rules_txt, as: UTF8.self)
    public static let defaultRenamesText = String(decoding: PackageResources.renames_txt, as: UTF8.self)

    /// The built-in rules and renames.
    public static let defaults: CallSiteRules = {
        var r = CallSiteRules()
        try! r.addRules(defaultRulesText, source: "built-in rules")
        try! r.addRenames(defaultRenamesText, source: "built-in renames")
        return r
    }()

    public init() {}

    public struct ParseError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Adds rules from text (`EVENT: PATTERN ...`, continuation lines start with white space).
    /// `replace` drops the existing rules of each event named.
    public mutating func addRules(_ text: String, source: String, replace: Bool = true) throws {
        var logical: [(Int, String)] = []
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
            if line.trimmed().isEmpty { continue }
            if let c = line.first, c == " " || c == "\t", !logical.isEmpty {
                logical[logical.count - 1].1 += " " + line.trimmed()
            } else {
                logical.append((n + 1, line.trimmed()))
            }
        }
        for (n, l) in logical {
            guard let colon = l.firstIndex(of: ":") else {
                throw ParseError(description: "\(source): line \(n): expected `EVENT: PATTERN ...`")
            }
            let event = String(l[..<colon]).trimmed()
            if event.isEmpty || event.contains(" ") {
                throw ParseError(description: "\(source): line \(n): bad event name \"\(event)\"")
            }
            let pats = l[l.index(after: colon)...].split(whereSeparator: { $0 == " " || $0 == "\t" }).map { p -> Pattern in
                p.hasSuffix("*") ? Pattern(text: String(p.dropLast()), prefix: true) : Pattern(text: String(p), prefix: false)
            }
            if event == "*" {
                if replace { tracing = pats } else { tracing += pats }
            } else {
                if replace { perEvent[event] = pats } else { perEvent[event, default: []] += pats }
            }
        }
    }

    /// Adds renames from text (`OLD NEW [SINCE]` per line).
    public mutating func addRenames(_ text: String, source: String) throws {
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            let w = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            if w.isEmpty { continue }
            if w.count < 2 { throw ParseError(description: "\(source): line \(n + 1): expected `OLD NEW [SINCE]`") }
            setRename(String(w[0]), String(w[1]))
        }
    }

    private mutating func setRename(_ old: String, _ new: String) {
        renames[old] = new
        let bytes = Array(old.utf8)
        let h = bytes.withUnsafeBufferPointer { Self.byteHash($0) }
        if let i = renameSlot[h] {
            if renameList[Int(i)].old == bytes { renameList[Int(i)].new = new } else { renameHashesCollide = true }
        } else {
            renameSlot.set(h, Int32(renameList.count))
            renameList.append((bytes, new))
        }
    }

    /// FNV-1a over the bytes, mixed.
    static func byteHash(_ b: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var h: UInt64 = 0xCBF2_9CE4_8422_2325
        for c in b { h = (h ^ UInt64(c)) &* 0x100_0000_01B3 }
        return fastMix(h ^ UInt64(b.count))
    }

    /// The new name of the old name `b` (its bytes), if renamed.
    private func rename(_ b: UnsafeBufferPointer<UInt8>) -> String? {
        if renameHashesCollide { return renames[String(decoding: b, as: UTF8.self)] }
        guard let i = renameSlot[Self.byteHash(b)] else { return nil }
        let e = renameList[Int(i)]
        return e.old.elementsEqual(b) ? e.new : nil
    }

    /// Removes compiler clone suffixes (`.isra.N`, `.constprop.N`, `.part.N`, `.cold`, `.llvm.N`),
    /// allocation-profiling `_noprof`, `+0x...` offsets and ` (address)` tails, then applies renames.
    /// Names are renamed as bytes (UTF-8; kernel symbol names are ASCII), as patterns match.
    public func normalise(_ raw: String) -> String {
        var raw = raw
        return raw.withUTF8 { b in
            let cut = UnsafeBufferPointer(rebasing: b[..<Self.cutEnd(b)])
            return rename(cut) ?? String(decoding: cut, as: UTF8.self)
        }
    }

    /// `normalise` before renames, on the name's bytes (the cut points are ASCII, so UTF-8 stays whole):
    /// up to the first ' ' and the first '+', then up to the first '.' unless it is the first byte, then
    /// without `_noprof`.
    static func cutSuffixes(_ b: UnsafeBufferPointer<UInt8>) -> String {
        String(decoding: UnsafeBufferPointer(rebasing: b[..<cutEnd(b)]), as: UTF8.self)
    }

    /// Where `cutSuffixes` ends the name: one pass over the bytes.
    static func cutEnd(_ b: UnsafeBufferPointer<UInt8>) -> Int {
        var end = b.count, dot = -1
        var i = 0
        while i < end {
            let c = b[i]
            if c == UInt8(ascii: " ") || c == UInt8(ascii: "+") { end = i; break }
            if c == UInt8(ascii: "."), dot < 0 { dot = i }
            i += 1
        }
        if dot > 0 { end = dot }   // a name that begins with '.' keeps its dots
        let suffix: StaticString = "_noprof"
        let k = suffix.utf8CodeUnitCount
        if end >= k && memcmp(b.baseAddress! + (end - k), suffix.utf8Start, k) == 0 { end -= k }
        return end
    }

    public func isTracing(_ normalised: String) -> Bool { Self.any(tracing, normalised) }

    public func implements(_ event: String, _ normalised: String) -> Bool {
        guard let p = perEvent[event] else { return false }
        return Self.any(p, normalised)
    }

    /// The patterns that make a frame an event's own implementation (empty for an event without rules).
    func ownPatterns(_ event: String) -> [Pattern] { perEvent[event] ?? [] }

    /// Whether a pattern of `ps` matches `name`.
    static func any(_ ps: [Pattern], _ name: String) -> Bool {
        var name = name
        return name.withUTF8 { b in ps.contains { $0.matches(b) } }
    }

    public var events: [String] { perEvent.keys.sorted() }

    /// The call site of an event: index (into `frames`) of the first frame after the tracing frames and
    /// the event's own implementation frames, or nil when every frame is one of those.
    public func siteIndex(event: String, normalised frames: [String]) -> Int? {
        var i = 0
        while i < frames.count && (isTracing(frames[i]) || implements(event, frames[i])) { i += 1 }
        return i < frames.count ? i : nil
    }
}

/// Resolves (event type, stack) to interned call sites and call paths, with caching, for one trace.
public final class CallSiteResolver: @unchecked Sendable {
    public let rules: CallSiteRules
    public let depth: Int
    /// Interned site names (normalised call paths joined with `;`, outermost last) and raw names.
    public let sites = StringTable()
    public let rawSites = StringTable()
    private var cache = FastMap<UInt64, (site: StringID, raw: StringID)>(emptyKey: 0, emptyValue: (0, 0))
    /// Per symbol (index `symSlot[sym]`): its normalised name and whether it is a tracing frame.
    private var symSlot = FastMap<UInt64, Int32>(emptyKey: 0, emptyValue: -1, capacity: 256)
    private var symNorm: [String] = []
    private var symTracing: [Bool] = []
    /// Per (event type, symbol): whether the frame belongs to the event itself (tracing machinery or
    /// the event's implementation), so the call site lies beyond it.
    private var ownFrame = FastMap<UInt64, Bool>(emptyKey: .max, emptyValue: false, capacity: 256)
    /// Per event type id: the patterns of its own frames (`CallSiteRules.ownPatterns`), looked up once.
    private var typeOwn: [[CallSiteRules.Pattern]?] = []
    /// Depth 1: the interned site per symbol slot (`StringID.max` until interned) and raw site per symbol,
    /// so that a new stack whose call site is a known frame interns no string.
    private var symSite: [StringID] = []
    private var rawSite = FastMap<UInt64, StringID>(emptyKey: .max, emptyValue: 0, capacity: 256)
    /// Site name used when a stack has no frame beyond the event's own (e.g. user page faults).
    public static let noCaller = "[none]"
    /// Site name of events without a stack.
    public static let noStack = "[no stack]"

    public init(rules: CallSiteRules = .defaults, depth: Int = 1) {
        self.rules = rules
        self.depth = max(1, depth)
    }

    public func normalised(_ sym: SymbolID, _ ctx: TraceContext) -> String {
        symNorm[slot(sym, ctx)]
    }

    private func slot(_ sym: SymbolID, _ ctx: TraceContext) -> Int {
        if let k = symSlot[UInt64(sym)] { return Int(k) }
        let n = rules.normalise(ctx.symbols[sym])
        symSlot.set(UInt64(sym), Int32(symNorm.count))
        symNorm.append(n)
        symTracing.append(rules.isTracing(n))
        symSite.append(.max)
        return symNorm.count - 1
    }

    private func isOwnFrame(_ sym: SymbolID, type: EventTypeID, _ ctx: TraceContext) -> Bool {
        let key = UInt64(type) << 32 | UInt64(sym)
        if let b = ownFrame[key] { return b }
        let k = slot(sym, ctx)
        let b = symTracing[k] || CallSiteRules.any(own(type, ctx), symNorm[k])
        ownFrame.set(key, b)
        return b
    }

    /// The own-frame patterns of event type `type`.
    private func own(_ type: EventTypeID, _ ctx: TraceContext) -> [CallSiteRules.Pattern] {
        let t = Int(type)
        precondition(t < ctx.types.count, "event type \(t) unknown to the trace context")
        if t >= typeOwn.count {
            // Grown to every type the context knows at once (a few dozen), with no generic sequence append.
            var grown = [[CallSiteRules.Pattern]?](repeating: nil, count: max(t + 1, ctx.types.count))
            for k in typeOwn.indices { grown[k] = typeOwn[k] }
            typeOwn = grown
        }
        if let p = typeOwn[t] { return p }
        let p = rules.ownPatterns(ctx.types[t].name)
        typeOwn[t] = p
        return p
    }

    /// The (normalised, raw) call site of an event.
    public func site(type: EventTypeID, stack: StackID, _ ctx: TraceContext) -> (site: StringID, raw: StringID) {
        let key = UInt64(type) << 32 | UInt64(stack)
        if let c = cache[key] { return c }
        let r: (StringID, StringID)
        if stack == 0 {
            r = (sites.intern(Self.noStack), rawSites.intern(Self.noStack))
        } else {
            // The first frame that is not the event's own (`CallSiteRules.siteIndex`, per symbol cached).
            let syms = ctx.stacks.frames(of: stack)
            var i = syms.startIndex
            while i < syms.endIndex && isOwnFrame(syms[i], type: type, ctx) { i += 1 }
            if i < syms.endIndex && depth == 1 {
                // The path is that one frame (not a tracing frame: `isOwnFrame` said so), interned once per
                // symbol.
                let x = slot(syms[i], ctx)
                if symSite[x] == .max { symSite[x] = sites.intern(symNorm[x]) }
                let raw: StringID
                if let q = rawSite[UInt64(syms[i])] { raw = q } else {
                    raw = rawSites.intern(ctx.symbols[syms[i]])
                    rawSite.set(UInt64(syms[i]), raw)
                }
                r = (symSite[x], raw)
            } else if i < syms.endIndex {
                var path: [String] = []
                var rawPath: [String] = []
                var k = i
                while k < syms.endIndex && path.count < depth {
                    let x = slot(syms[k], ctx)
                    if !symTracing[x] {
                        path.append(symNorm[x])
                        rawPath.append(ctx.symbols[syms[k]])
                    }
                    k += 1
                }
                r = (sites.intern(path.joined(separator: ";")), rawSites.intern(rawPath.joined(separator: ";")))
            } else {
                r = (sites.intern(Self.noCaller), rawSites.intern(Self.noCaller))
            }
        }
        cache.set(key, r)
        return r
    }
}
