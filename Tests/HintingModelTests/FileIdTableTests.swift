@testable import HintingModel
import XCTest

/// The model's file ids on hand-made (dev, ino) pairs, against dictionaries: ids interned once, found
/// again across the tables' doublings, and each inode's last file.
final class FileIdTableTests: XCTestCase {
    func testFileIdsAndLastFileOfEachInodeAnswerAsDictionaries() {
        let m = HintingModel(options: ReplayOptions())
        var ids: [String: UInt32] = ["0 0": 0]
        var lastOf: [UInt64: UInt32] = [0: 0]
        var r: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next(_ n: UInt64) -> UInt64 { r ^= r << 13; r ^= r >> 7; r ^= r << 17; return r % n }
        for _ in 0..<20_000 {
            // Few devices and inode numbers shared between them: the same inode on several devices.
            let dev = UInt32(next(4)), ino = next(3_000)
            let id = m.fileID(dev: dev, ino: ino)
            if let known = ids["\(dev) \(ino)"] { XCTAssertEqual(id, known) } else {
                XCTAssertEqual(Int(id), ids.count, "ids are handed out in order")
                ids["\(dev) \(ino)"] = id
            }
            lastOf[ino] = id
            XCTAssertEqual(m.knownFile(dev: dev, ino: ino), id)
            let probe = next(3_000)
            XCTAssertEqual(m.lastFileOf(ino: probe), lastOf[probe], "inode \(probe)")
        }
        XCTAssertGreaterThan(ids.count, 5_000, "the tables doubled")
        for (k, id) in ids {
            let p = k.split(separator: " ")
            XCTAssertEqual(m.knownFile(dev: UInt32(p[0])!, ino: UInt64(p[1])!), id)
        }
        XCTAssertNil(m.knownFile(dev: 9, ino: 1), "a file never learned")
        XCTAssertLessThan(m.cacheBytes.files, ids.count * 64, "per-file tables")
    }
}
