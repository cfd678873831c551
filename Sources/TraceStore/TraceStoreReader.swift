import Foundation
import GRDBSQLite
import TraceModel
import TraceReaders

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Streams the events of any trace input into `sink`: a database written by `pagehint import`
/// (a plain file starting with the SQLite magic, or `--format db`), or anything `readTrace` reads.
public func readTraceOrDatabase<S: EventSink>(path: String, options: ReadOptions, into sink: inout S,
                                              context ctx: TraceContext) throws {
    if path != "-" && startsWithSQLiteMagic(path) {
        if let f = options.format, f != .importDatabase {
            throw TraceError(.badData, file: path, offset: 0, "--format \(f.rawValue) given, but the file is a SQLite database")
        }
        var r = ImportDatabaseReader(path: path, traceID: options.traceID)
        r.progress = options.progress
        try r.read(into: &sink, context: ctx)
        return
    }
    try readTrace(path: path, options: options, into: &sink, context: ctx)
}

/// True when `path` is a regular file whose first 16 bytes are "SQLite format 3\0".
func startsWithSQLiteMagic(_ path: String) -> Bool {
    let fd = open(path, O_RDONLY)
    if fd < 0 { return false }
    defer { close(fd) }
    var st = stat()
    if fstat(fd, &st) != 0 || (st.st_mode & S_IFMT) != S_IFREG { return false }
    return readPrefix(fd, 16) == sqliteMagic
}

/// Up to `count` bytes from the start of an open file.
func readPrefix(_ fd: Int32, _ count: Int) -> [UInt8] {
    var buf = [UInt8](repeating: 0, count: count)
    let n = buf.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, 0) }
    return Array(buf.prefix(max(n, 0)))
}

/// Reads one trace of an import database (docs/schema.md) back into the event stream it was imported
/// from: the same event types, strings, symbols and stacks (with the same ids), the same events in `seq`
/// order with the same field values, and the trace's format, kernel release, CPU count, facts and
/// lost-event runs. Events are streamed from one cursor; memory does not grow with the number of events.
///
/// Field values are rebuilt from the typed columns (`pfn`, `dev`, `ino`, `index`, `order`) and from
/// `extra`, which lists the other fields as `name=value` in field order; string fields are looked up in
/// the trace's `strings` table. Anything that does not fit (missing tables, a schema version other than
/// 1, a `fields` JSON that does not match the rows, ids out of range, SQLite corruption) is a
/// `TraceError` naming the file, the table row and the reason.
public struct ImportDatabaseReader {
    public let path: String
    /// `traces.id` to read; nil reads the only trace and is an error when the database holds several.
    public var traceID: Int?
    /// Called now and then with (estimated bytes consumed, file size).
    public var progress: (@Sendable (UInt64, UInt64?) -> Void)? = nil

    public init(path: String, traceID: Int? = nil) {
        self.path = path
        self.traceID = traceID
    }

    /// The fields of one event type, prepared for rebuilding events.
    final class TypePlan {
        let name: String
        let names: [[UInt8]]
        let kinds: [FieldKind]
        /// True for fields whose name can be a typed column (such a field may be absent from `extra`).
        let keyNamed: [Bool]
        /// Per typed column (pfn, dev, ino, index, order): the fields it can hold, as the writer picks them.
        let columnFields: [[Int]]

        init(_ t: EventType) {
            name = t.fullName
            names = t.fields.map { Array($0.name.utf8) }
            kinds = t.fields.map(\.kind)
            let all = EventWriter.keyNames.flatMap { $0 }
            keyNamed = t.fields.map { all.contains($0.name) }
            columnFields = EventWriter.keyNames.map { names in names.compactMap { t.fieldIndex($0) } }
        }
    }

    struct TraceRow {
        var id: Int
        var path: String
        var format: String
        var kernel: String?
        var cpus: Int
        var records: Int64
        var withStack: Int64
        var lost: Int64
    }

    func bad(_ where_: String, _ reason: String) -> TraceError {
        var e = TraceError(.badData, file: path, reason)
        e.where_ = where_
        return e
    }

