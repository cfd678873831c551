import Foundation
import GRDB
import TraceModel
import TraceReaders
import TraceStore
import XCTest

/// The two-thread event writer: rows written in order across many batches, an insert error on the
/// insert thread thrown from `finish`, and a read error mid-trace rolling back without a hang.
final class InsertPipelineTests: XCTestCase {
    struct ReadFailed: Error {}

    /// A context with one type: a pfn (typed column), a number and a string (both in `extra`).
    func context() -> (TraceContext, EventTypeID) {
        let ctx = TraceContext()
        ctx.format = "tracefs-text"
        ctx.cpus = 2
        let t = ctx.addType(system: "test", name: "ev", fields: [
            FieldInfo(name: "pfn", kind: .unsigned), FieldInfo(name: "n", kind: .signed),
            FieldInfo(name: "s", kind: .string)], inferred: false)
        return (ctx, t)
    }

    /// Event i: pfn i (none for every seventh event), n = -i, s one of three strings. With `interning`,
    /// event i also interns a new comm every 10 events and a new stack (1 to 5 frames of new and old
    /// symbols) every 3 events, as a reader does while it reads.
    func feed(_ w: inout EventWriter, _ ctx: TraceContext, _ t: EventTypeID, count: Int, interning: Bool = false) {
        let names = ["a", "b c", ""].map { Int64(ctx.strings.intern($0)) }
        for i in 0..<count {
            var e = Event()
            e.type = t
            e.timestamp = UInt64(1000 + i)
            e.cpu = UInt16(i % 2)
            e.pid = Int32(i % 5)
            e.source = UInt64(i + 1)
            if interning {
                e.comm = ctx.strings.intern("task-\(i / 10)")
                let frames = (0...(i % 5)).map { ctx.symbols.intern("f\((i / 3 + $0 * 7) % 500)") }
                if i % 3 == 0 { e.stack = ctx.stacks.intern(frames) }
            }
            if i % 7 == 0 {
                e.fieldCount = 0
            } else {
                e.fieldCount = 3
                e.values[0] = Int64(i)
                e.values[1] = -Int64(i)
                e.values[2] = names[i % 3]
            }
            w.consume(e, context: ctx)
        }
    }

