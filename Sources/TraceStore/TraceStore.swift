import Foundation
import GRDB
import GRDBSQLite
import TraceModel

/// Writes imported traces to SQLite. The output appears atomically: everything is written to a
/// temporary file beside the destination, in one transaction, and renamed over it at the end, so an
/// existing database is never left half-written.
public final class TraceStoreWriter {
    public let destination: String
    let tempPath: String
    let db: DatabaseQueue
    public static let schemaVersion = 1
    /// SQLite page cache of the writer, KiB.
    static let cacheKiB = 4096

    public init(destination: String) throws {
        self.destination = destination
        let dir = (destination as NSString).deletingLastPathComponent
        let base = (destination as NSString).lastPathComponent
        tempPath = (dir.isEmpty ? "." : dir) + "/.\(base).tmp-\(getpid())"
        try? FileManager.default.removeItem(atPath: tempPath)
        var config = Configuration()
        config.journalMode = .default
        db = try DatabaseQueue(path: tempPath, configuration: config)
        try db.writeWithoutTransaction { db in
            // The file is private until it is renamed into place: no rollback journal, no syncs, one
            // lock held from start to end. A small page cache is enough for appending rows, and it
            // bounds the sorter that builds the index: sorted runs of at most that size go to a temporary
            // file (in TMPDIR) and are merged from there, so memory stays flat however many events there
            // are. (With temp_store = MEMORY the sorter keeps every key in memory, in one run that is
            // also slower to sort.)
            try db.execute(sql: """
                PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA locking_mode = EXCLUSIVE;
                PRAGMA cache_size = -\(Self.cacheKiB); PRAGMA temp_store = FILE;
                """)
            try db.execute(sql: Self.schema)
        }
    }

    /// The schema, documented in docs/schema.md.
    public static let schema = """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE traces (
        id INTEGER PRIMARY KEY, path TEXT NOT NULL, format TEXT NOT NULL, kernel TEXT, cpus INTEGER NOT NULL,
        records INTEGER NOT NULL, with_stack INTEGER NOT NULL, lost INTEGER NOT NULL,
        first_ns INTEGER, last_ns INTEGER);
    CREATE TABLE trace_facts (trace_id INTEGER NOT NULL REFERENCES traces(id), key TEXT NOT NULL, value TEXT NOT NULL);
    CREATE TABLE event_types (
        trace_id INTEGER NOT NULL REFERENCES traces(id), id INTEGER NOT NULL, system TEXT NOT NULL,
        name TEXT NOT NULL, fields TEXT NOT NULL, PRIMARY KEY (trace_id, id));
    CREATE TABLE strings (trace_id INTEGER NOT NULL, id INTEGER NOT NULL, value TEXT NOT NULL, PRIMARY KEY (trace_id, id));
    CREATE TABLE symbols (trace_id INTEGER NOT NULL, id INTEGER NOT NULL, name TEXT NOT NULL, PRIMARY KEY (trace_id, id));
    CREATE TABLE stacks (trace_id INTEGER NOT NULL, id INTEGER NOT NULL, depth INTEGER NOT NULL, PRIMARY KEY (trace_id, id));
    CREATE TABLE stack_frames (
        trace_id INTEGER NOT NULL, stack_id INTEGER NOT NULL, position INTEGER NOT NULL, symbol_id INTEGER NOT NULL,
        PRIMARY KEY (trace_id, stack_id, position));
    CREATE TABLE lost_events (trace_id INTEGER NOT NULL, cpu INTEGER NOT NULL, ts INTEGER NOT NULL, count INTEGER NOT NULL);
    CREATE TABLE events (
        trace_id INTEGER NOT NULL, seq INTEGER NOT NULL, ts INTEGER NOT NULL, cpu INTEGER NOT NULL,
        pid INTEGER NOT NULL, comm_id INTEGER NOT NULL, type_id INTEGER NOT NULL, stack_id INTEGER NOT NULL,
        pfn INTEGER, dev INTEGER, ino INTEGER, "index" INTEGER, "order" INTEGER, extra TEXT, source INTEGER NOT NULL);
    """

    /// Indexes of the schema (docs/schema.md). Only rows that have a pfn are indexed: `pfn = X` lookups
    /// use the index, and the sort that builds it compares plain integers.
    public static let indexes = """
    CREATE INDEX events_pfn ON events(pfn) WHERE pfn IS NOT NULL;
    """

    /// Runs `body` inside one transaction; `body` makes an `EventWriter` per trace with `writer(...)`
    /// and calls `finish` on it. Committed only when `body` returns normally.
    public func transaction(_ body: (Database) throws -> Void) throws {
        try db.writeWithoutTransaction { db in
            try db.execute(sql: "BEGIN")
            do {
                try body(db)
                try db.execute(sql: "COMMIT")
            } catch {
                try? db.execute(sql: "ROLLBACK")
                throw error
            }
        }
    }

