import Foundation
import DSModel

// libFuzzer target `workflow`: the bytes are a workflow file.
//
// Properties: `WorkflowParser.parse` returns or throws, never traps. What it accepts has unique
// task names, known dependencies and no cycle, and survives the trip through its stored form:
// the canonical JSON parses again (compact and pretty) and reads back through `fromStored` (as a
// master does) to an equal definition, and writes the same text again. `DurationText.parse`
// of the bytes as text is nil or a finite number of seconds, at least 0.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzWorkflowParser(_ bytes: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let data = bytes.map { Data(bytes: $0, count: count) } ?? Data()
    if count <= 64, let seconds = DurationText.parse(fuzzText(bytes, count)) {
        fuzzRequire(seconds.isFinite && seconds >= 0, "DurationText.parse gave \(seconds)")
    }
    let workflow: WorkflowDefinition
    do {
        workflow = try WorkflowParser.parse(data, source: "fuzz")
    } catch {
        fuzzRequire(!"\(error)".isEmpty, "a rejection without a message")
        return 0
    }
    checkAcceptedWorkflow(workflow)
    return 0
}

private func checkAcceptedWorkflow(_ workflow: WorkflowDefinition) {
    let names = workflow.tasks.map(\.name)
    fuzzRequire(!names.isEmpty && Set(names).count == names.count, "accepted task names \(names)")
    for task in workflow.tasks {
        fuzzRequire(task.deps.allSatisfy(Set(names).contains), "task '\(task.name)' accepted with unknown deps \(task.deps)")
    }
    fuzzRequire(TaskGraph(workflow.tasks).findCycle() == nil, "accepted a cycle")

    let stored = workflow.canonicalJSON()
    for text in [stored, workflow.canonicalJSON(pretty: true)] {
        do {
            let again = try WorkflowParser.parse(Data(text.utf8), source: "canonical")
            fuzzRequire(again == workflow, "canonical JSON parses to another definition:\n\(text)\n\(again)\n\(workflow)")
        } catch {
            fuzzRequire(false, "canonical JSON is rejected: \(error)\n\(text)")
        }
    }
    do {
        let read = try WorkflowDefinition.fromStored(stored)
        fuzzRequire(read == workflow, "fromStored reads another definition:\n\(stored)\n\(read)\n\(workflow)")
        fuzzRequire(read.canonicalJSON() == stored, "canonical JSON is not stable:\n\(stored)\n\(read.canonicalJSON())")
    } catch {
        fuzzRequire(false, "fromStored rejects canonical JSON: \(error)\n\(stored)")
    }
}
