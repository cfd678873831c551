import ArgumentParser
import Foundation
import TraceModel
import TraceReaders

/// Counts events per (event type, call site, raw call site).
struct SitesSink: EventSink {
    let resolver: CallSiteResolver
    var counts: [SiteKey: UInt64] = [:]
    var events: UInt64 = 0

    struct SiteKey: Hashable { var type: EventTypeID; var site: StringID; var raw: StringID }

    mutating func consume(_ e: borrowing Event, context ctx: TraceContext) {
        let s = resolver.site(type: e.type, stack: e.stack, ctx)
        counts[SiteKey(type: e.type, site: s.site, raw: s.raw), default: 0] += 1
        events += 1
    }
}

struct SiteRow {
    var event: String
    var site: String
    var raw: String
    var count: UInt64
}

/// Options that choose call-site rules.
struct SiteOptions: ParsableArguments {
    @Option(name: .long, help: "Call path depth: the call site and the N-1 callers after it.")
    var depth = 1

    @Option(name: .long, help: "Call-site rules file replacing the built-in rules of the events it names (format: docs/callsites.md).")
    var rules: String?

    @Option(name: .long, help: "Rename table adding to the built-in one (`OLD NEW [SINCE]` per line).")
    var renames: String?

    func validate() throws {
        if depth < 1 || depth > 64 { throw ValidationError("--depth must be between 1 and 64") }
    }

    func makeRules() throws -> CallSiteRules {
        var r = CallSiteRules.defaults
        do {
            if let f = rules { try r.addRules(try String(contentsOfFile: f, encoding: .utf8), source: f) }
            if let f = renames { try r.addRenames(try String(contentsOfFile: f, encoding: .utf8), source: f) }
        } catch let e as CallSiteRules.ParseError {
            warn("pagehint: \(e.description)")
            throw ExitCode(64)
        } catch {
            warn("pagehint: \(error.localizedDescription)")
            throw ExitCode(66)
        }
        return r
    }
}

/// Reads a trace and returns its call-site rows, most frequent first within each event.
func collectSites(_ path: String, _ input: InputOptions, _ rules: CallSiteRules, depth: Int) throws -> (rows: [SiteRow], ctx: TraceContext, events: UInt64) {
    let ctx = TraceContext()
    var sink = SitesSink(resolver: CallSiteResolver(rules: rules, depth: depth))
    try reportingErrors { try readAnyTrace(path: path, options: input.readOptions(), into: &sink, context: ctx) }
    Progress.shared.finish()
    var rows: [SiteRow] = []
    for (k, c) in sink.counts {
        rows.append(SiteRow(event: ctx.types[Int(k.type)].name, site: sink.resolver.sites[k.site],
                            raw: sink.resolver.rawSites[k.raw], count: c))
    }
    rows.sort { ($0.event, -Int64($0.count), $0.site, $0.raw) < ($1.event, -Int64($1.count), $1.site, $1.raw) }
    return (rows, ctx, sink.events)
}

/// Normalised sites of one event, by count (raw variants summed).
func topSites(_ rows: [SiteRow], event: String, n: Int) -> [(String, UInt64)] {
    var m: [String: UInt64] = [:]
    for r in rows where r.event == event { m[r.site, default: 0] += r.count }
    return m.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.prefix(n).map { ($0.key, $0.value) }
}

