@testable import HintingModel
import TraceModel
import XCTest

/// Builds hand-written event sequences (not captured from a kernel) for the model's unit tests.
final class Script {
    let ctx = TraceContext()
    let replay: Replay
    var ts: UInt64 = 1_000_000_000
    var model: HintingModel { replay.model }

    init(series: Series = .g09, unlock: ReplayOptions.Unlock = .U1, minorFault: Bool = true,
         configure: (inout ReplayOptions) -> Void = { _ in }) {
        var o = ReplayOptions()
        o.series = series
        o.unlock = unlock
        o.minorFaultOptimization = minorFault
        o.hostBudget = .unlimited
        o.checkInvariants = true
        configure(&o)
        replay = Replay(options: o)
        replay.setBudget(touchedFrames: 0)
    }

    func type(_ system: String, _ name: String, _ fields: [String]) -> EventTypeID {
        ctx.addType(system: system, name: name, fields: fields.map { FieldInfo(name: $0, kind: .unsigned) }, inferred: false)
    }

    func emit(_ system: String, _ name: String, _ values: [(String, Int64)], pid: Int32 = 100, cpu: UInt16 = 0, advance: UInt64 = 1000) {
        var e = Event()
        e.type = type(system, name, values.map(\.0))
        e.timestamp = ts
        ts += advance
        e.pid = pid
        e.cpu = cpu
        e.fieldCount = UInt8(values.count)
        for (k, v) in values.enumerated() { e.values[k] = v.1 }
        replay.consume(e, context: ctx)
    }

    static let dev: Int64 = (8 << 20) | 1
    func alloc(_ pfn: Int64, order: Int64 = 0) { emit("kmem", "mm_page_alloc", [("pfn", pfn), ("order", order), ("gfp_flags", 0), ("migratetype", 1)]) }
    func free(_ pfn: Int64, order: Int64 = 0) { emit("kmem", "mm_page_free", [("pfn", pfn), ("order", order)]) }
    func add(_ pfn: Int64, ino: Int64 = 7, index: Int64, order: Int64 = 0) {
        emit("filemap", "mm_filemap_add_to_page_cache", [("pfn", pfn), ("i_ino", ino), ("index", index), ("s_dev", Self.dev), ("order", order)])
    }
    func delete(_ pfn: Int64, ino: Int64 = 7, index: Int64, order: Int64 = 0, cpu: UInt16 = 0, advance: UInt64 = 1000) {
        emit("filemap", "mm_filemap_delete_from_page_cache", [("pfn", pfn), ("i_ino", ino), ("index", index), ("s_dev", Self.dev), ("order", order)], cpu: cpu, advance: advance)
    }
    func fault(ino: Int64 = 7, index: Int64, pid: Int32 = 100) {
        emit("filemap", "mm_filemap_fault", [("i_ino", ino), ("s_dev", Self.dev), ("index", index)], pid: pid)
    }
    func lruAdd(_ pfn: Int64, lru: Int64 = 2, flags: Int64 = 0x4) {
        emit("pagemap", "mm_lru_insertion", [("folio", 0), ("pfn", pfn), ("lru", lru), ("flags", flags)])
    }
    func read(ino: Int64 = 7, index: Int64, last: Int64) {
        emit("filemap", "mm_filemap_get_pages", [("i_ino", ino), ("s_dev", Self.dev), ("index", index), ("last_index", last)])
    }
    func mapPages(ino: Int64 = 7, index: Int64, last: Int64, pid: Int32 = 100) {
        emit("filemap", "mm_filemap_map_pages", [("i_ino", ino), ("s_dev", Self.dev), ("index", index), ("last_index", last)], pid: pid)
    }
    func dirty(ino: Int64 = 7, index: Int64) { emit("writeback", "writeback_dirty_folio", [("name", 0), ("ino", ino), ("index", index)]) }
    func isolate(taken: Int64, scanned: Int64? = nil, lru: Int64 = 2, cpu: UInt16 = 0) {
        emit("vmscan", "mm_vmscan_lru_isolate", [("highest_zoneidx", 2), ("order", 0), ("nr_requested", 32), ("nr_scanned", scanned ?? taken), ("nr_skipped", 0), ("nr_taken", taken), ("lru", lru)], cpu: cpu)
    }
    func shrinkInactive(activateFile: Int64 = 0, cpu: UInt16 = 0) {
        emit("vmscan", "mm_vmscan_lru_shrink_inactive", [("nid", 0), ("nr_scanned", 0), ("nr_reclaimed", 0), ("nr_dirty", 0), ("nr_writeback", 0), ("nr_congested", 0), ("nr_immediate", 0), ("nr_activate0", 0), ("nr_activate1", activateFile), ("nr_ref_keep", 0), ("nr_unmap_fail", 0), ("priority", 12), ("reclaim_flags", 2)], cpu: cpu)
    }
    func directReclaimBegin() { emit("vmscan", "mm_vmscan_direct_reclaim_begin", [("order", 0), ("gfp_flags", 0)]) }
    func exit(pid: Int32) { emit("sched", "sched_process_exit", [("comm", 0), ("pid", Int64(pid)), ("prio", 120), ("group_dead", 1)]) }
    func other() { emit("sched", "sched_switch", [], advance: 1000) }

