import Foundation
import XCTest

/// A test case with a fresh folder of its own, removed afterwards, and small files made in it.
class ScratchFolderTestCase: XCTestCase {
    var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("ds-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(at: directory)
    }

    /// A new file in the folder holding `contents`, with `mode`; its path.
    func file(_ contents: String, mode: mode_t = 0o600) throws -> String {
        let url = directory.appendingPathComponent(UUID().uuidString)
        try contents.write(to: url, atomically: true, encoding: .utf8)
        chmod(url.path, mode)
        return url.path
    }
}
