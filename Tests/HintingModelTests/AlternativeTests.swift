@testable import HintingModel
import TraceModel
import XCTest

/// The design alternatives of spec §7.2 on hand-written event sequences (not captured from a kernel).
final class AlternativeTests: XCTestCase {
    func cachedPages(_ s: Script, _ pfns: Range<Int64>) {
        for p in pfns { s.alloc(p); s.add(p, index: p); s.lruAdd(p) }
    }

    func testA2aRechecksTheMappingAfterEveryLock() {
        let s = Script { $0.a2a = true }
        s.alloc(10); s.add(10, index: 0)     // locked until the read I/O completes (U1)
        s.read(index: 0, last: 0)            // the reader had to lock the page: recheck 1
        s.lruAdd(10)
        s.read(index: 0, last: 0)            // up to date, not locked: no recheck
        s.fault(index: 0)                    // filemap_fault after lock_page: recheck 2
        s.dirty(index: 0)                    // write_begin: recheck 3
        s.delete(10, index: 0)               // truncate/invalidate: recheck 4
        let r = s.rows(.stillInMapping)
        XCTAssertEqual(r.stillInMappingTests, 4)
        XCTAssertEqual(r.flagTests, 4)
        XCTAssertEqual(r.stillInMappingHits, 0)
        // Nothing else changes: the same script under G09 differs only by those tests.
        let g = Script()
        g.alloc(10); g.add(10, index: 0); g.read(index: 0, last: 0); g.lruAdd(10); g.read(index: 0, last: 0)
        g.fault(index: 0); g.dirty(index: 0); g.delete(10, index: 0)
        XCTAssertEqual(s.totals.flagTests, g.totals.flagTests + 4)
        XCTAssertEqual(s.totals.transitionTotal, g.totals.transitionTotal)
    }

    func testA3aChecksEveryLRUStepInsteadOfThePutBack() {
        let s = Script { $0.a3a = true }
        cachedPages(s, 50..<54)              // 4 insertions: 4 steps
        XCTAssertEqual(s.rows(.lruToPage).lruToPageTests, 4)
        s.isolate(taken: 2, scanned: 3)      // 2 taken + 1 skipped
        XCTAssertEqual(s.rows(.lruToPage).lruToPageTests, 7)
        s.shrinkInactive()                   // the put-back walks the 2 isolated pages
        XCTAssertEqual(s.rows(.lruToPage).lruToPageTests, 9)
        XCTAssertEqual(s.rows(.lruToPage).flagTests, 9)
        XCTAssertEqual(s.rows(.H1).executions, 0, "the put-back check is gone")
        XCTAssertTrue(s.frame(50).flags.contains(.lru))
        let g = Script()
        cachedPages(g, 50..<54); g.isolate(taken: 2, scanned: 3); g.shrinkInactive()
        XCTAssertEqual(g.rows(.H1).flagTests, 2)
    }

    func testA3cMakesIsolatedPagesStableAndPutBackPagesVolatile() {
        let s = Script { $0.a3c = true }
        cachedPages(s, 50..<53)
        s.isolate(taken: 2)                  // 50 and 51, the cold end
        XCTAssertEqual(s.rows(.isolateStable).transition(.volatile, .stable), 2)
        XCTAssertEqual(s.frame(50).guest, .stable)
        XCTAssertEqual(s.frame(52).guest, .volatile)
        s.shrinkInactive()
        XCTAssertEqual(s.rows(.putbackVolatile).transition(.stable, .volatile), 2)
        XCTAssertEqual(s.frame(50).guest, .volatile)
        XCTAssertEqual(s.model.violationCount, 0)

        // A page the host discarded is found at isolation: removed, not put back.
        let d = Script { $0.a3c = true }
        cachedPages(d, 60..<62)
        d.hostDiscard(60)
        d.isolate(taken: 1)
        XCTAssertEqual(d.rows(.isolateStable).makeStableFailed, 1)
        XCTAssertEqual(d.rows(.isolateStable).syncDiscards, 1)
        XCTAssertEqual(d.rows(.isolateStable).reloadIO, 0, "reclaim does not need the content")
        d.shrinkInactive()
        XCTAssertFalse(d.frame(60).flags.contains(.lru))
        XCTAssertEqual(d.rows(.H4).executions, 1)
    }

    func testA4SeqlockSideListReplacesTheFlag() {
        let s = Script { $0.discardTracking = .seqlock; $0.criticalSectionNs = 5000 }
        cachedPages(s, 20..<23)
        s.hostDiscard(20)
        s.delete(20, index: 20)              // B1: read section, then PD? says discarded: write section + node
        XCTAssertEqual(s.rows(.B1).seqlockReads, 1)
        XCTAssertEqual(s.rows(.B1).flagTests, 0)
        XCTAssertEqual(s.rows(.B1).seqlockWrites, 1)
        XCTAssertEqual(s.model.alternative.listInserts, 1)
        XCTAssertTrue(s.frame(20).flags.contains(.discarded))
        // Another CPU tests a page of the same section 3 µs later: inside the write window, so it retries
        // and searches the one-node list twice.
        s.alloc(23); s.add(23, index: 23)
        s.emit("pagemap", "mm_lru_insertion", [("folio", 0), ("pfn", 23), ("lru", 2), ("flags", 0x4)], cpu: 1)
        XCTAssertEqual(s.rows(.B4).seqlockReads, 4)   // the insertions of 20-22 and this one
        XCTAssertEqual(s.rows(.B4).seqlockRetries, 1)
        XCTAssertEqual(s.rows(.B4).sideListVisits, 2)
        XCTAssertEqual(s.model.alternative.peakVolatile, 4)
        XCTAssertEqual(s.model.alternative.nodeBytes, 64)
        // The final free frees the node (after the discard list's sign-off).
        s.free(20)
        s.other(); s.emit("sched", "sched_switch", [], advance: 20_000_000); s.other()
        XCTAssertFalse(s.frame(20).flags.contains(.discarded))
        XCTAssertEqual(s.model.alternative.listRemovals, 1)
        XCTAssertGreaterThan(s.model.alternative.lifetimeMaxNs, 0)
        XCTAssertEqual(s.model.violationCount, 0)
    }

    func testA5GlobalLockContendsAndLosesTheDiscardState() {
        let s = Script { $0.discardTracking = .discardLock; $0.criticalSectionNs = 5000 }
        cachedPages(s, 30..<32)
        s.delete(30, index: 30, cpu: 0, advance: 100)
        s.delete(31, index: 31, cpu: 1)      // 100 ns later on another CPU: the lock is still held
        XCTAssertEqual(s.rows(.B1).discardLockTaken, 2)
        XCTAssertEqual(s.rows(.B1).discardLockContended, 1)
        XCTAssertEqual(s.totals.flagTests, 0, "no flag to test")

        // A page reclaim holds isolated is discarded by a reader on another CPU: the put-back that follows
        // cannot know.
        let v = Script { $0.discardTracking = .discardLock }
        cachedPages(v, 40..<41)
        v.isolate(taken: 1)
        v.hostDiscard(40)
        v.read(index: 40, last: 40)
        XCTAssertEqual(v.rows(.C3).syncDiscards, 1)
        XCTAssertEqual(v.totals.correctnessViolations, 1)
        let g = Script()
        cachedPages(g, 40..<41); g.isolate(taken: 1); g.hostDiscard(40); g.read(index: 40, last: 40)
        XCTAssertEqual(g.totals.correctnessViolations, 0)
    }
}
