import Foundation
@testable import Shared
import XCTest

/// The contexts file: what it may hold, what it is refused for, and the order flag > environment >
/// context > default. Tools and daemons are run with contexts in ContextEndToEndTests.
final class ContextsTests: XCTestCase {
    var folder: URL!
    var environment: [String: String] { ["XDG_CONFIG_HOME": folder.path, "HOME": folder.path] }
    var file: String { folder.path + "/ds/config" }

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("ds-contexts-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("ds"), withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(at: folder) }

    func write(_ text: String, mode: Int = 0o600) throws {
        try text.write(toFile: file, atomically: false, encoding: .utf8)
        chmod(file, mode_t(mode))
    }

    /// The message of the configuration error (exit 78) `body` throws; fails if it throws none.
    func configurationError(_ body: () throws -> Any, file: StaticString = #filePath, line: UInt = #line) -> String {
        do {
            _ = try body()
            XCTFail("no error", file: file, line: line)
        } catch InputError.configuration(let message) {
            XCTAssertEqual(ExitStatus.of(InputError.configuration(message)).rawValue, 78)
            return message
        } catch {
            XCTFail("\(error) is no configuration error", file: file, line: line)
        }
        return ""
    }

    static let twoContexts = """
        # my clusters
        current = "prod"

        [contexts.prod]
        zk = "zk1:2181,zk2:2181"
        zk_root = "/prod"
        db = "/srv/prod.db"
        home = "~/prod"

        [contexts.staging]
        zk = "zks:2181"
        zk_session_timeout = "20s"
        """

    func testNoFileChangesNothing() throws {
        try FileManager.default.removeItem(atPath: folder.path + "/ds")
        let c = try GlobalOptions.parse([]).resolve(environment)
        XCTAssertEqual(c.zkConnect, "127.0.0.1:2181")
        XCTAssertEqual(c.zkRoot, "/dolphinscheduler")
        let named = configurationError { try GlobalOptions.parse(["--context", "prod"]).resolve(self.environment) }
        XCTAssertTrue(named.contains("--context names context 'prod', but there is no contexts file \(file)"), named)
    }

    func testFlagBeatsEnvironmentBeatsContextBeatsDefault() throws {
        try write(Self.twoContexts)
        var c = try GlobalOptions.parse([]).resolve(environment)
        XCTAssertEqual(c.zkConnect, "zk1:2181,zk2:2181", "the current context")
        XCTAssertEqual(c.zkRoot, "/prod")
        XCTAssertEqual(c.databasePath, "/srv/prod.db")
        XCTAssertEqual(c.home, folder.path + "/prod", "~/ is the home folder")
        XCTAssertEqual(c.sessionTimeoutMillis, 10_000, "a key the context leaves out keeps its default")
        var env = environment
        env["DS_ZK_ROOT"] = "/env"
        c = try GlobalOptions.parse([]).resolve(env)
        XCTAssertEqual(c.zkRoot, "/env", "the environment beats the context")
        XCTAssertEqual(c.zkConnect, "zk1:2181,zk2:2181")
        c = try GlobalOptions.parse(["--zk-root", "/flag"]).resolve(env)
        XCTAssertEqual(c.zkRoot, "/flag", "a flag beats both")
        env["DS_CONTEXT"] = "staging"
        c = try GlobalOptions.parse([]).resolve(env)
        XCTAssertEqual(c.zkConnect, "zks:2181", "DS_CONTEXT beats 'current'")
        XCTAssertEqual(c.sessionTimeoutMillis, 20_000)
        XCTAssertEqual(c.zkRoot, "/env")
        c = try GlobalOptions.parse(["--context", "prod"]).resolve(env)
        XCTAssertEqual(c.zkConnect, "zk1:2181,zk2:2181", "--context beats DS_CONTEXT")
    }

    func testUnknownContextKeyAndMalformedFileExit78NamingThem() throws {
        try write(Self.twoContexts)
        var message = configurationError { try GlobalOptions.parse(["--context", "prdo"]).resolve(self.environment) }
        XCTAssertTrue(message.contains("--context names context 'prdo', which \(file) does not define; it defines 'prod', 'staging'"), message)
        try write(Self.twoContexts.replacingOccurrences(of: "current = \"prod\"", with: "current = \"gone\""))
        message = configurationError { try GlobalOptions.parse([]).resolve(self.environment) }
        XCTAssertTrue(message.contains("'current' names context 'gone'"), message)
        try write(Self.twoContexts.replacingOccurrences(of: "zk_root =", with: "zk_rot ="))
        message = configurationError { try GlobalOptions.parse([]).resolve(self.environment) }
        XCTAssertTrue(message.contains("unknown key 'zk_rot' in context 'prod' of \(file)"), message)
        try write(Self.twoContexts + "\nextra = 1\n")
        message = configurationError { try GlobalOptions.parse([]).resolve(self.environment) }
        XCTAssertTrue(message.contains("unknown key"), message)
        try write("current = \"prod\"\n[contexts.prod]\nzk = \"unterminated\n")
        message = configurationError { try GlobalOptions.parse([]).resolve(self.environment) }
        XCTAssertTrue(message.contains("is not valid TOML: line 3"), message)
        try write("[contexts.prod]\nzk = 2181\n")
        message = configurationError { try GlobalOptions.parse([]).resolve(self.environment) }
        XCTAssertTrue(message.contains("zk in context 'prod' of \(file) must be a non-empty string"), message)
        try write("current = \"p\"\n[contexts.p]\nzk_root = \"/a/../b\"\n")
        message = configurationError { try GlobalOptions.parse([]).resolve(self.environment) }
        XCTAssertTrue(message.hasPrefix("zk_root of context 'p' in \(file) '/a/../b' must not hold"), "a bad value names the context's key: \(message)")
        try write("[contexts.p]\nzk = \"a\\u001b[31m:1\"\n")
        message = configurationError { try GlobalOptions.parse([]).resolve(self.environment) }
        XCTAssertTrue(message.contains("without control characters"), message)
        try Data("[contexts.p]\nzk = \"a\0b:1\"\n".utf8).write(to: URL(fileURLWithPath: file))
        message = configurationError { try GlobalOptions.parse([]).resolve(self.environment) }
        XCTAssertTrue(message.contains("NUL"), message)
    }

    func testAFileOthersCanReadIsRefusedWhenItNamesCredentials() throws {
        for credential in ["zk_auth_file = \"/etc/ds/zk\"", "db_password_file = \"/etc/ds/pg\"", "db = \"postgres://ds:secret@db/ds\""] {
            try write("current = \"p\"\n[contexts.p]\n\(credential)\n[contexts.q]\n", mode: 0o640)
            let message = configurationError { try GlobalOptions.parse(["--context", "q"]).resolve(self.environment) }
            XCTAssertTrue(message.contains("names credentials (context 'p')") && message.contains("chmod 600 \(file)"), message)
            XCTAssertFalse(message.contains("secret"), "the password is never shown")
        }
        try write("[contexts.p]\ndb = \"postgres://ds@db/ds\"\n", mode: 0o644)
        XCTAssertNoThrow(try ContextFile.load(environment), "no credential: any mode")
        try write("[contexts.p]\ndb_password_file = \"/etc/ds/pg\"\n", mode: 0o600)
        XCTAssertNoThrow(try ContextFile.load(environment))
        // A password in a context's URL is in a file only its owner reads: not the warning about ps
        // that the same URL in DS_DB gets.
        try write("current = \"p\"\n[contexts.p]\ndb = \"postgres://ds:pw@db/ds\"\n", mode: 0o600)
        var warnings: [String] = []
        _ = try GlobalOptions.parse([]).resolve(environment) { warnings.append($0) }
        XCTAssertEqual(warnings, [])
        var env = environment
        env["DS_DB"] = "postgres://ds:pw@db/ds"
        _ = try GlobalOptions.parse([]).resolve(env) { warnings.append($0) }
        XCTAssertEqual(warnings.count, 1, "\(warnings)")
    }

    func testUseRewritesOnlyCurrentAndKeepsTheMode() throws {
        try write(Self.twoContexts, mode: 0o640)
        try XCTUnwrap(try ContextFile.load(environment)).use("staging")
        let after = try String(contentsOfFile: file, encoding: .utf8)
        XCTAssertEqual(after, Self.twoContexts.replacingOccurrences(of: "current = \"prod\"", with: "current = \"staging\""))
        let mode = try XCTUnwrap(FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? Int)
        XCTAssertEqual(mode, 0o640)
        let message = configurationError { try XCTUnwrap(try ContextFile.load(self.environment)).use("nope") }
        XCTAssertTrue(message.contains("it defines 'prod', 'staging'"), message)
        XCTAssertEqual(try String(contentsOfFile: file, encoding: .utf8), after, "nothing written")
        // No 'current' yet: one is added at the top; a name needing escapes stays one TOML string.
        try write("[contexts.\"a \\\"b\\\"\"]\nzk = \"h:1\"\n")
        try XCTUnwrap(try ContextFile.load(environment)).use("a \"b\"")
        XCTAssertEqual(try XCTUnwrap(try ContextFile.load(environment)).current, "a \"b\"")
        XCTAssertEqual(try GlobalOptions.parse([]).resolve(environment).zkConnect, "h:1")
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: folder.path + "/ds")
        XCTAssertEqual(leftovers, ["config"], "no temporary file left behind")
        // A link (to a dotfiles repository) stays a link; the file it points to gets the change.
        let real = folder.path + "/real-config"
        try FileManager.default.moveItem(atPath: file, toPath: real)
        try FileManager.default.createSymbolicLink(atPath: file, withDestinationPath: real)
        try XCTUnwrap(try ContextFile.load(environment)).use("a \"b\"")
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: file), real)
    }

    /// A relative link (how dotfiles managers link a config into place) stays a link too, and the
    /// file it leads to, through a second link, gets the change.
    func testUseFollowsRelativeAndChainedLinks() throws {
        let dot = folder.appendingPathComponent("dot/sub")
        try FileManager.default.createDirectory(at: dot, withIntermediateDirectories: true)
        try Self.twoContexts.write(toFile: dot.path + "/real", atomically: false, encoding: .utf8)
        chmod(dot.path + "/real", 0o600)
        try FileManager.default.createSymbolicLink(atPath: dot.path + "/hop", withDestinationPath: "real")
        try FileManager.default.createSymbolicLink(atPath: file, withDestinationPath: "../dot/sub/hop")
        try XCTUnwrap(try ContextFile.load(environment)).use("staging")
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: file), "../dot/sub/hop", "the link stays")
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: dot.path + "/hop"), "real")
        XCTAssertTrue(try String(contentsOfFile: dot.path + "/real", encoding: .utf8).contains("current = \"staging\""))
    }

    /// Whoever can change the file picks the servers the tools give their passwords to: a file
    /// others can write, or another user's, is refused whatever it holds.
    func testAFileOthersCanChangeOrAnotherUserOwnsIsRefused() throws {
        try write("[contexts.p]\nzk = \"h:1\"\n", mode: 0o602)
        var message = configurationError { try ContextFile.load(self.environment) as Any }
        XCTAssertTrue(message.contains("others can change the contexts file") && message.contains("chmod go-w"), message)
        try write("[contexts.p]\nzk = \"h:1\"\n", mode: 0o620)
        message = configurationError { try ContextFile.load(self.environment) as Any }
        XCTAssertTrue(message.contains("others can change"), message)
        try write("[contexts.p]\nzk = \"h:1\"\n", mode: 0o644)
        XCTAssertNotNil(try ContextFile.load(environment), "readable by others, holding no credential: fine")
        guard geteuid() == 0, let nobody = getpwnam("nobody") else { return }
        chown(file, nobody.pointee.pw_uid, nobody.pointee.pw_gid)
        message = configurationError { try ContextFile.load(self.environment) as Any }
        XCTAssertTrue(message.contains("not to the user running this tool"), message)
    }

    /// Credentials never leave through `ds-context list --json` or an error quoting a URL.
    func testPasswordsInAURLAreRedactedEverywhere() {
        XCTAssertEqual(DatabaseLocation.redacted("postgres://u:s3cret@h/d?sslmode=require"), "postgres://u:REDACTED@h/d?sslmode=require")
        XCTAssertEqual(DatabaseLocation.redacted("postgres://u@h/d?password=s3cret&sslmode=disable"), "postgres://u@h/d?password=REDACTED&sslmode=disable")
        XCTAssertEqual(DatabaseLocation.redacted("/var/lib/ds/ds.db"), "/var/lib/ds/ds.db")
        do {
            _ = try DatabaseLocation.parse("postgres://u@h/d?password=s3cret", environment: [:], warn: { _ in })
            XCTFail("a password parameter is refused")
        } catch {
            XCTAssertFalse("\(error)".contains("s3cret"), "\(error)")
        }
    }
}