    func frame(_ pfn: Int64) -> Frame { model.frames[model.frames.find(UInt64(pfn))!] }
    var totals: HookCounts { model.totals }
    func rows(_ hook: Hook) -> HookCounts {
        var t = HookCounts()
        let rows = model.rows
        for (i, k) in model.keys.enumerated() where k.hook == hook { t.add(rows[i]) }
        return t
    }
    /// The host discards a frame (what the host emulator does to an evicted V frame).
    func hostDiscard(_ pfn: Int64) {
        let i = model.frames.find(UInt64(pfn))!
        let saved = model.budgetFrames
        // Evict everything colder than pfn and pfn itself.
        model.hostLRUToFront(i)
        var order: [Int] = []
        var v = model.hostLRU.tail
        while v >= 0 { order.append(Int(v)); v = model.hostLinks[Int(v)].prev }
        model.budgetFrames = model.hostResident - 1
        while model.hostLRU.tail != Int32(i) && model.hostLRU.tail >= 0 {
            let t = Int(model.hostLRU.tail)
            model.hostUnlink(t)
            model.hostLRUToFront(t)
        }
        model.evict()
        model.budgetFrames = saved
    }
}

final class HookTests: XCTestCase {
    /// Spec §5.3, step by step: the life of a clean file page under G09 with U1/W0/R0/T0.
    func testLifeCycleOfACleanFilePage() {
        let s = Script()
        s.alloc(100)                         // A3 SS: U → S
        XCTAssertEqual(s.frame(100).guest, .stable)
        XCTAssertEqual(s.totals.transition(.unused, .stable), 1)
        XCTAssertEqual(s.totals.essa[Essa.setStable.rawValue], 1)
        XCTAssertEqual(s.frame(100).host, .resident)

        s.add(100, index: 0)                 // B3: locked, not up to date, no hinting action
        XCTAssertTrue(s.frame(100).flags.contains(.locked))
        XCTAssertEqual(s.rows(.B3).executions, 1)
        XCTAssertEqual(s.rows(.B3).phd, 0)

        s.lruAdd(100)                        // U1: D1 unlock first (MV(1) fails: not on the LRU yet), then B4 MV(2)
        let d1 = s.rows(.D1)
        XCTAssertEqual(d1.executions, 1)
        XCTAssertEqual(d1.makeVolatile, 1)
        XCTAssertEqual(d1.clauses[Clause.notLRU.rawValue], 1)
        let b4 = s.rows(.B4)
        XCTAssertEqual(b4.makeVolatile, 1)
        XCTAssertEqual(b4.transition(.stable, .volatile), 1)
        XCTAssertEqual(s.frame(100).guest, .volatile)
        XCTAssertEqual(s.frame(100).refcount, 1)   // only the page cache now

        s.read(index: 0, last: 0)            // C3 MS: V → S, copy, E2 MV(2): S → V
        XCTAssertEqual(s.rows(.C3).transition(.volatile, .stable), 1)
        XCTAssertEqual(s.rows(.C3).essa[Essa.setStableIfNotDiscarded.rawValue], 1)
        XCTAssertEqual(s.rows(.E2).transition(.stable, .volatile), 1)
        XCTAssertEqual(s.frame(100).guest, .volatile)

        s.hostDiscard(100)                   // host evicts the V frame: Vr → Vz, no I/O
        XCTAssertEqual(s.frame(100).combined, "Vz")
        XCTAssertEqual(s.totals.hostDiscards, 1)
        XCTAssertEqual(s.totals.hostWrites, 0)

        s.read(index: 0, last: 0)            // make_stable fails → page_discard → reload I/O → S → E2 → V
        XCTAssertEqual(s.rows(.C3).makeStableFailed, 1)
        XCTAssertEqual(s.rows(.C3).syncDiscards, 1)
        XCTAssertEqual(s.rows(.C3).reloadIO, 1)
        XCTAssertEqual(s.frame(100).combined, "Vr")
        XCTAssertFalse(s.frame(100).flags.contains(.discarded))

        s.delete(100, index: 0)              // B1: PD? query, host has not discarded it → bit stays clear
        XCTAssertEqual(s.rows(.B1).essa[Essa.getState.rawValue], 1)
        XCTAssertEqual(s.rows(.B1).flagTests, 1)
        XCTAssertFalse(s.frame(100).flags.contains(.inCache))

        s.free(100)                          // A2 SU: V → U
        XCTAssertEqual(s.frame(100).guest, .unused)
        XCTAssertEqual(s.rows(.A2).transition(.volatile, .unused), 1)
        XCTAssertEqual(s.model.violationCount, 0)
        // Counters add up: every frame's state is its start state plus transitions in minus out.
        let t = s.totals
        for g in GuestState.allCases {
            var inN: Int64 = 0, outN: Int64 = 0
            for o in GuestState.allCases where o != g { inN += Int64(t.transition(o, g)); outN += Int64(t.transition(g, o)) }
            let census = (0..<3).reduce(0) { $0 + s.model.census[Int(g.rawValue) * 3 + $1] }
            let start = g == .unused ? 1 : 0
            XCTAssertEqual(Int64(census), Int64(start) + inN - outN, "\(g)")
        }
    }