    public func read<S: EventSink>(into sink: inout S, context ctx: TraceContext) throws {
        try checkHeader()
        let conn = try SQLiteConnection(path: path)
        try checkMeta(conn)
        let trace = try pickTrace(conn)
        let tid = Int64(trace.id)
        let at = "trace \(trace.id)"

        // Prepare every statement first: a missing table or column is reported before any event.
        let facts = try conn.prepare("SELECT key, value FROM trace_facts WHERE trace_id = ?1 ORDER BY rowid", at)
        let types = try conn.prepare("SELECT id, system, name, fields FROM event_types WHERE trace_id = ?1 ORDER BY id", at)
        let strings = try conn.prepare("SELECT id, value FROM strings WHERE trace_id = ?1 ORDER BY id", at)
        let symbols = try conn.prepare("SELECT id, name FROM symbols WHERE trace_id = ?1 ORDER BY id", at)
        let stacks = try conn.prepare("SELECT id, depth FROM stacks WHERE trace_id = ?1 ORDER BY id", at)
        let frames = try conn.prepare(
            "SELECT stack_id, position, symbol_id FROM stack_frames WHERE trace_id = ?1 ORDER BY stack_id, position", at)
        let lost = try conn.prepare("SELECT cpu, ts, count FROM lost_events WHERE trace_id = ?1 ORDER BY rowid", at)
        // Rows of one trace are inserted in seq order: walking the table by rowid streams them without a
        // sort (`+trace_id` keeps SQLite from using the type index, which would need one).
        let events = try conn.prepare("""
            SELECT seq, ts, cpu, pid, comm_id, type_id, stack_id, pfn, dev, ino, "index", "order", extra, source
            FROM events WHERE +trace_id = ?1 AND rowid >= ?2 ORDER BY rowid
            """, at)
        let probe = try conn.prepare("SELECT trace_id, seq FROM events WHERE rowid = ?1", at)

        ctx.format = trace.format
        ctx.kernelRelease = trace.kernel
        ctx.cpus = trace.cpus
        facts.bind(1, tid)
        while try facts.step(at + ", trace_facts") {
            ctx.facts.append((facts.string(0) ?? "", facts.string(1) ?? ""))
        }

        // Event types, with their ids.
        var plans: [TypePlan] = []
        types.bind(1, tid)
        while try types.step(at + ", event_types") {
            let id = types.int(0)
            let w = "\(at), event_types id \(id)"
            if id != Int64(plans.count) { throw bad(w, "event type ids are not 0, 1, 2, ... (expected \(plans.count))") }
            guard let system = types.string(1), let name = types.string(2), !name.isEmpty else {
                throw bad(w, "system or name is missing")
            }
            let fields = try parseFields(types.string(3), w)
            let got = ctx.addType(system: system, name: name, fields: fields, inferred: false)
            if got != EventTypeID(plans.count) { throw bad(w, "event type \(system):\(name) is listed twice") }
            plans.append(TypePlan(ctx.types[Int(got)]))
        }

        // Strings and symbols: interned in id order, so ids come out as stored. A table that holds one
        // text twice is remapped rather than refused.
        let stringMap = try internAll(strings, into: ctx.strings, tid, "\(at), strings")
        let symbolMap = try internAll(symbols, into: ctx.symbols, tid, "\(at), symbols")

        // Stacks, frames innermost first.
        var stackMap: [StackID] = [0]
        var frameBuf: [SymbolID] = []
        stacks.bind(1, tid)
        frames.bind(1, tid)
        var frameRow = try frames.step("\(at), stack_frames")
        while try stacks.step("\(at), stacks") {
            let id = stacks.int(0), depth = stacks.int(1)
            let w = "\(at), stacks id \(id)"
            if id != Int64(stackMap.count) { throw bad(w, "stack ids are not 1, 2, 3, ... (expected \(stackMap.count))") }
            if depth < 0 || depth > 1 << 20 { throw bad(w, "depth \(depth) out of range") }
            frameBuf.removeAll(keepingCapacity: true)
            for pos in 0..<depth {
                guard frameRow, frames.int(0) == id, frames.int(1) == pos else {
                    throw bad(w, "stack_frames does not hold positions 0..\(depth - 1) of this stack (missing position \(pos))")
                }
                let sym = frames.int(2)
                if sym < 0 || sym >= Int64(symbolMap.count) {
                    throw bad(w, "frame \(pos): symbol_id \(sym) out of range (\(symbolMap.count) symbols)")
                }
                frameBuf.append(symbolMap[Int(sym)])
                frameRow = try frames.step("\(at), stack_frames")
            }
            if frameRow && frames.int(0) <= id {
                throw bad(w, "stack_frames holds more frames than depth \(depth) (stack_id \(frames.int(0)), position \(frames.int(1)))")
            }
            stackMap.append(ctx.stacks.intern(frameBuf))
        }
        if frameRow { throw bad("\(at), stack_frames", "frames of stack_id \(frames.int(0)), which is not in stacks") }

        // Events, in seq order.
        var start: Int64 = 0
        if let hint = try firstRowHint(conn, trace) {
            probe.bind(1, hint)
            if try probe.step(at), probe.int(0) == tid, probe.int(1) == 0 { start = hint }
        }
        events.bind(1, tid)
        events.bind(2, start)
        let fileSize = fileBytes(path)
        var e = Event()
        var parser = ExtraParser()
        var seq: Int64 = 0
        var withStack: Int64 = 0
        while try events.step("\(at), event \(seq)") {
            var w: String { "\(at), event \(seq)" }
            if events.int(0) != seq {
                throw bad(w, "events are not stored in seq order (found seq \(events.int(0)))")
            }
            let type = events.int(5)
            if type < 0 || type >= Int64(plans.count) {
                throw bad(w, "type_id \(type) out of range (\(plans.count) event types)")
            }
            let comm = events.int(4), stack = events.int(6), cpu = events.int(2), pid = events.int(3)
            if comm < 0 || comm >= Int64(stringMap.count) { throw bad(w, "comm_id \(comm) out of range (\(stringMap.count) strings)") }
            if stack < 0 || stack >= Int64(stackMap.count) { throw bad(w, "stack_id \(stack) out of range (\(stackMap.count - 1) stacks)") }
            if cpu < 0 || cpu > Int64(UInt16.max) { throw bad(w, "cpu \(cpu) out of range") }
            if pid < Int64(Int32.min) || pid > Int64(Int32.max) { throw bad(w, "pid \(pid) out of range") }
            e.timestamp = UInt64(bitPattern: events.int(1))
            e.cpu = UInt16(cpu)
            e.pid = Int32(pid)
            e.comm = stringMap[Int(comm)]
            e.type = EventTypeID(type)
            e.stack = stackMap[Int(stack)]
            e.source = UInt64(bitPattern: events.int(13))
            let plan = plans[Int(type)]
            if let reason = parser.rebuild(&e, plan: plan, row: events, strings: ctx.strings, stringMap: stringMap) {
                throw bad(w, reason)
            }
            sink.consume(e, context: ctx)
            if e.stack != 0 { withStack += 1 }
            seq += 1
            if seq & 0xFFFF == 0, let p = progress, trace.records > 0 {
                p(UInt64(Double(fileSize) * Double(seq) / Double(trace.records)), fileSize)
            }
        }
        if seq != trace.records {
            throw bad(at, "the events table holds \(seq) events of this trace, traces.records says \(trace.records)")
        }
        if withStack != trace.withStack {
            throw bad(at, "\(withStack) events carry a stack, traces.with_stack says \(trace.withStack)")
        }

        lost.bind(1, tid)
        var lostTotal: UInt64 = 0
        while try lost.step("\(at), lost_events") {
            let cpu = lost.int(0)
            if cpu < -1 || cpu > Int64(UInt16.max) { throw bad("\(at), lost_events", "cpu \(cpu) out of range") }
            let l = LostEvents(cpu: Int(cpu), timestamp: UInt64(bitPattern: lost.int(1)), count: UInt64(bitPattern: lost.int(2)))
            lostTotal &+= l.count
            ctx.lost.append(l)
        }
        if lostTotal != UInt64(bitPattern: trace.lost) {
            throw bad(at, "lost_events add up to \(lostTotal), traces.lost says \(trace.lost)")
        }
    }

