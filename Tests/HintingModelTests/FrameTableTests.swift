#if canImport(Glibc)
import Glibc
#endif
@testable import HintingModel
import TraceModel
import XCTest

/// The frame table and its pfn index against a Dictionary, on pfns chosen to hit every path: the hash
/// index (pfns below 2^32 - 1, through many doublings, clustered and scattered), pfns at and above
/// 2^32 - 1 (their own map, the whole pfn kept aside), and a table that has to live on the heap.
final class FrameTableTests: XCTestCase {
    func check(_ t: FrameTable, _ pfns: [UInt64], file: StaticString = #filePath, line: UInt = #line) {
        var expected: [UInt64: Int] = [:]
        for p in pfns {
            let i = t.index(p)
            if let e = expected[p] {
                XCTAssertEqual(i, e, "pfn \(p) changed frame", file: file, line: line)
            } else {
                XCTAssertEqual(i, expected.count, "new frames are numbered in order", file: file, line: line)
                expected[p] = i
            }
            XCTAssertEqual(t.find(p), i, file: file, line: line)
        }
        XCTAssertEqual(t.count, expected.count, file: file, line: line)
        for (p, i) in expected {
            XCTAssertEqual(t.find(p), i, file: file, line: line)
            XCTAssertEqual(t.pfn(i), p, "pfn of frame \(i)", file: file, line: line)
            XCTAssertEqual(t[i].guest, .unused, file: file, line: line)
            XCTAssertEqual(t[i].host, .zero, file: file, line: line)
        }
        // Neighbours of every pfn that were never added are not found.
        for p in pfns {
            for q in [p &+ 1, p &- 1, p ^ 64] where expected[q] == nil {
                XCTAssertNil(t.find(q), "pfn \(q) was never added", file: file, line: line)
            }
        }
    }

    func pfns() -> [UInt64] {
        var out: [UInt64] = [0, 1, 63, 64, 65, 1023, 1024, 4095, 4096, UInt64(UInt32.max) - 1, UInt64(UInt32.max),
                             UInt64(UInt32.max) + 1, 1 << 32, 1 << 40, (1 << 40) + 63, (1 << 40) + 64, UInt64.max - 1]
        var x: UInt64 = 0x1234_5678
        for _ in 0..<20_000 {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17
            // Mostly clustered below 8 GiB of guest memory, some anywhere; every pfn a few times.
            out.append(x % 8 == 0 ? x >> 20 : x % (1 << 21))
        }
        return out + out.reversed()
    }

    func testReservedTable() {
        check(FrameTable(), pfns())
    }

    func testIndexOfConsecutiveAndCollidingPfns() {
        // Whole runs of consecutive pfns (folios), and pfns 2^k apart (all below 2^32 - 1: in the table).
        var p: [UInt64] = []
        for base in stride(from: UInt64(0), to: 1 << 22, by: 1 << 16) { p += (base..<base + 512) }
        for k in 0..<14 { p += (0..<64).map { UInt64($0) << UInt64(k + 12) } }
        check(FrameTable(), p)
    }

    func testPfnsOfOneResidueFillTheirQuarterOfTheIndex() {
        // A probe moves on to the same place in the next block of 4 slots: pfns that are all multiples of 4
        // (here of 16, as heads of order-4 folios seen without their tails) probe a quarter of the slots,
        // which must grow before it fills, or a look-up of a missing pfn would never end (debug builds
        // stop such a probe).
        let t = FrameTable()
        let p = (UInt64(0)..<60_000).map { $0 &* 4 &* 0x9E37 % (1 << 30) &* 4 }
        check(t, p)
        XCTAssertGreaterThanOrEqual(t.indexSlots, 4 * 60_000 * 10 / 7, "each residue's quarter at most 70% full")
        // Missing pfns of the same residue probe the crowded quarter to its end.
        let present = Set(p)
        for q in p.map({ $0 &+ 4 }) where !present.contains(q) { XCTAssertNil(t.find(q)) }
    }

    func testRunOfPfnsGivesWhatPageByPageIndexGives() {
        // Folios of every order at scattered heads, some of whose pages were seen before (alone or in another
        // run), some running up to or past 2^32 - 1: `indexRun` numbers and finds every frame as `index`
        // called page by page does, counts those it created, and leaves the index no larger (a group of 16
        // new pages takes one entry).
        let run = FrameTable(), pages = FrameTable()
        var x: UInt64 = 0x9E37_79B9
        for step in 0..<6_000 {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17
            let n = 1 << Int(x % 10)
            var head = (x >> 8) % (1 << 22)
            if step % 97 == 0 { head = UInt64(UInt32.max) - UInt64(x % 600) }
            if step % 5 == 0 { _ = run.index(head + UInt64(n / 2)); _ = pages.index(head + UInt64(n / 2)) }
            let pagesBefore = pages.count
            let r = run.indexRun(head, n)
            let first = pages.index(head)
            for k in 1..<n { _ = pages.index(head + UInt64(k)) }
            XCTAssertEqual(r.first, first, "first frame of the run at pfn \(head)")
            XCTAssertEqual(r.created, pages.count - pagesBefore, "frames created, as page by page")
            XCTAssertEqual(run.count, pages.count)
            XCTAssertLessThanOrEqual(run.indexSlots, pages.indexSlots, "index size after the run, at most page by page's")
        }
        for i in 0..<run.count {
            XCTAssertEqual(run.pfn(i), pages.pfn(i))
            XCTAssertEqual(run.find(run.pfn(i)), i)
            XCTAssertEqual(run[i].guest, .unused)
        }
    }

