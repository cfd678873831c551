import TraceModel

/// Turns the printed payload of a text event (`key=value ...`) into raw field values, by field name.
/// One plan per event type maps printed keys to field indices and conversions (see `KnownEvents`).
struct PayloadDecoder {
    struct Step {
        var key: [UInt8]
        var field: Int          // -1: ignore
        var field2: Int         // second field of a page range, else -1
        var conversion: KnownEvents.Conversion
    }
    struct Plan {
        var steps: [Step]
        var pairsWithoutEquals: Bool
        var inferred: Bool
    }
    var plans: [Plan?] = []
    /// Per type, the fields of an inferred or extendable schema that already held a number: such a field
    /// never turns into a string field, as earlier events (possibly still queued for ordering) hold numbers.
    var numericSeen: [UInt32] = []

    /// Registers the type of a text event: the known schema, unless a format description already gave one.
    static func registerType(_ ctx: TraceContext, name: String) -> EventTypeID {
        if let id = ctx.typeID(name) { return id }
        if let k = KnownEvents.table[name] {
            return ctx.addType(system: k.system, name: name, fields: k.fields, inferred: false, extendable: true)
        }
        return ctx.addType(system: "", name: name, fields: [], inferred: true)
    }

    mutating func plan(for type: EventTypeID, _ ctx: TraceContext) -> Plan {
        let t = Int(type)
        if t < plans.count, let p = plans[t] { return p }
        while plans.count <= t { plans.append(nil) }
        let et = ctx.types[t]
        var steps: [Step] = []
        var covered = Set<String>()
        let known = KnownEvents.table[et.name]
        if let k = known {
            for al in k.aliases {
                var f = -1, f2 = -1
                if al.conversion != .ignore {
                    guard let i = et.fieldIndex(al.field) else { continue }
                    f = i
                    if al.conversion == .pageRange { f2 = et.fieldIndex("last_index") ?? -1 }
                }
                var conv = al.conversion
                // A symbolic field kept as text only when the schema says so (known schema); with a
                // format-file schema that says "number", the text cannot be turned back: keep a string.
                if conv == .string, f >= 0, et.fields[f].kind != .string { ctx.setFieldKind(type, f, .string) }
                if conv == .number, f >= 0, et.fields[f].kind == .string { conv = .string }
                if conv == .number, f >= 0, et.fields[f].kind == .pointer { conv = .pointer }
                steps.append(Step(key: Array(al.printed.utf8), field: f, field2: f2, conversion: conv))
                covered.insert(al.printed)
            }
        }
        for (i, f) in et.fields.enumerated() where !covered.contains(f.name) {
            steps.append(Step(key: Array(f.name.utf8), field: i, field2: -1,
                              conversion: f.kind == .string ? .string : f.kind == .pointer ? .pointer : .number))
        }
        let p = Plan(steps: steps, pairsWithoutEquals: known?.prefix != KnownEvents.Prefix.none && known != nil,
                     inferred: et.inferredSchema || et.extendable)
        plans[t] = p
        return p
    }

    @inline(__always)
    static func isKeyChar(_ c: UInt8) -> Bool {
        (c >= 0x61 && c <= 0x7A) || (c >= 0x41 && c <= 0x5A) || (c >= 0x30 && c <= 0x39) || c == 0x5F
    }

