import Foundation
@testable import HintingModel
import TraceModel
import TraceReaders
import XCTest

/// Properties of the model on every real trace shipped in traces/.
final class RealTraceTests: XCTestCase {
    static let root: String = {
        var u = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { u.deleteLastPathComponent() }
        return u.path + "/traces"
    }()

    func bundles() throws -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: Self.root)) ?? []
        let b = names.sorted().map { Self.root + "/" + $0 }.filter { (try? CaptureBundle(path: $0)) != nil }
        if b.isEmpty { throw XCTSkip("no capture bundles under traces/") }
        return b
    }

    func replay(_ path: String, _ configure: (inout ReplayOptions) -> Void) throws -> Replay {
        var o = ReplayOptions()
        o.checkInvariants = true
        configure(&o)
        var pre = TouchedFrames()
        try readTrace(path: path, options: ReadOptions(), into: &pre, context: TraceContext())
        let r = Replay(options: o)
        r.setBudget(touchedFrames: pre.pfns.count)
        var sink = Sink(r: r)
        try readTrace(path: path, options: ReadOptions(), into: &sink, context: TraceContext())
        r.finish()
        return r
    }

    struct Sink: EventSink {
        let r: Replay
        mutating func consume(_ e: borrowing Event, context: TraceContext) { r.consume(e, context: context) }
    }

    func testBudgetsSeriesHostPoliciesInvariantsAndDeterminism() throws {
        for b in try bundles() {
            let name = URL(fileURLWithPath: b).lastPathComponent
            // (1) a host budget of 100 % or more never discards and never faults
            let full = try replay(b) { $0.hostBudget = .percent(100) }
            XCTAssertEqual(full.model.totals.hostDiscards, 0, name)
            XCTAssertEqual(full.model.totals.discardFaults, 0, name)
            XCTAssertGreaterThan(full.events, 0, name)
            // (2) host discards never decrease as the budget shrinks
            var last: UInt64 = 0
            for p in [100.0, 75, 50, 25] {
                let r = try replay(b) { $0.hostBudget = .percent(p) }
                XCTAssertGreaterThanOrEqual(r.model.totals.hostDiscards, last, "\(name) at \(p)%")
                last = r.model.totals.hostDiscards
                // (5) the invariants hold on every event
                XCTAssertEqual(r.model.violationCount, 0, "\(name) at \(p)%: \(r.model.violationSamples.prefix(3))")
            }
            // (3) G06 evaluates page_host_discards() more often than G09
            let g06 = try replay(b) { $0.series = .g06 }
            let g09 = try replay(b) { $0.series = .g09 }
            XCTAssertGreaterThan(g06.model.totals.phd, g09.model.totals.phd, name)
            XCTAssertEqual(g06.model.violationCount, 0, name)
            // Alternative A1 (make_stable in get_page, make_volatile in put_page) changes state at least as
            // often as G09, and keeps the invariants.
            let a1 = try replay(b) { $0.a1 = true }
            XCTAssertGreaterThanOrEqual(a1.model.totals.transitionTotal, g09.model.totals.transitionTotal, name)
            XCTAssertGreaterThan(a1.model.totals.makeStable, g09.model.totals.makeStable, name)
            XCTAssertEqual(a1.model.violationCount, 0, "\(name): \(a1.model.violationSamples.prefix(3))")
            // (4) the oracle saves at least as much host I/O as LRU, both against the replay without hinting
            let base = try replay(b) { $0.baseline = true; $0.hostBudget = .percent(50) }.model.totals.hostIO
            let oracle = try replay(b) { $0.hostPolicy = .oracle; $0.hostBudget = .percent(50) }
            let lru = try replay(b) { $0.hostPolicy = .lru; $0.hostBudget = .percent(50) }
            XCTAssertGreaterThanOrEqual(Int64(base) - Int64(oracle.model.totals.hostIO), Int64(base) - Int64(lru.model.totals.hostIO), name)
            XCTAssertGreaterThan(base, 0, name)
            // (6) two runs with the same input and options are identical
            let again = try replay(b) { $0.series = .g09 }
            XCTAssertEqual(again.model.fingerprint, g09.model.fingerprint, name)
            XCTAssertEqual(again.timeline.map(\.1), g09.timeline.map(\.1), name)
        }
    }
}
