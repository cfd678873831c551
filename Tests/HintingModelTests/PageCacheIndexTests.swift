@testable import HintingModel
import XCTest

/// The page-cache index on hand-built key sets, against a dictionary of keys.
final class PageCacheIndexTests: XCTestCase {
    /// A small xorshift generator: the same operations every run.
    struct Rng {
        var s: UInt64 = 0x2545_F491_4F6C_DD1D
        mutating func next(_ n: UInt64) -> UInt64 {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17
            return s % n
        }
    }

    /// `firstCached` finds what looking up each index of the range in turn finds first, over blocks that
    /// exist, blocks that never did and blocks recycled, with ranges that start and end inside blocks.
    func testFirstCachedFindsWhatALookUpPerIndexFinds() {
        var c = PageCacheIndex()
        var rng = Rng()
        var bound: [UInt64: Int32] = [:]   // index of file 7 → frame
        for round in 0..<4_000 {
            let x = rng.next(1_000)
            if rng.next(3) == 0, bound[x] != nil {
                c.remove(file: 7, index: x)
                bound[x] = nil
            } else {
                let f = Int32(round)
                c.set(file: 7, index: x, f)
                bound[x] = f
            }
            // Another file's pages at the same indices: never found for file 7.
            c.set(file: 8, index: rng.next(1_000), 1)
            let a = rng.next(1_100), b = a + rng.next(300)
            let got = c.firstCached(file: 7, from: a, through: b)
            let want = (a...b).first { bound[$0] != nil }.map { ($0, bound[$0]!) }
            XCTAssertEqual(got?.index, want?.0, "range \(a)...\(b)")
            XCTAssertEqual(got?.frame, want?.1, "range \(a)...\(b)")
            XCTAssertEqual(c[file: 7, index: x], bound[x])
        }
        XCTAssertNil(c.firstCached(file: 9, from: 0, through: 5_000), "no page of another file")
    }

    /// Files that hold one page, then more, then one, then none, and again: every look-up, range, run
    /// binding, run unbinding and freeness test answers as a dictionary of keys does. A file's one page is
    /// kept in its entry and moves into blocks with the second; large page indices (2^32 and above) too.
    func testFilesGoingFromOnePageToBlocksAndBackAnswerAsADictionary() {
        var c = PageCacheIndex()
        var rng = Rng(s: 0x9E37_79B9_7F4A_7C15)
        struct Key: Hashable { var file: UInt32; var index: UInt64 }
        var bound: [Key: Int32] = [:]
        let bases: [UInt64] = [0, 1 << 32, UInt64(UInt32.max) - 40]
        func index() -> UInt64 { bases[Int(rng.next(3))] + rng.next(200) }
        var pagesOfOneFile = 0   // operations that found a file with exactly one page: both ways are taken
        for round in 0..<20_000 {
            let file = UInt32(rng.next(40))
            let x = index()
            switch rng.next(8) {
            case 0:
                let v = Int32(rng.next(1_000))
                c.set(file: file, index: x, v)
                bound[Key(file: file, index: x)] = v
            case 1, 2, 3, 4:
                // Mostly a page the file has (files drain to one page and none), else any key.
                let have = bound.keys.filter { $0.file == file }.map(\.index).sorted()
                let y = have.isEmpty || rng.next(4) == 0 ? x : have[Int(rng.next(UInt64(have.count)))]
                c.remove(file: file, index: y)
                bound[Key(file: file, index: y)] = nil
            case 5:
                let n = 1 << Int(rng.next(3)), frame = Int(rng.next(1_000))
                let want = (0..<n).allSatisfy { k in bound[Key(file: file, index: x + UInt64(k))].map { Int($0) == frame + k } ?? true }
                XCTAssertEqual(c.isFree(file: file, x: x, frame: frame, n), want, "round \(round)")
                if want {
                    c.setRun(file: file, x: x, frame: frame, n)
                    for k in 0..<n { bound[Key(file: file, index: x + UInt64(k))] = Int32(frame + k) }
                }
            case 6:
                // Unbinds those of a run bound to their frames: the run a look-up of `x` names.
                let n = 1 << Int(rng.next(4))
                let frame = Int(bound[Key(file: file, index: x)] ?? Int32(rng.next(1_000)))
                c.removeRun(file: file, x: x, frame: frame, n)
                for k in 0..<n where bound[Key(file: file, index: x + UInt64(k))] == Int32(frame + k) {
                    bound[Key(file: file, index: x + UInt64(k))] = nil
                }
            default:
                let last = x + rng.next(100)
                let got = c.nextCached(file: file, from: x, through: last)
                let want = (x...last).first { bound[Key(file: file, index: $0)] != nil }
                XCTAssertEqual(got?.index, want, "round \(round): file \(file), \(x)...\(last)")
                XCTAssertEqual(got?.frame, want.map { bound[Key(file: file, index: $0)]! })
            }
            XCTAssertEqual(c[file: file, index: x], bound[Key(file: file, index: x)], "round \(round)")
            if bound.keys.filter({ $0.file == file }).count == 1 { pagesOfOneFile += 1 }
        }
        XCTAssertGreaterThan(pagesOfOneFile, 1_000, "files with one page were exercised")
        for (k, v) in bound { XCTAssertEqual(c[file: k.file, index: k.index], v) }
    }

    /// A file of one page costs no block: a thousand one-page files add nothing to the blocks' memory.
    func testOnePageFilesTakeNoBlock() {
        var c = PageCacheIndex()
        let before = c.bytes.pages
        for f in 1...1_000 { c.set(file: UInt32(f), index: UInt64(f % 7), Int32(f)) }
        XCTAssertEqual(c.blocksInUse, 0)
        XCTAssertEqual(c.bytes.pages, before)
        // File 3's one page: index 3, frame 3.
        XCTAssertTrue(c.isFree(file: 3, x: 0, frame: 100, 3), "the run ends before the page")
        XCTAssertFalse(c.isFree(file: 3, x: 0, frame: 100, 4), "the run's last key is bound elsewhere")
        XCTAssertTrue(c.isFree(file: 3, x: 0, frame: 0, 4), "bound to the run's own frame")
        XCTAssertTrue(c.isFree(file: 3, x: 4, frame: 100, 4), "the run starts after the page")
        XCTAssertEqual(c.firstCached(file: 3, from: 0, through: 2)?.index, nil)
        XCTAssertEqual(c.firstCached(file: 3, from: 0, through: 3)?.index, 3)
        XCTAssertEqual(c.firstCached(file: 3, from: 3, through: 9)?.frame, 3)
        XCTAssertEqual(c.firstCached(file: 3, from: 4, through: 9)?.index, nil)
        c.set(file: 5, index: 100, 77)   // file 5's second page: both move into blocks
        XCTAssertEqual(c.blocksInUse, 2)
        XCTAssertEqual(c[file: 5, index: 5], 5)
        XCTAssertEqual(c[file: 5, index: 100], 77)
        c.remove(file: 5, index: 5)
        c.remove(file: 5, index: 100)
        XCTAssertEqual(c.blocksInUse, 0, "blocks recycled when the file's pages leave")
        c.set(file: 5, index: 9, 1)
        XCTAssertEqual(c.blocksInUse, 0, "a file with one page again keeps it in its entry")
    }
}
