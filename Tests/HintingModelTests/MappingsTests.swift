@testable import HintingModel
import XCTest

/// The per-process mappings' memory accounting, on hand-made mappings.
final class MappingsTests: XCTestCase {
    /// `bytes` is what the live processes' sets and lists hold; `peakBytes` the most at once.
    func testBytesFollowTheSetsAndListsAndThePeakStays() {
        var m = Mappings()
        XCTAssertEqual(m.bytes, 0)
        for f in 0..<1_000 { m.insert(7, Int32(f)) }
        // 1,000 frames: a set of 2,048 slots (at most half full) and a list of at least 1,000.
        XCTAssertGreaterThanOrEqual(m.bytes, 2_048 * 4 + 1_000 * 4)
        XCTAssertLessThanOrEqual(m.bytes, 2_048 * 4 + 2_048 * 4)
        XCTAssertFalse(m.insert(7, 5), "mapped already")
        for f in 0..<10 { m.insert(8, Int32(f)) }
        let both = m.bytes
        XCTAssertGreaterThan(both, 2_048 * 4 + 1_000 * 4 + 16 * 4)
        XCTAssertEqual(m.removeAll(of: 7).count, 1_000)
        XCTAssertLessThan(m.bytes, 64 * 4 + 64 * 4, "process 8's alone")
        XCTAssertEqual(m.peakBytes, both)
        _ = m.removeAll(of: 8)
        XCTAssertEqual(m.bytes, 0)
        m.release()
        XCTAssertEqual(m.peakBytes, both, "the peak outlives the release")
    }
}
