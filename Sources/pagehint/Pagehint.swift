import ArgumentParser
import TraceModel
import TraceReaders

#if canImport(Glibc)
import Glibc
#endif

@main
struct Pagehint: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pagehint",
        abstract: "Replay kernel page-cache traces through a model of guest page hinting.",
        discussion: """
        pagehint reads traces of page-cache, LRU, reclaim, writeback and page-allocator events \
        (tracefs text, trace-cmd report text, trace.dat v6/v7, perf.data, perf script text, any of them \
        zstd-compressed, or a capture bundle from tools/capture/) and reports them per event and per \
        kernel call site.

        Exit codes: 0 success, 64 bad usage, 65 bad input data, 66 unreadable input, 70 a model invariant \
        was violated (replay --check-invariants), 73 output not writable.
        """,
        version: pagehintVersion,
        // Every subcommand names itself in its configuration: otherwise ArgumentParser derives the name
        // from the type's name by reflection at every start (a fifth of `pagehint --version`).
        subcommands: [Stat.self, Import.self, Sites.self, ReplayCommand.self, Hot.self, Diff.self, Compare.self, Dump.self,
                      BenchReplay.self])
}

let pagehintVersion = "0.1.0"

