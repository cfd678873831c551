@testable import HintingModel
import TraceModel
import XCTest

/// Folio batching (a page step run once for a large folio's pages that hold the same state) must give
/// exactly what one step per page gives. Random hand-built event sequences (not captured from a kernel)
/// over a small range of pfns and page indices, so that folios overlap, are reused at other orders, are
/// read in part, mapped, dirtied, isolated and freed in every order, are replayed twice — batching on and
/// off — and every counter row (in order), the census, notes, every frame's state, the page cache and the
/// guest and host LRU lists (in order) must be the same.
final class BatchingTests: XCTestCase {
    struct Rng {
        var s: UInt64
        mutating func next() -> UInt64 { s ^= s << 13; s ^= s >> 7; s ^= s << 17; return s }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    }

    /// One random sequence of `count` events, as calls on a script.
    /// `deferFrom`: the smallest folio whose tails' state a batched step may defer (`Replay.deferMinPages`).
    func run(seed: UInt64, count: Int, batching: Bool, budget: Int?, deferFrom: Int? = nil,
             configure: (inout ReplayOptions) -> Void) -> (String, [String], UInt64, deferred: UInt64) {
        let s = Script(configure: { o in
            configure(&o)
            o.checkInvariants = false
        })
        s.replay.batching = batching
        if let deferFrom { s.replay.deferMinPages = deferFrom }
        if let budget { s.model.budgetFrames = budget }
        var r = Rng(s: seed | 1)
        for _ in 0..<count {
            let order = Int64([0, 1, 2, 3, 4, 4, 3][r.below(7)])
            let size = Int64(1) << order
            let pfn = Int64(r.below(16)) * 16 + Int64(r.below(Int(16 / size))) * size
            let ino = Int64(7 + r.below(2))
            let index = Int64(r.below(4)) * 16 + Int64(r.below(Int(16 / size))) * size
            let pid = Int32(100 + r.below(3))
            switch r.below(20) {
            case 0, 1: s.alloc(pfn, order: order)
            case 2: s.free(pfn, order: order)
            case 3, 4: s.alloc(pfn, order: order); s.add(pfn, ino: ino, index: index, order: order)
            case 5: s.add(pfn, ino: ino, index: index, order: order)
            case 6: s.delete(pfn, ino: ino, index: index, order: order, cpu: UInt16(r.below(2)))
            case 7, 8: s.lruAdd(pfn, lru: Int64(r.below(4)), flags: [0x4, 0x4, 0x2 | 0x10, 0x8 | 0x4, 0x40 | 0x4][r.below(5)])
            case 9, 10: s.read(ino: ino, index: index + Int64(r.below(4)), last: index + Int64(r.below(40)))
            case 11: s.mapPages(ino: ino, index: index, last: index + Int64(r.below(8)), pid: pid)
            case 12: s.fault(ino: ino, index: index + Int64(r.below(4)), pid: pid)
            case 13: s.dirty(ino: ino, index: index + Int64(r.below(4)))
            case 14: s.isolate(taken: Int64(r.below(40)), lru: Int64(r.below(4)), cpu: UInt16(r.below(2)))
            case 15:
                if r.below(2) == 0 {
                    s.shrinkInactive(activateFile: Int64(r.below(8)), cpu: UInt16(r.below(2)))
                } else {
                    s.emit("vmscan", "mm_vmscan_lru_shrink_active",
                           [("nid", 0), ("nr_taken", Int64(r.below(40))), ("nr_active", 0), ("nr_deactivated", Int64(r.below(20))),
                            ("nr_referenced", 0), ("priority", 12), ("reclaim_flags", 2)], cpu: UInt16(r.below(2)))
                }
            case 16: s.emit("vmscan", "mm_vmscan_write_folio", [("pfn", pfn), ("reclaim_flags", 2)])
            case 17: s.emit("pagemap", "mm_lru_activate", [("folio", 0), ("pfn", pfn)])
            case 18: s.emit("writeback", "folio_wait_writeback", [("name", 0), ("ino", ino), ("index", index)])
            default:
                if r.below(2) == 0 {
                    s.emit("sched", "sched_process_fork", [("parent_comm", 0), ("parent_pid", Int64(pid)), ("child_comm", 0), ("child_pid", Int64(pid + 1))])
                } else {
                    s.exit(pid: pid)
                }
            }
        }
        s.replay.finish()
        let m = s.model
        var frames: [String] = []
        for i in 0..<m.frames.count {
            let f = m.frames[i]
            frames.append("\(m.frames.pfn(i)) \(f.flags.rawValue) \(f.refcount) \(f.mapcount) \(f.guestRaw) \(f.hostRaw) \(f.order) \(f.lru) \(f.file) \(m.pageIndex(i))")
        }
        // The page cache, stale entries included.
        for ino in UInt64(7)...8 {
            for x in UInt64(0)..<128 {
                let file = m.knownFile(dev: UInt32(Script.dev), ino: ino)
                frames.append("cache \(ino) \(x): \(file.flatMap { m.cache[file: $0, index: x] }.map(String.init) ?? "-")")
            }
        }
        // Every counter of every row, in the order the rows were made; the guest and host LRU lists in order.
        for (k, r) in zip(m.keys, m.rows) { frames.append("row \(k): \(r)") }
        for l in 0..<5 {
            var v = m.guestLRU[l].head, order: [Int32] = []
            while v >= 0 { order.append(v); v = m.frames[Int(v)].lruNext }
            frames.append("guest LRU \(l): \(order)")
        }
        if m.frames.hostLinks != nil {
            var v = m.hostLRU.head, order: [Int32] = []
            while v >= 0 { order.append(v); v = m.hostLinks[Int(v)].next }
            frames.append("host LRU: \(order)")
        }
        frames.append("resident \(m.hostResident) violations \(m.violationCount) resolved \(m.hostResolved)")
        return (m.fingerprint + "inferred \(s.replay.inferredOps)\n", frames, s.replay.batchedPages, s.replay.deferredSteps)
    }

