import TraceModel
import XCTest

final class TablesTests: XCTestCase {
    func testStringInterningIsStableAndDense() {
        let t = StringTable()
        let a = t.intern("mm_page_alloc")
        let b = t.intern("mm_page_free")
        XCTAssertNotEqual(a, b)
        XCTAssertEqual(t.intern("mm_page_alloc"), a)
        XCTAssertEqual(t[a], "mm_page_alloc")
        XCTAssertEqual(t.intern(""), 0)
        // Growth keeps every id.
        var ids: [StringID] = []
        for i in 0..<5000 { ids.append(t.intern("s\(i)")) }
        for i in 0..<5000 { XCTAssertEqual(t.intern("s\(i)"), ids[i]) }
        XCTAssertEqual(t.count, 5003)
    }

    func testStackInterningDistinguishesOrderAndLength() {
        let s = StackTable()
        let x = s.intern([1, 2, 3])
        XCTAssertEqual(s.intern([1, 2, 3]), x)
        XCTAssertNotEqual(s.intern([3, 2, 1]), x)
        XCTAssertNotEqual(s.intern([1, 2]), x)
        XCTAssertEqual(s.intern([]), 0)
        XCTAssertEqual(Array(s.frames(of: x)), [1, 2, 3])
        for i in 0..<3000 { _ = s.intern([SymbolID(i), 7]) }
        XCTAssertEqual(s.intern([1, 2, 3]), x)
        XCTAssertEqual(s.count, 1 + 3 + 3000)
    }

    func testKallsymsLookup() {
        let text = Array("""
        ffffffff81000000 T _stext
        ffffffff81001000 t helper
        ffffffff81002000 D some_data
        ffffffffc0001000 t ext4_readahead\t[ext4]
        0000000000000000 A fixed_percpu_data
        """.utf8)
        let k = Kallsyms(text: text)
        XCTAssertEqual(k.symbols.count, 3)
        XCTAssertEqual(k.lookup(0xffffffff81001010)?.symbol.name, "helper")
        XCTAssertEqual(k.lookup(0xffffffff81001010)?.offset, 0x10)
        XCTAssertEqual(k.lookup(0xffffffff81002010)?.symbol.name, "helper")   // data symbols are not kept
        XCTAssertEqual(k.lookup(0xffffffffc0001004)?.symbol.module, "ext4")
        XCTAssertNil(k.lookup(0x1000))
    }

    func testFormatFileParsing() throws {
        let text = """
        name: mm_filemap_add_to_page_cache
        ID: 512
        format:
        \tfield:unsigned short common_type;\toffset:0;\tsize:2;\tsigned:0;
        \tfield:int common_pid;\toffset:4;\tsize:4;\tsigned:1;

        \tfield:unsigned long pfn;\toffset:8;\tsize:8;\tsigned:0;
        \tfield:char name[32];\toffset:16;\tsize:32;\tsigned:0;
        \tfield:__data_loc char[] comm;\toffset:48;\tsize:4;\tsigned:0;
        \tfield:unsigned long caller[8];\toffset:56;\tsize:64;\tsigned:0;

        print fmt: "pfn=0x%lx", REC->pfn
        """
        let f = try XCTUnwrap(EventFormat.parse(text, system: "filemap"))
        XCTAssertEqual(f.id, 512)
        XCTAssertEqual(f.commonFields.map(\.name), ["common_type", "common_pid"])
        XCTAssertEqual(f.fields.map(\.name), ["pfn", "name", "comm", "caller"])
        XCTAssertEqual(f.fields.map(\.kind), [.unsigned, .string, .string, .unsigned])
        XCTAssertTrue(f.fields[2].isDataLoc)
        XCTAssertTrue(f.fields[3].isArray)
        XCTAssertEqual(f.printFmt, "\"pfn=0x%lx\", REC->pfn")
        XCTAssertNil(EventFormat.parse("garbage", system: "x"))
    }

    func testJSONIsOrderedAndEscaped() {
        let j = JSON.object([("b", .int(1)), ("a", .string("x\"y\n")), ("n", .null)])
        XCTAssertEqual(j.render(), "{\"b\":1,\"a\":\"x\\\"y\\n\",\"n\":null}")
    }
}
