@testable import HintingModel
import XCTest

/// The per-process mappings on hand-made mappings: membership, order, and their memory accounting.
final class MappingsTests: XCTestCase {
    /// A process mapping frames scattered over many more keeps a table; one mapping most of the frames
    /// keeps a bitmap. Both answer membership alike and list the frames in mapping order; `bytes` is what
    /// the live processes hold, `peakBytes` the most at once.
    func testTablesAndBitmapsAnswerAlikeAndCountTheirBytes() {
        var m = Mappings()
        XCTAssertEqual(m.bytes, 0)
        let scattered = (0..<1_000).map { Int32($0 * 1_009) }
        for f in scattered { XCTAssertTrue(m.insert(7, f)) }
        // A table of 2,048 slots (at most half full) and a list of at least 1,000: a bitmap of frames up to
        // 1,008,991 would be 126 KiB.
        XCTAssertGreaterThanOrEqual(m.bytes, 2_048 * 4 + 1_000 * 4)
        XCTAssertLessThanOrEqual(m.bytes, 2_048 * 4 + 2_048 * 4)
        let table = m.bytes
        // Dense frames, mapped out of order: a bitmap, far smaller than the table of 16,384 slots.
        let dense = (0..<5_000).map { Int32(($0 * 7_919) % 5_000) }
        for f in dense { XCTAssertTrue(m.insert(8, f)) }
        XCTAssertLessThan(m.bytes - table, 8_192 * 4 + 2_048)
        for f in [Int32(0), 4_999, 1_234] {
            XCTAssertTrue(m.contains(8, f))
            XCTAssertFalse(m.insert(8, f), "mapped already")
        }
        XCTAssertFalse(m.contains(8, 5_000))
        XCTAssertFalse(m.contains(8, 1 << 20), "past the bitmap")
        XCTAssertTrue(m.insert(8, 1 << 20), "the bitmap grows to a frame past it")
        XCTAssertTrue(m.contains(8, 1 << 20))
        XCTAssertFalse(m.contains(7, 1), "another process's frames")
        XCTAssertTrue(m.contains(7, 1_009))
        let both = m.bytes
        XCTAssertEqual(m.frames(of: 8), dense + [1 << 20], "mapping order")
        XCTAssertEqual(m.removeAll(of: 7), scattered)
        XCTAssertEqual(m.bytes, both - table)
        XCTAssertEqual(m.peakBytes, both)
        _ = m.removeAll(of: 8)
        XCTAssertEqual(m.bytes, 0)
        m.release()
        XCTAssertEqual(m.peakBytes, both, "the peak outlives the release")
    }
}
