import Foundation
@testable import Shared
import XCTest

/// The pure parts of tenants and of a task's built environment.
final class TenantAndEnvironmentTests: XCTestCase {
    func testTenantNamesArePortableUserNames() {
        for good in ["etl", "ds-t1", "a.b_c", "_svc", String(repeating: "u", count: 32)] { XCTAssertNil(Limits.tenantProblem(good), good) }
        for bad in ["", "-rf", "a b", "a/b", "é", "a:b", String(repeating: "u", count: 33), "root\n"] {
            XCTAssertNotNil(Limits.tenantProblem(bad), bad.debugDescription)
        }
    }

    func testParserReadsTenantsAndOutputsAndTheTaskOverrideWins() throws {
        let w = try WorkflowParser.parse(Data(#"""
            {"name":"w","tenant":"etl","params":{"dt":"x"},"tasks":[
              {"name":"a","command":"true","outputs":["rows"]},
              {"name":"b","command":"true","tenant":"ops"}]}
            """#.utf8), source: "-")
        XCTAssertEqual(w.tenant(of: w.tasks[0]), "etl")
        XCTAssertEqual(w.tenant(of: w.tasks[1]), "ops")
        XCTAssertEqual(w.declaredOutputs(of: w.tasks[0]), ["dt", "rows"])
        XCTAssertEqual(w.declaredOutputs(of: w.tasks[1]), ["dt"])
        // Stored and read back (as a master does), the fields stay.
        XCTAssertEqual(try WorkflowDefinition.fromStored(w.canonicalJSON()), w)
    }

    func testBadTenantsAndOutputsAreRefusedNamingTaskAndField() {
        let cases: [(String, String)] = [
            (#"{"name":"w","tenant":1,"tasks":[{"name":"a","command":"true"}]}"#, "field 'tenant'"),
            (#"{"name":"w","tasks":[{"name":"a","tenant":"x y","command":"true"}]}"#, "task 'a', field 'tenant'"),
            (#"{"name":"w","tasks":[{"name":"a","outputs":["LD_PRELOAD"],"command":"true"}]}"#, "task 'a', field 'outputs': 'LD_PRELOAD' is reserved"),
            (#"{"name":"w","tasks":[{"name":"a","outputs":["x","x"],"command":"true"}]}"#, "task 'a', field 'outputs': lists 'x' twice"),
            (#"{"name":"w","tasks":[{"name":"a","outputs":{},"command":"true"}]}"#, "task 'a', field 'outputs': must be a list"),
        ]
        for (json, expected) in cases {
            XCTAssertThrowsError(try WorkflowParser.parse(Data(json.utf8), source: "-"), json) {
                XCTAssertTrue("\($0)".contains(expected), "\(json): \($0)")
            }
        }
    }

    /// Old queue items (no tenant, no outputs) still decode.
    func testQueueItemsWithoutTheNewFieldsDecode() throws {
        let old = #"{"taskInstanceId":1,"workflowInstanceId":2,"workflowName":"w","taskName":"t","attempt":1,"command":"true","env":{},"timeoutStrategy":"FAIL","master":"m:1"}"#
        let item = try JSONDecoder().decode(QueuedTask.self, from: Data(old.utf8))
        XCTAssertNil(item.tenant)
        XCTAssertNil(item.outputs)
    }

    func testBaseEnvironmentIsBuiltFromTheDocumentedNamesOnly() {
        let daemon = ["PATH": "/opt/bin:/usr/bin", "LANG": "C.UTF-8", "TZ": "UTC", "DS_ZK_AUTH": "u:p", "DS_ZK_AUTH_FILE": "/f",
                      "DS_DB": "/db", "https_proxy": "http://p", "OPENSSL_CONF": "/x", "KEEP": "1", "HOME": "/root", "USER": "root"]
        let env = TaskEnvironment.base(user: ("etl", "/home/etl"), passing: ["KEEP", "DS_ZK_AUTH"], from: daemon)
        XCTAssertEqual(env, ["PATH": "/opt/bin:/usr/bin", "LANG": "C.UTF-8", "TZ": "UTC", "KEEP": "1", "HOME": "/home/etl",
                             "USER": "etl", "LOGNAME": "etl", "SHELL": "/bin/sh"])
        XCTAssertEqual(TaskEnvironment.base(user: ("a", "/"), from: [:])["PATH"], TaskEnvironment.defaultPath)
        XCTAssertNotNil(TaskEnvironment.passProblem("DS_DB_PASSWORD_FILE"))
        XCTAssertNil(TaskEnvironment.passProblem("https_proxy"))
    }

    func testTenantOptionsGoBeforeTheEnvironmentMarkedByByteOne() throws {
        let message = try TaskSupervisor.spawnRequest(id: 7, command: "id", environment: ["A": "1"], logPath: "/l",
                                                      options: [("uid", "1000"), ("gid", "1000"), ("groups", "1000,27"), ("cwd", "/home/u")])
        XCTAssertEqual(Array(message.dropFirst(9)), Array("/l\0id\0\u{1}uid=1000\0\u{1}gid=1000\0\u{1}groups=1000,27\0\u{1}cwd=/home/u\0A=1\0".utf8))
        XCTAssertThrowsError(try TaskSupervisor.spawnRequest(id: 1, command: "id", environment: ["\u{1}uid": "0"], logPath: "/l"),
                             "an environment name must never read as an option")
    }

    /// A listed tenant that exists resolves to its ids; an unlisted one and root when not listed are refused.
    func testPolicyRefusesUnlistedAndUnlistedRoot() throws {
        let policy = TenantPolicy(allowed: ["nobody"], defaultTenant: nil)
        if case .success(let user?) = policy.user(for: "nobody") {
            XCTAssertEqual(user.uid, try XCTUnwrap(getpwnam("nobody")?.pointee.pw_uid))
        } else {
            XCTFail("nobody is listed and exists")
        }
        guard case .failure(let e1) = policy.user(for: "root") else { return XCTFail("root is not listed") }
        XCTAssertTrue(e1.description.contains("is not allowed on this worker"), e1.description)
        guard case .success(nil) = policy.user(for: nil) else { return XCTFail("no tenant, no default: the worker's own user") }
        guard case .failure(let e2) = TenantPolicy(defaultTenant: "root").user(for: nil) else { return XCTFail("root as an unlisted default") }
        XCTAssertTrue(e2.description.contains("is root"), e2.description)
    }
}
