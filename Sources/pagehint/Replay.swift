import ArgumentParser
import Foundation
import HintingModel
import TraceModel
import TraceReaders

extension Series: ExpressibleByArgument {}
extension ReplayOptions.Unlock: ExpressibleByArgument {}
extension ReplayOptions.Writeback: ExpressibleByArgument {}
extension ReplayOptions.Touches: ExpressibleByArgument {}
extension ReplayOptions.HostPolicy: ExpressibleByArgument {}

/// Parses `60%`, `512MiB`, `2GiB`, `4096` (bytes), `unlimited`.
func parseBudget(_ s: String) -> ReplayOptions.Budget? {
    let t = s.trimmingCharacters(in: .whitespaces).lowercased()
    if t == "unlimited" || t == "none" { return .unlimited }
    if t.hasSuffix("%"), let p = Double(t.dropLast()), p >= 0 { return .percent(p) }
    let units: [(String, UInt64)] = [("gib", 1 << 30), ("mib", 1 << 20), ("kib", 1 << 10), ("g", 1 << 30), ("m", 1 << 20), ("k", 1 << 10), ("b", 1)]
    for (u, m) in units where t.hasSuffix(u) {
        if let n = Double(t.dropLast(u.count)), n >= 0 { return .bytes(UInt64(n * Double(m))) }
    }
    if let n = UInt64(t) { return .bytes(n) }
    return nil
}

/// The result of one replay, in the shape every output uses.
struct RunResult {
    var trace: String
    var format: String
    var kernel: String?
    var options: ReplayOptions
    var replay: Replay
    var ctx: TraceContext
    var touched: Int
    var seconds: Double
    /// Host I/O of the same replay without hinting (nil when the host budget is unlimited).
    var baselineHostIO: UInt64?

    var model: HintingModel { replay.model }
    var totals: HookCounts { model.totals }

    func transitionsJSON(_ t: HookCounts) -> JSON {
        var pairs: [(String, JSON)] = []
        for a in GuestState.allCases { for b in GuestState.allCases where a != b {
            let n = t.transition(a, b)
            if n > 0 { pairs.append(("\(a.letter)>\(b.letter)", .uint(n))) }
        } }
        return .object(pairs)
    }

    func summaryJSON() -> JSON {
        let t = totals
        var essa: [(String, JSON)] = []
        for c in Essa.allCases { essa.append((c.name, .uint(t.essa[c.rawValue]))) }
        let lost = ctx.lost.reduce(UInt64(0)) { $0 + $1.count }
        var notes: [(String, JSON)] = []
        for (k, v) in model.notes.sorted(by: { $0.key < $1.key }) { notes.append((k, .uint(v))) }
        return .object([
            ("trace", .string(trace)), ("format", .string(format)), ("kernel", kernel.map { .string($0) } ?? .null),
            ("series", .string(options.series.rawValue)), ("events", .uint(replay.events)), ("lost", .uint(lost)),
            ("phd", .uint(t.phd)), ("flag_tests", .uint(t.flagTests)),
            ("essa", .object([("total", .uint(t.essaTotal))] + essa)),
            ("transitions", transitionsJSON(t)), ("to_volatile", .uint(t.toVolatile)), ("to_stable", .uint(t.toStable)),
            ("make_stable", .uint(t.makeStable)), ("make_stable_failed", .uint(t.makeStableFailed)),
            ("make_volatile", .uint(t.makeVolatile)), ("check_writable", .uint(t.checkWritable)),
            ("reset_writable", .uint(t.resetWritable)),
            ("lock", .object([("try", .uint(t.lockTry)), ("busy", .uint(t.lockBusy)), ("spin", .uint(t.lockSpin))])),
            ("host_discards", .uint(t.hostDiscards)), ("sync_discards", .uint(t.syncDiscards)),
            ("discard_faults", .uint(t.discardFaults)), ("reload_io", .uint(t.reloadIO)),
            ("host_io", .object([("writes", .uint(t.hostWrites)), ("reads", .uint(t.hostReads))])),
            ("host_io_saved", baselineHostIO.map { .int(Int64($0) - Int64(t.hostIO)) } ?? .int(0)),
            ("host_io_baseline", baselineHostIO.map { .uint($0) } ?? .null),
            ("host_drops", .uint(t.hostDrops)), ("inferred_ops", .uint(replay.inferredOps)),
            ("double_removal_suppressed", .uint(t.doubleRemovalSuppressed)),
            ("lru_readd_suppressed", .uint(t.lruReaddSuppressed)), ("pte_skipped", .uint(t.pteSkipped)),
            ("parked", .uint(t.parked)),
            ("frames", .int(Int64(model.frames.count))), ("touched_frames", .int(Int64(touched))),
            ("frame_bytes", .int(Int64(MemoryLayout<Frame>.stride))),
            ("host_budget_frames", model.budgetFrames == Int.max ? .null : .int(Int64(model.budgetFrames))),
            ("host_resolved", .object([("P>S", .uint(model.hostResolved[0])), ("P>V", .uint(model.hostResolved[1]))])),
            ("violations", .int(Int64(model.violationCount))),
            ("alternatives", alternativesJSON(t)),
            ("options", .object(options.recorded.map { ($0.0, .string($0.1)) })),
            ("notes", .object(notes)),
        ])
    }

