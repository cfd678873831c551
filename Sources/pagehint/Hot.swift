import ArgumentParser
import Foundation
import HintingModel
import TraceModel
import TraceReaders

/// What a hot list ranks by.
enum Metric: String, CaseIterable, ExpressibleByArgument {
    case phd, flagTests = "flag-tests", transitions, toVolatile = "to-volatile", toStable = "to-stable"
    case makeStable = "make-stable", makeVolatile = "make-volatile", lockBusy = "lock-busy", discards
    case discardFaults = "discard-faults", reloadIO = "reload-io", hostIOSaved = "host-io-saved", essa

    func value(_ c: HookCounts) -> UInt64 {
        switch self {
        case .phd: return c.phd
        case .flagTests: return c.flagTests
        case .transitions: return c.transitionTotal
        case .toVolatile: return c.toVolatile
        case .toStable: return c.toStable
        case .makeStable: return c.makeStable
        case .makeVolatile: return c.makeVolatile
        case .lockBusy: return c.lockBusy
        case .discards: return c.hostDiscards + c.syncDiscards
        case .discardFaults: return c.discardFaults
        case .reloadIO: return c.reloadIO
        case .hostIOSaved: return c.hostDrops
        case .essa: return c.essaTotal
        }
    }
}

enum Grouping: String, CaseIterable, ExpressibleByArgument { case hook, site, path }
enum OutputFormat: String, CaseIterable, ExpressibleByArgument { case table, csv, json, folded }

/// One hot-list row.
struct HotRow {
    var hook: String
    var site: String
    var event: String
    var count: UInt64 = 0
    var traced: UInt64 = 0
    var inferred: UInt64 = 0
    var drivingEvents: UInt64 = 0
    var clauses = HookCounts()
}

/// Aggregates a run's counters for one metric at one grouping.
func hotRows(_ r: RunData, metric: Metric, group: Grouping, depth: Int, rules: CallSiteRules) -> [HotRow] {
    let resolver = CallSiteResolver(rules: rules, depth: group == .path ? max(depth, 2) : 1)
    var rows: [String: HotRow] = [:]
    for (i, k) in r.keys.enumerated() {
        let c = r.rows[i]
        let v = metric.value(c)
        if v == 0 { continue }
        let event = r.eventName(k) ?? ""
        let site: String
        if k.eventType < UInt32(r.ctx.types.count) {
            site = resolver.sites[resolver.site(type: k.eventType, stack: k.stack, r.ctx).site]
        } else { site = "" }
        let key: String
        switch group {
        case .hook: key = k.hook.id
        case .site, .path: key = k.hook.id + "\u{1}" + site + "\u{1}" + event
        }
        var row = rows[key] ?? HotRow(hook: k.hook.id, site: group == .hook ? "*" : site, event: group == .hook ? "*" : event)
        row.count += v
        if k.inferred { row.inferred += v } else { row.traced += v }
        row.clauses.add(c)
        rows[key] = row
    }
    // Driving events: events of the row's type (per 1000 events of that type).
    var out = Array(rows.values)
    for i in out.indices { out[i].drivingEvents = out[i].event == "*" ? r.events : (r.eventsByName[out[i].event] ?? 0) }
    out.sort { ($0.count, $1.hook, $1.site, $1.event) > ($1.count, $0.hook, $0.site, $0.event) }
    return out
}

/// Folded stacks (`frame;frame;... weight`, outermost frame first) weighted by the metric, with the
/// hook as the leaf frame: FlameGraph's flamegraph.pl, inferno and speedscope read this.
func foldedLines(_ r: RunData, metric: Metric, rules: CallSiteRules, onlySite: String? = nil) -> [(String, UInt64)] {
    let resolver = CallSiteResolver(rules: rules, depth: 1)
    var acc: [String: UInt64] = [:]
    for (i, k) in r.keys.enumerated() {
        let v = metric.value(r.rows[i])
        if v == 0 { continue }
        if let s = onlySite, Int(k.eventType) < r.ctx.types.count,
           resolver.sites[resolver.site(type: k.eventType, stack: k.stack, r.ctx).site] != s { continue }
        var frames: [String] = []
        if k.stack != 0 {
            for sym in r.ctx.stacks.frames(of: k.stack).reversed() {
                let n = rules.normalise(r.ctx.symbols[sym])
                if rules.isTracing(n) { continue }
                frames.append(n)
            }
        } else {
            frames.append("[no stack]")
        }
        let event = r.eventName(k) ?? "?"
        frames.append("[\(event)]")
        frames.append("[\(k.hook.id)\(k.inferred ? " inferred" : "")]")
        let line = frames.map { $0.replacingOccurrences(of: ";", with: ":").replacingOccurrences(of: " ", with: "_") }.joined(separator: ";")
        acc[line, default: 0] += v
    }
    return acc.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
}

func csvField(_ s: String) -> String {
    s.contains(",") || s.contains("\"") || s.contains("\n") ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
}

func terminalWidth() -> Int {
    var w = winsize()
    if ioctl(1, UInt(TIOCGWINSZ), &w) == 0 && w.ws_col > 40 { return Int(w.ws_col) }
    if let c = ProcessInfo.processInfo.environment["COLUMNS"], let n = Int(c), n > 40 { return n }
    return 120
}

