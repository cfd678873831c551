import Foundation
import GRDB
import TraceModel
import TraceReaders
import TraceStore
import XCTest

final class StoreTests: XCTestCase {
    /// Hand-written tracefs text (not from a kernel): two events with stacks, one without.
    let handWritten = """
    # tracer: nop
                cat-812     [001] .....   100.000001: mm_filemap_add_to_page_cache: dev 254:3 ino 1a2b pfn=0x10f00 ofs=8192 order=0
                cat-812     [001] .....   100.000002: <stack trace>
     => trace_event_raw_event_mm_filemap_op_page_cache
     => __filemap_add_folio
     => filemap_add_folio
                cat-812     [001] .....   100.000003: mm_page_alloc: page=0xffffea0000000040 pfn=0x1 order=0 migratetype=1 gfp_flags=GFP_KERNEL
                cat-812     [000] .....   100.000004: mm_page_free: page=0xffffea0000000040 pfn=0x1 order=0
                cat-812     [000] .....   100.000005: <stack trace>
     => trace_event_raw_event_mm_page_free
     => __filemap_add_folio
    """

    func importFiles(_ paths: [String], into db: String) throws {
        let store = try TraceStoreWriter(destination: db)
        do {
            try store.transaction { conn in
                for (i, p) in paths.enumerated() {
                    let ctx = TraceContext()
                    var w = try store.writer(conn, id: i + 1, path: p)
                    try readTrace(path: p, options: ReadOptions(), into: &w, context: ctx)
                    try w.finish(ctx)
                }
            }
            try store.commit()
        } catch {
            store.abandon()
            throw error
        }
    }

