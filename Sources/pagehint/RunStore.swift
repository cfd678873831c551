import ArgumentParser
import Foundation
import GRDB
import HintingModel
import TraceModel

/// Version of the run database schema (meta key `schema`).
let runSchemaVersion = "pagehint-runs/2"

/// Schema of replay runs (documented in docs/schema.md, "Replay runs").
let runSchema = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE runs (
    id INTEGER PRIMARY KEY, trace TEXT NOT NULL, format TEXT NOT NULL, kernel TEXT, series TEXT NOT NULL,
    events INTEGER NOT NULL, lost INTEGER NOT NULL, first_ns INTEGER, last_ns INTEGER, frames INTEGER NOT NULL,
    touched_frames INTEGER NOT NULL, host_budget_frames INTEGER, inferred_ops INTEGER NOT NULL, summary TEXT NOT NULL);
CREATE TABLE run_options (run_id INTEGER NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL);
CREATE TABLE event_counts (run_id INTEGER NOT NULL, event TEXT NOT NULL, count INTEGER NOT NULL);
CREATE TABLE counters (
    run_id INTEGER NOT NULL, hook TEXT NOT NULL, hook_function TEXT NOT NULL, site TEXT NOT NULL, event TEXT NOT NULL,
    inferred INTEGER NOT NULL, policy TEXT NOT NULL, stack_id INTEGER NOT NULL, executions INTEGER NOT NULL, phd INTEGER NOT NULL,
    flag_tests INTEGER NOT NULL, lock_try INTEGER NOT NULL, lock_busy INTEGER NOT NULL, lock_spin INTEGER NOT NULL,
    essa INTEGER NOT NULL, essa_get_state INTEGER NOT NULL, essa_set_stable INTEGER NOT NULL,
    essa_set_unused INTEGER NOT NULL, essa_set_volatile INTEGER NOT NULL, essa_set_pvolatile INTEGER NOT NULL,
    essa_set_stable_make_resident INTEGER NOT NULL, essa_set_stable_if_not_discarded INTEGER NOT NULL,
    make_stable INTEGER NOT NULL, make_stable_failed INTEGER NOT NULL, make_volatile INTEGER NOT NULL,
    check_writable INTEGER NOT NULL, reset_writable INTEGER NOT NULL, transitions INTEGER NOT NULL,
    to_volatile INTEGER NOT NULL, to_stable INTEGER NOT NULL, sync_discards INTEGER NOT NULL,
    discard_faults INTEGER NOT NULL, reload_io INTEGER NOT NULL, host_discards INTEGER NOT NULL,
    host_writes INTEGER NOT NULL, host_reads INTEGER NOT NULL, host_drops INTEGER NOT NULL,
    double_removal_suppressed INTEGER NOT NULL, lru_readd_suppressed INTEGER NOT NULL, pte_skipped INTEGER NOT NULL,
    parked INTEGER NOT NULL, still_in_mapping_tests INTEGER NOT NULL, still_in_mapping_hits INTEGER NOT NULL,
    lru_to_page_tests INTEGER NOT NULL, lru_to_page_hits INTEGER NOT NULL, seqlock_reads INTEGER NOT NULL,
    seqlock_retries INTEGER NOT NULL, seqlock_writes INTEGER NOT NULL, side_list_visits INTEGER NOT NULL,
    discard_lock_taken INTEGER NOT NULL, discard_lock_contended INTEGER NOT NULL, correctness_violations INTEGER NOT NULL,
    top_clause TEXT);
CREATE TABLE transitions (run_id INTEGER NOT NULL, hook TEXT NOT NULL, site TEXT NOT NULL, event TEXT NOT NULL,
    inferred INTEGER NOT NULL, policy TEXT NOT NULL, stack_id INTEGER NOT NULL, from_state TEXT NOT NULL,
    to_state TEXT NOT NULL, count INTEGER NOT NULL);
CREATE TABLE clauses (run_id INTEGER NOT NULL, hook TEXT NOT NULL, site TEXT NOT NULL, event TEXT NOT NULL,
    inferred INTEGER NOT NULL, policy TEXT NOT NULL, stack_id INTEGER NOT NULL, clause TEXT NOT NULL, count INTEGER NOT NULL);
CREATE TABLE stack_frames (run_id INTEGER NOT NULL, stack_id INTEGER NOT NULL, position INTEGER NOT NULL, symbol TEXT NOT NULL);
CREATE TABLE timeline (run_id INTEGER NOT NULL, ts INTEGER NOT NULL, Sr INTEGER, Sp INTEGER, Sz INTEGER,
    Ur INTEGER, Up INTEGER, Uz INTEGER, Vr INTEGER, Vp INTEGER, Vz INTEGER, Pr INTEGER, Pp INTEGER, Pz INTEGER);