    /// Counters of the design alternatives this run replayed (an empty object when none).
    func alternativesJSON(_ t: HookCounts) -> JSON {
        var out: [(String, JSON)] = []
        func executions(_ h: Hook) -> UInt64 { zip(model.keys, model.rows).reduce(0) { $0 + ($1.0.hook == h ? $1.1.executions : 0) } }
        if options.a1 { out.append(("a1", .object([("get_page", .uint(executions(.getPage))), ("put_page", .uint(executions(.putPage)))]))) }
        if options.a2a { out.append(("a2a", .object([("still_in_mapping", .uint(t.stillInMappingTests)), ("hits", .uint(t.stillInMappingHits))]))) }
        if options.a3a { out.append(("a3a", .object([("lru_to_page_checks", .uint(t.lruToPageTests)), ("hits", .uint(t.lruToPageHits))]))) }
        if options.a3c {
            var iso = HookCounts(), put = HookCounts()
            for (k, c) in zip(model.keys, model.rows) { if k.hook == .isolateStable { iso.add(c) } else if k.hook == .putbackVolatile { put.add(c) } }
            out.append(("a3c", .object([("isolate_make_stable", .uint(iso.makeStable)), ("isolate_discards", .uint(iso.syncDiscards)),
                                        ("putback_make_volatile", .uint(put.makeVolatile))])))
        }
        if options.discardTracking == .seqlock {
            var a4 = a4JSON()
            if case .object(var f) = a4 {
                f.insert(contentsOf: [("seqlock_reads", .uint(t.seqlockReads)), ("seqlock_retries", .uint(t.seqlockRetries)),
                                      ("seqlock_writes", .uint(t.seqlockWrites)), ("side_list_visits", .uint(t.sideListVisits))], at: 1)
                a4 = .object(f)
            }
            out.append(("a4", a4))
        }
        if options.discardTracking == .discardLock {
            out.append(("a5", .object([("discard_lock_taken", .uint(t.discardLockTaken)), ("contended", .uint(t.discardLockContended)),
                                       ("correctness_violations", .uint(t.correctnessViolations))])))
        }
        if !options.minorFaultOptimization { out.append(("a10", .object([("minor_fault_optimization", .bool(false))]))) }
        return .object(out)
    }

    func printTable() {
        let t = totals
        print("trace       \(trace)  (\(format), kernel \(kernel ?? "unknown"))")
        print("series      \(options.series.label)   unlock \(options.unlock.rawValue)  writeback \(options.writeback.rawValue)  touches \(options.touches.rawValue)  host \(options.hostPolicy.rawValue)")
        let budget = model.budgetFrames == Int.max ? "unlimited" : "\(model.budgetFrames) frames"
        print("events      \(replay.events) replayed, \(model.frames.count) frames tracked, \(touched) touched, host budget \(budget)")
        print("")
        func row(_ name: String, _ v: UInt64, _ note: String = "") {
            print(name.padding(toLength: 34, withPad: " ", startingAt: 0) + String(v).leftPad(12) + (note.isEmpty ? "" : "  " + note))
        }
        row("page_host_discards() evaluations", t.phd)
        row("PageDiscarded flag tests", t.flagTests)
        row("ESSA operations", t.essaTotal, Essa.allCases.filter { t.essa[$0.rawValue] > 0 }.map { "\($0.name) \(t.essa[$0.rawValue])" }.joined(separator: ", "))
        row("make_stable", t.makeStable, "failed \(t.makeStableFailed)")
        row("make_volatile attempts", t.makeVolatile, t.topClause.map { "most common failed clause: \($0.name)" } ?? "")
        row("state-change lock try/spin", t.lockTry + t.lockSpin)
        row("transitions", t.transitionTotal, GuestState.allCases.flatMap { a in GuestState.allCases.compactMap { b in
            a != b && t.transition(a, b) > 0 ? "\(a.letter)>\(b.letter) \(t.transition(a, b))" : nil } }.joined(separator: ", "))
        row("host discards", t.hostDiscards)
        row("discards found at make_stable", t.syncDiscards)
        row("discard faults", t.discardFaults)
        row("reload read I/O", t.reloadIO)
        row("host I/O writes / reads", t.hostWrites + t.hostReads, "writes \(t.hostWrites), reads \(t.hostReads)")
        if let b = baselineHostIO {
            row("host I/O saved", UInt64(max(0, Int64(b) - Int64(t.hostIO))), "against \(b) without hinting (same trace, budget and host policy)")
        }
        row("host drops without I/O", t.hostDrops)
        row("inferred hook executions", replay.inferredOps)
        if options.a2a { row("A2a page_still_in_mapping", t.stillInMappingTests, "found PG_discarded \(t.stillInMappingHits) times") }
        if options.a3a { row("A3a lru_to_page checks", t.lruToPageTests, "found PG_discarded \(t.lruToPageHits) times") }
        if options.discardTracking == .seqlock {
            let a = model.alternative
            row("A4 seqlock reads", t.seqlockReads, "retries \(t.seqlockRetries), side-list nodes visited \(t.sideListVisits), write sections \(t.seqlockWrites)")
            row("A4 side-list memory (bytes)", a.nodeBytes, "16 B × \(a.peakVolatile) pages that may be discarded, vs \(flagBytes) B of PG_discarded bits")
        }
        if options.discardTracking == .discardLock {
            row("A5 discard_lock acquisitions", t.discardLockTaken, "contended \(t.discardLockContended)")
            row("A5 correctness violations", t.correctnessViolations)
        }
        if model.violationCount > 0 { row("invariant violations", UInt64(model.violationCount)) }
        print(String(format: "\n%.3f s, %.2f M events/s", seconds, Double(replay.events) / max(seconds, 1e-9) / 1e6))
    }
}

