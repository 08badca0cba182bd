import ArgumentParser
import Foundation
@testable import Shared
import XCTest

/// `--db` / `DS_DB` (a SQLite path or a postgres:// URL), its password's sources and `--db-pool`.
final class DatabaseLocationTests: ScratchFolderTestCase {

    func settings(_ text: String, _ environment: [String: String] = [:], warnings: inout [String]) throws -> PostgresSettings {
        var seen: [String] = []
        let location = try DatabaseLocation.parse(text, environment: environment) { seen.append($0) }
        warnings = seen
        guard case .postgres(let s) = location else { throw XCTSkip("not a PostgreSQL location: \(location)") }
        return s
    }

    func settings(_ text: String, _ environment: [String: String] = [:]) throws -> PostgresSettings {
        var warnings: [String] = []
        let s = try settings(text, environment, warnings: &warnings)
        XCTAssertEqual(warnings, [], text)
        return s
    }

    /// The refusal (its message, its exit status) of a location, or a failure if it is accepted.
    func refusal(_ text: String, _ environment: [String: String] = [:], file: StaticString = #filePath, line: UInt = #line) -> (String, Int32) {
        do {
            let location = try DatabaseLocation.parse(text, environment: environment) { _ in }
            XCTFail("accepted \(text) as \(location)", file: file, line: line)
            return ("", 0)
        } catch {
            return ("\(error)", ExitStatus.of(error).rawValue)
        }
    }

    func testAPathIsSQLite() throws {
        for path in ["/var/lib/ds/ds.db", "ds.db", "./a b/ds.db", "folder/postgres:5432", "C:file"] {
            XCTAssertEqual(try DatabaseLocation.parse(path, environment: [:]) { _ in }, .sqlite(path: path))
        }
    }

    func testAPostgresURLIsReadWithItsDefaults() throws {
        let s = try settings("postgres://ds@db.example.com/ds")
        XCTAssertEqual(s, PostgresSettings(host: "db.example.com", port: 5432, user: "ds", database: "ds", password: nil, tls: .disable))
        let t = try settings("postgresql://ds_user@10.0.0.5:6543/scheduler?sslmode=verify-full")
        XCTAssertEqual([t.host, t.user, t.database], ["10.0.0.5", "ds_user", "scheduler"])
        XCTAssertEqual(t.port, 6543)
        XCTAssertEqual(t.tls, .verifyFull)
        XCTAssertEqual(try settings("POSTGRES://ds@h/ds?sslmode=require").tls, .require)
        XCTAssertEqual(try settings("postgres://ds@h/ds?sslmode=disable").tls, .disable)
    }

    func testIPv6AndPercentDecoding() throws {
        let s = try settings("postgres://d%40s%20user@[::1]:5433/my%2Ddb")
        XCTAssertEqual(s.host, "::1")
        XCTAssertEqual(s.port, 5433)
        XCTAssertEqual(s.user, "d@s user")
        XCTAssertEqual(s.database, "my-db")
        XCTAssertEqual(try settings("postgres://ds@[fe80::1:2]/ds").port, 5432)
        XCTAssertEqual(s.description, "postgres://d%40s%20user@[::1]:5433/my-db?sslmode=disable")
    }

    /// A password in the URL works, with one warning (it shows in ps); it never shows in messages.
    func testAPasswordInTheURLWorksWithAWarningAndIsNeverPrinted() throws {
        var warnings: [String] = []
        let s = try settings("postgres://ds:s3cr%2Fet@db/ds", ["DS_DB_PASSWORD_FILE": "/nonexistent"], warnings: &warnings)
        XCTAssertEqual(s.password, "s3cr/et")
        XCTAssertEqual(warnings.count, 1)
        XCTAssertTrue(warnings[0].contains("DS_DB_PASSWORD_FILE") && warnings[0].contains("ps"), warnings[0])
        XCTAssertFalse(s.description.contains("s3cr"), s.description)
        let (message, _) = refusal("postgres://ds:s3cret@db/ds?sslmode=prefer")
        XCTAssertFalse(message.contains("s3cret"), message)
        XCTAssertTrue(message.contains("REDACTED"), message)
        XCTAssertEqual(DatabaseLocation.redacted("postgres://ds:s3cret@db/ds"), "postgres://ds:REDACTED@db/ds")
        XCTAssertEqual(DatabaseLocation.redacted("postgres://ds@db/ds"), "postgres://ds@db/ds")
    }