    /// A file shorter than its SQLite header says is truncated, even where SQLite would read the missing
    /// pages as zeros without noticing (pages of indexes the reader does not use).
    func checkHeader() throws {
        let fd = open(path, O_RDONLY)
        if fd < 0 { throw TraceError(.unreadable, file: path, String(cString: strerror(errno))) }
        defer { close(fd) }
        let h = readPrefix(fd, 100)
        var st = stat()
        if h.count < 100 || fstat(fd, &st) != 0 {
            throw TraceError(.badData, file: path, offset: UInt64(h.count), "truncated SQLite header")
        }
        func be(_ o: Int, _ k: Int) -> Int { (o..<o + k).reduce(0) { $0 << 8 | Int(h[$1]) } }
        let raw = be(16, 2)
        let pageSize = raw == 1 ? 65536 : raw
        if pageSize < 512 || pageSize & (pageSize - 1) != 0 {
            throw TraceError(.badData, file: path, offset: 16, "SQLite page size \(raw) is not valid")
        }
        // The page count at offset 28 is valid when the change counter (24) matches offset 92.
        let pages = be(28, 4)
        let size = Int(st.st_size)
        if pages > 0 && be(24, 4) == be(92, 4) && size < pages * pageSize {
            throw TraceError(.badData, file: path, offset: UInt64(size),
                             "truncated: the SQLite header says \(pages) pages of \(pageSize) bytes (\(pages * pageSize) bytes)")
        }
    }