    @discardableResult
    func compare(_ name: String, seeds: Int = 12, count: Int = 3000, budget: Int? = nil, minimum: UInt64 = 1000, deferFrom: Int? = nil,
                 configure: (inout ReplayOptions) -> Void = { _ in }) -> UInt64 {
        var batched: UInt64 = 0, deferred: UInt64 = 0
        for seed in 1...UInt64(seeds) {
            let a = run(seed: seed &* 7919, count: count, batching: true, budget: budget, deferFrom: deferFrom, configure: configure)
            deferred += a.deferred
            let b = run(seed: seed &* 7919, count: count, batching: false, budget: budget, configure: configure)
            XCTAssertEqual(b.2, 0)
            batched += a.2
            if a.0 != b.0 {
                let la = a.0.split(separator: "\n"), lb = b.0.split(separator: "\n")
                let k = zip(la, lb).enumerated().first(where: { $0.element.0 != $0.element.1 })?.offset ?? min(la.count, lb.count)
                XCTFail("\(name), seed \(seed): counters differ at line \(k): batched \(k < la.count ? la[k] : "-"), per page \(k < lb.count ? lb[k] : "-")")
            }
            XCTAssertEqual(a.1.count, b.1.count, "\(name), seed \(seed): frames")
            if a.1.count == b.1.count, let k = a.1.indices.first(where: { a.1[$0] != b.1[$0] }) {
                XCTFail("\(name), seed \(seed): frame \(k): batched \(a.1[k]), per page \(b.1[k])")
            }
        }
        // The sequences must exercise batching at all.
        XCTAssertGreaterThanOrEqual(batched, minimum, name)
        return deferred
    }

