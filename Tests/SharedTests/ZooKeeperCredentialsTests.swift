import Foundation
@testable import Shared
import XCTest

/// `--zk-auth`, `DS_ZK_AUTH` and `DS_ZK_AUTH_FILE`: parsing, precedence, the file's forms, and
/// the digest identity ZooKeeper derives from them.
final class ZooKeeperCredentialsTests: ScratchFolderTestCase {

    /// A credentials file others can read (or write) is refused, naming the fix, whatever its content.
    func testAuthFileReadableByOthersIsRefused() throws {
        for mode: mode_t in [0o644, 0o640, 0o604, 0o620, 0o666] {
            let path = try file("alice:pw\n", mode: mode)
            let message = refusal(["DS_ZK_AUTH_FILE": path])
            XCTAssertTrue(message.contains("can be read or written by others") && message.contains("chmod 600 \(path)"), message)
        }
        XCTAssertEqual(try ZooKeeperCredentials.resolve(flag: nil, environment: ["DS_ZK_AUTH_FILE": try file("alice:pw\n", mode: 0o400)])?.user,
                       "alice")
    }

    /// The configuration error a resolution ends with, or a failure if it succeeds.
    func refusal(flag: String? = nil, _ environment: [String: String], file: StaticString = #filePath, line: UInt = #line) -> String {
        do {
            let credentials = try ZooKeeperCredentials.resolve(flag: flag, environment: environment)
            XCTFail("accepted \(String(describing: credentials))", file: file, line: line)
            return ""
        } catch let error as InputError {
            XCTAssertEqual(error.exitStatus, .config, file: file, line: line)
            return error.description
        } catch {
            XCTFail("unexpected \(error)", file: file, line: line)
            return ""
        }
    }

    // Expected digests from `printf %s TEXT | openssl dgst -sha1 -binary | base64`.
    func testSHA1MatchesKnownDigests() {
        let vectors = ["": "2jmj7l5rSw0yVb/vlWAYkK/YBwk=", "abc": "qZk+NkcGgWq6PiVxeFDCbJzQ2J0=",
                       "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq": "hJg+RBw70m66rkqh+VEp5eVGcPE=",
                       String(repeating: "a", count: 1000): "KR6abGaZSUm1e6XmUDYemPw2sbo="]
        for (text, digest) in vectors {
            XCTAssertEqual(SHA1.digest(Data(text.utf8)).base64EncodedString(), digest, "SHA-1 of \(text.prefix(20))")
        }
    }

    func testDigestIdentityIsUserAndHashOfTheWholePair() throws {
        let alice = try ZooKeeperCredentials(parsing: "alice:s3cret", source: "--zk-auth")
        XCTAssertEqual(alice.user, "alice")
        XCTAssertEqual(alice.digestID, "alice:uLxpHc/uhT86OXPoSjJTp1M8CJY=")
        XCTAssertEqual(alice.acl.description, "digest:alice:uLxpHc/uhT86OXPoSjJTp1M8CJY=:cdrwa")
        XCTAssertFalse(alice.description.contains("s3cret"), "the password must never be printed: \(alice)")
        // The user ends at the first colon; the password may hold more.
        let colons = try ZooKeeperCredentials(parsing: "bob:pa:ss", source: "--zk-auth")
        XCTAssertEqual(colons.user, "bob")
        XCTAssertNotEqual(colons.digestID, try ZooKeeperCredentials(parsing: "bob:pa", source: "--zk-auth").digestID)
    }

    func testMalformedCredentialsAreConfigurationErrors() {
        for bad in ["", "alice", ":pw", "alice:", "ali\nce:pw", "alice:pw\n", String(repeating: "x", count: 1100) + ":pw"] {
            let message = refusal(flag: bad, [:])
            XCTAssertTrue(message.hasPrefix("--zk-auth ") && message.contains("user:password"), message)
        }
    }