    /// The meta table must say: import database, schema version 1.
    func checkMeta(_ conn: SQLiteConnection) throws {
        let st: SQLiteStatement
        do {
            st = try conn.prepare("SELECT key, value FROM meta", "")
        } catch let e as TraceError where e.reason.contains("no such table") {
            throw bad("", "not a pagehint import database (no meta table)")
        }
        var meta: [String: String] = [:]
        while try st.step("meta"), meta.count < 1000 {
            if let k = st.string(0) { meta[k] = st.string(1) ?? "" }
        }
        if let s = meta["schema"] {
            if s.hasPrefix("pagehint-runs/") {
                throw bad("", "is a replay run database (written by `pagehint replay --db`), not a trace")
            }
            throw bad("", "not a pagehint import database (meta schema '\(s)')")
        }
        guard let v = meta["schema_version"] else {
            throw bad("", "not a pagehint import database (meta has no schema_version; an unfinished import?)")
        }
        if v != String(TraceStoreWriter.schemaVersion) {
            throw bad("", "import database schema version \(v) is not supported (this pagehint reads version \(TraceStoreWriter.schemaVersion))")
        }
    }

    func pickTrace(_ conn: SQLiteConnection) throws -> TraceRow {
        let st = try conn.prepare(
            "SELECT id, path, format, kernel, cpus, records, with_stack, lost FROM traces ORDER BY id", "")
        var all: [TraceRow] = []
        while try st.step("traces"), all.count < 100_000 {
            all.append(TraceRow(id: Int(st.int(0)), path: st.string(1) ?? "", format: st.string(2) ?? "",
                                kernel: st.isNull(3) ? nil : st.string(3), cpus: Int(st.int(4)),
                                records: st.int(5), withStack: st.int(6), lost: st.int(7)))
        }
        let list = all.prefix(10).map { "\($0.id): \($0.path)" }.joined(separator: ", ") + (all.count > 10 ? ", ..." : "")
        if let want = traceID {
            guard let t = all.first(where: { $0.id == want }) else {
                throw TraceError(.usage, file: path, "has no trace \(want) (traces: \(list))")
            }
            return try checked(t)
        }
        if all.isEmpty { throw bad("", "the import database holds no trace") }
        if all.count > 1 {
            throw TraceError(.usage, file: path, "holds \(all.count) traces (\(list)): pick one with --trace-id N")
        }
        return try checked(all[0])
    }

