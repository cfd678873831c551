import Foundation
import TraceModel

/// A capture bundle written by `tools/capture/*.sh`: one directory holding the trace (in one or more
/// formats), the events' `format` files, kallsyms, `meta.json` and ground-truth files.
public struct CaptureBundle: Sendable {
    public let path: String
    /// Trace files present, in the order pagehint prefers them.
    public let traces: [(format: TraceFormat, path: String)]
    public let kallsyms: String?
    public let formatsDir: String?
    public let kernelRelease: String?

    /// Names a bundle may use for each format (plain or `.zst`).
    static let candidates: [(TraceFormat, String)] = [
        (.traceDat, "trace.dat"), (.perfData, "perf.data"), (.tracefs, "trace.txt"),
        (.report, "trace.report.txt"), (.report, "trace-report.txt"), (.report, "report.txt"), (.perfScript, "perf.script.txt"),
        (.traceDat, "trace.v6.dat"),
    ]

    public init(path: String) throws {
        self.path = path
        let fm = FileManager.default
        var found: [(TraceFormat, String)] = []
        for (f, n) in Self.candidates {
            for name in [n, n + ".zst"] {
                let p = path + "/" + name
                if fm.fileExists(atPath: p) { found.append((f, p)) }
            }
        }
        traces = found
        var ks = ["kallsyms", "kallsyms.zst"].map { path + "/" + $0 }.first { fm.fileExists(atPath: $0) }
        var isDir: ObjCBool = false
        formatsDir = fm.fileExists(atPath: path + "/formats", isDirectory: &isDir) && isDir.boolValue ? path + "/formats" : nil
        var release: String? = nil
        if let data = fm.contents(atPath: path + "/meta.json"),
           let obj = try? JSONSerialization.jsonObject(with: data) as? [String: Any] {
            release = (obj["kernel_release"] as? String) ?? (obj["kernel"] as? String) ?? (obj["release"] as? String)
            // kallsyms may be shared between bundles of one kernel: {"kallsyms": {"file", "shared"}}.
            if ks == nil, let k = obj["kallsyms"] as? [String: Any] {
                for key in ["file", "shared"] {
                    guard let rel = k[key] as? String, !rel.isEmpty else { continue }
                    let p = rel.hasPrefix("/") ? rel : path + "/" + rel
                    if fm.fileExists(atPath: p) { ks = p; break }
                }
            }
        }
        kallsyms = ks
        if release == nil, let u = fm.contents(atPath: path + "/uname.txt") {
            let parts = String(decoding: u, as: UTF8.self).split(separator: " ")
            if parts.count >= 3 { release = String(parts[2]) }
        }
        kernelRelease = release
        if found.isEmpty {
            throw TraceError(.badData, file: path, "not a capture bundle: no trace.dat, perf.data, trace.txt, report or perf script file in it")
        }
    }

    /// Registers the event types described by `formats/<system>/<event>/format`.
    public func registerFormats(_ ctx: TraceContext) {
        guard let dir = formatsDir, let systems = try? FileManager.default.contentsOfDirectory(atPath: dir) else { return }
        for sys in systems.sorted() {
            guard let events = try? FileManager.default.contentsOfDirectory(atPath: dir + "/" + sys) else { continue }
            for ev in events.sorted() {
                guard let data = FileManager.default.contents(atPath: "\(dir)/\(sys)/\(ev)/format"),
                      let f = EventFormat.parse(String(decoding: data, as: UTF8.self), system: sys) else { continue }
                ctx.addType(system: f.system, name: f.name,
                            fields: f.fields.prefix(Event.maxFields).map { FieldInfo(name: $0.name, kind: $0.kind) },
                            inferred: false)
            }
        }
    }
}

/// Reads the preferred trace of a bundle (or the one of `options.format`), with the bundle's kallsyms
/// for perf.data and its format files for text formats.
func readBundle<S: EventSink>(path: String, options: ReadOptions, into sink: inout S, context ctx: TraceContext) throws {
    let b = try CaptureBundle(path: path)
    var o = options
    let pick: (TraceFormat, String)
    if let f = options.format, f != .bundle {
        guard let p = b.traces.first(where: { $0.format == f }) else {
            throw TraceError(.usage, file: path, "bundle has no \(f.rawValue) trace")
        }
        pick = p
    } else {
        pick = b.traces[0]
    }
    o.format = pick.0
    if o.kallsyms == nil { o.kallsyms = b.kallsyms }
    if pick.0 == .tracefs || pick.0 == .report || pick.0 == .perfScript { b.registerFormats(ctx) }
    try readTrace(path: pick.1, options: o, into: &sink, context: ctx)
    if ctx.kernelRelease == nil { ctx.kernelRelease = b.kernelRelease }
    ctx.facts.append(("bundle", path))
    ctx.facts.append(("bundle trace", pick.1))
}