    func testFlagOverEnvironmentOverFile() throws {
        let good = try file("fromfile:pw\n")
        func user(_ flag: String?, _ env: [String: String]) throws -> String? {
            try ZooKeeperCredentials.resolve(flag: flag, environment: env)?.user
        }
        XCTAssertNil(try user(nil, [:]), "nothing configured: unauthenticated")
        XCTAssertEqual(try user(nil, ["DS_ZK_AUTH_FILE": good]), "fromfile")
        XCTAssertEqual(try user(nil, ["DS_ZK_AUTH": "fromenv:pw", "DS_ZK_AUTH_FILE": good]), "fromenv")
        XCTAssertEqual(try user("fromflag:pw", ["DS_ZK_AUTH": "fromenv:pw", "DS_ZK_AUTH_FILE": good]), "fromflag")
        // A source that is not used is not read: a flag wins over a broken environment.
        XCTAssertEqual(try user("fromflag:pw", ["DS_ZK_AUTH": "broken", "DS_ZK_AUTH_FILE": "/nonexistent"]), "fromflag")
        XCTAssertEqual(try user(nil, ["DS_ZK_AUTH": "fromenv:pw", "DS_ZK_AUTH_FILE": "/nonexistent"]), "fromenv")
        // The one in use must be valid: an empty DS_ZK_AUTH never means "run unauthenticated".
        XCTAssertTrue(refusal(["DS_ZK_AUTH": "", "DS_ZK_AUTH_FILE": good]).contains("DS_ZK_AUTH is empty"))
    }

    func testAuthFileFormsAndTheirErrors() throws {
        let withCRLF = try file("carol:pw\r\n")
        XCTAssertEqual(try ZooKeeperCredentials.resolve(flag: nil, environment: ["DS_ZK_AUTH_FILE": withCRLF])?.digestID,
                       try ZooKeeperCredentials(parsing: "carol:pw", source: "test").digestID)
        let missing = directory.appendingPathComponent("missing").path
        let cases: [(String, String)] = [
            (missing, "cannot open: No such file or directory"),
            (try file(""), "is empty"),
            (try file("\n"), "is empty"),
            (try file("no-colon\n"), "is not of the form user:password"),
            (try file("alice:pw\nbob:pw\n"), "more than one line"),
            (directory.path, "is a folder; name a file holding user:password"),
        ]
        for (path, expected) in cases {
            let message = refusal(["DS_ZK_AUTH_FILE": path])
            XCTAssertTrue(message.contains(path) && message.contains(expected), "\(path): \(message)")
        }
        XCTAssertTrue(refusal(["DS_ZK_AUTH_FILE": ""]).contains("DS_ZK_AUTH_FILE is set but empty"))
    }

    func testGlobalOptionsCarryTheCredentials() throws {
        let configuration = try GlobalOptions.parse([]).resolve(["HOME": directory.path, "DS_ZK_AUTH_FILE": try file("dave:pw\n")])
        XCTAssertEqual(configuration.zkCredentials?.user, "dave")
        XCTAssertNil(try GlobalOptions.parse([]).resolve(["HOME": directory.path]).zkCredentials)
    }

    func testOnlyTheIdentityWithEnoughPermissionsIsLetIn() throws {
        let alice = try ZooKeeperCredentials(parsing: "alice:s3cret", source: "test")
        func intruders(_ acl: [ZooKeeperACL]) -> [String] { TreeAccess.intruders(in: acl, for: alice).map(\.description) }
        XCTAssertEqual(intruders([alice.acl]), [])
        XCTAssertEqual(intruders([ZooKeeperACL(scheme: "digest", id: alice.digestID, permissions: [.read, .write, .create, .delete])]), [],
                       "admin is not needed")
        XCTAssertEqual(intruders([ZooKeeperACL(scheme: "world", id: "anyone", permissions: .all)]), ["world:anyone:cdrwa"])
        XCTAssertEqual(intruders([alice.acl, ZooKeeperACL(scheme: "world", id: "anyone", permissions: .read)]), ["world:anyone:r"])
        XCTAssertEqual(intruders([alice.acl, ZooKeeperACL(scheme: "digest", id: "bob:xyz", permissions: .all)]), ["digest:bob:xyz:cdrwa"])
        XCTAssertEqual(intruders([ZooKeeperACL(scheme: "digest", id: alice.digestID, permissions: .read)]),
                       ["digest:\(alice.digestID):r"], "too little for the identity itself")
        XCTAssertEqual(intruders([alice.acl, ZooKeeperACL(scheme: "world", id: "anyone", permissions: [])]), [],
                       "an entry that grants nothing lets nobody in")
    }
}