CREATE TABLE notes (run_id INTEGER NOT NULL, key TEXT NOT NULL, value INTEGER NOT NULL);
"""

/// Writes runs to a new SQLite file, atomically (temporary file, one transaction, rename).
func writeRunDatabase(_ runs: [RunResult], to path: String) throws {
    let dir = (path as NSString).deletingLastPathComponent
    let tmp = (dir.isEmpty ? "." : dir) + "/." + (path as NSString).lastPathComponent + ".tmp-\(getpid())"
    try? FileManager.default.removeItem(atPath: tmp)
    do {
        let q = try DatabaseQueue(path: tmp)
        try q.writeWithoutTransaction { db in
            try db.execute(sql: "PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;")
            try db.execute(sql: runSchema)
            try db.inTransaction {
                try db.execute(sql: "INSERT INTO meta VALUES ('schema', ?)", arguments: [runSchemaVersion])
                for (n, r) in runs.enumerated() { try insertRun(db, id: n + 1, r) }
                return .commit
            }
        }
        try q.close()
        if rename(tmp, path) != 0 { throw StoreFailure(message: "cannot rename into place: \(String(cString: strerror(errno)))") }
    } catch {
        try? FileManager.default.removeItem(atPath: tmp)
        warn("pagehint: \(path): \(error)")
        throw ExitCode(73)
    }
}

struct StoreFailure: Error, CustomStringConvertible { var message: String; var description: String { message } }

func insertRun(_ db: Database, id: Int, _ r: RunResult) throws {
    let m = r.model
    let lost = r.ctx.lost.reduce(UInt64(0)) { $0 + $1.count }
    try db.execute(sql: "INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", arguments: [
        id, r.trace, r.format, r.kernel, r.options.series.rawValue, Int64(r.replay.events), Int64(lost),
        r.replay.events > 0 ? Int64(r.replay.firstTimestamp) : nil, r.replay.events > 0 ? Int64(r.replay.lastTimestamp) : nil,
        m.frames.count, r.touched, m.budgetFrames == Int.max ? nil : m.budgetFrames, Int64(r.replay.inferredOps),
        r.summaryJSON().render()])
    for (k, v) in r.options.recorded { try db.execute(sql: "INSERT INTO run_options VALUES (?,?,?)", arguments: [id, k, v]) }
    for (t, c) in r.replay.eventsByType.enumerated() where c > 0 {
        try db.execute(sql: "INSERT INTO event_counts VALUES (?,?,?)", arguments: [id, r.ctx.types[t].name, Int64(c)])
    }
    let sites = r.replay.resolver.sites
    let ins = try db.makeStatement(sql: "INSERT INTO counters VALUES (\(Array(repeating: "?", count: 53).joined(separator: ",")))")
    let tr = try db.makeStatement(sql: "INSERT INTO transitions VALUES (?,?,?,?,?,?,?,?,?,?)")
    let cl = try db.makeStatement(sql: "INSERT INTO clauses VALUES (?,?,?,?,?,?,?,?,?)")
    var stacks = Set<UInt32>()
    for (k, c) in zip(m.keys, m.rows) {
        if c.executions == 0 && c.hostDiscards == 0 && c.hostWrites == 0 && c.hostDrops == 0 { continue }
        let site = sites[k.site], ev = r.ctx.types.indices.contains(Int(k.eventType)) ? r.ctx.types[Int(k.eventType)].name : ""
        let policy = InferencePolicy(rawValue: k.policy)?.name ?? ""
        if k.stack != 0 { stacks.insert(k.stack) }
        var args: [DatabaseValueConvertible?] = [id, k.hook.id, k.hook.function, site, ev, k.inferred ? 1 : 0, policy, Int64(k.stack)]
        let nums: [UInt64] = [c.executions, c.phd, c.flagTests, c.lockTry, c.lockBusy, c.lockSpin, c.essaTotal,
                              c.essa[0], c.essa[1], c.essa[2], c.essa[3], c.essa[4], c.essa[5], c.essa[6],
                              c.makeStable, c.makeStableFailed, c.makeVolatile, c.checkWritable, c.resetWritable,
                              c.transitionTotal, c.toVolatile, c.toStable, c.syncDiscards, c.discardFaults, c.reloadIO,
                              c.hostDiscards, c.hostWrites, c.hostReads, c.hostDrops, c.doubleRemovalSuppressed,
                              c.lruReaddSuppressed, c.pteSkipped, c.parked, c.stillInMappingTests, c.stillInMappingHits,
                              c.lruToPageTests, c.lruToPageHits, c.seqlockReads, c.seqlockRetries, c.seqlockWrites,
                              c.sideListVisits, c.discardLockTaken, c.discardLockContended, c.correctnessViolations]
        args += nums.map { Int64($0) as DatabaseValueConvertible? }
        args.append(c.topClause?.name)
        try ins.execute(arguments: StatementArguments(args))
        for a in GuestState.allCases { for b in GuestState.allCases where a != b && c.transition(a, b) > 0 {
            try tr.execute(arguments: [id, k.hook.id, site, ev, k.inferred ? 1 : 0, policy, Int64(k.stack), a.letter, b.letter, Int64(c.transition(a, b))])
        } }
        for cls in Clause.allCases where c.clauses[cls.rawValue] > 0 {
            try cl.execute(arguments: [id, k.hook.id, site, ev, k.inferred ? 1 : 0, policy, Int64(k.stack), cls.name, Int64(c.clauses[cls.rawValue])])
        }
    }
    let sf = try db.makeStatement(sql: "INSERT INTO stack_frames VALUES (?,?,?,?)")
    for st in stacks.sorted() {
        for (pos, sym) in r.ctx.stacks.frames(of: st).enumerated() {
            try sf.execute(arguments: [id, Int64(st), pos, r.ctx.symbols[sym]])
        }
    }
    let tl = try db.makeStatement(sql: "INSERT INTO timeline VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)")
    for (ts, census) in r.replay.timeline {
        var a: [DatabaseValueConvertible?] = [id, Int64(ts)]
        a += census.map { $0 as DatabaseValueConvertible? }
        try tl.execute(arguments: StatementArguments(a))
    }
    for (k, v) in m.notes.sorted(by: { $0.key < $1.key }) {
        try db.execute(sql: "INSERT INTO notes VALUES (?,?,?)", arguments: [id, k, Int64(v)])
    }
}
