import Foundation
import TraceModel
@testable import TraceReaders
import XCTest

/// Hand-written text lines (not captured from a kernel) for the corner cases of the text readers.
final class TextReaderTests: XCTestCase {
    func read(_ text: String, _ format: TraceFormat) throws -> ([String], TraceContext) {
        let path = tempDir() + "/hand-written.txt"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let r = try canonical(path, format: format, usec: .none, numericOnly: false)
        return (r.lines, r.ctx)
    }

    func testNumbersAtTheEndsOfInt64() {
        func parse(_ t: String) -> Int64? {
            var t = t
            return t.withUTF8 { PayloadDecoder.parseNumber(UnsafeRawBufferPointer($0)) }
        }
        XCTAssertEqual(parse("-9223372036854775808"), Int64.min)   // trapped on negation before
        XCTAssertEqual(parse("9223372036854775807"), Int64.max)
        XCTAssertEqual(parse("18446744073709551615"), -1)           // a u64 printed in decimal: its bits
        XCTAssertEqual(parse("-1"), -1)
        XCTAssertEqual(parse("0xffffffffffffffff"), -1)
        XCTAssertNil(parse("-"))
    }

    func testTracefsLineFormsAndPrintkInversion() throws {
        let text = """
        # tracer: nop
        #
                    cat-812     [001] d..1.   100.000001: mm_filemap_add_to_page_cache: dev 254:3 ino 1a2b pfn=0x10f00 ofs=8192 order=2
                    cat-812     (    812) [000] .....   100.000002: mm_filemap_get_pages: dev=254:3 ino=1a2b ofs=0-16383
         kworker/u4:2-99 [000]   100.000003: mm_lru_insertion: folio=0xffffea0001000000 pfn=0x40000 lru=2 flags=M f   d 
        CPU:1 [LOST 17 EVENTS]
                    cat-812     [001] .....   100.000004: mm_vmscan_lru_isolate: classzone=2 order=0 nr_requested=32 nr_scanned=40 nr_skipped=0 nr_taken=32 lru=inactive_file
                    cat-812     [001] .....   100.000005: mm_vmscan_lru_shrink_inactive: nid=0 nr_scanned=32 nr_reclaimed=30 nr_dirty=0 nr_writeback=0 nr_congested=0 nr_immediate=0 nr_activate_anon=0 nr_activate_file=2 nr_ref_keep=0 nr_unmap_fail=0 priority=12 flags=RECLAIM_WB_FILE|RECLAIM_WB_ASYNC
                    cat-812     [001] .....   100.000006: writeback_dirty_folio: bdi 254:0: ino=6699 index=3
        """
        let (lines, ctx) = try read(text, .tracefs)
        XCTAssertEqual(lines.count, 6)
        XCTAssertEqual(lines[0], "100.000001000 cpu=1 pid=812 comm=cat mm_filemap_add_to_page_cache i_ino=6699 index=2 order=2 pfn=69376 s_dev=266338307\n")
        XCTAssertEqual(lines[1], "100.000002000 cpu=0 pid=812 comm=cat mm_filemap_get_pages i_ino=6699 index=0 last_index=3 s_dev=266338307\n")
        XCTAssertEqual(lines[2], "100.000003000 cpu=0 pid=99 comm=kworker/u4:2 mm_lru_insertion flags=37 folio=18446719884470517760 lru=2 pfn=262144\n")
        XCTAssertTrue(lines[3].contains(" lru=2 ") && lines[3].contains("nr_taken=32"), lines[3])
        XCTAssertTrue(lines[4].contains("nr_activate1=2"), lines[4])
        XCTAssertTrue(lines[4].contains("priority=12 reclaim_flags=10"), lines[4])
        XCTAssertEqual(lines[5], "100.000006000 cpu=1 pid=812 comm=cat writeback_dirty_folio index=3 ino=6699 name=254:0\n")
        XCTAssertEqual(ctx.lost, [LostEvents(cpu: 1, timestamp: 100_000_003_000, count: 17)])
        XCTAssertEqual(ctx.cpus, 2)
    }

    /// Hand-written lines: hashed `%p` values print 16 hex digits without 0x; the first may look decimal.
    /// A field that already held numbers never turns into a string field (earlier events hold numbers).
    func testPointerFieldsAndFieldsThatChangeKind() throws {
        let text = """
        # tracer: nop
                    cat-812     [001] .....   100.000001: mm_lru_activate: folio=0000000027174533 pfn=4096
                    cat-812     [000] .....   100.000002: mm_lru_activate: folio=00000000e42be21d pfn=4097
                    cat-812     [000] .....   100.000003: my_event: a=12 b=x
                    cat-812     [001] .....   100.000004: my_event: a=zz b=y
        """
        let (lines, _) = try read(text, .tracefs)
        XCTAssertEqual(lines.count, 4)
        XCTAssertTrue(lines[0].contains("folio=\(0x27174533)"), lines[0])
        XCTAssertTrue(lines[1].contains("folio=\(0xe42be21d)"), lines[1])
        XCTAssertTrue(lines[2].contains("a=12"), lines[2])
        XCTAssertTrue(lines[3].contains("a=0"), lines[3])
    }