    /// Deferred tails (`Replay.deferSpread`) of folios from 2 pages on, so that most batched steps defer
    /// and deferred folios meet every event kind: reads of part of them, mappings, faults, activations,
    /// overlapping allocations, frees of pages never allocated, page-by-page fallbacks.
    func testDeferredTails() {
        let deferred = compare("deferred from 2 pages", deferFrom: 2)
        XCTAssertGreaterThan(deferred, 3_000, "the sequences defer")
        // With the default size, the order-4 folios of the sequences defer.
        XCTAssertGreaterThan(compare("deferred from 16 pages", seeds: 4), 20)
        compare("deferred from 2 pages, U0 and W1", seeds: 6, deferFrom: 2) { o in o.unlock = .U0; o.writeback = .W1 }
        compare("deferred from 2 pages, G06", seeds: 6, deferFrom: 2) { o in o.series = .g06 }
    }

    func testG09() { compare("g09") }

    /// Pfns of 2^32 - 1 and above and page indices near the 32-bit and 64-bit limits (kept aside of the
    /// frame): folios there take one step per page, with the same results, and nothing overflows.
    func testLargePfnsAndIndices() {
        func run(_ batching: Bool) -> String {
            let s = Script(configure: { $0.checkInvariants = false })
            s.replay.batching = batching
            for (pfn, index) in [(Int64(1) << 32, Int64(0)), (Int64(UInt32.max) - 3, Int64(UInt32.max) - 2), (Int64(64), Int64(-4))] {
                for _ in 0..<2 {
                    s.alloc(pfn, order: 2)
                    s.add(pfn, index: index, order: 2)
                    s.lruAdd(pfn)
                    s.read(index: index, last: index + 3)
                    s.delete(pfn, index: index, order: 2)
                    s.free(pfn, order: 2)
                }
            }
            s.replay.finish()
            return s.model.fingerprint + "\(s.model.rows)"
        }
        XCTAssertEqual(run(true), run(false))
    }
    /// Hand-built: a large folio the model has never seen is allocated in one batched step, and a read over
    /// order-0 folios that are each on a guest LRU, at consecutive frames and indices, is one batched run;
    /// both give what one step per page gives.
    func testNewFolioAndReadAcrossFoliosOnTheLRU() {
        func run(_ batching: Bool) -> (String, alloc: UInt64, read: UInt64, readSteps: UInt64) {
            let s = Script(configure: { $0.checkInvariants = false })
            s.replay.batching = batching
            var before = s.replay.batchedPages
            s.alloc(4096, order: 3)
            let alloc = s.replay.batchedPages - before
            s.add(4096, index: 0, order: 3)
            s.lruAdd(4096)
            for k in Int64(0)..<8 {
                s.alloc(8192 + k, order: 0)
                s.add(8192 + k, index: 100 + k, order: 0)
                s.lruAdd(8192 + k, lru: 2)
            }
            s.read(index: 100, last: 107)
            before = s.replay.batchedPages
            let stepsBefore = s.model.steps
            s.read(index: 100, last: 107)
            let read = s.replay.batchedPages - before
            let readSteps = s.model.steps - stepsBefore
            s.read(index: 0, last: 7)
            s.replay.finish()
            var lru: [Int32] = []
            var v = s.model.guestLRU[2].head
            while v >= 0 { lru.append(v); v = s.model.frames[Int(v)].lruNext }
            return (s.model.fingerprint + "\(s.model.rows) \(lru) \(s.model.census)", alloc, read, readSteps)
        }
        let a = run(true), b = run(false)
        XCTAssertEqual(a.0, b.0)
        XCTAssertEqual(a.alloc, 8, "the new folio's allocation is one batched step of 8 pages")
        XCTAssertEqual(a.read, 8, "the read of 8 order-0 folios on the LRU is one batched run")
        XCTAssertEqual(b.alloc + b.read, 0)
        // The model's step count (what `make bench` divides the time by) counts the batched run's hook
        // executions once, where one step per page runs them for each of the 8 pages.
        XCTAssertGreaterThan(a.readSteps, 0)
        XCTAssertEqual(a.readSteps * 8, b.readSteps)
    }