    func testRowsOfManyBatchesAreWrittenInOrder() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let db = dir + "/many.sqlite"
        let store = try TraceStoreWriter(destination: db)
        let count = 12_345
        let (ctx, t) = context()
        try store.transaction { conn in
            var w = try store.writer(conn, id: 1, path: "hand-made")
            feed(&w, ctx, t, count: count, interning: true)
            try w.finish(ctx)
            XCTAssertEqual(w.records, Int64(count))
        }
        try store.commit()
        let q = try DatabaseQueue(path: db)
        try q.read { db in
            // The interning tables, written batch by batch, hold the context's tables in id order.
            XCTAssertEqual(try String.fetchAll(db, sql: "SELECT value FROM strings ORDER BY rowid"), ctx.strings.strings)
            XCTAssertEqual(try Int.fetchAll(db, sql: "SELECT id FROM strings ORDER BY rowid"), Array(0..<ctx.strings.count))
            XCTAssertEqual(try String.fetchAll(db, sql: "SELECT name FROM symbols ORDER BY rowid"), ctx.symbols.strings)
            XCTAssertGreaterThan(ctx.stacks.count, 400)
            let stacks = try Row.fetchAll(db, sql: "SELECT id, depth FROM stacks ORDER BY rowid")
            XCTAssertEqual(stacks.map { $0[0] as Int }, Array(1..<ctx.stacks.count))
            XCTAssertEqual(stacks.map { $0[1] as Int }, (1..<ctx.stacks.count).map { ctx.stacks.frames(of: StackID($0)).count })
            var frames: [[Int]] = []
            for id in 1..<ctx.stacks.count {
                for (pos, sym) in ctx.stacks.frames(of: StackID(id)).enumerated() { frames.append([id, pos, Int(sym)]) }
            }
            let stored = try Row.fetchAll(db, sql: "SELECT stack_id, position, symbol_id FROM stack_frames ORDER BY rowid")
            XCTAssertEqual(stored.map { [$0[0] as Int, $0[1] as Int, $0[2] as Int] }, frames)
            XCTAssertEqual(try Int.fetchOne(db, sql: "SELECT records FROM traces"), count)
            let rows = try Row.fetchAll(db, sql: "SELECT seq, ts, cpu, pid, pfn, extra, source FROM events ORDER BY rowid")
            XCTAssertEqual(rows.count, count)
            let names = ["a", "b c", ""]
            for (i, r) in rows.enumerated() {
                XCTAssertEqual(r[0] as Int, i)
                XCTAssertEqual(r[1] as Int, 1000 + i)
                XCTAssertEqual(r[2] as Int, i % 2)
                XCTAssertEqual(r[3] as Int, i % 5)
                XCTAssertEqual(r[6] as Int, i + 1)
                if i % 7 == 0 {
                    XCTAssertNil(r[4] as Int?)
                    XCTAssertNil(r[5] as String?)
                } else {
                    XCTAssertEqual(r[4] as Int?, i)
                    XCTAssertEqual(r[5] as String?, "n=-\(i) s=\(names[i % 3])")
                }
            }
            XCTAssertEqual(try Int.fetchOne(db, sql: "SELECT count(*) FROM events WHERE pfn IS NOT NULL"), count - (count + 6) / 7)
        }
    }

    /// An insert that fails on the insert thread (a trigger aborts it) is thrown from `finish`, even
    /// when the reader has gone on filling batches long after the failure.
    func testInsertErrorIsThrownFromFinish() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let db = dir + "/fail.sqlite"
        let store = try TraceStoreWriter(destination: db)
        let (ctx, t) = context()
        var thrown: Error? = nil
        do {
            try store.transaction { conn in
                try conn.execute(sql: """
                    CREATE TEMP TRIGGER boom BEFORE INSERT ON events WHEN NEW.seq = 3000
                    BEGIN SELECT RAISE(ABORT, 'row 3000 refused'); END
                    """)
                var w = try store.writer(conn, id: 1, path: "hand-made")
                feed(&w, ctx, t, count: 50_000)
                try w.finish(ctx)
            }
            try store.commit()
        } catch {
            thrown = error
            store.abandon()
        }
        let e = try XCTUnwrap(thrown as? StoreError)
        XCTAssertTrue(e.message.contains("row 3000 refused"), e.message)
        XCTAssertFalse(FileManager.default.fileExists(atPath: db))
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), [])
    }

    /// A read that fails mid-trace leaves the writer unfinished, its insert thread still busy: the
    /// transaction stops it before rolling back, and the existing database stays as it was.
    func testReadErrorMidTraceRollsBack() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let db = dir + "/keep.sqlite"
        try Data("not replaced".utf8).write(to: URL(fileURLWithPath: db))
        let store = try TraceStoreWriter(destination: db)
        let (ctx, t) = context()
        XCTAssertThrowsError(try store.transaction { conn in
            var w = try store.writer(conn, id: 1, path: "hand-made")
            feed(&w, ctx, t, count: 40_000)
            throw ReadFailed()
        }) { XCTAssertTrue($0 is ReadFailed) }
        store.abandon()
        XCTAssertEqual(try String(contentsOfFile: db, encoding: .utf8), "not replaced")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: dir), ["keep.sqlite"])
    }

    /// A writer dropped without `finish` has stopped its thread: the connection can be used at once,
    /// and the import goes on with the next trace.
    func testDroppedWriterFreesTheConnection() throws {
        let dir = tempDir()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let db = dir + "/next.sqlite"
        let store = try TraceStoreWriter(destination: db)
        let (ctx, t) = context()
        try store.transaction { conn in
            do {
                var w = try store.writer(conn, id: 1, path: "dropped")
                feed(&w, ctx, t, count: 20_000)
            }
            try conn.execute(sql: "DELETE FROM events")
            var w = try store.writer(conn, id: 2, path: "kept")
            feed(&w, ctx, t, count: 1_000)
            try w.finish(ctx)
        }
        try store.commit()
        let q = try DatabaseQueue(path: db)
        try q.read { db in
            XCTAssertEqual(try Int.fetchOne(db, sql: "SELECT count(*) FROM events WHERE trace_id = 2"), 1_000)
            XCTAssertEqual(try Int.fetchOne(db, sql: "SELECT count(*) FROM events WHERE trace_id = 1"), 0)
        }
    }
}
