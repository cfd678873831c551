import ArgumentParser
import Foundation
import GRDB
import HintingModel
import TraceModel

/// What the reports (`hot`, `diff`) read from a run: counters keyed by (hook, event, inferred, policy,
/// stack), the driving event counts and the run's facts. Built from a fresh replay or loaded from a run
/// database (`pagehint replay --db`).
struct RunData {
    var trace: String
    var format: String
    var kernel: String?
    var series: String
    /// Options as recorded (`name=value`).
    var options: [(String, String)]
    var events: UInt64
    var firstNs: UInt64
    var lastNs: UInt64
    var lost: UInt64
    var eventsByName: [String: UInt64]
    /// Event types, stacks and symbols the keys refer to.
    var ctx: TraceContext
    var keys: [CounterKey]
    var rows: [HookCounts]

    var seconds: Double { Double(lastNs &- firstNs) / 1e9 }
    var totals: HookCounts { var t = HookCounts(); for r in rows { t.add(r) }; return t }
    var seriesLabel: String { series.uppercased() }
    func option(_ k: String) -> String? { options.first { $0.0 == k }?.1 }
    func eventName(_ k: CounterKey) -> String? { Int(k.eventType) < ctx.types.count ? ctx.types[Int(k.eventType)].name : nil }
}

extension RunResult {
    var data: RunData {
        var byName: [String: UInt64] = [:]
        for (t, n) in replay.eventsByType.enumerated() where n > 0 { byName[ctx.types[t].name, default: 0] += n }
        return RunData(trace: trace, format: format, kernel: kernel, series: options.series.rawValue, options: options.recorded,
                       events: replay.events, firstNs: replay.firstTimestamp, lastNs: replay.lastTimestamp,
                       lost: ctx.lost.reduce(0) { $0 + $1.count }, eventsByName: byName, ctx: ctx,
                       keys: model.keys, rows: model.rows)
    }
}

