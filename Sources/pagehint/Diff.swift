import ArgumentParser
import Foundation
import HintingModel
import TraceModel
import TraceReaders

/// Per (hook, normalised site): the metric and the raw site names seen.
func siteTable(_ r: RunResult, metric: Metric, rules: CallSiteRules, depth: Int) -> [String: (hook: String, site: String, value: UInt64, raws: Set<String>, event: String)] {
    let resolver = CallSiteResolver(rules: rules, depth: depth)
    var t: [String: (hook: String, site: String, value: UInt64, raws: Set<String>, event: String)] = [:]
    for (i, k) in r.model.keys.enumerated() {
        let v = metric.value(r.model.rows[i])
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
        abstract: "Compare the hinting costs of two traces (usually two kernels, same workload) per call site.",
        discussion: """
        Replays A and B with the same options and matches their (hook, call site) rows after name \
        normalisation. Rows are common, only-a, only-b, or renamed (matched only through normalisation: \
        no raw name in common). Each row: A, B, delta, ratio, and both per 1000 replayed events so traces \
        of different length compare; sorted by the absolute normalised change.

        --format json: {"a": {...}, "b": {...}, "metric", "rows": [{"site", "hook", "class", "a", "b", \
        "delta", "ratio", "a_per_1000", "b_per_1000", "delta_per_1000"}]}. --format folded prints the \
        differential folded format (`stack weight_a weight_b`, as difffolded.pl writes it).
        """)

    @Argument(help: "Trace A (capture bundle or trace file).")
    var a: String
    @Argument(help: "Trace B.")
    var b: String

    @Option(name: .long, help: "Metric: \(Metric.allCases.map(\.rawValue).joined(separator: ", ")).")
    var by: Metric = .phd

    @Option(name: .long, help: "Rows to print (0 = all).")
    var top = 30

    @Option(name: .long, help: "Output: table, csv, json, folded.")
    var format: OutputFormat = .table

    @OptionGroup var model: ModelOptions
    @OptionGroup var siteOptions: SiteOptions
    @OptionGroup var input: ReportInputOptions

    func run() throws {
        let rules = try siteOptions.makeRules()
        let opts = model.make(depth: siteOptions.depth)
        let ra = try runReplay(trace: a, input: input.readOptions(), options: opts, rules: rules)
        let rb = try runReplay(trace: b, input: input.readOptions(), options: opts, rules: rules)
        if format == .folded {
            var m: [String: (UInt64, UInt64)] = [:]
            for (l, w) in foldedLines(ra, metric: by, rules: rules) { m[l, default: (0, 0)].0 += w }
            for (l, w) in foldedLines(rb, metric: by, rules: rules) { m[l, default: (0, 0)].1 += w }
            for (l, w) in m.sorted(by: { $0.key < $1.key }) { print("\(l) \(w.0) \(w.1)") }
            return
        }
        let ta = siteTable(ra, metric: by, rules: rules, depth: siteOptions.depth)
        let tb = siteTable(rb, metric: by, rules: rules, depth: siteOptions.depth)
        let na = Double(max(ra.replay.events, 1)), nb = Double(max(rb.replay.events, 1))
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
        func side(_ r: RunResult) -> JSON {
            let t = r.totals
            return .object([("trace", .string(r.trace)), ("kernel", r.kernel.map { .string($0) } ?? .null),
                            ("events", .uint(r.replay.events)), ("lost", .uint(r.ctx.lost.reduce(0) { $0 + $1.count })),
                            ("total", .uint(by.value(t))),
                            ("options", .object(r.options.recorded.map { ($0.0, .string($0.1)) }))])
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
            print(JSON.object([("metric", .string(by.rawValue)), ("a", side(ra)), ("b", side(rb)), ("rows", .array(arr))]).render())
        case .csv:
            print("hook,site,class,a,b,delta,ratio,a_per_1000,b_per_1000,delta_per_1000")
            for r in shown {
                print([r.hook, csvField(r.site), r.cls, String(r.a), String(r.b), String(Int64(r.b) - Int64(r.a)),
                       r.a > 0 ? String(format: "%.4f", Double(r.b) / Double(r.a)) : "",
                       String(format: "%.3f", 1000 * Double(r.a) / na), String(format: "%.3f", 1000 * Double(r.b) / nb),
                       String(format: "%.3f", dn(r))].joined(separator: ","))
            }
        case .table, .folded:
            print("A  \(ra.trace)  kernel \(ra.kernel ?? "?")  \(ra.replay.events) events  \(by.rawValue) \(by.value(ra.totals))")
            print("B  \(rb.trace)  kernel \(rb.kernel ?? "?")  \(rb.replay.events) events  \(by.value(rb.totals))")
            print("series \(opts.series.label), unlock \(opts.unlock.rawValue), writeback \(opts.writeback.rawValue), host \(opts.hostPolicy.rawValue)")
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

struct Compare: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Replay one trace under several series and design alternatives and compare every counter.",
        discussion: """
        --policies takes series (h05b, g06, g07, g09) and the design alternatives implemented so far: \
        a1 (make_stable in every get_page, make_volatile in every put_page; reference pairs per the R0 \
        table of spec §7.2) and a10 (G09 without the minor-fault optimization). Each column is one replay of the same events with \
        the same host and inference options; the ratio columns divide by G09. --json prints \
        {"policies": [{"policy", "counters": {...}}]}.
        """)

    @Argument(help: "Trace file or capture bundle.")
    var trace: String

    @Option(name: .long, help: "Comma-separated: h05b, g06, g07, g09, a1, a10.")
    var policies = "g06,g07,g09,a1,a10"

    @OptionGroup var model: ModelOptions
    @OptionGroup var siteOptions: SiteOptions
    @OptionGroup var input: ReportInputOptions

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    func validate() throws {
        for p in policies.split(separator: ",") where !["h05b", "g06", "g07", "g09", "a1", "a10"].contains(String(p)) {
            throw ValidationError("unknown policy \(p): expected h05b, g06, g07, g09, a1 or a10")
        }
    }

    func run() throws {
        let rules = try siteOptions.makeRules()
        var names = policies.split(separator: ",").map(String.init)
        if !names.contains("g09") { names.append("g09") }
        var results: [(String, RunResult)] = []
        for n in names {
            var o = model.make(depth: siteOptions.depth)
            if let s = Series(rawValue: n) { o.series = s } else if n == "a1" { o.series = .g09; o.a1 = true } else { o.series = .g09; o.minorFaultOptimization = false }
            results.append((n, try runReplay(trace: trace, input: input.readOptions(), options: o, rules: rules)))
        }
        let metrics: [(String, (HookCounts) -> UInt64)] = [
            ("page_host_discards()", { $0.phd }), ("PageDiscarded tests", { $0.flagTests }), ("ESSA ops", { $0.essaTotal }),
            ("state changes", { $0.transitionTotal }), ("to volatile", { $0.toVolatile }), ("to stable", { $0.toStable }),
            ("make_stable", { $0.makeStable }), ("make_volatile", { $0.makeVolatile }), ("lock try+spin", { $0.lockTry + $0.lockSpin }),
            ("host discards", { $0.hostDiscards }), ("sync discards", { $0.syncDiscards }), ("discard faults", { $0.discardFaults }),
            ("reload I/O", { $0.reloadIO }), ("host writes", { $0.hostWrites }), ("host reads", { $0.hostReads }),
        ]
        let base = results.first { $0.0 == "g09" }!.1.totals
        if json {
            let arr: [JSON] = results.map { (n, r) in
                let t = r.totals
                return .object([("policy", .string(n)), ("counters", .object(metrics.map { ($0.0, .uint($0.1(t))) })),
                                ("host_io_saved", r.baselineHostIO.map { .int(Int64($0) - Int64(t.hostIO)) } ?? .null)])
            }
            print(JSON.object([("trace", .string(trace)), ("policies", .array(arr))]).render())
            return
        }
        print("counter".padding(toLength: 22, withPad: " ", startingAt: 0) + results.map { $0.0.uppercased().leftPad(12) + "  ×G09".leftPad(8) }.joined())
        for (name, f) in metrics {
            var line = name.padding(toLength: 22, withPad: " ", startingAt: 0)
            for (_, r) in results {
                let v = f(r.totals), b = f(base)
                line += String(v).leftPad(12) + (b > 0 ? String(format: "%8.2f", Double(v) / Double(b)) : "       -")
            }
            print(line)
        }
    }
}