    func testGroupsOfSixteenPages() {
        // Large folios' pages enter the index as groups of 16 (one entry each); a look-up of any page of a
        // group finds its frame, through every doubling of the index, and pages beside the groups, alone,
        // are neither found before they are added nor confused with a group's.
        let t = FrameTable(), pages = FrameTable()
        var heads: [UInt64] = []
        var x: UInt64 = 0x2545_F491
        for _ in 0..<3_000 {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17
            let order = 4 + Int(x % 6)
            let head = ((x >> 12) % (1 << UInt64(28 - order))) << UInt64(order)   // below 2^28: all groups
            heads.append(head)
            let r = t.indexRun(head, 1 << order)
            let first = pages.index(head)
            for k in 1..<(1 << order) { _ = pages.index(head + UInt64(k)) }
            XCTAssertEqual(r.first, first)
            // Single pages at odd pfns between the groups: the index grows through them.
            _ = t.index(x % (1 << 30) | 1); _ = pages.index(x % (1 << 30) | 1)
        }
        XCTAssertEqual(t.count, pages.count)
        XCTAssertLessThan(t.indexSlots, pages.indexSlots / 2, "groups take one slot per 16 pages")
        for i in 0..<t.count {
            XCTAssertEqual(t.pfn(i), pages.pfn(i))
            XCTAssertEqual(t.find(t.pfn(i)), i, "frame \(i) (pfn \(t.pfn(i)))")
        }
        // The pages after each folio, and those before, were never added (unless another folio holds them).
        for h in heads {
            for q in [h &- 1, h &- 16, h + (1 << 9) + 1] where pages.find(q) == nil { XCTAssertNil(t.find(q), "pfn \(q)") }
        }
        // A page of a group named alone keeps its frame; no frame is created.
        let n = t.count
        XCTAssertEqual(t.index(heads[7] + 5), pages.find(heads[7] + 5))
        XCTAssertEqual(t.count, n)
        // A run over a group already indexed, and past it: the group's frames, then new ones page by page.
        let h = heads[11]
        let r = t.indexRun(h + 8, 1 << 12)
        let first = pages.index(h + 8)
        for k in 1..<(1 << 12) { _ = pages.index(h + 8 + UInt64(k)) }
        XCTAssertEqual(r.first, first)
        XCTAssertEqual(t.count, pages.count)
        for i in 0..<t.count { XCTAssertEqual(t.find(pages.pfn(i)), i) }
        // The first pfn of 16 indexed alone is no group: the others are not found through it.
        let g = UInt64(1) << 31
        let alone = t.index(g)
        XCTAssertNil(t.find(g + 3))
        XCTAssertEqual(t.find(g), alone)
        // A run over 16 pfns one of which was indexed alone: 15 new frames, page by page, all found.
        let g2 = g + 64
        let seen = t.index(g2 + 13)
        let before = t.count
        let r2 = t.indexRun(g2, 16)
        XCTAssertEqual(r2.created, 15)
        XCTAssertEqual(r2.first, before)
        XCTAssertEqual(t.find(g2 + 13), seen)
        for k in UInt64(0)..<16 where k != 13 { XCTAssertEqual(t.find(g2 + k), before + Int(k) - (k > 13 ? 1 : 0)) }
    }

    func testRunThatFitsOnlyBecauseSomePagesWereSeen() {
        // A table on the heap holds 65,536 frames. With 4 left, a run of 8 whose 6 pages were seen needs 2:
        // it fits, as page by page (a run checked for 8 new frames would stop the replay, exit 70).
        let t = FrameTable(reserving: 1 << 15)
        for p in UInt64(0)..<UInt64(65_536 - 4 - 6) { _ = t.index(p * 8) }
        let head = UInt64(1 << 30)
        for k in UInt64(1)..<7 { _ = t.index(head + k) }
        XCTAssertEqual(t.count, 65_536 - 4)
        let r = t.indexRun(head, 8)
        XCTAssertEqual(r.created, 2)
        XCTAssertEqual(r.first, 65_532, "the head, new, numbered after the frames seen")
        XCTAssertEqual(t.count, 65_534)
        XCTAssertEqual(t.find(head + 3), 65_528, "a page seen before keeps its frame")
        XCTAssertEqual(t.find(head + 7), 65_533)
    }