    /// A sink that writes one trace's events; call `finish` on it after the trace is read.
    public func writer(_ db: Database, id: Int, path: String) throws -> EventWriter {
        try EventWriter(db: db, traceID: id, path: path)
    }

    /// Indexes, gathers the query planner's statistics, renames the temporary file over the destination.
    public func commit() throws {
        try db.writeWithoutTransaction { db in
            // Built after the load: sorting the keys once is far cheaper than keeping the index in order
            // row by row. The statistics (sqlite_stat1, from a bounded sample) tell the planner that
            // `events` is large and the other tables are small, so joins start from the right table.
            try db.execute(sql: """
                \(Self.indexes)
                PRAGMA analysis_limit = 1000;
                ANALYZE;
                INSERT INTO meta VALUES ('schema_version', '\(Self.schemaVersion)');
                """)
        }
        try db.close()
        if rename(tempPath, destination) != 0 {
            let err = String(cString: strerror(errno))
            try? FileManager.default.removeItem(atPath: tempPath)
            throw StoreError(message: "\(destination): cannot rename the finished database into place: \(err)")
        }
    }

    /// Drops the temporary file (on error).
    public func abandon() {
        try? db.close()
        try? FileManager.default.removeItem(atPath: tempPath)
    }

}

public struct StoreError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// Streams events into the `events` table. Rows are gathered in batches and written with one
/// multi-row INSERT per batch, bound through the SQLite C API: no per-row allocation, and SQLite's
/// per-statement work is shared by the rows of a batch.
public struct EventWriter: EventSink {
    let db: Database
    let traceID: Int
    let path: String
    let conn: OpaquePointer
    /// INSERT of `batchRows` rows, and of one row (for the rest at the end).
    var batchStmt: OpaquePointer?
    var rowStmt: OpaquePointer?
    public private(set) var records: Int64 = 0
    public private(set) var withStack: Int64 = 0
    var first: UInt64 = 0
    var last: UInt64 = 0
    var failed: String? = nil

    /// Rows per INSERT statement.
    let batchRows: Int
    /// Bound columns per row: every column but `trace_id`, which the statement carries as a literal.
    static let boundColumns = 14
    /// Integer columns of the pending rows, `boundColumns` per row (the `extra` slot is unused).
    var ints: [Int64]
    /// Per pending row: bit j set when typed column j (pfn, dev, ino, index, order) is NULL, bit 5 when
    /// `extra` is NULL.
    var nulls: [UInt8]
    /// `extra` text of the pending rows, back to back; row i's text starts at `textStart[i]`.
    var text: [UInt8] = []
    var textStart: [Int]
    var pending = 0
    /// How each event type's fields map to columns, by type id.
    var plans: [TypePlan?] = []

    /// The fields of one event type as the writer uses them. `fields` is the array the plan was built
    /// from; holding it means any later change to the type's fields gives the type a different array.
    final class TypePlan {
        let fields: [FieldInfo]
        /// Field index of pfn, dev, ino, index, order (-1 when the type has no such field).
        let keys: (Int, Int, Int, Int, Int)
        /// Fields written to `extra`, in field order: index, kind, and the bytes "name=" (" name=" when
        /// another field precedes it).
        let extraFields: [Int]
        let extraKinds: [FieldKind]
        let extraFirst: [[UInt8]]
        let extraNext: [[UInt8]]

        init(_ t: EventType) {
            fields = t.fields
            let k = EventWriter.keyNames.map { names in names.lazy.compactMap { t.fieldIndex($0) }.first ?? -1 }
            keys = (k[0], k[1], k[2], k[3], k[4])
            let rest = t.fields.indices.filter { !k.contains($0) }
            extraFields = rest
            extraKinds = rest.map { t.fields[$0].kind }
            extraFirst = rest.map { Array((t.fields[$0].name + "=").utf8) }
            extraNext = rest.map { Array((" " + t.fields[$0].name + "=").utf8) }
        }
    }

    init(db: Database, traceID: Int, path: String) throws {
        self.db = db
        self.traceID = traceID
        self.path = path
        conn = db.sqliteConnection!
        // At most 256 rows, and no more parameters than this SQLite allows in one statement.
        let n = max(1, min(256, Int(sqlite3_limit(conn, SQLITE_LIMIT_VARIABLE_NUMBER, -1)) / Self.boundColumns))
        batchRows = n
        ints = Array(repeating: 0, count: n * Self.boundColumns)
        nulls = Array(repeating: 0, count: n)
        textStart = Array(repeating: 0, count: n + 1)
        let row = "(\(traceID)" + String(repeating: ",?", count: Self.boundColumns) + ")"
        batchStmt = try prepare("INSERT INTO events VALUES " + Array(repeating: row, count: n).joined(separator: ","))
        rowStmt = try prepare("INSERT INTO events VALUES " + row)
    }

