import Foundation
import TraceModel
import TraceReaders
import XCTest

/// Every trace in traces/ is decoded by pagehint and by the reference tools (`trace-cmd report`,
/// `perf script`); the two must give the same events, in the same order, with the same field values
/// and the same kernel stack frames. Fields that the tools print symbolically (gfp_flags) are left out.
final class ReferenceToolTests: XCTestCase {
    func bundlesOrSkip() throws -> [String] {
        let b = traceBundles()
        if b.isEmpty { throw XCTSkip("no capture bundles under traces/") }
        return b
    }

    func testTraceDatMatchesTraceCmdReport() throws {
        guard which("trace-cmd") else { throw XCTSkip("trace-cmd not installed") }
        var checked = 0
        for b in try bundlesOrSkip() {
            for name in ["trace.dat", "trace.v6.dat", "trace.v6.dat.zst"] {
                let path = b + "/" + name
                guard FileManager.default.fileExists(atPath: path) else { continue }
                let dir = tempDir()
                let report = dir + "/report.txt"
                _ = try runTool(["trace-cmd", "report", try plainCopy(path, in: dir)], stdoutTo: report)
                let ours = try canonical(path, usec: .round)
                let ref = try canonical(report, format: .report, usec: .round)
                XCTAssertGreaterThan(ours.lines.count, 0, path)
                assertSameLines(ours.lines, ref.lines, "\(path) vs trace-cmd report")
                checked += 1
            }
        }
        XCTAssertGreaterThan(checked, 0, "no trace.dat under traces/")
    }

    func testPerfDataMatchesPerfScript() throws {
        guard which("perf") else { throw XCTSkip("perf not installed") }
        var checked = 0
        for b in try bundlesOrSkip() {
            for name in ["perf.data", "perf.data.zst"] {
                let path = b + "/" + name
                guard FileManager.default.fileExists(atPath: path) else { continue }
                let bundle = try CaptureBundle(path: b)
                let dir = tempDir()
                let plain = try plainCopy(path, in: dir)
                var args = ["perf", "script", "-i", plain]
                var kallsyms: String? = nil
                if let k = bundle.kallsyms {
                    kallsyms = try plainCopy(k, in: dir)
                    args += ["--kallsyms", kallsyms!]
                }
                let script = dir + "/perf.script.txt"
                _ = try runTool(args, stdoutTo: script)
                let ours = try canonical(path, kallsyms: kallsyms, usec: .trunc)
                let ref = try canonical(script, format: .perfScript, usec: .trunc)
                XCTAssertGreaterThan(ours.lines.count, 0, path)
                assertSameLines(ours.lines, ref.lines, "\(path) vs perf script")
                checked += 1
            }
        }
        XCTAssertGreaterThan(checked, 0, "no perf.data under traces/")
    }

    /// The formats one capture was saved in (tracefs text and trace.dat; perf.data and its perf script
    /// text) give identical event streams.
    func testFormatsOfOneCaptureAgree() throws {
        var checked = 0
        for b in try bundlesOrSkip() {
            let fm = FileManager.default
            func first(_ names: [String]) -> String? { names.map { b + "/" + $0 }.first { fm.fileExists(atPath: $0) } }
            if let dat = first(["trace.dat"]), let txt = first(["trace.txt", "trace.txt.zst"]) {
                let a = try canonical(dat, usec: .round)
                let t = try canonical(txt, format: .tracefs, usec: .round)
                assertSameLines(a.lines, t.lines, "\(b): trace.dat vs tracefs text")
                checked += 1
            }
            if let dat = first(["trace.dat"]), let v6 = first(["trace.v6.dat", "trace.v6.dat.zst"]) {
                assertSameLines(try canonical(dat, usec: .none).lines, try canonical(v6, usec: .none).lines, "\(b): v7 vs v6")
                checked += 1
            }
            if let dat = first(["trace.dat"]), let rep = first(["trace.report.txt", "trace.report.txt.zst"]) {
                let a = try canonical(dat, usec: .round)
                let r = try canonical(rep, format: .report, usec: .round)
                assertSameLines(a.lines, r.lines, "\(b): trace.dat vs its shipped trace-cmd report text")
                checked += 1
            }
            if let pd = first(["perf.data", "perf.data.zst"]), let ps = first(["perf.script.txt", "perf.script.txt.zst"]) {
                let bundle = try CaptureBundle(path: b)
                let dir = tempDir()
                let k = try bundle.kallsyms.map { try plainCopy($0, in: dir) }
                let a = try canonical(pd, kallsyms: k, usec: .trunc)
                let s = try canonical(ps, format: .perfScript, usec: .trunc)
                assertSameLines(a.lines, s.lines, "\(b): perf.data vs perf script text")
                checked += 1
            }
        }
        XCTAssertGreaterThan(checked, 0, "no bundle holds one capture in two formats")
    }
}
