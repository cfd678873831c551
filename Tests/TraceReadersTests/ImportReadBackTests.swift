import Foundation
import GRDB
import TraceModel
import TraceReaders
import TraceStore
import XCTest

/// Collects every event as the reader hands it over.
struct CollectEvents: EventSink {
    var events: [Event] = []
    mutating func consume(_ e: borrowing Event, context: TraceContext) { events.append(copy e) }
}

/// An import database read back is the trace it was imported from: same events, ids, tables and facts.
final class ImportReadBackTests: XCTestCase {
    /// Imports each (path, options) as traces 1, 2, ... of one database.
    func importTraces(_ inputs: [(String, ReadOptions)], into db: String) throws {
        let store = try TraceStoreWriter(destination: db)
        do {
            try store.transaction { conn in
                for (i, (p, o)) in inputs.enumerated() {
                    let ctx = TraceContext()
                    var w = try store.writer(conn, id: i + 1, path: p)
                    try readTrace(path: p, options: o, into: &w, context: ctx)
                    try w.finish(ctx)
                }
            }
            try store.commit()
        } catch {
            store.abandon()
            throw error
        }
    }

    func collect(_ path: String, _ options: ReadOptions) throws -> (events: [Event], ctx: TraceContext) {
        let ctx = TraceContext()
        var sink = CollectEvents()
        try readTraceOrDatabase(path: path, options: options, into: &sink, context: ctx)
        return (sink.events, ctx)
    }

    func lines(_ events: [Event], _ ctx: TraceContext) -> [String] {
        var out: [String] = []
        var sink = CanonicalLines(stacks: true, usec: .none) { out.append($0) }
        for e in events { sink.consume(e, context: ctx) }
        return out
    }

    /// Events equal field by field (values up to `fieldCount`), tables and facts equal.
    func assertSameStream(_ a: (events: [Event], ctx: TraceContext), _ b: (events: [Event], ctx: TraceContext),
                          _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        assertSameLines(lines(a.events, a.ctx), lines(b.events, b.ctx), what, file: file, line: line)
        XCTAssertEqual(a.events.count, b.events.count, what, file: file, line: line)
        for (i, (x, y)) in zip(a.events, b.events).enumerated() {
            let same = x.timestamp == y.timestamp && x.source == y.source && x.type == y.type && x.comm == y.comm
                && x.stack == y.stack && x.pid == y.pid && x.cpu == y.cpu && x.fieldCount == y.fieldCount
                && (0..<Int(x.fieldCount)).allSatisfy { x.values[$0] == y.values[$0] }
            if !same { XCTFail("\(what): event \(i) differs in its raw values or ids", file: file, line: line); break }
        }
        let (c, d) = (a.ctx, b.ctx)
        XCTAssertEqual(c.format, d.format, what, file: file, line: line)
        XCTAssertEqual(c.kernelRelease, d.kernelRelease, what, file: file, line: line)
        XCTAssertEqual(c.cpus, d.cpus, what, file: file, line: line)
        XCTAssertEqual(c.facts.map { "\($0.0)=\($0.1)" }, d.facts.map { "\($0.0)=\($0.1)" }, what, file: file, line: line)
        XCTAssertEqual(c.lost, d.lost, what, file: file, line: line)
        XCTAssertEqual(c.types.map(\.fullName), d.types.map(\.fullName), what, file: file, line: line)
        XCTAssertEqual(c.types.map(\.fields), d.types.map(\.fields), what, file: file, line: line)
        XCTAssertEqual(c.strings.strings, d.strings.strings, what, file: file, line: line)
        XCTAssertEqual(c.symbols.strings, d.symbols.strings, what, file: file, line: line)
        XCTAssertEqual(c.stacks.starts, d.stacks.starts, what, file: file, line: line)
        XCTAssertEqual(c.stacks.frames, d.stacks.frames, what, file: file, line: line)
    }

