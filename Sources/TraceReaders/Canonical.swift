import TraceModel

/// One canonical text line per event, the same whatever format the event came from:
/// `SECONDS.NANOS cpu=N pid=N comm=C EVENT field=value ...`, raw field values, and with stacks the
/// frames below as `  => function`. Used by `pagehint dump` and by the cross-format tests.
public struct CanonicalLines: EventSink {
    public enum Microseconds: Sendable { case none, round, trunc }
    public var stacks: Bool
    public var usec: Microseconds
    /// Fields whose value is text in one format and a number in another (symbolic flags) can be left out.
    public var numericFieldsOnly: Bool
    public var limit: UInt64
    public private(set) var count: UInt64 = 0
    /// Receives each finished line (with its stack lines, newline-terminated).
    public var emit: (String) -> Void

    public init(stacks: Bool, usec: Microseconds, numericFieldsOnly: Bool = false, limit: UInt64 = .max,
                emit: @escaping (String) -> Void) {
        self.stacks = stacks
        self.usec = usec
        self.numericFieldsOnly = numericFieldsOnly
        self.limit = limit
        self.emit = emit
    }

    public mutating func consume(_ ev: borrowing Event, context ctx: TraceContext) {
        if count >= limit { return }
        count += 1
        let e = copy ev
        let ts: UInt64
        switch usec {
        case .none: ts = e.timestamp
        case .round: ts = (e.timestamp + 500) / 1000 * 1000
        case .trunc: ts = e.timestamp / 1000 * 1000
        }
        let frac = String(ts % 1_000_000_000)
        var out = "\(ts / 1_000_000_000).\(String(repeating: "0", count: 9 - frac.count))\(frac) cpu=\(e.cpu) pid=\(e.pid) comm=\(ctx.strings[e.comm]) \(ctx.types[Int(e.type)].name)"
        let t = ctx.types[Int(e.type)]
        // Fields by name: a field a kernel adds or drops (isolate_mode, group_dead) may sit anywhere.
        let order = (0..<min(Int(e.fieldCount), t.fields.count)).sorted { t.fields[$0].name < t.fields[$1].name }
        for i in order {
            if numericFieldsOnly && (Self.symbolicFields.contains(t.fields[i].name) || t.fields[i].kind == .pointer
                || (t.fields[i].kind == .string && !Self.textFields.contains(t.fields[i].name))) { continue }
            out += " \(t.fields[i].name)=\(ctx.render(e, field: i))"
        }
        out += "\n"
        if stacks && e.stack != 0 {
            for f in ctx.stackNames(e.stack) { out += "  => \(f)\n" }
        }
        emit(out)
    }

    /// String fields that are text in every format (not symbolic renderings of numbers).
    static let textFields: Set<String> = ["name", "comm", "parent_comm", "child_comm", "buf"]
    /// Pointer fields are left out too: tracefs prints `%p` values hashed.
    /// Numeric fields that text formats print as flag names (values depend on the kernel's flag table).
    static let symbolicFields: Set<String> = ["gfp_flags", "ip"]
}
