@testable import HintingModel
import XCTest

/// Hand-built random event sequences (not captured from a kernel) over a few dozen pfns, three files and
/// six processes: every event kind the model maps, in any order, with folios of orders 0–3, under each
/// series and the options that take other paths. Such input contradicts itself (frees of cached pages,
/// deletes of pages never added, isolations of empty lists, exits of unknown processes): the model must
/// neither trap nor lose count. After each sequence the census of every guest state equals the frames
/// created in U plus the transitions into the state less those out of it (and the host's resolution of
/// P frames, which is no guest transition). With default options the same sequence replayed one step
/// per page gives the same counters, census and notes as with folio batching.
final class RandomSequenceTests: XCTestCase {
    @discardableResult
    /// `folios`: pfns and indices aligned to 8 and folios of orders 0–3 alike, so that whole folios meet
    /// again and take the batched paths.
    func replay(seed: UInt64, series: Series, events: Int, folios: Bool = false, deferFrom: Int? = nil,
                configure: (inout ReplayOptions) -> Void) -> (String, batched: UInt64) {
        let s = Script(series: series) { o in
            o.hostBudget = .percent(40)
            o.checkInvariants = false
            configure(&o)
        }
        s.replay.setBudget(touchedFrames: 64)
        if let deferFrom { s.replay.deferMinPages = deferFrom }
        var r = seed | 1
        func next(_ m: Int) -> Int { r ^= r << 13; r ^= r >> 7; r ^= r << 17; return Int(r % UInt64(m)) }
        for _ in 0..<events {
            let pfn = folios ? Int64(8 * next(8)) : Int64(next(64))
            let order = folios ? Int64(next(4)) : Int64(next(8) == 0 ? next(4) : 0)
            let index = folios ? Int64(8 * next(6)) : Int64(next(48))
            let ino = Int64(1 + next(3)), pid = Int32(100 + next(6)), cpu = UInt16(next(3))
            switch next(22) {
            case 0: s.alloc(pfn, order: order)
            case 1: s.free(pfn, order: order)
            case 2: s.add(pfn, ino: ino, index: index, order: order)
            case 3: s.delete(pfn, ino: ino, index: index, order: order, cpu: cpu)
            case 4: s.lruAdd(pfn, lru: Int64(next(5)), flags: Int64(next(128)))
            case 5: s.read(ino: ino, index: index, last: index + Int64(next(20)) - 2)
            case 6: s.mapPages(ino: ino, index: index, last: index + Int64(next(20)), pid: pid)
            case 7: s.fault(ino: ino, index: index, pid: pid)
            case 8: s.isolate(taken: Int64(next(40)), lru: Int64(next(5)), cpu: cpu)
            case 9: s.shrinkInactive(activateFile: Int64(next(10)), cpu: cpu)
            case 10: s.emit("sched", "sched_process_fork", [("parent_comm", 0), ("parent_pid", Int64(pid)), ("child_comm", 0),
                                                            ("child_pid", Int64(100 + next(6)))])
            case 11: s.exit(pid: pid)
            case 12: s.dirty(ino: ino, index: index)
            case 13: s.directReclaimBegin()
            case 14: s.emit("pagemap", "mm_lru_activate", [("folio", 0), ("pfn", pfn)])
            case 15: s.emit("vmscan", "mm_vmscan_write_folio", [("pfn", pfn), ("reclaim_flags", 0)])
            case 16: s.emit("vmscan", "mm_vmscan_lru_shrink_active", [("nid", 0), ("nr_taken", Int64(next(40))), ("nr_active", 0),
                                                                      ("nr_deactivated", Int64(next(40))), ("nr_referenced", 0),
                                                                      ("priority", 12), ("reclaim_flags", Int64(next(4)))], cpu: cpu)
            case 17: s.emit("kmem", "mm_page_free_batched", [("pfn", pfn)])
            case 18: s.emit("exceptions", "page_fault_user", [("address", 0), ("ip", 0), ("error_code", Int64(next(8)))], pid: pid)
            case 19: s.emit("filemap", "folio_wait_writeback", [("ino", ino), ("index", index)])
            case 20: s.emit("vmscan", "mm_vmscan_direct_reclaim_end", [("nr_reclaimed", 0)], cpu: cpu)
            default: s.emit("vmscan", "mm_vmscan_memcg_reclaim_begin", [("order", 0), ("gfp_flags", 0)], cpu: cpu)
            }
        }
        let t = s.totals
        var total = 0
        for g in GuestState.allCases {
            var inN: Int64 = 0, outN: Int64 = 0
            for o in GuestState.allCases where o != g { inN += Int64(t.transition(o, g)); outN += Int64(t.transition(g, o)) }
            let census = (0..<3).reduce(0) { $0 + s.model.census[Int(g.rawValue) * 3 + $1] }
            total += census
            let start = g == .unused ? s.model.frames.count : 0
            let resolved = s.model.hostResolved   // P → S (dirty), P → V (clean)
            let host: Int64 = switch g {
            case .stable: Int64(resolved[0])
            case .volatile: Int64(resolved[1])
            case .potentiallyVolatile: -Int64(resolved[0] + resolved[1])
            case .unused: 0
            }
            XCTAssertEqual(Int64(census), Int64(start) + inN - outN + host, "\(series) seed \(seed): guest state \(g)")
        }
        XCTAssertEqual(total, s.model.frames.count)
        s.replay.finish()
        return (s.model.fingerprint + "\(s.model.rows)", s.replay.batchedPages)
    }