    func checked(_ t: TraceRow) throws -> TraceRow {
        let w = "traces id \(t.id)"
        if t.records < 0 || t.withStack < 0 || t.withStack > t.records { throw bad(w, "records \(t.records), with_stack \(t.withStack) out of range") }
        if t.cpus < 0 || t.cpus > 1 << 16 { throw bad(w, "cpus \(t.cpus) out of range") }
        if t.format.isEmpty { throw bad(w, "format is missing") }
        return t
    }

    /// The rowid of the first event of `trace` when the traces were imported one after the other.
    func firstRowHint(_ conn: SQLiteConnection, _ trace: TraceRow) throws -> Int64? {
        let st = try conn.prepare("SELECT coalesce(sum(records), 0) FROM traces WHERE id < ?1", "traces")
        st.bind(1, Int64(trace.id))
        guard try st.step("traces") else { return nil }
        let before = st.int(0)
        return before >= 0 ? before + 1 : nil
    }

    /// `[{"name": ..., "kind": "signed" | "unsigned" | "string" | "pointer"}, ...]`.
    func parseFields(_ text: String?, _ w: String) throws -> [FieldInfo] {
        guard let text, let data = text.data(using: .utf8),
              let arr = (try? JSONSerialization.jsonObject(with: data)) as? [Any] else {
            throw bad(w, "fields is not a JSON array")
        }
        var out: [FieldInfo] = []
        for (i, item) in arr.enumerated() {
            guard let o = item as? [String: Any], let name = o["name"] as? String, let k = o["kind"] as? String else {
                throw bad(w, "field \(i) of the fields JSON is not {\"name\", \"kind\"}")
            }
            let kind: FieldKind
            switch k {
            case "signed": kind = .signed
            case "unsigned": kind = .unsigned
            case "string": kind = .string
            case "pointer": kind = .pointer
            default: throw bad(w, "field \(name): unknown kind '\(k)'")
            }
            if name.isEmpty || name.utf8.contains(where: { $0 == 0x20 || $0 == 0x3D }) {
                throw bad(w, "field name '\(name)' is empty or holds a blank or '='")
            }
            out.append(FieldInfo(name: name, kind: kind))
        }
        return out
    }

    /// Interns `(id, text)` rows with ids 0, 1, 2, ... into `table`; returns stored id → interned id.
    func internAll(_ st: SQLiteStatement, into table: StringTable, _ tid: Int64, _ w: String) throws -> [StringID] {
        var map: [StringID] = []
        st.bind(1, tid)
        while try st.step(w) {
            let id = st.int(0)
            if id != Int64(map.count) { throw bad("\(w) id \(id)", "ids are not 0, 1, 2, ... (expected \(map.count))") }
            guard let p = st.bytes(1) else { throw bad("\(w) id \(id)", "value is NULL") }
            map.append(table.intern(p))
        }
        return map
    }
}

/// Rebuilds an event's field values from one `events` row.
struct ExtraParser {
    static let columns = ["pfn", "dev", "ino", "index", "order"]
    /// Bounds the backtracking over string values holding ` name=` (each attempt is one step).
    var budget = 0