struct Sites: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sites",
        abstract: "List the kernel call sites of each event, raw and normalised.",
        discussion: """
        The call site of an event is the first stack frame after the tracing frames and the frames that \
        implement the event itself (rules: docs/callsites.md). Names are normalised (clone suffixes, \
        _noprof, renames between kernel versions) so two kernels compare; the raw name is shown beside.

        With --compare OTHER, the top --top sites of every event type present in both traces are matched \
        after normalisation and the fraction found on the other side is printed per event and overall.

        --json prints {"sites": [{"event", "site", "raw", "count"}, ...]} (with --compare: \
        {"events": [{"event", "a_top", "b_top", "matched_a", "matched_b", "only_a", "only_b"}], "match": f, \
        "match_by_events": f, "match_by_events_a": f, "match_by_events_b": f, "only_in_a": [...], "only_in_b": [...]}).
        """)

    @Argument(help: "Trace file, capture bundle or `pagehint import` database.")
    var trace: String

    @Option(name: .long, help: "Only this event (bare name, e.g. mm_filemap_add_to_page_cache).")
    var event: String?

    @Option(name: .long, help: "Sites per event (0 = all; default 20 with --compare, else all).")
    var top: Int?

    @Option(name: .long, help: "A second trace (usually another kernel, same workload) to match sites against.")
    var compare: String?

    @OptionGroup var siteOptions: SiteOptions
    @OptionGroup var input: InputOptions

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    func run() throws {
        let rules = try siteOptions.makeRules()
        let a = try collectSites(trace, input, rules, depth: siteOptions.depth)
        var rows = a.rows
        if let e = event { rows = rows.filter { $0.event == e } }
        if let other = compare {
            let b = try collectSites(other, input, rules, depth: siteOptions.depth)
            printComparison(rows, b.rows.filter { event == nil || $0.event == event! }, n: top ?? 20)
            return
        }
        if let n = top, n > 0 {
            var seen: [String: Int] = [:]
            rows = rows.filter { r in
                seen[r.event, default: 0] += 1
                return seen[r.event]! <= n
            }
        }
        if json {
            let arr = rows.map { r in
                JSON.object([("event", .string(r.event)), ("site", .string(r.site)), ("raw", .string(r.raw)), ("count", .uint(r.count))])
            }
            print(JSON.object([("events", .uint(a.events)), ("depth", .int(Int64(siteOptions.depth))), ("sites", .array(arr))]).render())
            return
        }
        var lastEvent = ""
        let w = min(60, max(20, rows.map(\.site.count).max() ?? 20))
        for r in rows {
            if r.event != lastEvent {
                let total = rows.filter { $0.event == r.event }.reduce(UInt64(0)) { $0 + $1.count }
                print("\n\(r.event)  (\(total) events)")
                print("  " + "count".leftPad(9) + "  " + "site".padding(toLength: w, withPad: " ", startingAt: 0) + "  raw")
                lastEvent = r.event
            }
            let raw = r.raw == r.site ? "" : r.raw
            print("  " + String(r.count).leftPad(9) + "  " + r.site.padding(toLength: w, withPad: " ", startingAt: 0) + "  " + raw)
        }
    }

    func printComparison(_ a: [SiteRow], _ b: [SiteRow], n: Int) {
        let events = Set(a.map(\.event)).intersection(Set(b.map(\.event))).sorted()
        let onlyA = Set(a.map(\.event)).subtracting(b.map(\.event)).sorted(), onlyB = Set(b.map(\.event)).subtracting(a.map(\.event)).sorted()
        var totA = 0, totB = 0, hitA = 0, hitB = 0
        var evA: UInt64 = 0, evB: UInt64 = 0, evHitA: UInt64 = 0, evHitB: UInt64 = 0
        var out: [JSON] = []
        if !json { print("event".padding(toLength: 34, withPad: " ", startingAt: 0) + "  A top  found in B   B top  found in A") }
        for e in events {
            let ca = topSites(a, event: e, n: n), cb = topSites(b, event: e, n: n)
            let ta = ca.map(\.0), tb = cb.map(\.0)
            let sa = Set(ta), sb = Set(tb)
            for (s, c) in ca { evA += c; if sb.contains(s) { evHitA += c } }
            for (s, c) in cb { evB += c; if sa.contains(s) { evHitB += c } }
            let ma = ta.filter { sb.contains($0) }.count, mb = tb.filter { sa.contains($0) }.count
            totA += ta.count; totB += tb.count; hitA += ma; hitB += mb
            if json {
                out.append(.object([("event", .string(e)), ("a_top", .int(Int64(ta.count))), ("b_top", .int(Int64(tb.count))),
                                    ("matched_a", .int(Int64(ma))), ("matched_b", .int(Int64(mb))),
                                    ("only_a", .array(ta.filter { !sb.contains($0) }.map { .string($0) })),
                                    ("only_b", .array(tb.filter { !sa.contains($0) }.map { .string($0) }))]))
            } else {
                let name: String = e.padding(toLength: 34, withPad: " ", startingAt: 0)
                let cols: String = String(ta.count).leftPad(5) + "  " + String(ma).leftPad(10)
                let cols2: String = String(tb.count).leftPad(5) + "  " + String(mb).leftPad(10)
                print(name + "  " + cols + "   " + cols2)
                for s in ta where !sb.contains(s) { print("      only A: \(s)") }
                for s in tb where !sa.contains(s) { print("      only B: \(s)") }
            }
        }
        let match = totA + totB > 0 ? Double(hitA + hitB) / Double(totA + totB) : 0
        let weighted = evA + evB > 0 ? Double(evHitA + evHitB) / Double(evA + evB) : 0
        if json {
            print(JSON.object([("top", .int(Int64(n))), ("events", .array(out)), ("match", .double(match)),
                               ("match_by_events", .double(weighted)),
                               ("match_by_events_a", .double(evA > 0 ? Double(evHitA) / Double(evA) : 0)),
                               ("match_by_events_b", .double(evB > 0 ? Double(evHitB) / Double(evB) : 0)),
                               ("only_in_a", .array(onlyA.map { .string($0) })), ("only_in_b", .array(onlyB.map { .string($0) }))]).render())
        } else {
            print(String(format: "\ntop-%d sites matched after normalisation: %d of %d (A), %d of %d (B): %.1f%% of sites", n, hitA, totA, hitB, totB, 100 * match))
            print(String(format: "events at a top-%d site whose site is also a top-%d site of the other trace: %.1f%% (A %.1f%%, B %.1f%%)", n, n,
                         100 * weighted, evA > 0 ? 100 * Double(evHitA) / Double(evA) : 0, evB > 0 ? 100 * Double(evHitB) / Double(evB) : 0))
            if !onlyA.isEmpty { print("event types only in A (not compared): " + onlyA.joined(separator: ", ")) }
            if !onlyB.isEmpty { print("event types only in B (not compared): " + onlyB.joined(separator: ", ")) }
        }
    }
}
