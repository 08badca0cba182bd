import Foundation
import DSModel

// libFuzzer target `queue-key`: the bytes are queue node names, one a line.
//
// Properties: `TaskQueueKey(name)` returns a key or nil, never traps; a decoded key's
// `description` decodes to an equal key; and the names of the decoded keys sort as text
// (which is how workers order a queue) exactly as the keys sort with `<` (how a master's
// backlog orders them). Each key is also compared with keys at the edges of the id range, which
// random digits seldom hit.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTaskQueueKey(_ bytes: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let names = fuzzText(bytes, count).split(separator: "\n", omittingEmptySubsequences: false).prefix(64)
    let decoded = names.compactMap { TaskQueueKey(String($0)) }
    for key in decoded {
        fuzzRequire(TaskQueueKey(key.description) == key, "\(key.description) does not decode to the key it names")
    }
    let named = (decoded + (decoded.isEmpty ? [] : edgeKeys)).map { ($0, $0.description) }
    for (a, aName) in named.prefix(decoded.count) {
        for (b, bName) in named {
            fuzzRequire((aName < bName) == (a < b), "names \(aName) and \(bName) sort unlike their keys")
            fuzzRequire((aName == bName) == (a == b), "\(aName) and \(bName): equal names, unequal keys")
        }
    }
    return 0
}

private let edgeKeys: [TaskQueueKey] = [0, 1, 99_999_999_999, 999_999_999_999].flatMap { id in
    [Priority.highest, .lowest].map { TaskQueueKey(workflowPriority: $0, workflowInstanceId: id, taskPriority: $0, taskInstanceId: id) }
}
