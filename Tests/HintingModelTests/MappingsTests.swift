@testable import HintingModel
import TraceModel
import XCTest

/// The per-process mapping sets (M0): membership, mapping order, exits that drop a process whole, a
/// dropped process's slot reused by another, with the last-process shortcut never answering for the old
/// one, the set as a table or a bitmap, and the bytes they hold.
final class MappingsTests: XCTestCase {
    func testMembershipOrderExitAndReuse() {
        var m = Mappings()
        var expected: [Int32: [Int32]] = [:]
        var r: UInt64 = 0x1234_5678
        func next() -> Int { r ^= r << 13; r ^= r >> 7; r ^= r << 17; return Int(r % 1_000_000) }
        for step in 0..<20_000 {
            let pid = Int32(100 + next() % 5)
            let frame = Int32(next() % 3_000)
            if step % 997 == 0 {
                // An exit: every frame in mapping order, and nothing of it afterwards.
                XCTAssertEqual(m.removeAll(of: pid), expected[pid] ?? [])
                expected[pid] = nil
                XCTAssertFalse(m.contains(pid, frame))
                XCTAssertEqual(m.frames(of: pid), [])
                continue
            }
            let had = expected[pid]?.contains(frame) ?? false
            XCTAssertEqual(m.contains(pid, frame), had, "pid \(pid) frame \(frame)")
            m.insert(pid, frame)
            if !had { expected[pid, default: []].append(frame) }
            XCTAssertTrue(m.contains(pid, frame))
        }
        for (pid, frames) in expected { XCTAssertEqual(m.frames(of: pid), frames) }
    }

    func testMappingsPastSixteenBitCountsAreLeftOutNotOverflowed() {
        // Hand-built: one mapped page, then 40,000 forks whose exits come only at the end (a trace without
        // exit events never has them). The frame's 16-bit counts stop at the limit, the rest are noted, and
        // the exits give back exactly what was taken.
        let s = Script()
        s.alloc(100); s.add(100, index: 0); s.lruAdd(100); s.read(index: 0, last: 0)
        s.mapPages(index: 0, last: 0, pid: 100)
        let before = s.frame(100)
        XCTAssertEqual(before.mapcount, 1)
        let forks = 40_000
        for k in 0..<forks {
            s.emit("sched", "sched_process_fork", [("parent_comm", 0), ("parent_pid", 100), ("child_comm", 0), ("child_pid", Int64(1000 + k))])
        }
        let f = s.frame(100)
        XCTAssertEqual(f.refcount, Replay.mappingLimit)
        let mapped = Int(f.mapcount) - 1
        XCTAssertEqual(mapped, Int(Replay.mappingLimit - before.refcount))
        let note = "mappings of a page past \(Replay.mappingLimit) references, not tracked"
        XCTAssertEqual(s.model.notes[note], UInt64(forks - mapped))
        // At the limit, a fault or map_pages of a process that maps the page already is no mapping left out;
        // one of a process that does not is.
        s.fault(index: 0, pid: 100)
        s.mapPages(index: 0, last: 0, pid: 1000)
        XCTAssertEqual(s.model.notes[note], UInt64(forks - mapped))
        s.fault(index: 0, pid: 99)
        s.mapPages(index: 0, last: 0, pid: 98)
        XCTAssertEqual(s.model.notes[note], UInt64(forks - mapped + 2))
        XCTAssertEqual(s.frame(100).mapcount, f.mapcount)
        for k in 0..<forks { s.exit(pid: Int32(1000 + k)) }
        XCTAssertEqual(s.frame(100).mapcount, before.mapcount)
        XCTAssertEqual(s.frame(100).refcount, before.refcount)
        XCTAssertEqual(s.model.violationCount, 0)
    }

    func testSlotReusedByAnotherProcess() {
        var m = Mappings()
        m.insert(1, 10)
        m.insert(1, 11)
        XCTAssertTrue(m.contains(1, 10))
        XCTAssertEqual(m.removeAll(of: 1), [10, 11])
        // Process 1, the last one looked up, has no mappings once it exited (the remembered slot is gone) ...
        XCTAssertFalse(m.contains(1, 10))
        XCTAssertEqual(m.frames(of: 1), [])
        XCTAssertTrue(m.insert(1, 12), "a new mapping of the same process after its exit")
        XCTAssertFalse(m.insert(1, 12))
        XCTAssertEqual(m.removeAll(of: 1), [12])
        // ... and process 2 takes the freed slot without seeing them.
        m.insert(2, 10)
        XCTAssertFalse(m.contains(1, 10))
        XCTAssertTrue(m.contains(2, 10))
        XCTAssertEqual(m.frames(of: 1), [])
        XCTAssertEqual(m.frames(of: 2), [10])
        XCTAssertEqual(m.removeAll(of: 1), [])
        XCTAssertEqual(m.removeAll(of: 2), [10])
    }

