import ArgumentParser
import Foundation
import HintingModel
import TraceModel
import TraceReaders

/// Every counter `compare` prints, in order: (name, value of a run).
let compareCounters: [(String, @Sendable (RunResult) -> UInt64)] = [
    ("page_host_discards()", { $0.totals.phd }), ("PageDiscarded tests", { $0.totals.flagTests }),
    ("ESSA ops", { $0.totals.essaTotal }), ("state changes", { $0.totals.transitionTotal }),
    ("to volatile", { $0.totals.toVolatile }), ("to stable", { $0.totals.toStable }),
    ("make_stable", { $0.totals.makeStable }), ("make_stable failed", { $0.totals.makeStableFailed }),
    ("make_volatile", { $0.totals.makeVolatile }), ("lock try+spin", { $0.totals.lockTry + $0.totals.lockSpin }),
    ("host discards", { $0.totals.hostDiscards }), ("sync discards", { $0.totals.syncDiscards }),
    ("discard faults", { $0.totals.discardFaults }), ("reload I/O", { $0.totals.reloadIO }),
    ("host writes", { $0.totals.hostWrites }), ("host reads", { $0.totals.hostReads }),
    ("host I/O saved", { r in r.baselineHostIO.map { UInt64(max(0, Int64($0) - Int64(r.totals.hostIO))) } ?? 0 }),
    ("A2a still_in_mapping", { $0.totals.stillInMappingTests }), ("A2a hits", { $0.totals.stillInMappingHits }),
    ("A3a lru_to_page checks", { $0.totals.lruToPageTests }), ("A3a hits", { $0.totals.lruToPageHits }),
    ("A4 seqlock reads", { $0.totals.seqlockReads }), ("A4 seqlock retries", { $0.totals.seqlockRetries }),
    ("A4 seqlock writes", { $0.totals.seqlockWrites }), ("A4 side-list visits", { $0.totals.sideListVisits }),
    ("A4 peak volatile pages", { $0.options.discardTracking == .seqlock ? UInt64($0.model.alternative.peakVolatile) : 0 }),
    ("A4 node bytes (16 B)", { $0.options.discardTracking == .seqlock ? $0.model.alternative.nodeBytes : 0 }),
    ("A4 node bytes (24 B)", { $0.options.discardTracking == .seqlock ? $0.model.alternative.nodeBytes64 : 0 }),
    ("A4 PG_discarded bytes", { $0.options.discardTracking == .seqlock ? $0.flagBytes : 0 }),
    ("A4 peak list length", { UInt64($0.model.alternative.peakListLength) }),
    ("A4 overlap blocks", { UInt64($0.model.alternative.blocksWithOverlap) }),
    ("A4 max node life ms", { $0.model.alternative.lifetimeMaxNs / 1_000_000 }),
    ("A5 discard_lock taken", { $0.totals.discardLockTaken }), ("A5 lock contended", { $0.totals.discardLockContended }),
    ("A5 violations", { $0.totals.correctnessViolations }),
]

extension RunResult {
    /// PG_discarded costs one bit per page frame: the frames the replay tracked, in bytes.
    var flagBytes: UInt64 { (UInt64(model.frames.count) + 7) / 8 }
}