    /// The password comes from DS_DB_PASSWORD_FILE (one trailing line break stripped), else PGPASSWORD.
    func testThePasswordComesFromTheFileElsePGPASSWORD() throws {
        let good = try file("pa ss:word\n")
        XCTAssertEqual(try settings("postgres://ds@db/ds", ["DS_DB_PASSWORD_FILE": good, "PGPASSWORD": "other"]).password, "pa ss:word")
        XCTAssertEqual(try settings("postgres://ds@db/ds", ["DS_DB_PASSWORD_FILE": try file("nobreak")]).password, "nobreak")
        XCTAssertEqual(try settings("postgres://ds@db/ds", ["PGPASSWORD": "env-pw"]).password, "env-pw")
        XCTAssertNil(try settings("postgres://ds@db/ds").password)
        // A file others can read is refused (exit 78) and names the fix, as DS_ZK_AUTH_FILE is.
        let open = try file("pw\n", mode: 0o644)
        let (message, status) = refusal("postgres://ds@db/ds", ["DS_DB_PASSWORD_FILE": open])
        XCTAssertEqual(status, 78)
        XCTAssertTrue(message.contains("DS_DB_PASSWORD_FILE") && message.contains("chmod 600 \(open)"), message)
        for (environment, expected) in [(["DS_DB_PASSWORD_FILE": ""], "is set but empty"),
                                        (["DS_DB_PASSWORD_FILE": directory.path + "/missing"], "cannot open"),
                                        (["DS_DB_PASSWORD_FILE": try file("two\nlines\n")], "control character"),
                                        (["DS_DB_PASSWORD_FILE": try file("\n")], "is empty"),
                                        (["DS_DB_PASSWORD_FILE": try file(String(repeating: "x", count: 5000))], "longer than")] {
            let (m, s) = refusal("postgres://ds@db/ds", environment)
            XCTAssertEqual(s, 78, m)
            XCTAssertTrue(m.contains(expected), "\(expected): \(m)")
        }
        // A SQLite location never reads the password file: a daemon given one for later is not refused.
        XCTAssertEqual(try DatabaseLocation.parse("/x/ds.db", environment: ["DS_DB_PASSWORD_FILE": open]) { _ in }, .sqlite(path: "/x/ds.db"))
    }

    /// Every malformed URL is refused with exit 64, naming what is wrong; other schemes keep their message.
    func testBadURLsAreRefusedNamingTheProblem() throws {
        let cases: [(String, String)] = [
            ("postgres://db/ds", "names no user"),
            ("postgres://@db/ds", "names no user"),
            ("postgres://ds@db", "names no database"),
            ("postgres://ds@db/", "names no database"),
            ("postgres://ds@/ds", "names no host"),
            ("postgres://ds@db:0/ds", "'0', not one from 1 to 65535"),
            ("postgres://ds@db:70000/ds", "'70000', not one from 1 to 65535"),
            ("postgres://ds@db:/ds", "not one from 1 to 65535"),
            ("postgres://ds@db:54x/ds", "not one from 1 to 65535"),
            ("postgres://ds@db/ds?sslmode=prefer", "sslmode='prefer'"),
            ("postgres://ds@db/ds?sslmode=", "give sslmode=disable, require or verify-full"),
            ("postgres://ds@db/ds?connect_timeout=3", "the parameter 'connect_timeout'"),
            ("postgres://ds@db/ds#x", "fragment"),
            ("postgres://ds@db/../etc", "control character or '/'"),
            ("postgres://ds@db/a%2Fb", "control character or '/'"),
            ("postgres://ds@db/a%00b", "NUL"),
            ("postgres://d%0As@db/ds", "control character"),
            ("postgres://ds@db/a%zz", "broken percent-encoding"),
            ("postgres://ds@db host/ds", "no host name or address"),
            ("postgres://ds@[::1/ds", "closing ']'"),
            ("postgres://ds@[]/ds", "no IPv6 address"),
            ("postgres://ds@[::1]x/ds", "not :PORT"),
            ("postgres://ds@db/" + String(repeating: "d", count: 64), "longer than PostgreSQL's 63 bytes"),
            ("postgres://" + String(repeating: "u", count: 64) + "@db/ds", "longer than PostgreSQL's 63 bytes"),
            ("postgres://ds@db/" + String(repeating: "d", count: 5000), "longer than 4096 bytes"),
            ("/tmp/a\0b", "NUL byte"),
            ("", "is empty"),
            ("mysql://ds@db/ds", "is a mysql:// URL"),
            ("https://example.com/x", "is a https:// URL"),
        ]
        for (text, expected) in cases {
            let (message, status) = refusal(text)
            XCTAssertEqual(status, 64, "\(text): \(message)")
            XCTAssertTrue(message.contains(expected), "\(text) should say \(expected): \(message)")
            XCTAssertTrue(message.hasPrefix("--db / DS_DB "), message)
        }
    }

