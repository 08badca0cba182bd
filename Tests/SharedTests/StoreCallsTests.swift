import Foundation
@testable import Shared
import XCTest

extension StoreTests {
    /// Every public store call once, on this test's database (SQLite here, PostgreSQL in
    /// `PostgresStoreTests`): the SQL is written once for both, so each statement must run on both
    /// (types, placeholders, booleans, NULL ordering), and give the same answers.
    func testEveryStoreCallRunsAndAnswersAlike() async throws {
        let store = try Store(location: try location("calls"))
        try await store.ping()
        try await store.setPool("p", slots: 1, now: 1)
        let pools = try await store.pools()
        XCTAssertEqual(pools.map(\.name), ["p"])
        let missing = try await store.missingPools(["p", "q"])
        XCTAssertEqual(missing, ["q"])
        let free = try await store.freePoolSlots("p")
        XCTAssertEqual(free, 1)
        let w = WorkflowDefinition(name: "w", tasks: [TaskDefinition(name: "a", command: "true"), TaskDefinition(name: "b", command: "true")])
        let id = try await store.submit(w, params: ["k": "v"], timeZone: "UTC", now: 1).instanceId
        try await store.markWaiting()
        let waiting = try await store.instance(id)
        XCTAssertEqual(waiting?.state, .waitingThread)
        let claimed = try await store.claimCommand(host: "m:1", session: 5, now: 2)
        XCTAssertEqual(claimed?.instance.id, id)
        let blocker = try await store.serialBlocker(of: try XCTUnwrap(claimed?.instance))
        XCTAssertNil(blocker)

        var batch = SchedulingBatch()
        batch.newAttempts = [
            TaskInstanceRecord(workflowInstanceId: id, taskName: "a", attempt: 1, state: .submitted, priority: .high, workerGroup: "g", submitTime: 3, pool: "p"),
            TaskInstanceRecord(workflowInstanceId: id, taskName: "b", attempt: 1, state: .submitted, priority: .low, workerGroup: "g", submitTime: 3),
        ]
        var late = AlertContent(kind: .workflowTimeout, title: "late", time: 3)
        late.instance = id
        batch.alerts = [AlertRecord(late, dedupKey: "WORKFLOW_TIMEOUT:\(id):1")]
        let applied = try await store.apply(batch, session: 5)
        let (a, b) = (try XCTUnwrap(applied.inserted[0].id), try XCTUnwrap(applied.inserted[1].id))
        XCTAssertEqual(applied.lostOwnership, [])
        let groups = try await store.backlogGroups()
        XCTAssertEqual(groups, ["g"])
        let page = try await store.backlogPage(group: "g", after: nil, limit: 10)
        XCTAssertEqual(page.map(\.key.taskInstanceId), [a, b], "HIGH before LOW")
        let rest = try await store.backlogPage(group: "g", after: page[0].key, limit: 10)
        XCTAssertEqual(rest.map(\.key.taskInstanceId), [b])
        let names = try await store.attemptNames([a, b])
        XCTAssertEqual(names[a]?.task, "a")
        XCTAssertEqual(names[b]?.workflow, "w")
        let taken = try await store.takePoolSlots("p", ids: [a], session: 5)
        XCTAssertEqual(taken, [a])
        try await store.markDispatched([b], session: 5)
        let removedFrom = try await store.requestRemove(attempt: b, now: 4)
        XCTAssertEqual(removedFrom, id)
        let controls = try await store.pendingControls(session: 5)
        XCTAssertEqual(controls.map(\.removeAttempt), [b])
        let owners = try await store.ownerSessions()
        XCTAssertEqual(owners.sessions, [5])
        XCTAssertFalse(owners.unowned)
        let running = try await store.runningInstances()
        XCTAssertEqual(running.map(\.id), [id])
        let inFlight = try await store.inFlightAttempts()
        XCTAssertEqual(inFlight.map(\.id), [a, b])
        let states = try await store.instanceStates([id])
        XCTAssertEqual(states[id], .running)
        let owner = try await store.owner(ofAttempt: a)
        XCTAssertEqual(owner?.masterSession, 5)
        let mine = try await store.ownedInstances([id], session: 5, now: 4)
        XCTAssertEqual(mine.first?.attempts.map(\.id), [a, b])
        XCTAssertEqual(mine.first?.removals[b], controls.first?.commandID)

        var end = SchedulingBatch()
        end.outcomes = [AttemptOutcome(taskInstanceId: a, workflowInstanceId: id, state: .success, host: "w:1", pid: 42, logPath: "/l", exitCode: 0,
                                       outputJson: #"{"x":"1"}"#, message: nil, startTime: 4, endTime: 5)]
        end.superseded = [(b, id, TaskResultMessage.supervisorLostMessage, 5)]
        end.controls = controls.map { var c = $0; c.applied = true; return c }
        end.finishedInstances = [(id, .failure, 6)]
        _ = try await store.apply(end, session: 5)
        try await store.recordLateResult(attempt: a, note: "late", session: 99)  // ended: noted whoever asks
        let deaths = try await store.supervisorDeaths(instance: id, task: "b", run: 1)
        XCTAssertEqual(deaths, 1)
        let attempts = try await store.taskAttempts(of: id)
        XCTAssertEqual(attempts.map(\.state), [.success, .needFaultTolerance])
        XCTAssertEqual(attempts[0].pid, 42)
        XCTAssertEqual(attempts[0].message, "late")
        XCTAssertEqual(attempts.map(\.runsOnMaster), [false, false])
        let ended = try await store.endedChildren([id])
        XCTAssertEqual(ended.map(\.state), [.failure])

        let recovered = try await store.control(id, .recover, now: 7)
        XCTAssertEqual(recovered.kept, ["a"])
        XCTAssertEqual(recovered.run, 2)
        let again = try await store.claimCommand(host: "m:2", session: 6, now: 8)
        XCTAssertEqual(again?.keptAttempts.map(\.id), [a])
        let adopted = try await store.adoptOrphans(host: "m:3", session: 7, deadSessions: [6])
        XCTAssertEqual(adopted.adopted.map(\.instance.id), [id])
        XCTAssertEqual(adopted.previousOwners.map(\.session), [6])
        let stop = try await store.control(id, .stop, now: 9)
        XCTAssertEqual(stop.to, .readyStop)

        var query = InstanceQuery()
        query.state = .readyStop
        query.workflow = "w"
        query.since = 0
        let listed = try await store.instances(query)
        XCTAssertEqual(listed.map(\.id), [id])
        let definitions = try await store.definitions()
        XCTAssertEqual(definitions.map(\.instances), [1])
        let named = try await store.definitions(named: "w")
        XCTAssertEqual(named.map(\.tasks), [2])
        let stored = try await store.storedDefinition(named: "w", version: 1)
        XCTAssertEqual(stored?.version, 1)
        let definition = try await store.definition(of: try XCTUnwrap(listed.first))
        XCTAssertEqual(definition.tasks.count, 2)

        try await store.recordAlerts([AlertRecord(late, dedupKey: "WORKFLOW_TIMEOUT:\(id):1")])
        let alerts = try await store.alerts(of: id)
        XCTAssertEqual(alerts.count, 1, "one row per event")
        let lease = try await store.leaseAlert(owner: "m:3", now: 10, lease: 30)
        XCTAssertEqual(lease?.id, alerts.first?.id)
        let finished = try await store.finishAlert(try XCTUnwrap(lease?.id), owner: "m:3", sent: false, error: "no", retryAt: 20, now: 11)
        XCTAssertTrue(finished)
        let allAlerts = try await store.alerts()
        XCTAssertEqual(allAlerts.map(\.state), ["PENDING"])

        let schedule = try await store.addSchedule(ScheduleRecord(workflow: "w", cron: "0 * * * * ?", timeZone: "UTC", createdAt: 0), now: 0)
        let due = try await store.dueSchedules(now: 30)
        XCTAssertEqual(due.due, [])
        XCTAssertEqual(due.soonest, 60)
        let offline = try await store.setSchedule(try XCTUnwrap(schedule.id), online: false, now: 30)
        XCTAssertNil(offline?.nextFireTime)
        let online = try await store.setSchedule(try XCTUnwrap(schedule.id), online: true, now: 30)
        XCTAssertEqual(online?.nextFireTime, 60)
        let fired = try await store.fire(schedule: try XCTUnwrap(schedule.id), now: 61, misfireThreshold: 5)
        XCTAssertEqual(fired.fired.map(\.time), [60])
        let ofSchedule = try await store.instances(schedule: schedule.id, latest: 5)
        XCTAssertEqual(ofSchedule.map(\.scheduleTime), [60])
        let (backfill, ids) = try await store.backfill(BackfillRecord(workflow: "w", fromDate: "2026-01-01", toDate: "2026-01-02", parallel: 1,
                                                                      timeZone: "UTC", createdAt: 0), times: [100, 200], priority: nil, params: [:], now: 0)
        let ofBackfill = try await store.instances(backfill: backfill.id)
        XCTAssertEqual(ofBackfill.map(\.id), ids)
        let schedules = try await store.schedules()
        XCTAssertEqual(schedules.count, 1)
        let removed = try await store.removeSchedule(try XCTUnwrap(schedule.id))
        XCTAssertTrue(removed)
        let gone = try await store.schedule(try XCTUnwrap(schedule.id))
        XCTAssertNil(gone)
        let poolRemoved = try await store.removePool("p")
        XCTAssertTrue(poolRemoved)
        let commands = try await store.countRows(of: "command")
        XCTAssertEqual(commands, 4, "the stop, the scheduled start and the backfill's two")
        let readyStop = try await store.countInstances(in: .readyStop)
        XCTAssertEqual(readyStop, 1)
    }
}