    func prepare(_ sql: String) throws -> OpaquePointer? {
        var s: OpaquePointer? = nil
        if sqlite3_prepare_v3(conn, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &s, nil) != SQLITE_OK {
            throw StoreError(message: "cannot prepare insert: \(String(cString: sqlite3_errmsg(conn)))")
        }
        return s
    }

    static let keyNames: [[String]] = [["pfn"], ["s_dev", "dev"], ["i_ino", "ino"], ["index"], ["order"]]

    @inline(__always)
    mutating func plan(for e: borrowing Event, _ ctx: TraceContext) -> TypePlan {
        let t = Int(e.type)
        let fields = ctx.types[t].fields
        if t < plans.count, let p = plans[t], sameArray(p.fields, fields) { return p }
        while plans.count <= t { plans.append(nil) }
        let p = TypePlan(ctx.types[t])
        plans[t] = p
        return p
    }

    public mutating func consume(_ e: borrowing Event, context ctx: TraceContext) {
        if failed != nil { return }
        let p = plan(for: e, ctx)
        let n = Int(e.fieldCount)
        let row = pending
        let b = row * Self.boundColumns
        ints[b] = records
        ints[b + 1] = Int64(bitPattern: e.timestamp)
        ints[b + 2] = Int64(e.cpu)
        ints[b + 3] = Int64(e.pid)
        ints[b + 4] = Int64(e.comm)
        ints[b + 5] = Int64(e.type)
        ints[b + 6] = Int64(e.stack)
        var null: UInt8 = 0
        @inline(__always) func key(_ i: Int, _ j: Int) {
            if i >= 0 && i < n { ints[b + 7 + j] = e.values[i] } else { null |= 1 << UInt8(j) }
        }
        key(p.keys.0, 0)
        key(p.keys.1, 1)
        key(p.keys.2, 2)
        key(p.keys.3, 3)
        key(p.keys.4, 4)
        ints[b + 13] = Int64(bitPattern: e.source)
        // The other fields as `TraceContext.render` prints them, "name=value" separated by spaces.
        let start = text.count
        var any = false
        for x in 0..<p.extraFields.count {
            let i = p.extraFields[x]
            if i >= n { break }
            text.append(contentsOf: any ? p.extraNext[x] : p.extraFirst[x])
            any = true
            let v = e.values[i]
            switch p.extraKinds[x] {
            case .string: text.append(contentsOf: ctx.strings[StringID(truncatingIfNeeded: v)].utf8)
            case .unsigned, .pointer: appendDecimal(UInt64(bitPattern: v), to: &text)
            case .signed:
                if v < 0 { text.append(UInt8(ascii: "-")) }
                appendDecimal(v.magnitude, to: &text)
            }
        }
        if !any { null |= 1 << 5 }
        nulls[row] = null
        textStart[row] = start
        textStart[row + 1] = text.count
        pending = row + 1
        if records == 0 { first = e.timestamp }
        last = e.timestamp
        records += 1
        if e.stack != 0 { withStack += 1 }
        if pending == batchRows { flush() }
    }

    /// Writes the pending rows: one INSERT for a full batch, else one INSERT per row.
    mutating func flush() {
        guard pending > 0, failed == nil else { pending = 0; text.removeAll(keepingCapacity: true); return }
        let full = pending == batchRows
        let s = full ? batchStmt! : rowStmt!
        let rowsPerStep = full ? pending : 1
        ints.withUnsafeBufferPointer { iv in
            text.withUnsafeBufferPointer { tv in
                let base = UnsafeRawPointer(tv.baseAddress).map { $0.assumingMemoryBound(to: CChar.self) }
                var row = 0
                while row < pending {
                    for r in 0..<rowsPerStep {
                        let x = row + r
                        let b = x * Self.boundColumns
                        let c = Int32(r * Self.boundColumns)
                        let null = nulls[x]
                        for j in 0..<7 { sqlite3_bind_int64(s, c + Int32(j) + 1, iv[b + j]) }
                        for j in 0..<5 {
                            if null & (1 << UInt8(j)) != 0 { sqlite3_bind_null(s, c + Int32(j) + 8) }
                            else { sqlite3_bind_int64(s, c + Int32(j) + 8, iv[b + 7 + j]) }
                        }
                        if null & (1 << 5) != 0 { sqlite3_bind_null(s, c + 13) }
                        else {
                            let from = textStart[x]
                            sqlite3_bind_text(s, c + 13, base! + from, Int32(textStart[x + 1] - from), SQLITE_STATIC_PTR)
                        }
                        sqlite3_bind_int64(s, c + 14, iv[b + 13])
                    }
                    if sqlite3_step(s) != SQLITE_DONE { failed = String(cString: sqlite3_errmsg(conn)) }
                    sqlite3_reset(s)
                    if failed != nil { break }
                    row += rowsPerStep
                }
            }
        }
        pending = 0
        text.removeAll(keepingCapacity: true)
    }