/// Whether `path` is a run database written by `pagehint replay --db` (SQLite with the runs schema).
func isRunDatabase(_ path: String) -> Bool {
    guard let h = FileHandle(forReadingAtPath: path) else { return false }
    defer { try? h.close() }
    guard let head = try? h.read(upToCount: 16), head == Data("SQLite format 3\0".utf8) else { return false }
    guard let q = try? DatabaseQueue(path: path, configuration: readOnlyConfiguration()) else { return false }
    let s = try? q.read { db in try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'schema'") }
    return (s ?? nil)?.hasPrefix("pagehint-runs/") == true
}

func readOnlyConfiguration() -> Configuration {
    var c = Configuration()
    c.readonly = true
    return c
}

/// Loads run `run` (1-based id) of a run database.
func loadRunData(path: String, run: Int = 1) throws -> RunData {
    func bad(_ why: String) -> Error { RunDataError(message: "pagehint: \(path): \(why)") }
    /// A column value; a missing column, NULL or a value of another type is an error, never a trap.
    func get<T: DatabaseValueConvertible>(_ row: Row, _ name: String, _ table: String) throws -> T {
        guard let v = row[name] as DatabaseValue?, let x = T.fromDatabaseValue(v) else {
            throw bad("\(table): column \(name) missing, NULL or of the wrong type")
        }
        return x
    }
    /// A nullable column.
    func opt<T: DatabaseValueConvertible>(_ row: Row, _ name: String, _ table: String) throws -> T? {
        guard let v = row[name] as DatabaseValue? else { throw bad("\(table): column \(name) missing") }
        if v.isNull { return nil }
        guard let x = T.fromDatabaseValue(v) else { throw bad("\(table): column \(name) of the wrong type") }
        return x
    }
    func count(_ row: Row, _ name: String, _ table: String) throws -> UInt64 {
        let v: Int64 = try get(row, name, table)
        guard v >= 0 else { throw bad("\(table): negative \(name)") }
        return UInt64(v)
    }
    do {
        let q = try DatabaseQueue(path: path, configuration: readOnlyConfiguration())
        return try q.read { db -> RunData in
            let schema = try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'schema'") ?? ""
            guard schema == runSchemaVersion else {
                throw bad("run database schema \(schema.isEmpty ? "unknown" : schema), this pagehint reads \(runSchemaVersion): replay the trace again")
            }
            guard let r = try Row.fetchOne(db, sql: "SELECT * FROM runs WHERE id = ?", arguments: [run]) else {
                let ids = try Int.fetchAll(db, sql: "SELECT id FROM runs ORDER BY id")
                throw bad("no run \(run) (runs: \(ids.map(String.init).joined(separator: ", ")))")
            }
            var options: [(String, String)] = []
            for o in try Row.fetchAll(db, sql: "SELECT key, value FROM run_options WHERE run_id = ? ORDER BY rowid", arguments: [run]) {
                options.append((try get(o, "key", "run_options"), try get(o, "value", "run_options")))
            }
            let ctx = TraceContext()
            var typeOf: [String: UInt32] = [:]
            func type(_ name: String) -> UInt32 {
                if let t = typeOf[name] { return t }
                let t = ctx.addType(system: "", name: name, fields: [], inferred: false)
                typeOf[name] = t
                return t
            }
            var byName: [String: UInt64] = [:]
            for e in try Row.fetchAll(db, sql: "SELECT event, count FROM event_counts WHERE run_id = ?", arguments: [run]) {
                let n: String = try get(e, "event", "event_counts")
                _ = type(n)
                byName[n, default: 0] += try count(e, "count", "event_counts")
            }
            // Stacks: frames innermost first, as symbol names.
            var stackOf: [Int64: StackID] = [:]
            var frames: [Int64: [(Int, String)]] = [:]
            for f in try Row.fetchAll(db, sql: "SELECT stack_id, position, symbol FROM stack_frames WHERE run_id = ?", arguments: [run]) {
                frames[try get(f, "stack_id", "stack_frames"), default: []].append((try get(f, "position", "stack_frames"), try get(f, "symbol", "stack_frames")))
            }
            for (id, fs) in frames {
                let syms = fs.sorted { $0.0 < $1.0 }.map { ctx.symbols.intern($0.1) }
                stackOf[id] = ctx.stacks.intern(syms)
            }
            var keys: [CounterKey] = []
            var rows: [HookCounts] = []
            var rowOf: [String: Int] = [:]
            func keyText(_ hook: String, _ event: String, _ inferred: Int64, _ policy: String, _ stack: Int64) -> String {
                "\(hook)\u{1}\(event)\u{1}\(inferred)\u{1}\(policy)\u{1}\(stack)"
            }
            for c in try Row.fetchAll(db, sql: "SELECT * FROM counters WHERE run_id = ?", arguments: [run]) {
                let hookID: String = try get(c, "hook", "counters")
                guard let hook = Hook(id: hookID) else { throw bad("counters: unknown hook \(hookID)") }
                let policyName: String = try get(c, "policy", "counters")
                let policy = InferencePolicy.allCases.first { $0.name == policyName }?.rawValue ?? 0
                let stackID: Int64 = try get(c, "stack_id", "counters")
                guard stackID == 0 || stackOf[stackID] != nil else { throw bad("counters: stack \(stackID) has no frames") }
                let event: String = try get(c, "event", "counters")
                let inferred: Int64 = try get(c, "inferred", "counters")
                let k = CounterKey(hook: hook, site: 0, eventType: type(event), inferred: inferred != 0, policy: policy,
                                   stack: stackID == 0 ? 0 : stackOf[stackID]!)
                var h = HookCounts()
                func u(_ col: String) throws -> UInt64 { try count(c, col, "counters") }
                h.executions = try u("executions"); h.phd = try u("phd"); h.flagTests = try u("flag_tests")
                h.lockTry = try u("lock_try"); h.lockBusy = try u("lock_busy"); h.lockSpin = try u("lock_spin")
                for e in Essa.allCases { h.essa[e.rawValue] = try u("essa_" + e.name.lowercased()) }
                h.makeStable = try u("make_stable"); h.makeStableFailed = try u("make_stable_failed"); h.makeVolatile = try u("make_volatile")
                h.checkWritable = try u("check_writable"); h.resetWritable = try u("reset_writable")
                h.syncDiscards = try u("sync_discards"); h.discardFaults = try u("discard_faults"); h.reloadIO = try u("reload_io")
                h.hostDiscards = try u("host_discards"); h.hostWrites = try u("host_writes"); h.hostReads = try u("host_reads")
                h.hostDrops = try u("host_drops"); h.doubleRemovalSuppressed = try u("double_removal_suppressed")
                h.lruReaddSuppressed = try u("lru_readd_suppressed"); h.pteSkipped = try u("pte_skipped"); h.parked = try u("parked")
                h.stillInMappingTests = try u("still_in_mapping_tests"); h.stillInMappingHits = try u("still_in_mapping_hits")
                h.lruToPageTests = try u("lru_to_page_tests"); h.lruToPageHits = try u("lru_to_page_hits")
                h.seqlockReads = try u("seqlock_reads"); h.seqlockRetries = try u("seqlock_retries")
                h.seqlockWrites = try u("seqlock_writes"); h.sideListVisits = try u("side_list_visits")
                h.discardLockTaken = try u("discard_lock_taken"); h.discardLockContended = try u("discard_lock_contended")
                h.correctnessViolations = try u("correctness_violations")
                rowOf[keyText(hookID, event, inferred, policyName, stackID)] = rows.count
                keys.append(k)
                rows.append(h)
            }
            let letters = GuestState.allCases.map(\.letter)
            for t in try Row.fetchAll(db, sql: "SELECT * FROM transitions WHERE run_id = ?", arguments: [run]) {
                let tb = "transitions"
                let key = keyText(try get(t, "hook", tb), try get(t, "event", tb), try get(t, "inferred", tb), try get(t, "policy", tb), try get(t, "stack_id", tb))
                guard let i = rowOf[key], let a = letters.firstIndex(of: try get(t, "from_state", tb)), let b = letters.firstIndex(of: try get(t, "to_state", tb)) else {
                    throw bad("transitions: a row without its counters row, or an unknown state")
                }
                rows[i].transitions[a * 4 + b] += try count(t, "count", tb)
            }
            let clauseNames = Clause.allCases.map(\.name)
            for t in try Row.fetchAll(db, sql: "SELECT * FROM clauses WHERE run_id = ?", arguments: [run]) {
                let tb = "clauses"
                let key = keyText(try get(t, "hook", tb), try get(t, "event", tb), try get(t, "inferred", tb), try get(t, "policy", tb), try get(t, "stack_id", tb))
                guard let i = rowOf[key], let c = clauseNames.firstIndex(of: try get(t, "clause", tb)) else {
                    throw bad("clauses: a row without its counters row, or an unknown clause")
                }
                rows[i].clauses[c] += try count(t, "count", tb)
            }
            let first: Int64? = try opt(r, "first_ns", "runs"), last: Int64? = try opt(r, "last_ns", "runs")
            return RunData(trace: try get(r, "trace", "runs"), format: try get(r, "format", "runs"), kernel: try opt(r, "kernel", "runs"),
                           series: try get(r, "series", "runs"), options: options,
                           events: try count(r, "events", "runs"), firstNs: UInt64(max(0, first ?? 0)),
                           lastNs: UInt64(max(0, last ?? 0)), lost: try count(r, "lost", "runs"),
                           eventsByName: byName, ctx: ctx, keys: keys, rows: rows)
        }
    } catch let e as RunDataError {
        throw e
    } catch let e as DatabaseError {
        throw bad("not a readable run database: \(e.message ?? e.description)")
    }
}

struct RunDataError: Error, CustomStringConvertible { var message: String; var description: String { message } }

/// Loads a run database or replays a trace, whichever `path` is.
func runData(_ path: String, run: Int = 1, replaying: () throws -> RunResult) throws -> RunData {
    if isRunDatabase(path) {
        do { return try loadRunData(path: path, run: run) } catch let e as RunDataError {
            warn(e.message)
            throw ExitCode(65)
        }
    }
    return try replaying().data
}