    /// Fills `e.values` and `e.fieldCount`; returns the reason when the row does not fit the type.
    mutating func rebuild(_ e: inout Event, plan t: ImportDatabaseReader.TypePlan, row: SQLiteStatement,
                          strings: StringTable, stringMap: [StringID]) -> String? {
        for i in 0..<Event.maxFields { e.values[i] = 0 }
        var present: UInt32 = 0
        if let extra = row.bytes(12), extra.count > 0 {
            budget = 10_000
            var ok = pairs(extra, 0, after: -1, t, strings, strict: true, &e, &present)
            if !ok {
                // A field whose kind turned from number to text while the trace was read holds numbers
                // that are not interned: take the text as it is.
                present = 0
                budget = 10_000
                ok = pairs(extra, 0, after: -1, t, strings, strict: false, &e, &present)
            }
            if !ok {
                let s = String(decoding: extra.prefix(120), as: UTF8.self)
                return "extra '\(s)\(extra.count > 120 ? "..." : "")' does not match the fields of \(t.name)"
            }
        }
        for j in 0..<5 where !row.isNull(Int32(7 + j)) {
            let col = Self.columns[j]
            // Of the fields this column can hold and that `extra` does not list, the lowest: the writer
            // took the first name present when the event was read, and fields are only ever appended.
            var f = Int.max
            for c in t.columnFields[j] where c < Event.maxFields && present & (1 << c) == 0 { f = min(f, c) }
            if f == Int.max {
                return "column \(col) holds a value, but \(t.name) has no field for it"
            }
            var v = row.int(Int32(7 + j))
            if t.kinds[f] == .string {
                // A text field under a column name holds a `strings` id.
                guard v >= 0 && v < Int64(stringMap.count) else { return "column \(col): string id \(v) out of range" }
                v = Int64(stringMap[Int(v)])
            }
            e.values[f] = v
            present |= 1 << f
        }
        let n = present.nonzeroBitCount
        if present != UInt32((1 << n) - 1) {
            return "the fields in extra and the typed columns are not the first fields of \(t.name) (event_types does not match)"
        }
        e.fieldCount = UInt8(n)
        return nil
    }

    /// Parses `name=value` pairs from `pos` for fields after `after`; values go to `e`, their bits to
    /// `present`, only along the parse that succeeds.
    mutating func pairs(_ p: UnsafeRawBufferPointer, _ pos: Int, after: Int, _ t: ImportDatabaseReader.TypePlan,
                        _ strings: StringTable, strict: Bool, _ e: inout Event, _ present: inout UInt32) -> Bool {
        if pos >= p.count { return false }
        budget -= 1
        if budget < 0 { return false }
        let n = min(t.names.count, Event.maxFields)
        var i = after + 1
        while i < n {
            let name = t.names[i]
            let v = pos + name.count + 1
            if v <= p.count && p[v - 1] == UInt8(ascii: "=")
                && name.withUnsafeBytes({ memcmp($0.baseAddress!, p.baseAddress! + pos, name.count) == 0 }) {
                if t.kinds[i] == .string {
                    var q = v
                    while q <= p.count {
                        if q == p.count || p[q] == 0x20 {
                            let text = UnsafeRawBufferPointer(rebasing: p[v..<q])
                            let id = strings.lookup(text)
                            if id != nil || !strict {
                                if q == p.count || pairs(p, q + 1, after: i, t, strings, strict: strict, &e, &present) {
                                    e.values[i] = Int64(id ?? strings.intern(text))
                                    present |= 1 << i
                                    return true
                                }
                                if budget < 0 { return false }
                            }
                        }
                        q += 1
                    }
                } else {
                    var q = v
                    while q < p.count && p[q] != 0x20 { q += 1 }
                    if let x = parseInteger(p, v, q),
                       q == p.count || pairs(p, q + 1, after: i, t, strings, strict: strict, &e, &present) {
                        e.values[i] = x
                        present |= 1 << i
                        return true
                    }
                }
            }
            // Only a field that can sit in a typed column may be missing before a listed one.
            if !t.keyNamed[i] { return false }
            i += 1
        }
        return false
    }
}

/// A decimal integer as the writer prints it (unsigned, or signed with a leading '-'), as its bits.
@inline(__always)
func parseInteger(_ p: UnsafeRawBufferPointer, _ start: Int, _ end: Int) -> Int64? {
    var i = start
    let negative = i < end && p[i] == UInt8(ascii: "-")
    if negative { i += 1 }
    if i >= end || end - i > 20 { return nil }
    var v: UInt64 = 0
    while i < end {
        let d = p[i] &- 0x30
        if d > 9 { return nil }
        let (m, o1) = v.multipliedReportingOverflow(by: 10)
        let (s, o2) = m.addingReportingOverflow(UInt64(d))
        if o1 || o2 { return nil }
        v = s
        i += 1
    }
    if negative {
        if v > UInt64(1) << 63 { return nil }
        return Int64(bitPattern: 0 &- v)
    }
    return Int64(bitPattern: v)
}

