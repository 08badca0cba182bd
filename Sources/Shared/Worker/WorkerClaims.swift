import Foundation
import Logging

extension WorkerDaemon {
    // MARK: Claiming

    /// Claims queue items in key order, dealt out among the group's workers (see `ClaimShare`),
    /// while a slot is free. Each claim is one `multi`: delete the queue node and create
    /// `/running/<id>`; whoever wins the multi owns the task. Claims for several free slots go out
    /// together, and the queue is listed again only when the last listing is used up, or when it
    /// changed and 25 ms have passed (so newly queued higher-priority items are seen, without
    /// listing the whole queue for every claim).
    func claimWhileFree(group: inout ThrowingDiscardingTaskGroup<Error>) async throws {
        while running.count < options.slots {
            if candidates.isEmpty || (queueChanged && ContinuousClock.now - lastListing > .milliseconds(25)) {
                guard queueChanged || candidates.isEmpty else { return }
                try await listQueues()
            }
            guard !candidates.isEmpty else { return }
            let share = headIsStale ? .alone : shares[candidates.first!.group] ?? .alone
            headIsStale = false
            let (batch, used) = share.pick(from: candidates, wanted: options.slots - running.count)
            candidates = candidates.dropFirst(used)
            // Every claim's outcome is kept, even when another claim of the batch failed: a claim
            // that went through must run, or its task would hang on this worker.
            let outcomes = await withTaskGroup(of: ClaimOutcome.self) { claims in
                for candidate in batch {
                    claims.addTask { await self.claim(candidate.key, in: candidate.group) }
                }
                var all: [ClaimOutcome] = []
                for await c in claims { all.append(c) }
                return all
            }
            var failure: Error?
            for outcome in outcomes {
                switch outcome {
                case .won(let task, let logPath):
                    running[task.taskInstanceId] = .some(nil)
                    group.addTask { await self.execute(task, logPath: logPath) }
                case .uncertain(let task, let logPath, let error):
                    running[task.taskInstanceId] = .some(nil)
                    uncertainClaims[task.taskInstanceId] = (task, logPath)
                    failure = error  // the loop settles it after a pause
                case .lost:
                    break
                case .refused(let key, let group):
                    refusedItems.insert(group + "/" + key)
                case .failed(let error):
                    failure = error
                }
            }
            if let failure { throw failure }
        }
    }

    /// Claims whose answer was lost: a `/running` node of this session means the claim went
    /// through (run the task); none means it did not (the item is still queued, or another worker
    /// has it). Decided only from a read that succeeded.
    func settleUncertainClaims(group: inout ThrowingDiscardingTaskGroup<Error>) async throws {
        for (id, claim) in uncertainClaims {
            let mine = try await zk.exists(paths.running(id))?.ephemeralOwner == zk.sessionID
            uncertainClaims.removeValue(forKey: id)
            if mine {
                logger.notice("task \(id): the claim whose answer was lost went through; running it")
                group.addTask { await self.execute(claim.task, logPath: claim.logPath) }
            } else {
                running.removeValue(forKey: id)
                killRequested.remove(id)
                logs.forget(id)
            }
        }
    }

    enum ClaimOutcome: Sendable {
        case won(QueuedTask, String)
        /// Another worker took it first, or it is gone.
        case lost
        /// The node is no task: skipped from now on.
        case refused(String, String)
        /// The multi got no answer: it may have gone through.
        case uncertain(QueuedTask, String, Error)
        /// Nothing was claimed (the item could not be read).
        case failed(Error)
    }

