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

    /// `deferFrom`: the smallest folio whose tails' state a batched step may defer (`Replay.deferMinPages`).
    func replay(_ path: String, deferFrom: Int? = nil, _ configure: (inout ReplayOptions) -> Void) throws -> Replay {
        var o = ReplayOptions()
        o.checkInvariants = true
        configure(&o)
        var pre = TouchedFrames()
        try readTrace(path: path, options: ReadOptions(), into: &pre, context: TraceContext())
        let r = Replay(options: o)
        r.setBudget(touchedFrames: pre.pfns.count)
        if let deferFrom { r.deferMinPages = deferFrom }
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

    /// Folio batching gives the same replay as one step per page on every shipped trace, without a host
    /// budget and under 50% (lru, where batching stays on while the host evicts): every counter row in
    /// order, the census and the notes. The per-page replay also checks the invariants on every event.
    /// The 6.18 traces with large folios must batch at all.
    func testFolioBatchingMatchesPerPageStepsOnRealTraces() throws {
        for b in try bundles() {
            for budget in [ReplayOptions.Budget.unlimited, .percent(50)] {
                let batched = try replay(b) { $0.hostBudget = budget; $0.checkInvariants = false }
                let perPage = try replay(b) { $0.hostBudget = budget; $0.folioBatching = false }
                func text(_ r: Replay) -> String {
                    let m = r.model
                    return m.fingerprint + "\(zip(m.keys, m.rows).map { "\($0) \($1)" })" + "\(r.inferredOps) \(m.hostResident)"
                }
                XCTAssertEqual(text(batched), text(perPage), "\(b), budget \(budget)")
                XCTAssertEqual(perPage.batchedPages, 0)
                XCTAssertEqual(perPage.model.violationCount, 0, b)
                if b.hasSuffix("k6.18-memcg-reclaim") || b.hasSuffix("k6.18-seq-reread") {
                    XCTAssertGreaterThan(batched.batchedPages, 10_000, "\(b), budget \(budget)")
                    // Their large folios' frames are indexed in groups of 16 (`FrameTable.groups`) where
                    // frames are made a folio at a time; one step per page indexes each page alone.
                    XCTAssertGreaterThan(batched.model.frames.groups, 500, b)
                    XCTAssertEqual(perPage.model.frames.groups, 0, b)
                    if budget == .unlimited {
                        // Deferred tails (`Replay.deferSpread`) on real large folios: the default size defers,
                        // and deferring from 2 pages (most batched steps) gives the same counters too.
                        XCTAssertGreaterThan(batched.deferredSteps, 500, b)
                        let small = try replay(b, deferFrom: 2) { $0.hostBudget = budget; $0.checkInvariants = false }
                        XCTAssertGreaterThan(small.deferredSteps, batched.deferredSteps, b)
                        XCTAssertEqual(text(small), text(perPage), "\(b), deferred from 2 pages")
                    } else {
                        // No deferring under a host budget.
                        XCTAssertEqual(batched.deferredSteps, 0, b)
                    }
                }
            }
        }
    }

    /// The design alternatives of spec §7.2 on the memcg-reclaim traces of both kernels (reclaim, removals, reads):
    /// each keeps the invariants and changes only what it claims to change.
    func testDesignAlternativesOnRealTraces() throws {
        let chosen = try bundles().filter { $0.hasSuffix("/k6.18-memcg-reclaim") || $0.hasSuffix("/k6.1-memcg-reclaim") }
        if chosen.isEmpty { throw XCTSkip("the two bundles are not under traces/") }
        for b in chosen {
            let name = URL(fileURLWithPath: b).lastPathComponent
            let g09 = try replay(b) { _ in }.model.totals
            func run(_ configure: (inout ReplayOptions) -> Void) throws -> HintingModel {
                let m = try replay(b, configure).model
                XCTAssertEqual(m.violationCount, 0, "\(name): \(m.violationSamples.prefix(3))")
                return m
            }
            // A1 changes state more often than G09 on these traces.
            XCTAssertGreaterThan(try run { $0.a1 = true }.totals.transitionTotal, g09.transitionTotal, name)
            // A2a adds one flag test per recheck and nothing else.
            let a2a = try run { $0.a2a = true }.totals
            XCTAssertGreaterThan(a2a.stillInMappingTests, 0, name)
            XCTAssertEqual(a2a.flagTests, g09.flagTests + a2a.stillInMappingTests, name)
            XCTAssertEqual(a2a.transitionTotal, g09.transitionTotal, name)
            XCTAssertEqual(a2a.essaTotal, g09.essaTotal, name)
            // A3a: checks in lru_to_page, none at the put-back (H1).
            let a3a = try run { $0.a3a = true }
            XCTAssertGreaterThan(a3a.totals.lruToPageTests, 0, name)
            XCTAssertFalse(a3a.keys.contains { $0.hook == .H1 }, name)
            // A3c: more make_stable calls than G09.
            XCTAssertGreaterThan(try run { $0.a3c = true }.totals.makeStable, g09.makeStable, name)
            // A4: the flag tests become seqlock reads at the same places; the states are those of G09.
            let a4 = try run { $0.discardTracking = .seqlock }
            XCTAssertEqual(a4.totals.flagTests, 0, name)
            XCTAssertEqual(a4.totals.seqlockReads, g09.flagTests, name)
            XCTAssertEqual(a4.totals.transitionTotal, g09.transitionTotal, name)
            XCTAssertEqual(a4.totals.seqlockWrites, a4.alternative.listInserts + a4.alternative.listRemovals, name)
            XCTAssertGreaterThan(a4.alternative.peakVolatile, 0, name)
            XCTAssertEqual(a4.alternative.nodeBytes, 16 * UInt64(a4.alternative.peakVolatile), name)
            // A5: no flag; one lock acquisition per page-cache removal at least; the states are those of G09.
            let a5 = try run { $0.discardTracking = .discardLock }
            XCTAssertEqual(a5.totals.flagTests, 0, name)
            let a5rows = a5.rows
            let removals = a5.keys.indices.filter { a5.keys[$0].hook == .B1 }.reduce(UInt64(0)) { $0 + a5rows[$1].executions }
            XCTAssertGreaterThanOrEqual(a5.totals.discardLockTaken, removals, name)
            XCTAssertGreaterThan(removals, 0, name)
            XCTAssertEqual(a5.totals.transitionTotal, g09.transitionTotal, name)
        }
    }
}