/// Reads a trace and replays it.
func runReplay(trace: String, input: ReadOptions, options: ReplayOptions, rules: CallSiteRules) throws -> RunResult {
    var touched = 0
    if case .percent = options.hostBudget {
        var pre = TouchedFrames()
        var o = input
        o.progress = nil
        try reportingErrors { try readAnyTrace(path: trace, options: o, into: &pre, context: TraceContext()) }
        touched = pre.pfns.count
    }
    let replay = Replay(options: options, rules: rules)
    replay.setBudget(touchedFrames: touched)
    let ctx = TraceContext()
    let start = monotonicSeconds()
    var sink = ReplaySink(replay: replay)
    try reportingErrors { try readAnyTrace(path: trace, options: input, into: &sink, context: ctx) }
    replay.finish()
    let seconds = monotonicSeconds() - start
    var baseline: UInt64? = nil
    if options.hostBudget != .unlimited {
        // The same replay without hinting: the host I/O that hinting is measured against.
        var b = options
        b.baseline = true
        b.checkInvariants = false
        let base = Replay(options: b, rules: rules)
        base.setBudget(touchedFrames: touched)
        var bs = ReplaySink(replay: base)
        var o = input
        o.progress = nil
        try reportingErrors { try readAnyTrace(path: trace, options: o, into: &bs, context: TraceContext()) }
        baseline = base.model.totals.hostIO
    }
    Progress.shared.finish()
    return RunResult(trace: trace, format: ctx.format, kernel: ctx.kernelRelease, options: options, replay: replay,
                     ctx: ctx, touched: touched, seconds: seconds, baselineHostIO: baseline)
}

/// Adapts the replay (a class) to the readers' generic sink.
struct ReplaySink: EventSink {
    let replay: Replay
    mutating func consume(_ e: borrowing Event, context: TraceContext) { replay.consume(e, context: context) }
}

/// Turns on one design alternative of spec §7.2 (`a1`, `a2a`, `a3a`, `a3c`, `a4[:BLOCK]`, `a5`, `a10`).
/// Returns false for an unknown name.
func applyAlternative(_ name: String, to o: inout ReplayOptions) -> Bool {
    switch name {
    case "a1": o.a1 = true
    case "a2a": o.a2a = true
    case "a3a": o.a3a = true
    case "a3c": o.a3c = true
    case "a5": o.discardTracking = .discardLock
    case "a10": o.minorFaultOptimization = false
    case "a4": o.discardTracking = .seqlock
    default:
        guard name.hasPrefix("a4:"), let b = ReplayOptions.SeqlockBlock(String(name.dropFirst(3))) else { return false }
        o.discardTracking = .seqlock
        o.seqlockBlock = b
    }
    return true
}

/// Options that configure the model, shared by replay and the report commands.
struct ModelOptions: ParsableArguments {
    @Option(name: .long, help: "Patch series: h05b, g06, g07, g09.")
    var series: Series = .g09

    @Option(name: .long, help: "Host memory budget: percent of the frames the guest touched (60%), or a size (512MiB), or unlimited.")
    var hostBudget = "60%"

    @Option(name: .long, help: "Host victim choice: lru, random, oracle (volatile frames first: the upper bound).")
    var hostPolicy: ReplayOptions.HostPolicy = .lru

    @Option(name: .long, help: "Seed of the random host policy.")
    var seed: UInt64 = 1