    func testStacksAttachToTheirCPUAcrossInterleaving() throws {
        let text = """
        # tracer: nop
                   a-1     [000] .....   1.000001: mm_page_free: page=0xffffea0000000040 pfn=0x1 order=0
                   b-2     [001] .....   1.000002: mm_page_free: page=0xffffea0000000080 pfn=0x2 order=0
                   a-1     [000] .....   1.000003: <stack trace>
         => trace_event_raw_event_mm_page_free
         => free_unref_folios
                   b-2     [001] .....   1.000004: <stack trace>
         => trace_event_raw_event_mm_page_free
         => __folio_put
        """
        let (lines, _) = try read(text, .tracefs)
        XCTAssertEqual(lines.count, 2)
        XCTAssertTrue(lines[0].hasSuffix("=> trace_event_raw_event_mm_page_free\n  => free_unref_folios\n"), lines[0])
        XCTAssertTrue(lines[1].hasSuffix("=> __folio_put\n"), lines[1])
        XCTAssertTrue(lines[0].contains("pfn=1\n"), lines[0])
    }

    func testTraceCmdReportWithInstancePrefixAndStack() throws {
        let text = """
        cpus=2
        inst:              cat-812   [001]   100.000001: mm_page_free:         page=0xffffea0000000040 pfn=0x1 order=0
        inst:              cat-812   [001]   100.000002: kernel_stack:         <stack trace >
        => free_unref_folios (ffffffff81234567)
        => release_pages (ffffffff81234999)
        """
        let (lines, ctx) = try read(text, .report)
        XCTAssertEqual(lines, ["100.000001000 cpu=1 pid=812 comm=cat mm_page_free order=0 pfn=1\n  => free_unref_folios\n  => release_pages\n"])
        XCTAssertEqual(ctx.cpus, 2)
    }

    func testPerfScriptSampleWithCallchain() throws {
        let text = """
                     cat  3625 [000]   387.296873:          1 kmem:mm_page_free: page=0xffffea0000000040 pfn=0x1 order=0
        \tffffffff8162184b free_unref_folios+0x26b ([kernel.kallsyms])
        \tffffffff8165add6 [unknown] ([kernel.kallsyms])
        \t    7f19976f2ad7 [unknown] ([unknown])

        """
        let (lines, _) = try read(text, .perfScript)
        XCTAssertEqual(lines, ["387.296873000 cpu=0 pid=3625 comm=cat mm_page_free order=0 pfn=1\n  => free_unref_folios\n  => 0xffffffff8165add6\n"])
    }

    func testGarbageIsOneClearError() throws {
        let path = tempDir() + "/garbage.txt"
        try String(repeating: "this is not a trace at all\n", count: 3000).write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try canonical(path, format: .tracefs, usec: .none)) { e in
            let te = e as? TraceError
            XCTAssertEqual(te?.exitCode, 65)
            XCTAssertTrue(te?.description.contains("line") ?? false, "\(e)")
            XCTAssertTrue(te?.description.contains(path) ?? false, "\(e)")
        }
        XCTAssertThrowsError(try canonical(path, usec: .none)) { e in
            XCTAssertEqual((e as? TraceError)?.exitCode, 65, "\(e)")
        }
    }

    /// Hand-written malformed lines: a bracket at the start of a line, huge CPU numbers, a pid without
    /// a comm. They are skipped or rejected with one error, never a crash.
    func testMalformedHeadersAreNotCrashes() throws {
        let path = tempDir() + "/hand-written-bad.txt"
        let lines = ["[000] 1.000000: mm_page_free: pfn=0x1 order=0", "-1 [0] 1.0: x: y",
                     "a-1 [99999999999999999999] 1.0: mm_page_free: pfn=0x1", "[", "]", "a-1 [", "a-1 [1"]
        try (["# tracer: nop"] + lines + ["x-1 [000] ..... 2.000000: mm_page_free: pfn=0x2 order=0"])
            .joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
        let r = try canonical(path, format: .tracefs, usec: .none, numericOnly: false)
        XCTAssertEqual(r.lines.count, 2)
        XCTAssertTrue(r.lines.last!.contains("pfn=2"), r.lines.last!)
        for f in [TraceFormat.report, .perfScript] {
            do { _ = try canonical(path, format: f, usec: .none) } catch let e as TraceError {
                XCTAssertEqual(e.exitCode, 65, "\(e)")
            }
        }
    }

    func testUnreadableAndEmptyFiles() throws {
        XCTAssertThrowsError(try canonical("/nonexistent/trace.dat", usec: .none)) { e in
            XCTAssertEqual((e as? TraceError)?.exitCode, 66)
        }
        let empty = tempDir() + "/empty"
        FileManager.default.createFile(atPath: empty, contents: Data())
        XCTAssertThrowsError(try canonical(empty, usec: .none)) { e in
            XCTAssertEqual((e as? TraceError)?.exitCode, 65)
        }
    }

    func testTimestampParsing() {
        func ts(_ s: String) -> UInt64? { Array(s.utf8).withUnsafeBytes { TextTraceReader.parseTimestamp($0) } }
        XCTAssertEqual(ts("387.296873"), 387_296_873_000)
        XCTAssertEqual(ts("1.000000001"), 1_000_000_001)
        XCTAssertEqual(ts("5"), 5_000_000_000)
        XCTAssertNil(ts("x.1"))
    }
}
