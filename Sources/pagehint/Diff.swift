import ArgumentParser
import Foundation
import HintingModel
import TraceModel
import TraceReaders

/// Per (hook, normalised site): the metric and the raw site names seen.
func siteTable(_ r: RunData, metric: Metric, rules: CallSiteRules, depth: Int) -> [String: (hook: String, site: String, value: UInt64, raws: Set<String>, event: String)] {
    let resolver = CallSiteResolver(rules: rules, depth: depth)
    var t: [String: (hook: String, site: String, value: UInt64, raws: Set<String>, event: String)] = [:]
    for (i, k) in r.keys.enumerated() {
        let v = metric.value(r.rows[i])
        if v == 0 || Int(k.eventType) >= r.ctx.types.count { continue }
        let s = resolver.site(type: k.eventType, stack: k.stack, r.ctx)
        let site = resolver.sites[s.site], raw = resolver.rawSites[s.raw]
        let key = k.hook.id + "\u{1}" + site
        var e = t[key] ?? (k.hook.id, site, 0, [], r.ctx.types[Int(k.eventType)].name)
        e.value += v
        e.raws.insert(raw)
        t[key] = e
    }
    return t
}

struct Diff: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff",
        abstract: "Compare the hinting costs of two traces (usually two kernels, same workload) per call site.",
        discussion: """
        Replays A and B with the same options (or reads run 1 of a run database written by `pagehint \
        replay --db`, with the options recorded there) and matches their (hook, call site) rows after name \
        normalisation. Rows are common, only-a, only-b, or renamed (matched only through normalisation: \
        no raw name in common). Each row: A, B, delta, ratio, and both per 1000 replayed events so traces \
        of different length compare; sorted by the absolute normalised change. The header gives the share \
        of each side's top --match-top rows (by the metric) found on the other side, among the rows driven by \
        an event type both traces carry (older kernels lack some tracepoints, e.g. mm_filemap_get_pages).

        --format json: {"a": {...}, "b": {...}, "metric", "match": {"top", "a_top", "a_matched", "b_top", \
        "b_matched", "fraction"}, "rows": [{"site", "hook", "class", "a", "b", \
        "delta", "ratio", "a_per_1000", "b_per_1000", "delta_per_1000"}]}. --format folded prints the \
        differential folded format (`stack weight_a weight_b`, as difffolded.pl writes it).
        """)

    @Argument(help: "A: run database, capture bundle or trace file.")
    var a: String
    @Argument(help: "B: run database, capture bundle or trace file.")
    var b: String

    @Option(name: .long, help: "Metric: \(Metric.allCases.map(\.rawValue).joined(separator: ", ")).")
    var by: Metric = .phd

    @Option(name: .long, help: "Rows to print (0 = all).")
    var top = 30

    @Option(name: .long, help: "Output: table, csv, json, folded.")
    var format: OutputFormat = .table

    @Option(name: .long, help: "Rows of each side's top list that the match fraction looks at.")
    var matchTop = 20

    @OptionGroup var model: ModelOptions
    @OptionGroup var siteOptions: SiteOptions
    @OptionGroup var input: ReportInputOptions

    func run() throws {
        let rules = try siteOptions.makeRules()
        let opts = model.make(depth: siteOptions.depth)
        let ra = try runData(a) { try runReplay(trace: a, input: input.readOptions(), options: opts, rules: rules) }
        let rb = try runData(b) { try runReplay(trace: b, input: input.readOptions(), options: opts, rules: rules) }
        if format == .folded {
            var m: [String: (UInt64, UInt64)] = [:]
            for (l, w) in foldedLines(ra, metric: by, rules: rules) { m[l, default: (0, 0)].0 += w }
            for (l, w) in foldedLines(rb, metric: by, rules: rules) { m[l, default: (0, 0)].1 += w }
            for (l, w) in m.sorted(by: { $0.key < $1.key }) { print("\(l) \(w.0) \(w.1)") }
            return
        }
        let ta = siteTable(ra, metric: by, rules: rules, depth: siteOptions.depth)
        let tb = siteTable(rb, metric: by, rules: rules, depth: siteOptions.depth)
        let na = Double(max(ra.events, 1)), nb = Double(max(rb.events, 1))
        struct Row { var hook: String; var site: String; var cls: String; var a: UInt64; var b: UInt64 }
        var rows: [Row] = []
        for key in Set(ta.keys).union(tb.keys) {
            let x = ta[key], y = tb[key]
            let cls: String
            if x == nil { cls = "only-b" } else if y == nil { cls = "only-a" } else if x!.raws.isDisjoint(with: y!.raws) { cls = "renamed" } else { cls = "common" }
            rows.append(Row(hook: (x ?? y)!.hook, site: (x ?? y)!.site, cls: cls, a: x?.value ?? 0, b: y?.value ?? 0))
        }
        func dn(_ r: Row) -> Double { 1000 * Double(r.b) / nb - 1000 * Double(r.a) / na }
        rows.sort { abs(dn($0)) != abs(dn($1)) ? abs(dn($0)) > abs(dn($1)) : ($0.hook, $0.site) < ($1.hook, $1.site) }
        let shown = top > 0 ? Array(rows.prefix(top)) : rows
        // How many of each side's top --match-top (hook, site) rows by the metric the other side has too.
        // Only rows driven by an event both traces carry can match (6.1 has no mm_filemap_get_pages, ...).
        func bothTrace(_ e: String) -> Bool { (ra.eventsByName[e] ?? 0) > 0 && (rb.eventsByName[e] ?? 0) > 0 }
        func topKeys(_ t: [String: (hook: String, site: String, value: UInt64, raws: Set<String>, event: String)]) -> [String] {
            t.filter { bothTrace($0.value.event) }
                .sorted { $0.value.value != $1.value.value ? $0.value.value > $1.value.value : $0.key < $1.key }.prefix(matchTop).map(\.key)
        }
        let topA = topKeys(ta), topB = topKeys(tb)
        let matchedA = topA.filter { tb[$0] != nil }.count, matchedB = topB.filter { ta[$0] != nil }.count
        let matchFraction = topA.count + topB.count > 0 ? Double(matchedA + matchedB) / Double(topA.count + topB.count) : 1
        func side(_ r: RunData) -> JSON {
            let t = r.totals
            return .object([("trace", .string(r.trace)), ("kernel", r.kernel.map { .string($0) } ?? .null),
                            ("events", .uint(r.events)), ("lost", .uint(r.lost)),
                            ("total", .uint(by.value(t))),
                            ("options", .object(r.options.map { ($0.0, .string($0.1)) }))])
        }
        switch format {
        case .json:
            let arr: [JSON] = shown.map { r in
                .object([("site", .string(r.site)), ("hook", .string(r.hook)), ("class", .string(r.cls)),
                         ("a", .uint(r.a)), ("b", .uint(r.b)), ("delta", .int(Int64(r.b) - Int64(r.a))),
                         ("ratio", r.a > 0 ? .double(Double(r.b) / Double(r.a)) : .null),
                         ("a_per_1000", .double(1000 * Double(r.a) / na)), ("b_per_1000", .double(1000 * Double(r.b) / nb)),
                         ("delta_per_1000", .double(dn(r)))])
            }
            let match = JSON.object([("top", .int(Int64(matchTop))), ("a_top", .int(Int64(topA.count))), ("a_matched", .int(Int64(matchedA))),
                                     ("b_top", .int(Int64(topB.count))), ("b_matched", .int(Int64(matchedB))), ("fraction", .double(matchFraction))])
            print(JSON.object([("metric", .string(by.rawValue)), ("a", side(ra)), ("b", side(rb)), ("match", match), ("rows", .array(arr))]).render())
        case .csv:
            print("hook,site,class,a,b,delta,ratio,a_per_1000,b_per_1000,delta_per_1000")
            for r in shown {
                print([r.hook, csvField(r.site), r.cls, String(r.a), String(r.b), String(Int64(r.b) - Int64(r.a)),
                       r.a > 0 ? String(format: "%.4f", Double(r.b) / Double(r.a)) : "",
                       String(format: "%.3f", 1000 * Double(r.a) / na), String(format: "%.3f", 1000 * Double(r.b) / nb),
                       String(format: "%.3f", dn(r))].joined(separator: ","))
            }
        case .table, .folded:
            func options(_ r: RunData) -> String {
                ["series", "unlock", "writeback", "touches", "host_budget", "host_policy"].map { "\($0) \(r.option($0) ?? "?")" }.joined(separator: ", ")
            }
            print("A  \(ra.trace)  kernel \(ra.kernel ?? "?")  \(ra.events) events, \(ra.lost) lost  \(by.rawValue) \(by.value(ra.totals))")
            print("   \(options(ra))")
            print("B  \(rb.trace)  kernel \(rb.kernel ?? "?")  \(rb.events) events, \(rb.lost) lost  \(by.rawValue) \(by.value(rb.totals))")
            print("   \(options(rb))")
            print("top \(matchTop) (hook, site) rows matched on the other side: A \(matchedA)/\(topA.count), B \(matchedB)/\(topB.count), "
                  + String(format: "%.1f%%", 100 * matchFraction))
            print("")
            print("hook  " + "site".padding(toLength: 40, withPad: " ", startingAt: 0) + "  class   " + "A".leftPad(9) + "B".leftPad(9)
                  + "  A/1000" + "  B/1000" + "   Δ/1000")
            for r in shown {
                print(r.hook.padding(toLength: 4, withPad: " ", startingAt: 0) + "  " + String(r.site.prefix(40)).padding(toLength: 40, withPad: " ", startingAt: 0)
                      + "  " + r.cls.padding(toLength: 7, withPad: " ", startingAt: 0) + String(r.a).leftPad(9) + String(r.b).leftPad(9)
                      + String(format: "%8.1f%8.1f%9.1f", 1000 * Double(r.a) / na, 1000 * Double(r.b) / nb, dn(r)))
            }
        }
    }
}