    /// Every shipped bundle (trace.dat or perf.data), plus the text formats of one capture, imported into
    /// one database and read back trace by trace.
    func testEveryShippedBundleReadsBackIdentically() throws {
        let bundles = traceBundles()
        if bundles.isEmpty { throw XCTSkip("no capture bundles under traces/") }
        var inputs: [(String, ReadOptions)] = bundles.map { ($0, ReadOptions()) }
        // The text formats of the first bundles that have them.
        for name in ["trace.txt.zst", "trace.report.txt.zst", "perf.script.txt.zst"] {
            if let b = bundles.first(where: { FileManager.default.fileExists(atPath: $0 + "/" + name) }) {
                inputs.append((b + "/" + name, ReadOptions()))
            }
        }
        let dir = tempDir()
        let db = dir + "/all.sqlite"
        try importTraces(inputs, into: db)
        var formats = Set<String>()
        for (i, (path, options)) in inputs.enumerated() {
            let direct = try collect(path, options)
            var o = ReadOptions()
            o.traceID = i + 1
            let back = try collect(db, o)
            assertSameStream(direct, back, path)
            formats.insert(direct.ctx.format)
        }
        XCTAssertTrue(formats.contains("perf.data") && formats.contains("tracefs-text")
                      && formats.contains { $0.hasPrefix("trace.dat") }, "\(formats)")
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// Hand-made events: string values holding blanks and ` name=` (told apart by the strings table),
    /// negative and 64-bit values, a field appended to a type mid-trace (typed column `dev`, then `s_dev`),
    /// short events, lost-event runs.
    func testHandMadeStreamWithAmbiguousTextReadsBack() throws {
        let ctx = TraceContext()
        ctx.format = "tracefs-text"
        ctx.kernelRelease = "6.18.0-test"
        ctx.cpus = 4
        ctx.facts = [("trace clock", "local"), ("bundle", "/nowhere")]
        let t0 = ctx.addType(system: "test", name: "msg", fields: [
            FieldInfo(name: "text", kind: .string), FieldInfo(name: "pfn", kind: .unsigned),
            FieldInfo(name: "note", kind: .string), FieldInfo(name: "delta", kind: .signed),
            FieldInfo(name: "addr", kind: .pointer)], inferred: false)
        let t1 = ctx.addType(system: "", name: "grow", fields: [FieldInfo(name: "i_ino", kind: .unsigned),
                                                                FieldInfo(name: "dev", kind: .unsigned)], inferred: true)
        let sym = ["f_inner", "f_mid", "f_outer"].map { ctx.symbols.intern($0) }
        let stack = ctx.stacks.intern(sym)
        var original: [Event] = []
        let dir = tempDir()
        let db = dir + "/hand.sqlite"
        let store = try TraceStoreWriter(destination: db)
        try store.transaction { conn in
            // Events go to the writer as a reader hands them over: the type `grow` gains `s_dev` mid-trace.
            var w = try store.writer(conn, id: 1, path: "hand-made")
            func add(_ type: EventTypeID, _ values: [Int64], ts: UInt64, comm: String, stack s: StackID = 0) {
                var e = Event()
                e.type = type
                e.timestamp = ts
                e.cpu = UInt16(ts % 4)
                e.pid = Int32(ts)
                e.comm = ctx.strings.intern(comm)
                e.stack = s
                e.source = ts * 10
                e.fieldCount = UInt8(values.count)
                for (i, v) in values.enumerated() { e.values[i] = v }
                original.append(e)
                w.consume(e, context: ctx)
            }
            func s(_ text: String) -> Int64 { Int64(ctx.strings.intern(text)) }
            add(t0, [s("hello world note=x"), 0x10f00, s("a b"), -5, Int64(bitPattern: UInt64.max)], ts: 1, comm: "Web Content", stack: stack)
            add(t0, [s("good day"), 7, s("x note=a b"), Int64.min, 0], ts: 2, comm: "cat")
            add(t0, [s(""), 0, s("note="), Int64.max, 1], ts: 3, comm: "")
            add(t0, [s("only two"), 42], ts: 4, comm: "cat")
            add(t0, [], ts: 5, comm: "cat")
            add(t1, [99, (254 << 20) | 3], ts: 6, comm: "cat")
            _ = ctx.appendInferredField(t1, FieldInfo(name: "s_dev", kind: .unsigned))
            add(t1, [100, 5, (8 << 20) | 1], ts: 7, comm: "cat", stack: stack)
            add(t1, [101], ts: 8, comm: "cat")
            ctx.lost = [LostEvents(cpu: 1, timestamp: 3, count: 17), LostEvents(cpu: -1, timestamp: 0, count: 0)]
            try w.finish(ctx)
        }
        try store.commit()
        let back = try collect(db, ReadOptions())
        assertSameStream((original, ctx), back, "hand-made")
        // The `dev` value of the event read before `s_dev` existed stays in `dev`.
        XCTAssertEqual(back.events[5].fieldCount, 2)
        XCTAssertEqual(back.events[5].values[1], (254 << 20) | 3)
        XCTAssertEqual(back.events[6].values[2], (8 << 20) | 1)
    }

    // MARK: bad input

    func smallDatabase() throws -> (dir: String, db: String) {
        let dir = tempDir()
        let trace = dir + "/t.txt"
        try """
        # tracer: nop
                    cat-812     [001] .....   100.000001: mm_filemap_add_to_page_cache: dev 254:3 ino 1a2b pfn=0x10f00 ofs=8192 order=0
                    cat-812     [001] .....   100.000002: <stack trace>
         => trace_event_raw_event_mm_filemap_op_page_cache
         => __filemap_add_folio
                    cat-812     [001] .....   100.000003: mm_page_alloc: page=0xffffea0000000040 pfn=0x1 order=0 migratetype=1 gfp_flags=GFP_KERNEL
                    cat-812     [000] .....   100.000004: mm_page_free: page=0xffffea0000000040 pfn=0x1 order=0
        """.write(toFile: trace, atomically: true, encoding: .utf8)
        let db = dir + "/small.sqlite"
        try importTraces([(trace, ReadOptions())], into: db)
        return (dir, db)
    }

    func readError(_ path: String, _ options: ReadOptions = ReadOptions()) -> TraceError? {
        do {
            _ = try collect(path, options)
            XCTFail("\(path) read without an error")
            return nil
        } catch let e as TraceError {
            XCTAssertTrue(e.description.hasPrefix(path + ": "), "names the file: \(e)")
            XCTAssertFalse(e.description.contains("\n"), "one line: \(e)")
            return e
        } catch {
            XCTFail("not a TraceError: \(error)")
            return nil
        }
    }

    func mutated(_ db: String, _ name: String, _ sql: String) throws -> String {
        let out = (db as NSString).deletingLastPathComponent + "/" + name
        try? FileManager.default.removeItem(atPath: out)
        try FileManager.default.copyItem(atPath: db, toPath: out)
        let q = try DatabaseQueue(path: out)
        try q.write { try $0.execute(sql: sql) }
        try q.close()
        return out
    }

    func testSmallDatabaseReadsBack() throws {
        let (dir, db) = try smallDatabase()
        let back = try collect(db, ReadOptions())
        XCTAssertEqual(back.events.count, 3)
        XCTAssertEqual(back.ctx.stackNames(back.events[0].stack), ["trace_event_raw_event_mm_filemap_op_page_cache", "__filemap_add_folio"])
        let direct = try collect(dir + "/t.txt", ReadOptions())
        assertSameStream(direct, back, "small")
    }

    func testTruncatedDatabase() throws {
        let (dir, db) = try smallDatabase()
        let bytes = try Data(contentsOf: URL(fileURLWithPath: db))
        for cut in [16, 100, 1024, bytes.count / 2, bytes.count - 1024, bytes.count - 1] where cut > 0 && cut < bytes.count {
            let p = dir + "/cut-\(cut).sqlite"
            try bytes.prefix(cut).write(to: URL(fileURLWithPath: p))
            if let e = readError(p) { XCTAssertEqual(e.exitCode, 65, "\(cut): \(e)") }
        }
        // Garbage after the magic.
        let junk = dir + "/junk.sqlite"
        try Data(Array("SQLite format 3\0".utf8) + [UInt8](repeating: 0xA5, count: 3000)).write(to: URL(fileURLWithPath: junk))
        if let e = readError(junk) { XCTAssertEqual(e.exitCode, 65, "\(e)") }
    }

    func testRunDatabaseIsNotATrace() throws {
        let dir = tempDir()
        let run = dir + "/run.sqlite"
        let q = try DatabaseQueue(path: run)
        try q.write { db in
            try db.execute(sql: "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL); INSERT INTO meta VALUES ('schema', 'pagehint-runs/1'); CREATE TABLE runs (id INTEGER PRIMARY KEY)")
        }
        try q.close()
        let e = readError(run)
        XCTAssertEqual(e?.exitCode, 65)
        XCTAssertTrue(e?.reason.contains("replay run database") ?? false, "\(String(describing: e))")
    }

    func testDamagedTablesAreOneLineErrors() throws {
        let (_, db) = try smallDatabase()
        let cases: [(String, String, String)] = [
            ("DROP TABLE stacks", "no such table: stacks", "missing table"),
            ("DROP TABLE meta", "no meta table", "no meta"),
            ("UPDATE meta SET value = '2' WHERE key = 'schema_version'", "schema version 2", "version"),
            ("UPDATE event_types SET fields = '{\"name\": 1}' WHERE id = 0", "not a JSON array", "fields JSON"),
            ("UPDATE event_types SET fields = '[{\"name\":\"pfn\",\"kind\":\"float\"}]' WHERE id = 0", "unknown kind", "kind"),
            ("UPDATE event_types SET fields = '[]' WHERE name = 'mm_page_alloc'", "does not match the fields", "fields lie"),
            ("UPDATE events SET type_id = 1000 WHERE seq = 1", "type_id 1000 out of range", "type_id"),
            ("UPDATE events SET comm_id = -3 WHERE seq = 1", "comm_id -3 out of range", "comm_id"),
            ("UPDATE events SET stack_id = 77 WHERE seq = 0", "stack_id 77 out of range", "stack_id"),
            ("DELETE FROM events WHERE seq = 1", "seq order", "missing row"),
            ("DELETE FROM events WHERE seq = 2", "traces.records says 3", "missing last row"),
            ("UPDATE stacks SET depth = 5", "stack_frames does not hold", "depth"),
            ("UPDATE stack_frames SET symbol_id = 99", "symbol_id 99 out of range", "symbol"),
            ("UPDATE events SET pfn = NULL WHERE seq = 1", "not the first fields", "typed column"),
        ]
        for (sql, reason, name) in cases {
            let p = try mutated(db, name.replacingOccurrences(of: " ", with: "-") + ".sqlite", sql)
            if let e = readError(p) {
                XCTAssertEqual(e.exitCode, 65, "\(name): \(e)")
                XCTAssertTrue(e.description.contains(reason), "\(name): \(e)")
            }
        }
    }

    func testTraceChoiceAndFormatOption() throws {
        let (dir, _) = try smallDatabase()
        let two = dir + "/two.sqlite"
        try importTraces([(dir + "/t.txt", ReadOptions()), (dir + "/t.txt", ReadOptions())], into: two)
        let e = readError(two)
        XCTAssertEqual(e?.exitCode, 64)
        XCTAssertTrue(e?.reason.contains("--trace-id") ?? false, "\(String(describing: e))")
        var o = ReadOptions()
        o.traceID = 2
        XCTAssertEqual(try collect(two, o).events.count, 3)
        o.traceID = 3
        XCTAssertEqual(readError(two, o)?.exitCode, 64)
        o = ReadOptions()
        o.traceID = 1
        o.format = .importDatabase
        XCTAssertEqual(try collect(two, o).events.count, 3)
        o.format = .tracefs
        XCTAssertEqual(readError(two, o)?.exitCode, 65)
        o.format = .importDatabase
        XCTAssertEqual(readError(dir + "/t.txt", o)?.exitCode, 65)
    }
}