    /// Decodes `payload` into `e.values`. Returns the number of values that did not parse.
    mutating func decode(_ payload: UnsafeRawBufferPointer, into e: inout Event, _ ctx: TraceContext) -> Int {
        var plan = self.plan(for: e.type, ctx)
        var failures = 0
        let n = payload.count
        var i = 0
        let fieldCount = ctx.types[Int(e.type)].fields.count
        e.fieldCount = UInt8(min(fieldCount, Event.maxFields))
        for k in 0..<Int(e.fieldCount) { e.values[k] = 0 }
        var bdiPending = false
        while i < n {
            while i < n && payload[i] == 0x20 { i += 1 }
            if i >= n { break }
            let ks = i
            while i < n && Self.isKeyChar(payload[i]) { i += 1 }
            let ke = i
            var vs: Int, ve: Int
            if i < n && payload[i] == UInt8(ascii: "=") && ke > ks {
                i += 1
                vs = i
                // A value ends at the next ` key=`, or at the end of the payload.
                ve = n
                var j = i
                while j < n {
                    if payload[j] == 0x20 {
                        var m = j + 1
                        while m < n && Self.isKeyChar(payload[m]) { m += 1 }
                        if m < n && m > j + 1 && payload[m] == UInt8(ascii: "=") { ve = j; break }
                    }
                    j += 1
                }
                i = ve
            } else if plan.pairsWithoutEquals && ke > ks && i < n && payload[i] == 0x20 {
                // `dev 8:1`, `ino 1a2b`, `bdi NAME:` forms.
                i += 1
                vs = i
                while i < n && payload[i] != 0x20 { i += 1 }
                ve = i
                if ve > vs && payload[ve - 1] == UInt8(ascii: ":") { ve -= 1 }
                if ke - ks == 3 && payload[ks] == UInt8(ascii: "b") && payload[ks + 1] == UInt8(ascii: "d")
                    && payload[ks + 2] == UInt8(ascii: "i") {
                    bdiPending = true
                }
            } else {
                // Not a field: skip the word.
                while i < n && payload[i] != 0x20 { i += 1 }
                continue
            }
            // Trim trailing blanks of the value.
            while ve > vs && payload[ve - 1] == 0x20 { ve -= 1 }
            let key = UnsafeRawBufferPointer(rebasing: payload[ks..<ke])
            let value = UnsafeRawBufferPointer(rebasing: payload[vs..<ve])
            if bdiPending {
                bdiPending = false
                if let f = ctx.types[Int(e.type)].fieldIndex("name"), f < Int(e.fieldCount) {
                    e.values[f] = Int64(ctx.strings.intern(value))
                }
                continue
            }
            var step: Step? = nil
            for s in plan.steps where s.key.count == key.count {
                if s.key.withUnsafeBytes({ memEqualBytes($0, key) }) { step = s; break }
            }
            if step == nil && plan.inferred {
                // Unknown event: learn the field from the record.
                let isNum = Self.parseNumber(value) != nil
                let name = String(decoding: key, as: UTF8.self)
                let kind: FieldKind = isNum ? (ctx.types[Int(e.type)].extendable ? .unsigned : .signed) : .string
                if let idx = ctx.appendInferredField(e.type, FieldInfo(name: name, kind: kind)) {
                    plans[Int(e.type)] = nil
                    plan = self.plan(for: e.type, ctx)
                    e.fieldCount = UInt8(min(ctx.types[Int(e.type)].fields.count, Event.maxFields))
                    if idx < Event.maxFields { e.values[idx] = 0 }
                    step = plan.steps.first { $0.field == idx }
                }
            }
            guard let s = step, s.field >= 0, s.field < Int(e.fieldCount) else { continue }
            switch s.conversion {
            case .ignore:
                break
            case .number:
                if let v = Self.parseNumber(value) {
                    e.values[s.field] = v
                    if plan.inferred { markNumeric(e.type, s.field) }
                } else if plan.inferred && !wasNumeric(e.type, s.field) {
                    // An inferred numeric field that turns out to hold text.
                    ctx.setFieldKind(e.type, s.field, .string)
                    plans[Int(e.type)] = nil
                    plan = self.plan(for: e.type, ctx)
                    e.values[s.field] = Int64(ctx.strings.intern(value))
                } else { failures += 1 }
            case .hex:
                if let v = Self.parseHex(value) { e.values[s.field] = v } else { failures += 1 }
            case .pointer:
                if let v = Self.parsePointer(value) { e.values[s.field] = v } else { failures += 1 }
            case .pageOffset:
                if let v = Self.parseNumber(value) { e.values[s.field] = v >> KnownEvents.pageShift } else { failures += 1 }
            case .pageRange:
                var dash = -1
                for k in 1..<max(1, value.count) where value[k] == UInt8(ascii: "-") { dash = k; break }
                if dash > 0, let a = Self.parseNumber(UnsafeRawBufferPointer(rebasing: value[0..<dash])),
                   let b = Self.parseNumber(UnsafeRawBufferPointer(rebasing: value[(dash + 1)...])) {
                    e.values[s.field] = a >> KnownEvents.pageShift
                    if s.field2 >= 0 && s.field2 < Int(e.fieldCount) {
                        e.values[s.field2] = ((b + 1) >> KnownEvents.pageShift) - 1
                    }
                } else { failures += 1 }
            case .devt:
                var colon = -1
                for k in 0..<value.count where value[k] == UInt8(ascii: ":") { colon = k; break }
                if colon > 0, let ma = Self.parseNumber(UnsafeRawBufferPointer(rebasing: value[0..<colon])),
                   let mi = Self.parseNumber(UnsafeRawBufferPointer(rebasing: value[(colon + 1)...])) {
                    e.values[s.field] = (ma << 20) | mi
                } else { failures += 1 }
            case .lruName:
                if let v = Self.parseNumber(value) { e.values[s.field] = v } else if let v = KnownEvents.lruNames[String(decoding: value, as: UTF8.self)] {
                    e.values[s.field] = v
                } else { failures += 1 }
            case .reclaimFlags:
                var bits: Int64 = 0
                var ok = true
                if let v = Self.parseNumber(value) { bits = v } else {
                    for part in String(decoding: value, as: UTF8.self).split(separator: "|") {
                        if let b = KnownEvents.reclaimFlagBits[String(part)] { bits |= b } else { ok = false }
                    }
                }
                if ok { e.values[s.field] = bits } else { failures += 1 }
            case .lruFlags:
                var bits: Int64 = 0
                for c in value {
                    switch c {
                    case UInt8(ascii: "M"): bits |= 0x1
                    case UInt8(ascii: "a"): bits |= 0x2
                    case UInt8(ascii: "f"): bits |= 0x4
                    case UInt8(ascii: "s"): bits |= 0x8
                    case UInt8(ascii: "b"): bits |= 0x10
                    case UInt8(ascii: "d"): bits |= 0x20
                    case UInt8(ascii: "B"): bits |= 0x40
                    default: break
                    }
                }
                e.values[s.field] = bits
            case .string:
                e.values[s.field] = Int64(ctx.strings.intern(value))
            }
        }
        return failures
    }