func fileBytes(_ path: String) -> UInt64 {
    var st = stat()
    return stat(path, &st) == 0 ? UInt64(st.st_size) : 0
}

/// A read-only SQLite connection whose errors are `TraceError`s naming the file. Used from one thread
/// (no per-call mutex).
final class SQLiteConnection {
    let path: String
    let handle: OpaquePointer

    init(path: String) throws {
        self.path = path
        var h: OpaquePointer? = nil
        let rc = sqlite3_open_v2(path, &h, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, nil)
        guard rc == SQLITE_OK, let h else {
            let msg = h.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close_v2(h)
            throw TraceError(.unreadable, file: path, "cannot open the database: \(msg)")
        }
        handle = h
    }

    deinit { sqlite3_close_v2(handle) }

    func error(_ rc: Int32, _ where_: String) -> TraceError {
        let msg = String(cString: sqlite3_errmsg(handle))
        let primary = rc & 0xFF
        var e: TraceError
        if primary == SQLITE_CANTOPEN || primary == SQLITE_PERM || primary == SQLITE_BUSY || primary == SQLITE_LOCKED {
            e = TraceError(.unreadable, file: path, "SQLite: \(msg)")
        } else if primary == SQLITE_NOTADB || primary == SQLITE_CORRUPT {
            e = TraceError(.badData, file: path, "not a readable SQLite database (truncated or corrupt): \(msg)")
        } else {
            e = TraceError(.badData, file: path, "SQLite: \(msg)")
        }
        e.where_ = where_
        return e
    }

    func prepare(_ sql: String, _ where_: String) throws -> SQLiteStatement {
        var s: OpaquePointer? = nil
        let rc = sqlite3_prepare_v2(handle, sql, -1, &s, nil)
        guard rc == SQLITE_OK, let s else {
            sqlite3_finalize(s)
            let e = error(rc, where_)
            if e.reason.contains("no such table") || e.reason.contains("no such column") {
                var m = TraceError(.badData, file: path, "not a complete pagehint import database: \(String(cString: sqlite3_errmsg(handle)))")
                m.where_ = where_
                throw m
            }
            throw e
        }
        return SQLiteStatement(conn: self, stmt: s)
    }
}

final class SQLiteStatement {
    let conn: SQLiteConnection
    let stmt: OpaquePointer

    init(conn: SQLiteConnection, stmt: OpaquePointer) {
        self.conn = conn
        self.stmt = stmt
    }

    deinit { sqlite3_finalize(stmt) }

    func bind(_ i: Int32, _ v: Int64) {
        sqlite3_reset(stmt)
        sqlite3_bind_int64(stmt, i, v)
    }

    /// Advances to the next row: true on a row, false at the end.
    @inline(__always)
    func step(_ where_: @autoclosure () -> String) throws -> Bool {
        let rc = sqlite3_step(stmt)
        if rc == SQLITE_ROW { return true }
        if rc == SQLITE_DONE { return false }
        throw conn.error(rc, where_())
    }

    @inline(__always) func int(_ c: Int32) -> Int64 { sqlite3_column_int64(stmt, c) }
    @inline(__always) func isNull(_ c: Int32) -> Bool { sqlite3_column_type(stmt, c) == SQLITE_NULL }

    func string(_ c: Int32) -> String? {
        bytes(c).map { String(decoding: $0, as: UTF8.self) }
    }

    /// The column as text bytes, valid until the next step (nil for NULL).
    @inline(__always)
    func bytes(_ c: Int32) -> UnsafeRawBufferPointer? {
        guard let p = sqlite3_column_text(stmt, c) else { return nil }
        return UnsafeRawBufferPointer(start: UnsafeRawPointer(p), count: Int(sqlite3_column_bytes(stmt, c)))
    }
}
