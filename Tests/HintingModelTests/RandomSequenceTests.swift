@testable import HintingModel
import XCTest

/// Hand-built random event sequences (not captured from a kernel) over a few dozen pfns, three files and
/// six processes: every event kind the model maps, in any order, with folios of orders 0–3, under each
/// series and the options that take other paths. Such input contradicts itself (frees of cached pages,
/// deletes of pages never added, isolations of empty lists, exits of unknown processes): the model must
/// neither trap nor lose count. After each sequence the census of every guest state equals the frames
/// created in U plus the transitions into the state less those out of it.
final class RandomSequenceTests: XCTestCase {
    func replay(seed: UInt64, series: Series, events: Int, configure: (inout ReplayOptions) -> Void) {
        let s = Script(series: series) { o in
            o.hostBudget = .percent(40)
            o.checkInvariants = false
            configure(&o)
        }
        s.replay.setBudget(touchedFrames: 64)
        var r = seed | 1
        func next(_ m: Int) -> Int { r ^= r << 13; r ^= r >> 7; r ^= r << 17; return Int(r % UInt64(m)) }
        for _ in 0..<events {
            let pfn = Int64(next(64)), order = Int64(next(8) == 0 ? next(4) : 0)
            let index = Int64(next(48)), ino = Int64(1 + next(3)), pid = Int32(100 + next(6)), cpu = UInt16(next(3))
            switch next(16) {
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
            default: s.emit("vmscan", "mm_vmscan_write_folio", [("pfn", pfn), ("reclaim_flags", 0)])
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
            XCTAssertEqual(Int64(census), Int64(start) + inN - outN, "\(series) seed \(seed): guest state \(g)")
        }
        XCTAssertEqual(total, s.model.frames.count)
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
}