    func testImportWritesEventsKeysStacksAndSchemaQueriesWork() throws {
        let dir = tempDir()
        let trace = dir + "/hand-written.txt"
        try handWritten.write(toFile: trace, atomically: true, encoding: .utf8)
        let db = dir + "/out.sqlite"
        try importFiles([trace], into: db)
        let q = try DatabaseQueue(path: db)
        try q.read { db in
            XCTAssertEqual(try Int.fetchOne(db, sql: "SELECT records FROM traces WHERE id = 1"), 3)
            XCTAssertEqual(try Int.fetchOne(db, sql: "SELECT with_stack FROM traces"), 2)
            XCTAssertEqual(try Int.fetchOne(db, sql: "SELECT count(*) FROM stacks"), 2)
            let row = try XCTUnwrap(try Row.fetchOne(db, sql: """
                SELECT e.pfn, e.dev, e.ino, e."index", e."order", e.extra FROM events e
                JOIN event_types t ON t.trace_id = e.trace_id AND t.id = e.type_id
                WHERE t.name = 'mm_filemap_add_to_page_cache'
                """))
            XCTAssertEqual(row[0] as Int64?, 0x10f00)
            XCTAssertEqual(row[1] as Int64?, (254 << 20) | 3)
            XCTAssertEqual(row[2] as Int64?, 0x1a2b)
            XCTAssertEqual(row[3] as Int64?, 2)
            XCTAssertEqual(row[4] as Int64?, 0)
            XCTAssertNil(row[5] as String?)
            let extra = try String.fetchOne(db, sql: "SELECT extra FROM events WHERE seq = 1")
            XCTAssertEqual(extra, "gfp_flags=GFP_KERNEL migratetype=1")
            // Innermost frame of the page-cache add stack, as docs/schema.md shows it.
            let frames = try String.fetchAll(db, sql: """
                SELECT s.name FROM events e JOIN stack_frames f ON f.trace_id = e.trace_id AND f.stack_id = e.stack_id
                JOIN symbols s ON s.trace_id = f.trace_id AND s.id = f.symbol_id WHERE e.seq = 0 ORDER BY f.position
                """)
            XCTAssertEqual(frames, ["trace_event_raw_event_mm_filemap_op_page_cache", "__filemap_add_folio", "filemap_add_folio"])
            XCTAssertEqual(try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'schema_version'"), "1")
        }
    }

    func testFailedImportLeavesTheExistingDatabaseUntouched() throws {
        let dir = tempDir()
        let db = dir + "/keep.sqlite"
        let good = dir + "/hand-written.txt"
        try handWritten.write(toFile: good, atomically: true, encoding: .utf8)
        try importFiles([good], into: db)
        let before = try Data(contentsOf: URL(fileURLWithPath: db))
        let bad = dir + "/bad.dat"
        try Data([0x17, 0x08, 0x44] + Array("tracing".utf8) + Array("7\0".utf8) + [0, 8, 0, 0x10]).write(to: URL(fileURLWithPath: bad))
        XCTAssertThrowsError(try importFiles([good, bad], into: db))
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: db)), before)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.contains(".tmp-") }
        XCTAssertEqual(leftovers, [])
    }

    /// On every shipped trace, the database holds exactly the events `stat` counts.
    func testImportMatchesStatOnShippedTraces() throws {
        let bundles = traceBundles()
        if bundles.isEmpty { throw XCTSkip("no capture bundles under traces/") }
        let dir = tempDir()
        let db = dir + "/all.sqlite"
        let picks = bundles.prefix(3).map { $0 }
        try importFiles(picks, into: db)
        let q = try DatabaseQueue(path: db)
        for (i, b) in picks.enumerated() {
            var counts: [String: Int] = [:]
            var sink = CanonicalLines(stacks: false, usec: .none) { line in
                let parts = line.split(separator: " ")
                counts[String(parts[4].split(separator: "\n")[0]), default: 0] += 1
            }
            try readTrace(path: b, options: ReadOptions(), into: &sink, context: TraceContext())
            let stored = try q.read { db in
                try Row.fetchAll(db, sql: """
                    SELECT t.name, count(*) FROM events e JOIN event_types t ON t.trace_id = e.trace_id AND t.id = e.type_id
                    WHERE e.trace_id = ? GROUP BY t.name
                    """, arguments: [i + 1])
            }
            var got: [String: Int] = [:]
            for r in stored { got[r[0]] = r[1] }
            XCTAssertEqual(got, counts, b)
        }
    }

    /// The example queries of docs/schema.md on a real import: the pfn lookup uses the index, and no
    /// query walks `events` inside another loop (a scan of `events` is the outermost loop, if any).
    func testIndexKeptDuringATextLoadIsComplete() throws {
        // From text the index is kept in order while rows arrive (EventWriter.slowFormats); it must hold
        // exactly the rows that have a pfn, and the database must be sound.
        guard let bundle = traceBundles().first(where: { FileManager.default.fileExists(atPath: $0 + "/trace.txt.zst") }) else {
            throw XCTSkip("no bundle with a text trace")
        }
        let db = tempDir() + "/t.sqlite"
        try importFiles([bundle + "/trace.txt.zst"], into: db)
        let q = try DatabaseQueue(path: db)
        try q.read { db in
            XCTAssertEqual(try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events'"),
                           ["events_pfn"])
            XCTAssertEqual(try String.fetchOne(db, sql: "PRAGMA integrity_check"), "ok")
            let indexed = try Int.fetchOne(db, sql: "SELECT count(*) FROM events INDEXED BY events_pfn WHERE pfn IS NOT NULL") ?? -1
            let all = try Int.fetchOne(db, sql: "SELECT count(*) FROM events NOT INDEXED WHERE pfn IS NOT NULL") ?? -2
            XCTAssertEqual(indexed, all)
            XCTAssertGreaterThan(all, 0)
            let sum1 = try Int64.fetchOne(db, sql: "SELECT sum(pfn % 1000003) FROM events INDEXED BY events_pfn WHERE pfn IS NOT NULL")
            let sum2 = try Int64.fetchOne(db, sql: "SELECT sum(pfn % 1000003) FROM events NOT INDEXED WHERE pfn IS NOT NULL")
            XCTAssertEqual(sum1, sum2)
        }
    }

    func testSchemaDocQueriesUseTheIndexAndOnePassOverEvents() throws {
        guard let bundle = traceBundles().first else { throw XCTSkip("no capture bundles under traces/") }
        let doc = try String(contentsOfFile: repoRoot + "/docs/schema.md", encoding: .utf8)
        let importPart = doc.components(separatedBy: "# Replay runs")[0]
        let queries = importPart.components(separatedBy: "```sql\n").dropFirst().map { $0.components(separatedBy: "```")[0] }
        XCTAssertEqual(queries.count, 5)
        let dir = tempDir()
        let db = dir + "/q.sqlite"
        try importFiles([bundle], into: db)
        let q = try DatabaseQueue(path: db)
        try q.read { db in
            XCTAssertEqual(try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events'"),
                           ["events_pfn"])
            XCTAssertGreaterThan(try Int.fetchOne(db, sql: "SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'events'") ?? 0, 0)
            for sql in queries {
                let loops = try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + sql).map { $0["detail"] as String }
                    .filter { $0.hasPrefix("SCAN ") || $0.hasPrefix("SEARCH ") }
                let isScan = { (l: String) in l == "SCAN e" || l.hasPrefix("SCAN e ") }
                let onEvents = loops.enumerated().filter { isScan($0.element) || $0.element.hasPrefix("SEARCH e ") }
                XCTAssertLessThanOrEqual(onEvents.count, 1, "\(loops)")
                for (i, l) in onEvents where isScan(l) { XCTAssertEqual(i, 0, "\(loops)") }
                if sql.contains("e.pfn =") { XCTAssertTrue(loops.contains { $0.hasPrefix("SEARCH e USING INDEX events_pfn") }, "\(loops)") }
                _ = try Row.fetchAll(db, sql: sql)
            }
        }
    }
}