    func testRandomSequencesNeitherTrapNorLoseCount() {
        let options: [(String, (inout ReplayOptions) -> Void)] = [
            ("defaults", { _ in }), ("A1", { $0.a1 = true }), ("A2a A3a", { $0.a2a = true; $0.a3a = true }),
            ("A3c", { $0.a3c = true }), ("A4", { $0.discardTracking = .seqlock }), ("A5", { $0.discardTracking = .discardLock }),
            ("U0 W1", { $0.unlock = .U0; $0.writeback = .W1 }), ("T1", { $0.touches = .T1 }),
            ("A10", { $0.minorFaultOptimization = false }), ("oracle", { $0.hostPolicy = .oracle }),
            ("random", { $0.hostPolicy = .random }), ("invariants", { $0.checkInvariants = true }),
            ("unlimited", { $0.hostBudget = .unlimited }),
        ]
        for (k, (_, configure)) in options.enumerated() {
            for series in Series.allCases {
                replay(seed: 0x9E37_79B9 &* UInt64(k + 1) &+ UInt64(series.rank), series: series, events: 1_500, configure: configure)
            }
        }
    }

    func testFolioBatchingGivesWhatOneStepPerPageGivesOnRandomSequences() {
        var batchedPages: UInt64 = 0
        for seed in UInt64(1)...3 {
            for series in Series.allCases {
                for (budget, w1, deferFrom) in [(ReplayOptions.Budget.unlimited, false, nil), (.unlimited, false, 2), (.unlimited, true, 2),
                                                (.percent(40), false, nil), (.percent(40), true, nil)] {
                    let set: (inout ReplayOptions) -> Void = { o in
                        o.hostBudget = budget
                        if w1 { o.writeback = .W1; o.unlock = .U0 }
                    }
                    let batched = replay(seed: seed, series: series, events: 1_500, folios: true, deferFrom: deferFrom) { set(&$0) }
                    let pages = replay(seed: seed, series: series, events: 1_500, folios: true) {
                        set(&$0)
                        $0.folioBatching = false
                    }
                    if batched.0 != pages.0 {
                        // The first line that differs (the whole texts are long).
                        let a = batched.0.split(separator: "\n"), b = pages.0.split(separator: "\n")
                        let k = zip(a, b).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(a.count, b.count)
                        XCTFail("\(series) seed \(seed) budget \(budget) W1 \(w1), line \(k): batched \(k < a.count ? a[k].prefix(300) : "-") / per page \(k < b.count ? b[k].prefix(300) : "-")")
                    }
                    XCTAssertEqual(pages.batched, 0)
                    batchedPages += batched.batched
                }
            }
        }
        XCTAssertGreaterThan(batchedPages, 1_000, "the sequences take the batched paths")
    }
}
