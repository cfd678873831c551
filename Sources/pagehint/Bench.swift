import ArgumentParser
import Foundation
import HintingModel
import TraceModel
import TraceReaders

/// Holds every event of a trace in memory (benchmarks only: memory grows with the trace).
struct EventBuffer: EventSink {
    var events: [Event] = []
    mutating func consume(_ e: borrowing Event, context: TraceContext) { events.append(copy e) }
}

/// The replay loop alone, without decoding: `make bench` measures the model's throughput with it.
struct BenchReplay: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-replay",
        abstract: "Benchmark: time the replay loop alone on a trace held in memory.",
        discussion: """
        Reads TRACE into memory (about 170 bytes per event), then replays it --repeat times with the \
        model options given (at least --repeat times, and for at least --min-seconds) and prints the best \
        time, the median (on a shared machine the speed swings by up to half for a second or more at a \
        time: the spread between them is mostly the machine's), and the first replay's (it alone commits \
        the memory of its frames and index afresh; later replays take over what the one before left, as \
        the replays of compare do): events per second of the replay loop and 4 KiB \
        pages per second (large folios make one event many pages of work), plus the model's bytes per \
        tracked frame. Where the time goes: hook steps per event (hook executions begun; a batched folio \
        step counts once), the time per step, and frames created per event (every frame of a short trace \
        is new). Decoding is not timed; `pagehint stat` times that. No host-budget pre-pass: use \
        --host-budget unlimited or a size.
        """,
        shouldDisplay: false)

    @Argument(help: "Trace file or capture bundle.")
    var trace: String

    @Option(name: .customLong("repeat"), help: "Replays to run at least; the best is reported.")
    var repetitions: Int = 5

    @Option(name: .customLong("min-seconds"),
            help: "Go on replaying until this many seconds of replays have run (a shared machine's speed swings for a second or more at a time).")
    var minSeconds: Double = 0

    @OptionGroup var model: ModelOptions
    @OptionGroup var siteOptions: SiteOptions
    @OptionGroup var input: InputOptions

    @Flag(name: .long, help: "Print JSON.")
    var json = false

    func run() throws {
        let rules = try siteOptions.makeRules()
        var o = model.make(depth: siteOptions.depth)
        if case .percent = o.hostBudget { o.hostBudget = .unlimited }
        let ctx = TraceContext()
        var buf = EventBuffer()
        try reportingErrors { try readAnyTrace(path: trace, options: input.readOptions(), into: &buf, context: ctx) }
        var best = Double.infinity
        // The first replay commits its memory afresh; later ones take over what the one before left
        // (`KeptRanges`), as the replays of `compare` do.
        var first = 0.0
        var pages: UInt64 = 0
        var frameBytes = 0.0
        var frames = 0, slots = 0
        var batched: UInt64 = 0
        var deferred: UInt64 = 0
        var steps: UInt64 = 0
        var resident = (frames: 0, index: 0)
        var cacheBytes = (pages: 0, files: 0, fileCount: 0)
        var mappingBytes = 0
        let n = max(1, repetitions)
        var times: [Double] = []
        var total = 0.0
        var k = 0
        while k < n || total < minSeconds {
            defer { k += 1 }
            let r = Replay(options: o, rules: rules)
            r.setBudget(touchedFrames: 0)
            // Call sites are resolved inside the loop, as in a replay: a long trace amortises them.
            let t0 = DispatchTime.now().uptimeNanoseconds
            buf.events.withUnsafeBufferPointer { p in r.consumeAll(p, context: ctx) }
            let t1 = DispatchTime.now().uptimeNanoseconds
            r.finish()
            let t = Double(t1 - t0) / 1e9
            best = min(best, t)
            times.append(t)
            total += t
            pages = r.pagesTouched
            if k == 0 {
                first = t
                cacheBytes = r.model.cacheBytes
                mappingBytes = r.mappingsPeakBytes
                // Per tracked frame: the frames as resident (with the host LRU's links under a budget), the pfn index's slots, the page-cache index,
                // the most the processes' mappings held at once, and the deferred tails' bookkeeping.
                frameBytes = r.model.frames.bytesPerFrame
                    + Double(cacheBytes.pages + mappingBytes + r.deferredBytes) / Double(max(r.model.frames.count, 1))
                frames = r.model.frames.count
                batched = r.batchedPages
                deferred = r.deferredSteps
                steps = r.model.steps
                slots = r.model.frames.indexSlots
                resident = r.model.frames.residentBytes
            }
        }
        let events = Double(buf.events.count)
        times.sort()
        let median = times[times.count / 2]
        if json {
            print(JSON.object([("trace", .string(trace)), ("events", .int(Int64(buf.events.count))), ("seconds", .double(best)),
                               ("events_per_second", .double(events / best)),
                               ("replays", .int(Int64(times.count))), ("median_events_per_second", .double(events / median)),
                               ("first_replay_events_per_second", .double(events / first)), ("page_operations", .uint(pages)),
                               ("pages_per_second", .double(Double(pages) / best)), ("bytes_per_frame", .double(frameBytes)),
                               ("frames", .int(Int64(frames))), ("index_slots", .int(Int64(slots))),
                               ("frame_state_bytes", .int(Int64(MemoryLayout<Frame>.stride))),
                               ("resident_frame_bytes", .int(Int64(resident.frames))), ("resident_index_bytes", .int(Int64(resident.index))),
                               ("page_cache_index_bytes", .int(Int64(cacheBytes.pages))),
                               ("mappings_peak_bytes", .int(Int64(mappingBytes))),
                               ("files", .int(Int64(cacheBytes.fileCount))), ("file_table_bytes", .int(Int64(cacheBytes.files))),
                               ("bytes_per_file", .double(Double(cacheBytes.files) / Double(max(cacheBytes.fileCount, 1)))),
                               ("batched_page_steps", .uint(batched)), ("deferred_steps", .uint(deferred)), ("hook_steps", .uint(steps)),
                               ("hook_steps_per_event", .double(Double(steps) / max(events, 1))),
                               ("ns_per_hook_step", .double(steps > 0 ? best * 1e9 / Double(steps) : 0)),
                               ("new_frames_per_event", .double(Double(frames) / max(events, 1)))]).render())
        } else {
            print(String(format: "%d events in %.4f s: %.2f M events/s (median of %d replays %.2f; the first replay, which commits its memory afresh, %.2f), %.2f M page operations/s, %.1f bytes per tracked frame (%d frames of %d B; resident: frames %d KiB, pfn index %d KiB, %d slots; page-cache index %d KiB; mappings at most %d KiB); %.0f bytes per file (%d files); %llu page steps batched (%llu steps deferred); per event %.2f hook steps (%.1f ns each), %.2f new frames",
                         buf.events.count, best, events / best / 1e6, times.count, events / median / 1e6, events / first / 1e6, Double(pages) / best / 1e6, frameBytes,
                         frames, MemoryLayout<Frame>.stride, resident.frames >> 10, resident.index >> 10, slots, cacheBytes.pages >> 10, mappingBytes >> 10,
                         Double(cacheBytes.files) / Double(max(cacheBytes.fileCount, 1)), cacheBytes.fileCount, batched, deferred,
                         Double(steps) / max(events, 1), steps > 0 ? best * 1e9 / Double(steps) : 0, Double(frames) / max(events, 1)))
        }
    }
}