struct Compare: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compare",
        abstract: "Replay one trace under several series and design alternatives and compare every counter.",
        discussion: """
        --policies takes series (h05b, g06, g07, g09) and the design alternatives of spec §7.2, each replayed \
        on G09: a1 (make_stable in every get_page, make_volatile in every put_page; reference pairs per the \
        R0 table), a2a (page_still_in_mapping() at every lock-then-recheck point), a3a (the discard check \
        inside lru_to_page()), a3c (stable while off the LRU), a4[:BLOCK] (seqlock + side list in place of \
        PG_discarded; BLOCK node, zone, section, hash:K or mapping, default section), a5 (one global \
        discard_lock, no persistent flag: counts the correctness violations) and a10 (no minor-fault \
        optimization). Each column is one replay of the same events with the same host and inference \
        options; the second table divides every counter by G09's. Rows that are zero under every policy \
        are left out of the table (not of --json).

        --json prints {"trace", "policies": [{"policy", "options": {...}, "counters": {...}, \
        "ratio_to_g09": {...}, "a4": {...} (a4 only)}]}.
        """)

    @Argument(help: "Trace file or capture bundle.")
    var trace: String

    @Option(name: .long, help: "Comma-separated: h05b, g06, g07, g09, a1, a2a, a3a, a3c, a4[:BLOCK], a5, a10.")
    var policies = "g06,g07,g09,a1,a2a,a3a,a3c,a4,a5,a10"

    @OptionGroup var model: ModelOptions
    @OptionGroup var siteOptions: SiteOptions
    @OptionGroup var input: ReportInputOptions

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    static func options(for name: String, base: ReplayOptions) -> ReplayOptions? {
        var o = base
        if let s = Series(rawValue: name) { o.series = s; return o }
        o.series = .g09
        return applyAlternative(name, to: &o) ? o : nil
    }

    func validate() throws {
        for p in policies.split(separator: ",") where Compare.options(for: String(p), base: ReplayOptions()) == nil {
            throw ValidationError("unknown policy \(p): expected h05b, g06, g07, g09, a1, a2a, a3a, a3c, a4[:node|zone|section|hash:K|mapping], a5 or a10")
        }
    }

    func run() throws {
        let rules = try siteOptions.makeRules()
        var names = policies.split(separator: ",").map(String.init)
        if !names.contains("g09") { names.append("g09") }
        var results: [(String, RunResult)] = []
        for n in names {
            let o = Compare.options(for: n, base: model.make(depth: siteOptions.depth))!
            results.append((n, try runReplay(trace: trace, input: input.readOptions(), options: o, rules: rules)))
        }
        let base = results.first { $0.0 == "g09" }!.1
        func ratio(_ v: UInt64, _ b: UInt64) -> Double? { b > 0 ? Double(v) / Double(b) : nil }
        if json {
            let arr: [JSON] = results.map { (n, r) in
                var fields: [(String, JSON)] = [
                    ("policy", .string(n)),
                    ("options", .object(r.options.recorded.map { ($0.0, .string($0.1)) })),
                    ("counters", .object(compareCounters.map { ($0.0, .uint($0.1(r))) })),
                    ("ratio_to_g09", .object(compareCounters.map { c in (c.0, ratio(c.1(r), c.1(base)).map { .double($0) } ?? .null) })),
                    ("host_io_saved", r.baselineHostIO.map { .int(Int64($0) - Int64(r.totals.hostIO)) } ?? .null),
                ]
                if r.options.discardTracking == .seqlock { fields.append(("a4", r.a4JSON())) }
                return .object(fields)
            }
            print(JSON.object([("trace", .string(trace)), ("policies", .array(arr))]).render())
            return
        }
        let shown = compareCounters.filter { c in results.contains { c.1($0.1) > 0 } }
        let w = max(10, results.map { $0.0.count + 2 }.max() ?? 10)
        let header = "counter".padding(toLength: 24, withPad: " ", startingAt: 0) + results.map { $0.0.uppercased().leftPad(w) }.joined()
        print(header)
        for (name, f) in shown {
            print(name.padding(toLength: 24, withPad: " ", startingAt: 0) + results.map { String(f($0.1)).leftPad(w) }.joined())
        }
        print("")
        print("relative to G09".padding(toLength: 24, withPad: " ", startingAt: 0) + results.map { $0.0.uppercased().leftPad(w) }.joined())
        for (name, f) in shown where f(base) > 0 {
            print(name.padding(toLength: 24, withPad: " ", startingAt: 0)
                  + results.map { (ratio(f($0.1), f(base)).map { String(format: "%.3f", $0) } ?? "-").leftPad(w) }.joined())
        }
        for (n, r) in results where r.options.discardTracking == .seqlock {
            let a = r.model.alternative
            print("")
            print("\(n.uppercased()) (seqlock per \(r.options.seqlockBlock.name)): side-list nodes for \(a.peakVolatile) pages that may be discarded "
                  + "= \(a.nodeBytes) B at 16 B (\(a.nodeBytes64) B at 24 B) vs PG_discarded \(r.flagBytes) B (1 bit × \(r.model.frames.count) frames): "
                  + String(format: "%.1f×", r.flagBytes > 0 ? Double(a.nodeBytes) / Double(r.flagBytes) : 0)
                  + "; \(a.listInserts) nodes used, peak \(a.peakDiscardedPending) at once, longest list \(a.peakListLength), "
                  + "\(a.blocksWithOverlap) of \(a.blocksUsed) blocks held ≥ 2 discarded pages at once, "
                  + String(format: "node life mean %.1f ms, max %.1f ms", a.meanLifetimeNs / 1e6, Double(a.lifetimeMaxNs) / 1e6))
        }
    }
}

extension RunResult {
    /// A4's peaks and memory as JSON.
    func a4JSON() -> JSON {
        let a = model.alternative
        return .object([
            ("block", .string(options.seqlockBlock.name)), ("peak_volatile_pages", .int(Int64(a.peakVolatile))),
            ("node_bytes", .uint(a.nodeBytes)), ("node_bytes_64bit", .uint(a.nodeBytes64)), ("flag_bytes", .uint(flagBytes)),
            ("memory_ratio", flagBytes > 0 ? .double(Double(a.nodeBytes) / Double(flagBytes)) : .null),
            ("nodes_inserted", .uint(a.listInserts)), ("peak_nodes_in_use", .int(Int64(a.peakDiscardedPending))),
            ("peak_list_length", .int(Int64(a.peakListLength))), ("blocks_used", .int(Int64(a.blocksUsed))),
            ("blocks_with_overlap", .int(Int64(a.blocksWithOverlap))), ("overlapping_inserts", .uint(a.overlappingInserts)),
            ("mean_node_lifetime_ns", .double(a.meanLifetimeNs)), ("max_node_lifetime_ns", .uint(a.lifetimeMaxNs)),
        ])
    }
}