    /// Decimal (optionally negative), `0x` hexadecimal, `true`/`false`, `(nil)`.
    @inline(__always)
    static func parseNumber(_ v: UnsafeRawBufferPointer) -> Int64? {
        let n = v.count
        if n == 0 { return nil }
        if n > 2 && v[0] == 0x30 && (v[1] == UInt8(ascii: "x") || v[1] == UInt8(ascii: "X")) {
            return parseHex(UnsafeRawBufferPointer(rebasing: v[2...]))
        }
        var i = 0
        var neg = false
        if v[0] == UInt8(ascii: "-") { neg = true; i = 1; if n == 1 { return nil } }
        var x: UInt64 = 0
        while i < n {
            let d = v[i] &- 0x30
            if d > 9 {
                if n == 4 && v[0] == UInt8(ascii: "t") && v[1] == UInt8(ascii: "r") { return 1 }
                if n == 5 && v[0] == UInt8(ascii: "f") && v[1] == UInt8(ascii: "a") { return 0 }
                if n == 5 && v[0] == UInt8(ascii: "(") && v[1] == UInt8(ascii: "n") { return 0 }
                return nil
            }
            x = x &* 10 &+ UInt64(d)
            i += 1
        }
        // Two's complement throughout: "-9223372036854775808" (and longer numbers, wrapped) never trap.
        return neg ? 0 &- Int64(bitPattern: x) : Int64(bitPattern: x)
    }

    @inline(__always)
    /// A printed `%p`: hexadecimal with or without 0x; `(null)`, `(nil)` and `(____ptrval____)` are 0.
    static func parsePointer(_ v: UnsafeRawBufferPointer) -> Int64? {
        if v.count >= 2 && v[0] == UInt8(ascii: "(") { return 0 }
        if v.count > 2 && v[0] == UInt8(ascii: "0") && (v[1] == UInt8(ascii: "x") || v[1] == UInt8(ascii: "X")) {
            return parseHex(UnsafeRawBufferPointer(rebasing: v[2...]))
        }
        return parseHex(v)
    }

    @inline(__always)
    mutating func markNumeric(_ type: EventTypeID, _ field: Int) {
        let t = Int(type)
        if t >= numericSeen.count { numericSeen.append(contentsOf: repeatElement(0, count: t + 1 - numericSeen.count)) }
        if field < 32 { numericSeen[t] |= 1 << UInt32(field) }
    }

    @inline(__always)
    func wasNumeric(_ type: EventTypeID, _ field: Int) -> Bool {
        let t = Int(type)
        return t < numericSeen.count && field < 32 && numericSeen[t] & (1 << UInt32(field)) != 0
    }

    static func parseHex(_ v: UnsafeRawBufferPointer) -> Int64? {
        if v.isEmpty || v.count > 16 { return nil }
        var x: UInt64 = 0
        for c in v {
            guard let d = hexDigit(c) else { return nil }
            x = x << 4 | UInt64(d)
        }
        return Int64(bitPattern: x)
    }
}

@inline(__always)
func memEqualBytes(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
    if a.count != b.count { return false }
    var i = 0
    while i < a.count {
        if a[i] != b[i] { return false }
        i += 1
    }
    return true
}