    /// `--db-pool` / `DS_DB_POOL`: 1 to 200, default 10, the flag over the variable; carried in the configuration.
    func testThePoolSizeIsBoundedAndCarried() throws {
        XCTAssertEqual(try DatabasePoolSize.size(flag: nil, environment: [:]), 10)
        XCTAssertEqual(try DatabasePoolSize.size(flag: nil, environment: ["DS_DB_POOL": "25"]), 25)
        XCTAssertEqual(try DatabasePoolSize.size(flag: 3, environment: ["DS_DB_POOL": "25"]), 3)
        for bad in [0, -1, 201] {
            XCTAssertThrowsError(try DatabasePoolSize.size(flag: bad, environment: [:])) { error in
                XCTAssertEqual(ExitStatus.of(error), .usage)
                XCTAssertTrue("\(error)".contains("--db-pool \(bad)"), "\(error)")
            }
        }
        for bad in ["", "ten", "0", "1000", "5 "] {
            XCTAssertThrowsError(try DatabasePoolSize.size(flag: nil, environment: ["DS_DB_POOL": bad])) { error in
                XCTAssertEqual(ExitStatus.of(error), .usage)
                XCTAssertTrue("\(error)".contains("DS_DB_POOL"), "\(error)")
            }
        }
        let configuration = try GlobalOptions.parse(["--db", "/x/ds.db", "--db-pool", "7"]).resolve(["HOME": directory.path]) { _ in }
        XCTAssertEqual(configuration.databasePoolSize, 7)
        XCTAssertEqual(try DatabaseLocation.parse("postgres://ds@db:5433/ds", poolSize: 7, environment: [:]) { _ in },
                       .postgres(PostgresSettings(host: "db", port: 5433, user: "ds", database: "ds", poolSize: 7)))
        XCTAssertThrowsError(try GlobalOptions.parse(["--db-pool", "0"]).resolve(["HOME": directory.path]) { _ in }) { error in
            XCTAssertEqual(ExitStatus.of(error), .usage)
        }
        // A well-formed URL is read (nothing connects yet), with the pool size; a malformed one
        // names its own mistake.
        let postgres = try GlobalOptions.parse(["--db", "postgres://ds@db:5433/ds", "--db-pool", "3"]).resolve(["HOME": directory.path]) { _ in }
        XCTAssertEqual(postgres.database, .postgres(PostgresSettings(host: "db", port: 5433, user: "ds", database: "ds", poolSize: 3)))
        XCTAssertThrowsError(try GlobalOptions.parse(["--db", "postgres://ds@db:0/ds"]).resolve(["HOME": directory.path]) { _ in }) { error in
            XCTAssertTrue("\(error)".contains("not one from 1 to 65535"), "\(error)")
        }
        XCTAssertThrowsError(try GlobalOptions.parse(["--db", "mysql://x@y/z"]).resolve(["HOME": directory.path]) { _ in }) { error in
            XCTAssertEqual(ExitStatus.of(error), .usage)
        }
        let sqlite = try GlobalOptions.parse([]).resolve(["HOME": directory.path, "DS_HOME": directory.path]) { _ in }
        XCTAssertEqual(sqlite.database, .sqlite(path: directory.path + "/ds.db"))
        XCTAssertEqual(sqlite.databasePath, directory.path + "/ds.db")
    }
}