    func testG06EvaluatesPageHostDiscardsAtOpenCodedSites() {
        func run(_ s: Series) -> HookCounts {
            let sc = Script(series: s)
            sc.alloc(10); sc.add(10, index: 0); sc.lruAdd(10); sc.read(index: 0, last: 0)
            sc.delete(10, index: 0); sc.free(10)
            return sc.totals
        }
        let g06 = run(.g06), g09 = run(.g09)
        XCTAssertGreaterThan(g06.phd, g09.phd)
        // B1 in G06: two literal page_host_discards() per removal.
        let s = Script(series: .g06)
        s.alloc(10); s.add(10, index: 0); s.delete(10, index: 0)
        XCTAssertEqual(s.rows(.B1).phd, 2)
        XCTAssertEqual(s.rows(.B1).flagTests, 0)
    }

    func testDirtyPageIsMadeStableAtWriteBeginAndStaysStable() {
        let s = Script()
        s.alloc(20); s.add(20, index: 3); s.lruAdd(20)
        XCTAssertEqual(s.frame(20).guest, .volatile)
        s.dirty(index: 3)                    // write(2) → write_begin look-up C2 (inferred) → S, then Dirty
        let c2 = s.rows(.C2)
        XCTAssertEqual(c2.makeStable, 1)
        XCTAssertEqual(c2.transition(.volatile, .stable), 1)
        XCTAssertEqual(s.frame(20).guest, .stable)
        s.read(index: 3, last: 3)            // E2 MV(2) fails on the dirty clause
        XCTAssertEqual(s.rows(.E2).clauses[Clause.dirty.rawValue], 1)
        XCTAssertEqual(s.frame(20).guest, .stable)
        XCTAssertTrue(s.model.keys.contains { $0.hook == .C2 && $0.inferred })
    }

    func testDiscardedFrameIsParkedThenSignedOffAfterTwoTicks() {
        let s = Script()
        s.alloc(30); s.add(30, index: 0); s.lruAdd(30)
        s.hostDiscard(30)
        s.delete(30, index: 0)               // B1: PD? says discarded → PG_discarded kept
        XCTAssertTrue(s.frame(30).flags.contains(.discarded))
        s.free(30)                           // A2d: parked, no SU yet
        XCTAssertEqual(s.rows(.A2d).parked, 1)
        XCTAssertTrue(s.frame(30).flags.contains(.parked))
        XCTAssertEqual(s.frame(30).guest, .volatile)
        s.ts += 9_000_000                    // more than two 4 ms ticks later
        s.other()
        XCTAssertFalse(s.frame(30).flags.contains(.discarded))
        XCTAssertEqual(s.frame(30).combined, "Uz")
        XCTAssertEqual(s.rows(.A8).transition(.volatile, .unused), 1)
    }

    func testG06FlushesTheDiscardListAtDirectReclaim() {
        let s = Script(series: .g06)
        s.alloc(40); s.add(40, index: 0); s.lruAdd(40)
        XCTAssertEqual(s.frame(40).guest, .volatile)
        s.hostDiscard(40)
        s.delete(40, index: 0)
        s.free(40)
        XCTAssertEqual(s.rows(.A2d).phd, 1)  // G06: the discard redirect is a literal page_host_discards()
        s.directReclaimBegin()
        XCTAssertEqual(s.rows(.A6).phd, 1)
        XCTAssertEqual(s.frame(40).guest, .unused)
    }