struct Hot: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hot",
        abstract: "Rank call sites by a hinting cost: where page_host_discards(), transitions, discards... happen.",
        discussion: """
        Replays TRACE (options as for `pagehint replay`), or reads run --run of a run database written by \
        `pagehint replay --db` (the model options are then the run's), and lists the top --top rows by --by, grouped by \
        hook id and call site (--group hook|site|path; path uses --depth frames). Each row: the count, its \
        share of the total, per 1000 events of the driving event type, per second of trace time, the \
        traced/inferred split, and the predicate clause that failed most often there.

        --format json prints {"metric", "total", "events", "seconds", "rows": [{"hook", "site", "event", \
        "count", "share", "per_1000_events", "per_second", "traced", "inferred", "top_clause"}]}. \
        --format folded prints folded stacks weighted by the metric (leaf frames: [event] and [hook]); \
        the weights sum to the metric's total. --site NAME prints the full stacks behind one site.
        """)

    @Argument(help: "Run database (pagehint replay --db), trace file or capture bundle.")
    var trace: String

    @Option(name: .customLong("run"), help: "Run of a run database to read (1-based).")
    var runNumber = 1

    @Option(name: .long, help: "Metric: \(Metric.allCases.map(\.rawValue).joined(separator: ", ")).")
    var by: Metric = .phd

    @Option(name: .long, help: "Rows to print (0 = all).")
    var top = 20

    @Option(name: .long, help: "Group by hook, site (hook + call site) or path (hook + call path of --depth frames).")
    var group: Grouping = .site

    @Option(name: .long, help: "Output: table, csv, json, folded.")
    var format: OutputFormat = .table

    @Option(name: .long, help: "Drill down: the full stacks behind this call site (folded, weighted by the metric).")
    var site: String?

    @OptionGroup var model: ModelOptions
    @OptionGroup var siteOptions: SiteOptions
    @OptionGroup var input: ReportInputOptions

    func run() throws {
        let rules = try siteOptions.makeRules()
        let r = try runData(trace, run: runNumber) {
            try runReplay(trace: trace, input: input.readOptions(), options: model.make(depth: siteOptions.depth), rules: rules)
        }
        if format == .folded || site != nil {
            let lines = foldedLines(r, metric: by, rules: rules, onlySite: site)
            if let s = site, lines.isEmpty {
                warn("pagehint: no call site \"\(s)\" with a non-zero \(by.rawValue) in \(trace) (see `pagehint hot --group site`)")
                throw ExitCode(64)
            }
            for (line, w) in lines { print("\(line) \(w)") }
            return
        }
        let rows = hotRows(r, metric: by, group: group, depth: siteOptions.depth, rules: rules)
        let total = rows.reduce(UInt64(0)) { $0 + $1.count }
        let seconds = r.seconds
        let shown = top > 0 ? Array(rows.prefix(top)) : rows
        func per1000(_ x: HotRow) -> Double { x.drivingEvents > 0 ? 1000 * Double(x.count) / Double(x.drivingEvents) : 0 }
        func perSec(_ x: HotRow) -> Double { seconds > 0 ? Double(x.count) / seconds : 0 }
        switch format {
        case .json:
            let arr: [JSON] = shown.map { x in
                .object([("hook", .string(x.hook)), ("site", .string(x.site)), ("event", .string(x.event)),
                         ("count", .uint(x.count)), ("share", .double(total > 0 ? Double(x.count) / Double(total) : 0)),
                         ("per_1000_events", .double(per1000(x))), ("per_second", .double(perSec(x))),
                         ("traced", .uint(x.traced)), ("inferred", .uint(x.inferred)),
                         ("top_clause", x.clauses.topClause.map { .string($0.name) } ?? .null)])
            }
            print(JSON.object([("metric", .string(by.rawValue)), ("series", .string(r.series)),
                               ("total", .uint(total)), ("events", .uint(r.events)), ("seconds", .double(seconds)),
                               ("rows", .array(arr))]).render())
        case .csv:
            print("hook,site,event,count,share,per_1000_events,per_second,traced,inferred,top_clause")
            for x in shown {
                let share = total > 0 ? Double(x.count) / Double(total) : 0
                print([x.hook, csvField(x.site), x.event, String(x.count), String(format: "%.6f", share),
                       String(format: "%.3f", per1000(x)), String(format: "%.3f", perSec(x)), String(x.traced),
                       String(x.inferred), x.clauses.topClause?.name ?? ""].joined(separator: ","))
            }
        case .table, .folded:
            let width = terminalWidth()
            let siteW = max(16, min(60, width - 100))
            print("\(by.rawValue) by \(group.rawValue), \(r.seriesLabel): total \(total) over \(r.events) events, \(String(format: "%.3f", seconds)) s")
            print("hook  " + "site".padding(toLength: siteW, withPad: " ", startingAt: 0) + "  " + "event".padding(toLength: 30, withPad: " ", startingAt: 0)
                  + "count".leftPad(10) + "  share" + "  /1000ev".leftPad(9) + "      /s" + "  inferred  clause")
            for x in shown {
                let share = total > 0 ? 100 * Double(x.count) / Double(total) : 0
                let s = x.site.count > siteW ? String(x.site.prefix(siteW - 1)) + "…" : x.site
                print(x.hook.padding(toLength: 4, withPad: " ", startingAt: 0) + "  " + s.padding(toLength: siteW, withPad: " ", startingAt: 0) + "  "
                      + String(x.event.prefix(30)).padding(toLength: 30, withPad: " ", startingAt: 0) + String(x.count).leftPad(10)
                      + String(format: " %5.1f%%", share) + String(format: "%9.1f", per1000(x)) + String(format: "%8.0f", perSec(x))
                      + String(format: "  %7.1f%%", x.count > 0 ? 100 * Double(x.inferred) / Double(x.count) : 0)
                      + "  " + (x.clauses.topClause?.name ?? ""))
            }
        }
    }
}
