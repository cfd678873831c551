import Foundation
import TraceModel
import TraceReaders
import XCTest

/// Truncated, corrupted and lying inputs end in one TraceError (never a crash, hang or huge allocation).
final class BadInputTests: XCTestCase {
    func firstTrace(_ names: [String]) throws -> String {
        for b in traceBundles() {
            for n in names where FileManager.default.fileExists(atPath: b + "/" + n) { return b + "/" + n }
        }
        throw XCTSkip("no \(names) under traces/")
    }

    /// Reads and returns the number of events, or the error.
    func attempt(_ path: String, _ format: TraceFormat? = nil) -> Result<Int, TraceError> {
        do {
            let r = try canonical(path, format: format, stacks: false, usec: .none)
            return .success(r.lines.count)
        } catch let e as TraceError {
            return .failure(e)
        } catch {
            XCTFail("not a TraceError: \(error)")
            return .success(-1)
        }
    }

    func mutate(_ src: String, _ body: (inout [UInt8]) -> Void) throws -> String {
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: src)))
        body(&bytes)
        let out = tempDir() + "/" + URL(fileURLWithPath: src).lastPathComponent
        try Data(bytes).write(to: URL(fileURLWithPath: out))
        return out
    }

    func checkTruncations(_ src: String) throws {
        let full = try Data(contentsOf: URL(fileURLWithPath: src)).count
        guard case .success(let all) = attempt(src) else { return XCTFail("\(src) does not read") }
        for k in 1..<24 {
            let cut = full * k / 24
            let p = try mutate(src) { $0.removeLast($0.count - cut) }
            switch attempt(p) {
            case .success(let n): XCTAssertLessThanOrEqual(n, all, "truncated at \(cut)")
            case .failure(let e):
                XCTAssertEqual(e.exitCode, 65, "\(e)")
                XCTAssertTrue(e.description.hasPrefix(p), "error names the file: \(e)")
            }
        }
    }

    func checkCorruption(_ src: String, seed: UInt64) throws {
        var state = seed
        func next() -> Int { state = state &* 6364136223846793005 &+ 1442695040888963407; return Int(state >> 33) }
        for _ in 0..<40 {
            let p = try mutate(src) { b in
                for _ in 0..<8 { b[next() % b.count] = UInt8(truncatingIfNeeded: next()) }
            }
            if case .failure(let e) = attempt(p) { XCTAssertTrue([65, 66].contains(e.exitCode), "\(e)") }
        }
    }

    func testTraceDatTruncatedAndCorrupted() throws {
        let src = try firstTrace(["trace.dat"])
        try checkTruncations(src)
        try checkCorruption(src, seed: 1)
    }

    func testPerfDataTruncatedAndCorrupted() throws {
        var src = try firstTrace(["perf.data", "perf.data.zst"])
        src = try plainCopy(src, in: tempDir())
        try checkTruncations(src)
        try checkCorruption(src, seed: 2)
    }

    func testTraceDatLyingSectionSize() throws {
        let src = try firstTrace(["trace.dat"])
        // v7: the first section header follows the first-options offset; make its size absurd.
        let p = try mutate(src) { b in
            var i = 10
            while b[i] != 0 { i += 1 }          // version string
            i += 1 + 1 + 1 + 4                   // NUL, endian, long size, page size
            if b[10] == UInt8(ascii: "7") {
                while b[i] != 0 { i += 1 }; i += 1   // compression name
                while b[i] != 0 { i += 1 }; i += 1   // compression version
                i += 8                               // first options offset
                for k in 0..<8 { b[i + 8 + k] = 0xFF }   // section size
            }
        }
        guard case .failure(let e) = attempt(p) else { return XCTFail("lying size accepted") }
        XCTAssertEqual(e.exitCode, 65)
        XCTAssertTrue(e.description.contains("byte"), "\(e)")
    }

    func testPerfDataLyingRecordSize() throws {
        let src = try plainCopy(try firstTrace(["perf.data", "perf.data.zst"]), in: tempDir())
        let p = try mutate(src) { b in
            // data section offset is at byte 40 of the file header; make the first record's size 4.
            let off = Int(b.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 40, as: UInt64.self) })
            b[off + 6] = 4
            b[off + 7] = 0
        }
        guard case .failure(let e) = attempt(p) else { return XCTFail("record size 4 accepted") }
        XCTAssertEqual(e.exitCode, 65)
        XCTAssertTrue(e.description.contains("size 4"), "\(e)")
    }

    func testWrongFormatOption() throws {
        let src = try firstTrace(["trace.dat"])
        guard case .failure(let e) = attempt(src, .perfData) else { return XCTFail("wrong --format accepted") }
        XCTAssertTrue(e.description.contains("--format"), "\(e)")
    }

    func testTruncatedZstdWrapper() throws {
        let src = try firstTrace(["trace.txt.zst", "perf.script.txt.zst"])
        let p = try mutate(src) { $0.removeLast($0.count / 2) }
        guard case .failure(let e) = attempt(p) else { return XCTFail("truncated zstd accepted") }
        XCTAssertEqual(e.exitCode, 65)
        XCTAssertTrue(e.description.contains("zstd"), "\(e)")
    }
}
