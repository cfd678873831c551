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
            // A larger page cache and in-memory sorting make the bulk insert and the index builds faster.
            try db.execute(sql: "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -32768; PRAGMA temp_store = MEMORY;")
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

    /// Indexes, renames the temporary file over the destination.
    public func commit() throws {
        try db.writeWithoutTransaction { db in
            try db.execute(sql: """
                CREATE INDEX events_type ON events(trace_id, type_id);
                CREATE INDEX events_pfn ON events(pfn);
                CREATE INDEX events_key ON events(dev, ino, "index");
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

/// Streams events into the `events` table with one prepared statement (no per-row allocation).
public struct EventWriter: EventSink {
    let db: Database
    let traceID: Int
    let path: String
    let conn: OpaquePointer
    var stmt: OpaquePointer?
    public private(set) var records: Int64 = 0
    public private(set) var withStack: Int64 = 0
    var first: UInt64 = 0
    var last: UInt64 = 0
    /// Per event type: indices of pfn, dev, ino, index, order fields (-1 when absent).
    var keyIndex: [[Int]] = []
    var failed: String? = nil
    var extra: [UInt8] = []

    init(db: Database, traceID: Int, path: String) throws {
        self.db = db
        self.traceID = traceID
        self.path = path
        conn = db.sqliteConnection!
        var s: OpaquePointer? = nil
        let sql = "INSERT INTO events VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
        if sqlite3_prepare_v2(conn, sql, -1, &s, nil) != SQLITE_OK {
            throw StoreError(message: "cannot prepare insert: \(String(cString: sqlite3_errmsg(conn)))")
        }
        stmt = s
    }

    static let keyNames: [[String]] = [["pfn"], ["s_dev", "dev"], ["i_ino", "ino"], ["index"], ["order"]]

    mutating func keys(for type: EventTypeID, _ ctx: TraceContext) -> [Int] {
        let t = Int(type)
        while keyIndex.count <= t { keyIndex.append([]) }
        if keyIndex[t].isEmpty || keyIndex[t].count != 5 + ctx.types[t].fields.count {
            let et = ctx.types[t]
            var k: [Int] = Self.keyNames.map { names in names.lazy.compactMap { et.fieldIndex($0) }.first ?? -1 }
            // Remaining fields go to `extra`; mark each field as key (1) or extra (0).
            for i in 0..<et.fields.count { k.append(k[0..<5].contains(i) ? 1 : 0) }
            keyIndex[t] = k
        }
        return keyIndex[t]
    }

    public mutating func consume(_ e: borrowing Event, context ctx: TraceContext) {
        guard failed == nil, let s = stmt else { return }
        let k = keys(for: e.type, ctx)
        sqlite3_bind_int64(s, 1, Int64(traceID))
        sqlite3_bind_int64(s, 2, records)
        sqlite3_bind_int64(s, 3, Int64(bitPattern: e.timestamp))
        sqlite3_bind_int64(s, 4, Int64(e.cpu))
        sqlite3_bind_int64(s, 5, Int64(e.pid))
        sqlite3_bind_int64(s, 6, Int64(e.comm))
        sqlite3_bind_int64(s, 7, Int64(e.type))
        sqlite3_bind_int64(s, 8, Int64(e.stack))
        for j in 0..<5 {
            let i = k[j]
            if i >= 0, let v = e.value(i) { sqlite3_bind_int64(s, Int32(9 + j), v) } else { sqlite3_bind_null(s, Int32(9 + j)) }
        }
        extra.removeAll(keepingCapacity: true)
        let fields = ctx.types[Int(e.type)].fields
        for i in 0..<Int(e.fieldCount) where i + 5 < k.count && k[5 + i] == 0 {
            if !extra.isEmpty { extra.append(0x20) }
            extra.append(contentsOf: fields[i].name.utf8)
            extra.append(UInt8(ascii: "="))
            // As `TraceContext.render` prints it, without building a String for numbers.
            let v = e.values[i]
            switch fields[i].kind {
            case .string: extra.append(contentsOf: ctx.strings[StringID(truncatingIfNeeded: v)].utf8)
            case .unsigned, .pointer: appendDecimal(UInt64(bitPattern: v), to: &extra)
            case .signed:
                if v < 0 { extra.append(UInt8(ascii: "-")) }
                appendDecimal(v.magnitude, to: &extra)
            }
        }
        if extra.isEmpty {
            sqlite3_bind_null(s, 14)
        } else {
            extra.withUnsafeBufferPointer { p in
                _ = sqlite3_bind_text(s, 14, UnsafeRawPointer(p.baseAddress!).assumingMemoryBound(to: CChar.self),
                                      Int32(p.count), SQLITE_TRANSIENT_PTR)
            }
        }
        sqlite3_bind_int64(s, 15, Int64(bitPattern: e.source))
        if sqlite3_step(s) != SQLITE_DONE {
            failed = String(cString: sqlite3_errmsg(conn))
        }
        sqlite3_reset(s)
        if records == 0 { first = e.timestamp }
        last = e.timestamp
        records += 1
        if e.stack != 0 { withStack += 1 }
    }

    /// Writes the trace's tables (types, strings, symbols, stacks, lost events) and commits.
    public mutating func finish(_ ctx: TraceContext) throws {
        if let s = stmt { sqlite3_finalize(s); stmt = nil }
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

/// SQLITE_TRANSIENT: SQLite copies the bound bytes.
let SQLITE_TRANSIENT_PTR = unsafeBitCast(OpaquePointer(bitPattern: -1), to: sqlite3_destructor_type.self)