    @Option(name: .customLong("policy-unlock"), help: "When the untraced unlock after read I/O (D1) happens: U0 at insertion, U1 at the next event naming the page.")
    var unlock: ReplayOptions.Unlock = .U1

    @Option(name: .customLong("policy-writeback"), help: "When writeback ends (D3): W0 at once, W1 at folio_wait_writeback or the next event naming the page.")
    var writeback: ReplayOptions.Writeback = .W0

    @Option(name: .customLong("policy-touch"), help: "Touches of mapped pages: T0 only traced events, T1 every mapped page is touched again.")
    var touch: ReplayOptions.Touches = .T0

    @Flag(name: .long, help: "Replay without the minor-fault optimization (design alternative A10).")
    var noMinorFaultOptimization = false

    @Option(name: .long, help: "Design alternatives of spec §7.2 to replay, comma-separated: a1, a2a, a3a, a3c, a4[:BLOCK], a5, a10 (BLOCK: node, zone, section, hash:K, mapping; default section).")
    var alternative: String?

    @Option(name: .long, help: "A4/A5: length of a seqlock write section or a discard_lock hold, in ns of trace time.")
    var criticalSectionNs: UInt64 = 1000

    @Option(name: .long, help: "Timeline sample interval in milliseconds of trace time.")
    var timelineMs: Double = 10

    @Flag(name: .long, help: "Check the model invariants after every event (slower).")
    var checkInvariants = false

    @Flag(name: .long, help: ArgumentHelp("Run every page step of a large folio on its own (the results are the same; slower).",
                                          visibility: .hidden))
    var noFolioBatching = false

    func validate() throws {
        if parseBudget(hostBudget) == nil { throw ValidationError("--host-budget: expected a percentage (60%), a size (512MiB) or unlimited") }
        if !(timelineMs > 0) { throw ValidationError("--timeline-ms must be positive") }
        var o = ReplayOptions()
        for a in (alternative ?? "").split(separator: ",") where !applyAlternative(String(a), to: &o) {
            throw ValidationError("--alternative: unknown alternative \(a): expected a1, a2a, a3a, a3c, a4[:node|zone|section|hash:K|mapping], a5 or a10")
        }
    }

    func make(depth: Int) -> ReplayOptions {
        var o = ReplayOptions()
        o.series = series
        o.hostBudget = parseBudget(hostBudget) ?? .percent(60)
        o.hostPolicy = hostPolicy
        o.seed = seed
        o.unlock = unlock
        o.writeback = writeback
        o.touches = touch
        o.minorFaultOptimization = !noMinorFaultOptimization
        o.timelineInterval = UInt64(timelineMs * 1e6)
        o.checkInvariants = checkInvariants
        o.folioBatching = !noFolioBatching
        o.criticalSectionNs = criticalSectionNs
        for a in (alternative ?? "").split(separator: ",") { _ = applyAlternative(String(a), to: &o) }
        o.depth = depth
        return o
    }
}

struct ReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Replay a trace through the guest page-hinting model.",
        discussion: """
        Every event drives the hooks of the chosen patch series (docs/model.md): page_host_discards() \
        checks, PageDiscarded tests, state-change lock operations, ESSA operations, guest state \
        transitions, host discards, discards found by make_stable, discard faults, reload I/O and host I/O. \
        Counters are kept per (hook id, call site, event type, traced/inferred). Operations the trace \
        cannot show are inferred by the --policy-* options and tagged as inferred.

        --json prints one object: {"series", "events", "phd", "flag_tests", "essa", "transitions": \
        {"S>V": n, ...}, "make_stable", "make_volatile", "host_discards", "sync_discards", "discard_faults", \
        "reload_io", "host_io": {"writes", "reads"}, "host_io_saved", "inferred_ops", ...}. \
        --db writes the run (options, counters, transitions, clauses, timeline) to SQLite (docs/schema.md).
        """)

    @Argument(help: "Trace file or capture bundle.")
    var trace: String

    @OptionGroup var model: ModelOptions
    @OptionGroup var siteOptions: SiteOptions
    @OptionGroup var input: InputOptions

    @Option(name: .long, help: "Write the run to this SQLite database (replaced atomically).")
    var db: String?

    @Flag(name: .long, help: "Print one JSON object instead of a table.")
    var json = false

    func run() throws {
        let rules = try siteOptions.makeRules()
        let r = try runReplay(trace: trace, input: input.readOptions(), options: model.make(depth: siteOptions.depth), rules: rules)
        if let out = db { try writeRunDatabase([r], to: out) }
        if json { print(r.summaryJSON().render()) } else { r.printTable() }
        if model.checkInvariants && r.model.violationCount > 0 {
            for v in r.model.violationSamples { warn("pagehint: invariant violated: \(v)") }
            throw ExitCode(70)
        }
    }
}