    /// A process mapping frames scattered over many more keeps a table; one mapping most of the frames
    /// keeps a bitmap. Both answer membership alike and list the frames in mapping order; `bytes` is what
    /// the live processes hold, `peakBytes` the most at once.
    func testTablesAndBitmapsAnswerAlikeAndCountTheirBytes() {
        var m = Mappings()
        XCTAssertEqual(m.bytes, 0)
        let scattered = (0..<1_000).map { Int32($0 * 1_009) }
        for f in scattered { XCTAssertTrue(m.insert(7, f)) }
        // A table of 2,048 slots (at most half full) and a list of at least 1,000: a bitmap of frames up to
        // 1,008,991 would be 126 KiB.
        XCTAssertGreaterThanOrEqual(m.bytes, 2_048 * 4 + 1_000 * 4)
        XCTAssertLessThanOrEqual(m.bytes, 2_048 * 4 + 2_048 * 4)
        let table = m.bytes
        // Dense frames, mapped out of order: a bitmap, far smaller than the table of 16,384 slots.
        let dense = (0..<5_000).map { Int32(($0 * 7_919) % 5_000) }
        for f in dense { XCTAssertTrue(m.insert(8, f)) }
        XCTAssertLessThan(m.bytes - table, 8_192 * 4 + 2_048)
        for f in [Int32(0), 4_999, 1_234] {
            XCTAssertTrue(m.contains(8, f))
            XCTAssertFalse(m.insert(8, f), "mapped already")
        }
        XCTAssertFalse(m.contains(8, 5_000))
        XCTAssertFalse(m.contains(8, 1 << 20), "past the bitmap")
        let beforeGrowth = m.bytes
        XCTAssertTrue(m.insert(8, 5_100), "a frame just past the bitmap: it grows")
        XCTAssertTrue(m.contains(8, 5_100))
        XCTAssertLessThan(m.bytes - beforeGrowth, 1_024, "by words, not a table")
        XCTAssertTrue(m.insert(8, 1 << 20), "a frame far past the bitmap: a table again, smaller than a bitmap to it")
        XCTAssertLessThanOrEqual(m.bytes - table, 16_384 * 4 + 8_192 * 4, "a table of 16,384 slots and the list, not a bitmap of 128 KiB")
        XCTAssertTrue(m.contains(8, 1 << 20))
        XCTAssertFalse(m.contains(7, 1), "another process's frames")
        XCTAssertTrue(m.contains(7, 1_009))
        let both = m.bytes
        XCTAssertEqual(m.frames(of: 8), dense + [5_100, 1 << 20], "mapping order")
        XCTAssertEqual(m.removeAll(of: 7), scattered)
        XCTAssertEqual(m.bytes, both - table)
        XCTAssertEqual(m.peakBytes, both)
        _ = m.removeAll(of: 8)
        XCTAssertEqual(m.bytes, 0)
        m.release()
        XCTAssertEqual(m.peakBytes, both, "the peak outlives the release")
    }

    /// A process that mapped a few low frames (a bitmap) and then one far above them keeps a table again:
    /// its bytes stay those of a table of its frames, not of a bitmap up to the high frame.
    func testABitmapTurnsBackIntoATableForAFrameFarAboveIt() {
        var m = Mappings()
        for f in 0..<9 { m.insert(3, Int32(f)) }   // the table's first growth: a bitmap of one word
        let low = m.bytes
        XCTAssertLessThan(low, 16 * 4 + 16 * 4)
        XCTAssertTrue(m.insert(3, 1 << 24))
        XCTAssertLessThanOrEqual(m.bytes, 32 * 4 + 16 * 4, "a table of 32 slots, not a bitmap of 2 MiB")
        for f in 0..<9 { XCTAssertTrue(m.contains(3, Int32(f))) }
        XCTAssertTrue(m.contains(3, 1 << 24))
        XCTAssertFalse(m.contains(3, 9))
        XCTAssertFalse(m.insert(3, 1 << 24))
        XCTAssertEqual(m.frames(of: 3), (0..<9).map { Int32($0) } + [1 << 24])
        XCTAssertEqual(m.removeAll(of: 3).count, 10)
        XCTAssertEqual(m.bytes, 0)
    }
}