    func testReclaimIsolatesFromTheColdEndAndPutsBack() {
        let s = Script()
        for p in Int64(50)..<54 { s.alloc(p); s.add(p, index: p); s.lruAdd(p) }
        s.isolate(taken: 2)                  // the two oldest (50, 51)
        XCTAssertTrue(s.frame(50).flags.contains(.isolated))
        XCTAssertTrue(s.frame(51).flags.contains(.isolated))
        XCTAssertFalse(s.frame(52).flags.contains(.isolated))
        s.read(index: 50, last: 50)          // an isolated page cannot become volatile again (!LRU)
        XCTAssertEqual(s.rows(.E2).clauses[Clause.notLRU.rawValue], 1)
        s.shrinkInactive(activateFile: 1)
        XCTAssertEqual(s.rows(.H1).executions, 2)
        XCTAssertTrue(s.frame(50).flags.contains(.lru))
        XCTAssertTrue(s.frame(50).flags.contains(.active))   // nr_activate1 = 1
        XCTAssertFalse(s.frame(51).flags.contains(.active))
        XCTAssertEqual(s.frame(50).refcount, 1)
    }

    func testMinorFaultOptimizationAndA10() {
        for opt in [true, false] {
            let s = Script(minorFault: opt)
            s.alloc(60); s.add(60, index: 0); s.lruAdd(60)
            let before = s.totals.transitionTotal
            s.mapPages(index: 0, last: 3)
            XCTAssertEqual(s.frame(60).mapcount, 1)
            if opt {
                XCTAssertEqual(s.totals.transitionTotal, before, "no state change on the minor-fault path")
                XCTAssertEqual(s.rows(.G6).flagTests, 1)
            } else {
                XCTAssertEqual(s.totals.transitionTotal, before + 2, "A10: V → S at look-up, S → V after rmap add")
            }
            s.exit(pid: 100)                 // M0: mappings dropped at exit
            XCTAssertEqual(s.frame(60).mapcount, 0)
        }
    }

    func testMappedDiscardedPageFaultsOnItsNextAccess() {
        let s = Script()
        s.alloc(70); s.add(70, index: 0); s.lruAdd(70)
        s.mapPages(index: 0, last: 0)
        s.hostDiscard(70)
        XCTAssertTrue(s.frame(70).flags.contains(.latentFault))
        s.emit("pagemap", "mm_lru_activate", [("folio", 0), ("pfn", 70)])   // a traced access
        XCTAssertEqual(s.totals.discardFaults, 1)
        XCTAssertEqual(s.totals.reloadIO, 1)
        XCTAssertEqual(s.frame(70).host, .resident)
    }

    func testLargeFolioCoversAllItsPages() {
        let s = Script()
        s.alloc(1024, order: 2)
        s.add(1024, index: 8, order: 2)
        s.lruAdd(1024)
        for p in Int64(1024)..<1028 { XCTAssertEqual(s.frame(p).guest, .volatile, "pfn \(p)") }
        XCTAssertEqual(s.rows(.B4).transition(.stable, .volatile), 4)
        s.read(index: 9, last: 10)           // two of the four pages
        XCTAssertEqual(s.rows(.C3).makeStable, 2)
        s.delete(1024, index: 8, order: 2)
        s.free(1024, order: 2)
        for p in Int64(1024)..<1028 { XCTAssertEqual(s.frame(p).guest, .unused) }
        XCTAssertEqual(s.model.violationCount, 0)
    }

    func testAnonPagesStayStable() {
        let s = Script()
        s.alloc(80)
        s.lruAdd(80, lru: 0, flags: 0x2 | 0x10)
        XCTAssertEqual(s.frame(80).guest, .stable)
        XCTAssertEqual(s.rows(.B4).clauses[Clause.anon.rawValue], 1)
    }

    /// Hand-built look-up ranges whose bounds are far apart (a corrupt or hostile trace): the replay counts
    /// them, at most 2^20 + 1 pages each, instead of overflowing.
    func testLookUpRangesAtTheEndsOfInt64() {
        let s = Script()
        s.read(index: -2, last: Int64.max)
        s.mapPages(index: Int64.min, last: Int64.max)
        s.read(index: 5, last: 4)
        XCTAssertEqual(s.replay.pagesTouched, 2 * ((1 << 20) + 1) + 1)
        XCTAssertEqual(s.replay.events, 3)
    }
}