    /// Hand-built: without a host budget, a read over folios of several orders in the same page state —
    /// at frames that do not follow one another, with an index the page cache does not hold between them —
    /// is one batched step over all their pages (`readRun`), and gives what one step per page gives; a page
    /// in another state ends the run.
    func testReadAcrossFoliosOfSeveralOrdersIsOneStep() {
        func run(_ batching: Bool) -> (String, read: UInt64, readSteps: UInt64, partSteps: UInt64) {
            let s = Script(configure: { $0.checkInvariants = false })
            s.replay.batching = batching
            // Indices 0-3: an order-2 folio; 4: order 0; 5: not cached; 6-7: order 1; 8: order 0, dirtied later.
            for (pfn, index, order) in [(Int64(4096), Int64(0), Int64(2)), (9000, 4, 0), (5000, 6, 1), (7000, 8, 0)] {
                s.alloc(pfn, order: order)
                s.add(pfn, index: index, order: order)
                s.lruAdd(pfn)
            }
            s.read(index: 0, last: 8)
            let before = s.replay.batchedPages
            var stepsBefore = s.model.steps
            s.read(index: 0, last: 8)
            let read = s.replay.batchedPages - before
            let readSteps = s.model.steps - stepsBefore
            // A page of another state (dirty: stable) in the middle: the run stops there and starts again.
            s.dirty(index: 4)
            stepsBefore = s.model.steps
            s.read(index: 0, last: 8)
            let partSteps = s.model.steps - stepsBefore
            s.replay.finish()
            var frames: [String] = []
            for i in 0..<s.model.frames.count {
                let f = s.model.frames[i]
                frames.append("\(f.flags.rawValue) \(f.refcount) \(f.mapcount) \(f.guestRaw) \(f.hostRaw)")
            }
            return (s.model.fingerprint + "\(s.model.rows) \(s.model.census) \(frames)", read, readSteps, partSteps)
        }
        let a = run(true), b = run(false)
        XCTAssertEqual(a.0, b.0)
        XCTAssertEqual(a.read, 8, "the 8 cached pages of 4 folios are one batched step")
        XCTAssertEqual(b.read, 0)
        XCTAssertEqual(a.readSteps * 8, b.readSteps, "one step's hook executions where per page there are 8")
        XCTAssertGreaterThan(a.partSteps, a.readSteps, "a page of another state splits the run")
        XCTAssertLessThan(a.partSteps, b.partSteps)
    }

    func testG06() { compare("g06") { $0.series = .g06 } }
    func testG07AndH05b() {
        compare("g07") { $0.series = .g07 }
        compare("h05b") { $0.series = .h05b }
    }
    func testPolicies() {
        compare("U0 W1") { $0.unlock = .U0; $0.writeback = .W1 }
        compare("T1 A10") { $0.touches = .T1; $0.minorFaultOptimization = false }
    }
    /// With a host budget the host evicts: batched touches must keep the host LRU's per-page order and pick
    /// the same victims (lru, T0); other policies take one step per page.
    func testHostBudget() {
        compare("budget 120 lru", budget: 120)
        compare("budget 40 lru g06", budget: 40) { $0.series = .g06 }
        compare("budget 200 lru U0 W1", budget: 200) { $0.unlock = .U0; $0.writeback = .W1 }
        compare("budget 80 oracle", budget: 80, minimum: 0) { $0.hostPolicy = .oracle }
        compare("budget 80 random", budget: 80, minimum: 0) { $0.hostPolicy = .random }
        compare("budget 80 T1", budget: 80, minimum: 0) { $0.touches = .T1 }
    }

    func testAlternatives() {
        compare("a2a a3a") { $0.a2a = true; $0.a3a = true }
        compare("a3c") { $0.a3c = true }
        compare("baseline") { $0.baseline = true }
    }
}