    func listQueues() async throws {
        if peersChanged {
            peersChanged = false
            for g in options.groups {
                let names = try await zk.children(paths.workerGroup(g)) { [wakeups] _ in wakeups.mark(.peersChanged) }
                shares[g] = ClaimShare(me: options.identity, registered: names)
            }
        }
        queueChanged = false
        lastListing = .now
        var all: [(key: String, group: String)] = []
        var listed: Set<String> = []
        for g in options.groups {
            // The watch is re-armed by every listing; a change marks the queue dirty again.
            let names = try await zk.children(paths.queue(g)) { [wakeups] _ in wakeups.mark(.queueChanged) }
            for name in names where !refusedItems.contains(g + "/" + name) {
                if TaskQueueKey(name) == nil {
                    refusedItems.insert(g + "/" + name)
                    logger.error("queue node \(paths.queue(g))/\(name) is not named as a task; leaving it for an operator")
                } else {
                    all.append((name, g))
                }
            }
            listed.formUnion(names.map { g + "/" + $0 })
        }
        refusedItems.formIntersection(listed)
        all.sort { $0.key < $1.key }
        candidates = all[...]
        headIsStale = lastHead != nil && all.first?.key == lastHead
        lastHead = all.first?.key
    }

    /// One claim: read the item, then delete it (at the version read) and create the running node
    /// in one multi. Whoever wins the multi owns the task.
    nonisolated func claim(_ key: String, in group: String) async -> ClaimOutcome {
        let queuePath = paths.queue(group) + "/" + key
        let task: QueuedTask
        let version: Int32
        let created: Int64
        do {
            let (data, stat) = try await zk.getData(queuePath)
            task = try WireJSON.decode(QueuedTask.self, data)
            version = stat.version
            created = stat.createdMillis
        } catch ZooKeeperError.noNode {
            return .lost
        } catch is DecodingError {
            logger.error("queue item \(queuePath) is not a task; leaving it for an operator")
            return .refused(key, group)
        } catch {
            return .failed(error)
        }
        let logPath = logPath(for: task)
        let claim = RunningTask(worker: options.identity, pid: nil, startTime: ProcessStats.now(), logPath: logPath,
                                listen: options.listen)
        // Served (empty) from the moment the running node names this worker: a ds-logs that reads
        // the node at once finds the log, not a 404. Forgotten if the claim does not go through.
        let fresh = logs.began(task.taskInstanceId, workflowInstance: task.workflowInstanceId)
        let outcome = await multiClaim(task, queuePath: queuePath, version: version, claim: claim, logPath: logPath, key: key, group: group)
        switch outcome {
        case .won:
            metrics.queueWait.recordMilliseconds(max(0, Int64(Date().timeIntervalSince1970 * 1000) - created))
        case .uncertain:
            break  // settled later: forgotten then if it did not go through
        default:
            if fresh { logs.forget(task.taskInstanceId) }  // not one this worker already runs
        }
        return outcome
    }

    nonisolated func multiClaim(_ task: QueuedTask, queuePath: String, version: Int32, claim: RunningTask, logPath: String,
                                        key: String, group: String) async -> ClaimOutcome {
        do {
            try await zk.multi([
                zk.fenceCheck(paths),
                .delete(path: queuePath, version: version),
                .create(path: paths.running(task.taskInstanceId), data: WireJSON.encode(claim), mode: .ephemeral),
            ])
        } catch let error as ZooKeeperError where ZooKeeperClient.isFenced(error) {
            return .failed(WorkerError.failedOver(options.identity))  // declared dead while it hung
        } catch let error as ZooKeeperError where error.cause == .nodeExists(paths.running(task.taskInstanceId)) {
            // A claim deletes the item in the same multi that creates the running node: both at
            // once is no race but a node written past the tools. Said once and skipped, not retried.
            logger.error("queue item \(queuePath): task \(task.taskInstanceId) already has a running node; leaving it for an operator")
            return .refused(key, group)
        } catch let error as ZooKeeperError where [.noNode(queuePath), .badVersion(queuePath)].contains(error.cause) {
            return .lost  // another worker won this item
        } catch let error as ZooKeeperError where error.cause != .sessionExpired && error.cause != .closing {
            return .uncertain(task, logPath, error)
        } catch {
            return .failed(error)
        }
        return .won(task, logPath)
    }

    nonisolated func logPath(for task: QueuedTask) -> String {
        // Only ids: names are shown, never trusted as path components.
        "\(options.logDirectory)/\(task.workflowInstanceId)/\(task.taskInstanceId).log"
    }
}
