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

    func testStringInterningOfLongAndNearlyEqualStrings() {
        let t = StringTable()
        // Lengths 0...40 cover every tail length of the word-at-a-time hash; strings that differ in one
        // byte only, at the start, in the middle of a word or in the tail, must stay apart.
        var ids: [String: StringID] = [:]
        for n in 0...40 {
            let base = String(repeating: "x", count: n)
            ids[base] = t.intern(base)
            for k in stride(from: 0, to: n, by: 3) {
                var b = Array(base.utf8)
                b[k] = UInt8(ascii: "y")
                let s = String(decoding: b, as: UTF8.self)
                ids[s] = t.intern(b)
            }
        }
        // Strings far longer than the initial byte buffer.
        for i in 0..<50 {
            let s = String(repeating: "\(i)-long-symbol-name", count: 200)
            ids[s] = t.intern(s)
        }
        XCTAssertEqual(Set(ids.values).count, ids.count, "distinct strings get distinct ids")
        for (s, id) in ids {
            XCTAssertEqual(t.intern(s), id)
            XCTAssertEqual(t[id], s)
            XCTAssertEqual(Array(s.utf8).withUnsafeBytes { t.lookup($0) }, id)
        }
        XCTAssertNil(Array("never interned".utf8).withUnsafeBytes { t.lookup($0) })
        XCTAssertEqual(t.count, ids.count + (ids[""] == nil ? 1 : 0))
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