    func testFinishedTableLeavesItsMemoryToTheNext() {
        // A table takes over the frame range and the final index slots a finished one committed
        // (`KeptRanges`): it finds none of that table's pfns, indexes its own as any table does, and counts
        // the memory its own frames take, not what it took over. The slots the finished table's doublings
        // left are not kept.
        KeptRanges.unmapAll()
        let first = Array(UInt64(1 << 20)..<UInt64(1 << 20) + 100_000)      // 262,144 slots by the end
        let second = (0..<100_000).map { UInt64($0) &* 7 + (1 << 24) }      // the same, other pfns
        var address: UnsafeMutablePointer<Frame>? = nil
        do {
            let a = FrameTable()
            for p in first { _ = a.index(p) }
            XCTAssertEqual(a.indexSlots, 1 << 18)
            address = a.base
        }
        XCTAssertTrue(KeptRanges.holds(.slots, bytes: 4 << 18), "the finished table's slots are kept")
        XCTAssertFalse(KeptRanges.holds(.slots, bytes: 4 << 17), "slots left by a doubling are not")
        let b = FrameTable()
        XCTAssertEqual(b.base, address, "the frame range of the finished table is taken over")
        check(b, second)
        XCTAssertFalse(KeptRanges.holds(.slots, bytes: 4 << 18), "the slots were taken over")
        for p in first.prefix(20_000) { XCTAssertNil(b.find(p), "pfn \(p) of the finished table") }
        // A table made while `b` holds the frame range reserves its own; the two count the same memory.
        let c = FrameTable()
        XCTAssertNotEqual(c.base, b.base)
        for p in second { _ = c.index(p) }
        XCTAssertEqual(b.indexSlots, c.indexSlots)
        XCTAssertEqual(b.bytesPerFrame, c.bytesPerFrame, accuracy: 0.01)
    }

    func testHeapTable() {
        // A reservation too small to be made falls back to a fixed table on the heap.
        let t = FrameTable(reserving: 1 << 15)
        check(t, Array(pfns().prefix(30_000)))
    }

    func testMemoryPerFrameOfDenseFrames() {
        let t = FrameTable()
        for p in UInt64(1 << 20)..<UInt64(1 << 20) + 200_000 { _ = t.index(p) }
        // 32 bytes of state and the sixteenth committed ahead of use; the index, 4 bytes a slot, 35 to 70%
        // full (200,000 frames: 524,288 slots, 10.5 bytes a frame).
        XCTAssertEqual(MemoryLayout<Frame>.stride, 32)
        XCTAssertEqual(t.indexSlots, 1 << 19)
        XCTAssertLessThanOrEqual(t.bytesPerFrame, 45)
        XCTAssertGreaterThanOrEqual(t.bytesPerFrame, 42)
        // Under a host budget the host LRU's links add 8 bytes per frame.
        t.enableHostLinks()
        XCTAssertLessThanOrEqual(t.bytesPerFrame, 54)
        XCTAssertGreaterThanOrEqual(t.bytesPerFrame, 50)
    }

    func testMemoryPerFrameDoesNotDependOnScatter() {
        // Pfns scattered over 4 TiB of guest memory cost what consecutive ones cost, at every size, just
        // after the index doubled too (the worst case: 35% full).
        let t = FrameTable()
        var x: UInt64 = 0x9E37_79B9
        var worst = 0.0, slots = t.indexSlots, doublings = 0
        for n in 1...120_000 {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17
            _ = t.index(x % (1 << 30))
            let doubled = t.indexSlots != slots
            if doubled { doublings += 1; slots = t.indexSlots }
            if n >= 2_000 && (doubled || n % 5_000 == 0) { worst = max(worst, t.bytesPerFrame) }
        }
        XCTAssertGreaterThanOrEqual(doublings, 6)
        // 32 + 2 committed ahead + 4 / 0.35 of index at worst.
        XCTAssertLessThanOrEqual(worst, 48)
    }

    func testMemoryIsCommittedAheadThroughout() throws {
        // Only where the kernel has MADV_POPULATE_WRITE (5.14 and later).
        let page = 4096
        guard let p = mmap(nil, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0), p != MAP_FAILED else {
            throw XCTSkip("mmap refused")
        }
        let supported = madvise(p, page, 23) == 0
        munmap(p, page)
        try XCTSkipUnless(supported, "no MADV_POPULATE_WRITE on this kernel")
        let t = FrameTable()
        // Scattered pfns: many index doublings as well as many frames.
        for k in UInt64(0)..<300_000 { _ = t.index((k &* 0x9E37_79B9) % (1 << 30)) }
        XCTAssertTrue(t.canPopulate, "every range handed to madvise is page-aligned")
    }

    func testPageIndexBeyond32Bits() {
        let s = Script()
        let model = s.model
        let i = model.frame(100)
        for index: UInt64 in [0, 7, UInt64(UInt32.max) - 1, UInt64(UInt32.max), 1 << 40, 5] {
            model.setPageIndex(i, index)
            XCTAssertEqual(model.pageIndex(i), index)
        }
        XCTAssertEqual(model.bigPageIndex.count, 0, "a small index drops the one kept aside")
    }
}
