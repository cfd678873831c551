import CMapGuard
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
    static let cacheKiB = 1024

    /// Event writers made by `writer(...)`: their insert threads are stopped before the transaction ends.
    private var writers: [WeakPipeline] = []

    public init(destination: String) throws {
        self.destination = destination
        let dir = (destination as NSString).deletingLastPathComponent
        let base = (destination as NSString).lastPathComponent
        tempPath = (dir.isEmpty ? "." : dir) + "/.\(base).tmp-\(getpid())"
        try? FileManager.default.removeItem(atPath: tempPath)
        var config = Configuration()
        config.journalMode = .default
        db = try DatabaseQueue(path: tempPath, configuration: config)
        ph_mapguard_output(tempPath)
        try db.writeWithoutTransaction { db in
            // The file is private until it is renamed into place: no rollback journal, no syncs, one
            // lock held from start to end. A small page cache is enough for appending rows: full pages
            // are written out as the rows come, on the insert thread, which leaves little for COMMIT to
            // write. It also bounds the sorter that builds the index: sorted runs of at most that size
            // go to a temporary file (in TMPDIR) and are merged from there, so memory stays flat
            // however many events there are; runs this small are sorted within the CPU's cache. (With
            // temp_store = MEMORY the sorter keeps every key in memory, in one run that is also slower
            // to sort.)
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
    CREATE INDEX IF NOT EXISTS events_pfn ON events(pfn) WHERE pfn IS NOT NULL;
    """

    /// Runs `body` inside one transaction; `body` makes an `EventWriter` per trace with `writer(...)`
    /// and calls `finish` on it. Committed only when `body` returns normally.
    public func transaction(_ body: (Database) throws -> Void) throws {
        try db.writeWithoutTransaction { db in
            try db.execute(sql: "BEGIN")
            do {
                try body(db)
                // Every writer must have been finished: one still running would commit a trace whose
                // queued rows are dropped.
                if writers.contains(where: { $0.pipeline?.isRunning ?? false }) {
                    throw StoreError(message: "\(destination): a trace was not finished; nothing is written")
                }
                stopWriters()
                try db.execute(sql: "COMMIT")
            } catch {
                // A writer left unfinished (the read failed) may still be inserting on its thread:
                // stopped and joined before the connection is used here.
                stopWriters()
                try? db.execute(sql: "ROLLBACK")
                throw error
            }
        }
    }

    /// A sink that writes one trace's events; call `finish` on it after the trace is read. It inserts
    /// on a thread of its own until `finish`; the connection must not be used otherwise in the meantime.
    public func writer(_ db: Database, id: Int, path: String) throws -> EventWriter {
        writers.removeAll { $0.pipeline == nil }
        // One insert thread at a time owns the connection.
        if writers.contains(where: { $0.pipeline?.isRunning ?? false }) {
            throw StoreError(message: "\(destination): the previous trace's writer was not finished")
        }
        let w = EventWriter(db: db, traceID: id, path: path)
        writers.append(WeakPipeline(pipeline: w.pipeline))
        return w
    }

    /// Stops the insert thread of every writer not finished yet; their pending rows are dropped.
    func stopWriters() {
        for w in writers { w.pipeline?.cancel() }
        writers.removeAll()
    }

    /// Indexes, gathers the query planner's statistics, renames the temporary file over the destination.
    public func commit() throws {
        try db.writeWithoutTransaction { db in
            // Built after the load, unless it was kept during it (`EventWriter.slowFormats`): sorting the
            // keys once costs less CPU than keeping the index in order row by row. The statistics
            // (sqlite_stat1, from a bounded sample) tell the planner that `events` is large and the other
            // tables are small, so joins start from the right table.
            try db.execute(sql: """
                \(Self.indexes)
                PRAGMA analysis_limit = 1000;
                ANALYZE;
                INSERT INTO meta VALUES ('schema_version', '\(Self.schemaVersion)');
                """)
        }
        try db.close()
        ph_mapguard_output(nil)
        if rename(tempPath, destination) != 0 {
            let err = String(cString: strerror(errno))
            try? FileManager.default.removeItem(atPath: tempPath)
            throw StoreError(message: "\(destination): cannot rename the finished database into place: \(err)")
        }
    }

    /// Drops the temporary file (on error).
    public func abandon() {
        ph_mapguard_output(nil)
        stopWriters()
        try? db.close()
        try? FileManager.default.removeItem(atPath: tempPath)
    }

}

public struct StoreError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}

/// Streams events into the `events` table on two threads. The caller of `consume` (the reader's
/// thread) packs each event into a row of the batch it is filling: integer columns, NULL flags and the
/// `extra` text already rendered, so everything that needs the `TraceContext` is done there. A full
/// batch goes to the writer's insert thread (`InsertQueue`), which only binds rows to multi-row INSERTs
/// through the SQLite C API and steps them, while the reader fills the next batch. The batches are a
/// fixed set (`InsertQueue.queued` in flight plus the one being filled), so memory does not grow with
/// the trace; when all are in flight the reader waits for one to come back.
///
/// Strings, symbols and stacks interned while the trace is read go with the batches too (copied out of
/// the context on the reader's thread, a few dozen at a time, the rest with the last batch): the insert
/// thread writes them to `strings`, `symbols`, `stacks` and `stack_frames` in id order.
///
/// From `init` to `finish` the connection belongs to the insert thread. `finish` hands over the last
/// rows and waits for the thread to write them and end, then writes the trace's remaining tables
/// (`traces`, `trace_facts`, `event_types`, `lost_events`) on the caller's thread. The first insert
/// error stops the inserts: the reader drops the rest of the events and `finish` throws the error.
/// A writer dropped without `finish` (the read failed) stops its thread, dropping the rows not
/// written, and waits for it; `TraceStoreWriter.transaction` also stops any such writer before it
/// rolls back. A writer is used in place (`inout`), never copied: copies would fill the same batch.
public struct EventWriter: EventSink {
    let db: Database
    let traceID: Int
    let path: String
    let conn: OpaquePointer
    let pipeline: InsertPipeline
    public private(set) var records: Int64 = 0
    public private(set) var withStack: Int64 = 0
    var first: UInt64 = 0
    var last: UInt64 = 0
    /// The insert thread has failed: events are dropped, `finish` throws.
    var failed = false

    /// Rows per batch handed to the insert thread.
    let batchRows: Int
    /// Columns per row of a batch: every column but `trace_id`, which the statements carry as a literal.
    static let boundColumns = 14
    /// Rows per INSERT statement (at most; fewer when this SQLite allows fewer parameters).
    static let rowsPerInsert = 256
    /// INSERT steps per batch. Small batches hand rows over soon after they are read, and bound what
    /// is left to write when `finish` is called.
    static let insertsPerBatch = 4
    /// The batch being filled, and its storage: the integer columns of row i at
    /// `ints[boundColumns * i ..< boundColumns * (i + 1)]` (the `extra` slot, 12, unused); `nulls[i]`
    /// with bit j set when typed column j (pfn, dev, ino, index, order) is NULL, bit 5 when `extra` is
    /// NULL; the `extra` text of the rows back to back in `text`, row i's at
    /// `textStart[i] ..< textStart[i + 1]`.
    var batch: RowBatch
    var ints: UnsafeMutablePointer<Int64>
    var nulls: UnsafeMutablePointer<UInt8>
    var textStart: UnsafeMutablePointer<Int>
    var text: [UInt8] = []
    var pending = 0
    /// Whether the first batch was handed over (the index decision is made then).
    var handedOver = false
    /// Formats whose readers are slower than the inserts (about 1 µs per event): while the first trace
    /// of a database is read from one of them, the insert thread has time to keep the `events_pfn` index
    /// in order as rows arrive, and the import ends without the sort that builds it. From the binary
    /// formats rows arrive faster than they are inserted; the index is then built by one sort at the end.
    static let slowFormats: Set<String> = ["tracefs-text", "trace-cmd-report", "perf-script"]
    /// Strings, symbols and stacks of the context already handed to the insert thread (counts, ids
    /// included; stack 0, the empty stack, is never written).
    var sentStrings = 0
    var sentSymbols = 0
    var sentStacks = 1
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

    init(db: Database, traceID: Int, path: String) {
        self.db = db
        self.traceID = traceID
        self.path = path
        conn = db.sqliteConnection!
        // No more parameters than this SQLite allows in one statement.
        let limit = Int(sqlite3_limit(conn, SQLITE_LIMIT_VARIABLE_NUMBER, -1))
        let n = max(1, min(Self.rowsPerInsert, (limit - 1) / InsertQueue.rowParameters))
        batchRows = n * Self.insertsPerBatch
        batch = RowBatch(rows: batchRows)
        ints = batch.ints
        nulls = batch.nulls
        textStart = batch.textStart
        pipeline = InsertPipeline(conn: conn, traceID: traceID, rowsPerInsert: n, batchRows: batchRows)
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
        if failed { return }
        let p = plan(for: e, ctx)
        let n = Int(e.fieldCount)
        let row = pending
        // `row < batchRows`: a full batch is handed off as soon as it fills.
        let v = ints + row * Self.boundColumns
        v[0] = records
        v[1] = Int64(bitPattern: e.timestamp)
        v[2] = Int64(e.cpu)
        v[3] = Int64(e.pid)
        v[4] = Int64(e.comm)
        v[5] = Int64(e.type)
        v[6] = Int64(e.stack)
        var null: UInt8 = 0
        @inline(__always) func key(_ i: Int, _ j: Int) {
            if i >= 0 && i < n { v[7 + j] = e.values[i] } else { null |= 1 << UInt8(j) }
        }
        key(p.keys.0, 0)
        key(p.keys.1, 1)
        key(p.keys.2, 2)
        key(p.keys.3, 3)
        key(p.keys.4, 4)
        v[13] = Int64(bitPattern: e.source)
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
        if pending == batchRows { handOff(ctx) }
    }

    /// Strings, symbols or stacks interned since the last batch go with the next one once there are
    /// this many (so that most are written many rows to a statement), or at the end of the trace.
    static let internedPerBatch = 64

    /// Hands the pending rows, and the strings, symbols and stacks interned since they were last handed
    /// over (when there are enough of them, or at the `end` of the trace), to the insert thread, and
    /// takes an empty batch to fill next (waiting while every batch is in flight).
    mutating func handOff(_ ctx: TraceContext, end: Bool = false) {
        if failed { return }
        let m = end ? 1 : Self.internedPerBatch
        let strings = ctx.strings.count - sentStrings >= m ? ctx.strings.count : sentStrings
        let symbols = ctx.symbols.count - sentSymbols >= m ? ctx.symbols.count : sentSymbols
        let stacks = ctx.stacks.count - sentStacks >= m ? ctx.stacks.count : sentStacks
        if pending == 0 && strings == sentStrings && symbols == sentSymbols && stacks == sentStacks { return }
        if !handedOver {
            handedOver = true
            batch.createIndex = traceID == 1 && Self.slowFormats.contains(ctx.format)
        }
        // The text goes with the batch; the batch's previous text, long written, is reused.
        swap(&batch.text, &text)
        batch.rows = pending
        pending = 0
        text.removeAll(keepingCapacity: true)
        batch.firstString = sentStrings
        batch.strings.removeAll(keepingCapacity: true)
        batch.strings.append(contentsOf: ctx.strings.strings[sentStrings..<strings])
        sentStrings = strings
        batch.firstSymbol = sentSymbols
        batch.symbols.removeAll(keepingCapacity: true)
        batch.symbols.append(contentsOf: ctx.symbols.strings[sentSymbols..<symbols])
        sentSymbols = symbols
        batch.firstStack = sentStacks
        batch.stackDepths.removeAll(keepingCapacity: true)
        batch.frames.removeAll(keepingCapacity: true)
        for id in sentStacks..<stacks {
            let f = ctx.stacks.frames(of: StackID(id))
            batch.stackDepths.append(f.count)
            batch.frames.append(contentsOf: f)
        }
        sentStacks = stacks
        guard let next = pipeline.queue.submit(batch) else {
            failed = true
            return
        }
        batch = next
        ints = next.ints
        nulls = next.nulls
        textStart = next.textStart
    }

    /// Writes the rest of the trace: the last rows, then the trace's own row, facts, types and lost
    /// events.
    public mutating func finish(_ ctx: TraceContext) throws {
        handOff(ctx, end: true)
        // Every row written, the insert thread gone: the connection is this thread's again.
        if let f = pipeline.finish() { throw StoreError(message: f) }
        let lost = ctx.lost.reduce(UInt64(0)) { $0 + $1.count }
        try insert("traces", 9, 1) { s, p, _ in
            bindText(s, p, path)
            bindText(s, p + 1, ctx.format)
            bindText(s, p + 2, ctx.kernelRelease)
            sqlite3_bind_int64(s, p + 3, Int64(ctx.cpus))
            sqlite3_bind_int64(s, p + 4, records)
            sqlite3_bind_int64(s, p + 5, withStack)
            sqlite3_bind_int64(s, p + 6, Int64(lost))
            bindInt(s, p + 7, records > 0 ? Int64(bitPattern: first) : nil)
            bindInt(s, p + 8, records > 0 ? Int64(bitPattern: last) : nil)
        }
        try insert("trace_facts", 2, ctx.facts.count) { s, p, i in
            bindText(s, p, ctx.facts[i].0)
            bindText(s, p + 1, ctx.facts[i].1)
        }
        try insert("event_types", 4, ctx.types.count) { s, p, i in
            let t = ctx.types[i]
            let fields = JSON.array(t.fields.map { .object([("name", .string($0.name)), ("kind", .string("\($0.kind)"))]) })
            sqlite3_bind_int64(s, p, Int64(t.id))
            bindText(s, p + 1, t.system)
            bindText(s, p + 2, t.name)
            bindText(s, p + 3, fields.render())
        }
        try insert("lost_events", 3, ctx.lost.count) { s, p, i in
            sqlite3_bind_int64(s, p, Int64(ctx.lost[i].cpu))
            sqlite3_bind_int64(s, p + 1, Int64(bitPattern: ctx.lost[i].timestamp))
            sqlite3_bind_int64(s, p + 2, Int64(bitPattern: ctx.lost[i].count))
        }
    }

    /// Inserts `count` rows of the trace into `table` on this thread (see `MultiRowInsert.insert`).
    func insert(_ table: String, _ parameters: Int, _ count: Int, _ bind: (OpaquePointer, Int32, Int) -> Void) throws {
        let t = MultiRowInsert(conn, table: table, traceID: traceID, parameters: parameters)
        defer { t.finalize() }
        if let e = t.insert(count, bind) { throw StoreError(message: e) }
    }
}

/// Rows packed by `EventWriter` (layout described there), for the insert thread. Fixed-size storage
/// for the events, allocated once; the arrays keep their capacity from batch to batch.
final class RowBatch {
    let ints: UnsafeMutablePointer<Int64>
    let nulls: UnsafeMutablePointer<UInt8>
    let textStart: UnsafeMutablePointer<Int>
    var text: [UInt8] = []
    var rows = 0
    /// Strings and symbols with ids from `firstString` and `firstSymbol` on.
    var firstString = 0
    var strings: [String] = []
    var firstSymbol = 0
    var symbols: [String] = []
    /// Stacks with ids from `firstStack` on: their depths, and their frames back to back.
    var firstStack = 0
    var stackDepths: [Int] = []
    var frames: [SymbolID] = []
    /// Create the `events_pfn` index before inserting these rows (see `EventWriter.slowFormats`).
    var createIndex = false

    init(rows n: Int) {
        ints = .allocate(capacity: n * EventWriter.boundColumns)
        ints.initialize(repeating: 0, count: n * EventWriter.boundColumns)
        nulls = .allocate(capacity: n)
        nulls.initialize(repeating: 0, count: n)
        textStart = .allocate(capacity: n + 1)
        textStart.initialize(repeating: 0, count: n + 1)
    }

    deinit {
        ints.deallocate()
        nulls.deallocate()
        textStart.deallocate()
    }
}

/// Owns the insert thread of one `EventWriter`: dropping it before `finish` (the read failed) stops the
/// thread, dropping the rows not written yet, and waits for it, so nothing else uses the connection
/// while the thread still might.
final class InsertPipeline {
    let queue: InsertQueue
    private var running = true

    init(conn: OpaquePointer, traceID: Int, rowsPerInsert: Int, batchRows: Int) {
        queue = InsertQueue(conn: conn, traceID: traceID, rowsPerInsert: rowsPerInsert, batchRows: batchRows)
        let q = queue
        Thread {
            Thread.current.name = "sqlite-insert"
            q.run()
        }.start()
    }

    deinit { cancel() }

    /// Waits until every queued row is written and the thread has ended; returns the insert error, if
    /// any.
    /// Whether the thread still runs (neither `finish` nor `cancel` was called).
    var isRunning: Bool { running }

    func finish() -> String? {
        if !running { return nil }
        running = false
        return queue.stop(cancel: false)
    }

    /// Stops the thread without writing the rows still queued, and waits for it to end.
    func cancel() {
        if !running { return }
        running = false
        _ = queue.stop(cancel: true)
    }
}

struct WeakPipeline {
    weak var pipeline: InsertPipeline?
}

/// The batches shared by the reader and the insert thread, and the thread's loop. The queues and flags
/// are guarded by `cond`'s lock; the statements and their `Bindings` belong to the insert thread while
/// it runs. No busy waiting: each side sleeps on `cond` until the other changes something.
final class InsertQueue: @unchecked Sendable {
    /// Batches in flight at most (queued or being inserted), besides the one the reader fills.
    static let queued = 8
    let conn: OpaquePointer
    let traceID: Int
    let rowsPerInsert: Int
    /// INSERT of `rowsPerInsert` rows, and of one row (for the last rows of the trace). Prepared by
    /// the insert thread when it starts, while the reader is still reading the trace's header.
    var manyStmt: OpaquePointer? = nil
    var oneStmt: OpaquePointer? = nil
    let manyBound: Bindings
    let oneBound: Bindings
    /// INSERTs into the interning tables (prepared when first needed).
    let stringRows: MultiRowInsert
    let symbolRows: MultiRowInsert
    let stackRows: MultiRowInsert
    let frameRows: MultiRowInsert
    let cond = NSCondition()
    /// Empty batches for the reader.
    var free: [RowBatch]
    /// Batches to insert, oldest first.
    var full: [RowBatch] = []
    /// No more batches are coming: the thread ends once `full` is empty, or at once with `cancelled`
    /// (the queued batches are then dropped).
    var stopping = false
    var cancelled = false
    var exited = false
    /// Why inserting stopped (a statement failed to prepare or to step); later batches are dropped.
    var failed: String? = nil

    init(conn: OpaquePointer, traceID: Int, rowsPerInsert n: Int, batchRows: Int) {
        self.conn = conn
        self.traceID = traceID
        rowsPerInsert = n
        free = (0..<Self.queued).map { _ in RowBatch(rows: batchRows) }
        manyBound = Bindings(count: 1 + n * Self.rowParameters)
        oneBound = Bindings(count: 1 + Self.rowParameters)
        stringRows = MultiRowInsert(conn, table: "strings", traceID: traceID, parameters: 2)
        symbolRows = MultiRowInsert(conn, table: "symbols", traceID: traceID, parameters: 2)
        stackRows = MultiRowInsert(conn, table: "stacks", traceID: traceID, parameters: 2)
        frameRows = MultiRowInsert(conn, table: "stack_frames", traceID: traceID, parameters: 3)
    }

    deinit {
        manyBound.deallocate()
        oneBound.deallocate()
    }

    /// Parameters per row of an INSERT: every column but `trace_id` (a literal) and `seq`.
    static let rowParameters = EventWriter.boundColumns - 1

    /// INSERT of `n` rows. Row r is (trace_id, ?1 + r, then `rowParameters` parameters of its own,
    /// numbered on from the previous row's): the rows of a batch have consecutive `seq` values, so
    /// only the first is bound, once per statement (SQLite computes `?1 + r` once per step, not per
    /// row). The other parameters are plain `?`: explicitly numbered ones would each be recorded by
    /// name, which makes preparing a statement with thousands of them slow.
    static func insertSQL(traceID: Int, rows n: Int) -> String {
        let rest = String(repeating: ",?", count: rowParameters) + ")"
        return "INSERT INTO events VALUES " + (0..<n).map { "(\(traceID),?1+\($0)" + rest }.joined(separator: ",")
    }

    /// Queues a full batch and returns an empty one, waiting while none is free. Returns nil, keeping
    /// `b`, once inserting has failed.
    func submit(_ b: RowBatch) -> RowBatch? {
        cond.lock()
        defer { cond.unlock() }
        if failed != nil { return nil }
        full.append(b)
        cond.broadcast()
        while free.isEmpty && failed == nil { cond.wait() }
        if failed != nil { return nil }
        return free.removeLast()
    }

    /// Tells the thread to end (after the queued batches unless `cancel`) and waits until it has;
    /// returns why inserting failed, if it did. Called once.
    func stop(cancel: Bool) -> String? {
        cond.lock()
        stopping = true
        if cancel { cancelled = true }
        cond.broadcast()
        while !exited { cond.wait() }
        let f = failed
        cond.unlock()
        // The statements may still point into the batches' text: finalized now, never stepped again.
        sqlite3_finalize(manyStmt)
        sqlite3_finalize(oneStmt)
        manyStmt = nil
        oneStmt = nil
        for t in [stringRows, symbolRows, stackRows, frameRows] { t.finalize() }
        return f
    }

    /// The insert thread: prepares the statements, then inserts the queued batches in order until
    /// told to stop. After a failure it keeps taking batches back (dropping them) so that the reader
    /// never waits for one in vain.
    func run() {
        var prepareError: String? = nil
        do {
            manyStmt = try prepareInsert(conn, Self.insertSQL(traceID: traceID, rows: rowsPerInsert))
            oneStmt = try prepareInsert(conn, Self.insertSQL(traceID: traceID, rows: 1))
        } catch {
            prepareError = "\(error)"
        }
        cond.lock()
        if let prepareError { failed = prepareError }
        while true {
            while full.isEmpty && !stopping { cond.wait() }
            if full.isEmpty || cancelled { break }
            let b = full.removeFirst()
            let skip = failed != nil
            cond.unlock()
            let error = skip ? nil : (createIndex(b) ?? insert(b, manyStmt!, oneStmt!) ?? insertInterned(b))
            cond.lock()
            if let error { failed = error }
            b.rows = 0
            b.createIndex = false
            free.append(b)
            cond.broadcast()
        }
        // Batches dropped on cancel go back too.
        free.append(contentsOf: full)
        full.removeAll()
        exited = true
        cond.broadcast()
        cond.unlock()
    }

    /// Creates the `events_pfn` index when `b` asks for it. Returns the error on failure.
    func createIndex(_ b: RowBatch) -> String? {
        guard b.createIndex else { return nil }
        if sqlite3_exec(conn, TraceStoreWriter.indexes, nil, nil, nil) != SQLITE_OK {
            return "cannot create the pfn index: \(String(cString: sqlite3_errmsg(conn)))"
        }
        return nil
    }

    /// Binds and steps the rows of `b`: INSERTs of `rowsPerInsert` rows, then one-row INSERTs for
    /// the rest. Returns the error on failure.
    func insert(_ b: RowBatch, _ manyStmt: OpaquePointer, _ oneStmt: OpaquePointer) -> String? {
        let cols = EventWriter.boundColumns
        let rows = b.rows
        let iv = b.ints
        let nv = b.nulls
        let sv = b.textStart
        return b.text.withUnsafeBufferPointer { tv -> String? in
            let base = UnsafeRawPointer(tv.baseAddress).map { $0.assumingMemoryBound(to: CChar.self) }
            var row = 0
            while row < rows {
                let many = rows - row >= rowsPerInsert
                let s = many ? manyStmt : oneStmt
                let bound = many ? manyBound : oneBound
                let count = many ? rowsPerInsert : 1
                bound.int(s, 0, iv[row * cols])
                for r in 0..<count {
                    let x = row + r
                    let v = x * cols
                    // Parameter p + j - 1 is column j of the row (column 0, `seq`, is ?1 + r).
                    let p = 1 + r * Self.rowParameters
                    let null = nv[x]
                    for j in 1..<7 { bound.int(s, p + j - 1, iv[v + j]) }
                    for j in 0..<5 {
                        if null & (1 << UInt8(j)) != 0 { bound.null(s, p + 6 + j) }
                        else { bound.int(s, p + 6 + j, iv[v + 7 + j]) }
                    }
                    if null & (1 << 5) != 0 { bound.null(s, p + 11) }
                    else {
                        let from = sv[x]
                        bound.text(s, p + 11, base! + from, sv[x + 1] - from)
                    }
                    bound.int(s, p + 12, iv[v + 13])
                }
                if let e = stepInsert(conn, s, "insert") { return e }
                row += count
            }
            return nil
        }
    }

    /// Writes the strings, symbols and stacks that came with `b`. Returns the error on failure.
    func insertInterned(_ b: RowBatch) -> String? {
        if let e = stringRows.insert(b.strings.count, { s, p, i in
            sqlite3_bind_int64(s, p, Int64(b.firstString + i))
            bindText(s, p + 1, b.strings[i])
        }) { return e }
        if let e = symbolRows.insert(b.symbols.count, { s, p, i in
            sqlite3_bind_int64(s, p, Int64(b.firstSymbol + i))
            bindText(s, p + 1, b.symbols[i])
        }) { return e }
        if let e = stackRows.insert(b.stackDepths.count, { s, p, i in
            sqlite3_bind_int64(s, p, Int64(b.firstStack + i))
            sqlite3_bind_int64(s, p + 1, Int64(b.stackDepths[i]))
        }) { return e }
        // One row per frame: (stack id, position, symbol id), walked in the order of `frames`.
        var stack = 0, position = 0
        return frameRows.insert(b.frames.count, { s, p, i in
            while position == b.stackDepths[stack] {
                stack += 1
                position = 0
            }
            sqlite3_bind_int64(s, p, Int64(b.firstStack + stack))
            sqlite3_bind_int64(s, p + 1, Int64(position))
            sqlite3_bind_int64(s, p + 2, Int64(b.frames[i]))
            position += 1
        })
    }
}

/// INSERTs into one of a trace's tables through the C API, `rowsPerStep` rows to a statement (which
/// shares SQLite's per-statement work, cursors and the primary key's index, among them) and the rest
/// one by one. The trace id, the first column of every table, is a literal of the statements; the
/// other columns are parameters.
final class MultiRowInsert {
    let conn: OpaquePointer
    let table: String
    let traceID: Int
    let parameters: Int
    let rowsPerStep: Int
    private var many: OpaquePointer? = nil
    private var one: OpaquePointer? = nil

    init(_ conn: OpaquePointer, table: String, traceID: Int, parameters: Int) {
        self.conn = conn
        self.table = table
        self.traceID = traceID
        self.parameters = parameters
        rowsPerStep = max(1, min(64, Int(sqlite3_limit(conn, SQLITE_LIMIT_VARIABLE_NUMBER, -1)) / parameters))
    }

    /// Inserts `count` rows; `bind(statement, p, i)` binds row i to parameters p, p + 1, ... Rows are
    /// bound in order. Returns the error on failure.
    func insert(_ count: Int, _ bind: (OpaquePointer, Int32, Int) -> Void) -> String? {
        var i = 0
        do {
            while i < count {
                let n = count - i >= rowsPerStep ? rowsPerStep : 1
                let s: OpaquePointer
                if n > 1 {
                    if many == nil { many = try statement(rows: n) }
                    s = many!
                } else {
                    if one == nil { one = try statement(rows: 1) }
                    s = one!
                }
                for r in 0..<n { bind(s, Int32(1 + r * parameters), i + r) }
                if let e = stepInsert(conn, s, "insert into \(table)") { return e }
                i += n
            }
        } catch {
            return "\(error)"
        }
        return nil
    }

    func statement(rows: Int) throws -> OpaquePointer {
        let row = "(\(traceID)" + String(repeating: ",?", count: parameters) + ")"
        return try prepareInsert(conn, "INSERT INTO \(table) VALUES " + Array(repeating: row, count: rows).joined(separator: ","))
    }

    func finalize() {
        sqlite3_finalize(many)
        sqlite3_finalize(one)
        many = nil
        one = nil
    }

    deinit { finalize() }
}

/// Binds text up to its first NUL byte, as SQLite's C-string binding takes it (SQLite copies it), or
/// NULL.
func bindText(_ s: OpaquePointer, _ i: Int32, _ text: String?) {
    guard let text else { sqlite3_bind_null(s, i); return }
    _ = text.withCString { sqlite3_bind_text(s, i, $0, -1, SQLITE_TRANSIENT_PTR) }
}

func bindInt(_ s: OpaquePointer, _ i: Int32, _ v: Int64?) {
    if let v { sqlite3_bind_int64(s, i, v) } else { sqlite3_bind_null(s, i) }
}

/// What each parameter of a statement holds: bindings survive `sqlite3_reset`, so a parameter whose
/// next value is the one it holds (a NULL column, a repeated CPU, pid or type) is not bound again.
/// Parameter `p` is SQLite's parameter `p + 1`.
struct Bindings {
    /// 0: unknown, 1: the integer in `value`, 2: NULL, 3: text (always bound again).
    let kind: UnsafeMutablePointer<UInt8>
    let value: UnsafeMutablePointer<Int64>

    init(count: Int) {
        kind = .allocate(capacity: count)
        kind.initialize(repeating: 0, count: count)
        value = .allocate(capacity: count)
        value.initialize(repeating: 0, count: count)
    }

    func deallocate() {
        kind.deallocate()
        value.deallocate()
    }

    @inline(__always)
    func int(_ s: OpaquePointer, _ p: Int, _ v: Int64) {
        if kind[p] == 1 && value[p] == v { return }
        sqlite3_bind_int64(s, Int32(p + 1), v)
        kind[p] = 1
        value[p] = v
    }

    @inline(__always)
    func null(_ s: OpaquePointer, _ p: Int) {
        if kind[p] == 2 { return }
        sqlite3_bind_null(s, Int32(p + 1))
        kind[p] = 2
    }

    /// Binds `count` bytes at `bytes` in place (SQLITE_STATIC): they must stay unchanged until the
    /// statement has been stepped.
    @inline(__always)
    func text(_ s: OpaquePointer, _ p: Int, _ bytes: UnsafePointer<CChar>, _ count: Int) {
        sqlite3_bind_text(s, Int32(p + 1), bytes, Int32(count), SQLITE_STATIC_PTR)
        kind[p] = 3
    }
}

/// Steps a prepared INSERT and resets it for the next rows; on failure "`what` failed: reason".
func stepInsert(_ conn: OpaquePointer, _ s: OpaquePointer, _ what: @autoclosure () -> String) -> String? {
    if sqlite3_step(s) != SQLITE_DONE {
        let m = String(cString: sqlite3_errmsg(conn))
        sqlite3_reset(s)
        return "\(what()) failed: \(m)"
    }
    sqlite3_reset(s)
    return nil
}

func prepareInsert(_ conn: OpaquePointer, _ sql: String) throws -> OpaquePointer {
    var s: OpaquePointer? = nil
    if sqlite3_prepare_v3(conn, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &s, nil) != SQLITE_OK {
        sqlite3_finalize(s)
        throw StoreError(message: "cannot prepare insert: \(String(cString: sqlite3_errmsg(conn)))")
    }
    return s!
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

/// SQLITE_TRANSIENT: SQLite copies the bound bytes.
let SQLITE_TRANSIENT_PTR = unsafeBitCast(OpaquePointer(bitPattern: -1), to: sqlite3_destructor_type.self)

/// True when `a` and `b` share their storage (an array changed since `a` was taken does not).
@inline(__always)
func sameArray<T>(_ a: [T], _ b: [T]) -> Bool {
    a.withUnsafeBufferPointer { x in b.withUnsafeBufferPointer { y in x.baseAddress == y.baseAddress && x.count == y.count } }
}