    /// Writes the trace's tables (types, strings, symbols, stacks, lost events) and commits.
    public mutating func finish(_ ctx: TraceContext) throws {
        flush()
        // The statements still point into `text`: finalized here, never stepped again.
        if let s = batchStmt { sqlite3_finalize(s); batchStmt = nil }
        if let s = rowStmt { sqlite3_finalize(s); rowStmt = nil }
        if let f = failed { throw StoreError(message: "insert failed: \(f)") }
        let lost = ctx.lost.reduce(UInt64(0)) { $0 + $1.count }
        let tid = traceID
        let (recs, ws, fst, lst, p) = (records, withStack, first, last, path)
        do {
            try db.execute(sql: "INSERT INTO traces VALUES (?,?,?,?,?,?,?,?,?,?)",
                           arguments: [tid, p, ctx.format, ctx.kernelRelease, ctx.cpus, recs, ws, Int64(lost),
                                       recs > 0 ? Int64(bitPattern: fst) : nil, recs > 0 ? Int64(bitPattern: lst) : nil])
            for (k, v) in ctx.facts {
                try db.execute(sql: "INSERT INTO trace_facts VALUES (?,?,?)", arguments: [tid, k, v])
            }
            for t in ctx.types {
                let fields = JSON.array(t.fields.map { .object([("name", .string($0.name)), ("kind", .string("\($0.kind)"))]) })
                try db.execute(sql: "INSERT INTO event_types VALUES (?,?,?,?,?)",
                               arguments: [tid, Int(t.id), t.system, t.name, fields.render()])
            }
            let st = try db.makeStatement(sql: "INSERT INTO strings VALUES (?,?,?)")
            for i in 0..<ctx.strings.count { try st.execute(arguments: [tid, i, ctx.strings[StringID(i)]]) }
            let sy = try db.makeStatement(sql: "INSERT INTO symbols VALUES (?,?,?)")
            for i in 0..<ctx.symbols.count { try sy.execute(arguments: [tid, i, ctx.symbols[SymbolID(i)]]) }
            let sk = try db.makeStatement(sql: "INSERT INTO stacks VALUES (?,?,?)")
            let sf = try db.makeStatement(sql: "INSERT INTO stack_frames VALUES (?,?,?,?)")
            for id in 1..<max(1, ctx.stacks.count) {
                let frames = ctx.stacks.frames(of: StackID(id))
                try sk.execute(arguments: [tid, id, frames.count])
                for (pos, sym) in frames.enumerated() { try sf.execute(arguments: [tid, id, pos, Int(sym)]) }
            }
            let lo = try db.makeStatement(sql: "INSERT INTO lost_events VALUES (?,?,?,?)")
            for l in ctx.lost { try lo.execute(arguments: [tid, l.cpu, Int64(bitPattern: l.timestamp), Int64(bitPattern: l.count)]) }
        }
    }
}

/// Appends the decimal digits of `v`.
@inline(__always)
func appendDecimal(_ v: UInt64, to out: inout [UInt8]) {
    if v < 10 { out.append(UInt8(truncatingIfNeeded: v) &+ 0x30); return }
    var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)  // 24 bytes: room for 20 digits
    var n = 0
    var x = v
    withUnsafeMutableBytes(of: &digits) { d in
        while x > 0 {
            d[23 - n] = UInt8(truncatingIfNeeded: x % 10) &+ 0x30
            x /= 10
            n += 1
        }
        out.append(contentsOf: UnsafeRawBufferPointer(rebasing: d[(24 - n)...]))
    }
}

/// SQLITE_STATIC: SQLite reads the bound bytes in place; they must stay unchanged until the statement
/// has been stepped.
let SQLITE_STATIC_PTR: sqlite3_destructor_type? = nil

/// True when `a` and `b` share their storage (an array changed since `a` was taken does not).
@inline(__always)
func sameArray<T>(_ a: [T], _ b: [T]) -> Bool {
    a.withUnsafeBufferPointer { x in b.withUnsafeBufferPointer { y in x.baseAddress == y.baseAddress && x.count == y.count } }
}

