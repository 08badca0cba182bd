import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// How a worker keeps every process of a task within reach: the cgroups each task runs in, chosen
/// once at the worker's start (and logged). Every task gets `<root>/task-<id>` in each hierarchy
/// used; the task-supervisor makes, joins, limits, kills and removes them (see its cgroup.c).
///
/// - cgroup v2 with the memory and cpu controllers (`--cgroup-root`, a delegated subtree): one
///   directory per task; `cgroup.kill` kills it, `memory.max` and `cpu.max` limit it.
/// - cgroup v1 controllers beside a v2 hierarchy without controllers (hybrid hosts): the v2
///   directory is only for `cgroup.kill` (atomic, reaches a process forking as it dies), the v1
///   memory and cpu directories hold the limits. Without v2 `cgroup.kill`, the v1 freezer
///   directory is frozen, every pid in it killed, then thawed.
/// - none: the supervisor, a child subreaper, kills what a finished task left behind once it is
///   adopted; limits cannot be enforced, and a task that asks for one fails.
public struct Containment: Sendable {
    /// What the worker logs at start.
    public let summary: String
    /// This worker's directory in each hierarchy used; the kill hierarchy first.
    let roots: [String]
    public let limitsMemory: Bool
    public let limitsCPU: Bool

    public static let none = Containment(summary: "none: subreaper only", roots: [], limitsMemory: false, limitsCPU: false)

    public var isNone: Bool { roots.isEmpty }

    /// The directories of task `id`, passed to the supervisor as `cgroup=` options.
    public func directories(task id: Int64) -> [String] { roots.map { "\($0)/task-\(id)" } }

    /// This worker's directory name: its identity, and a tag of its cluster (`cluster`: the
    /// ZooKeeper servers and root). Two clusters on one host may each have a worker 127.0.0.1:1234;
    /// sharing a directory, each would kill the other's tasks (a start kills what it finds there).
    public static func directoryName(worker: String, cluster: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325 // FNV-1a: stable across runs and builds, unlike Hasher
        for byte in cluster.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
        let name = String(worker.map { $0.isLetter || $0.isNumber || "._:-".contains($0) ? $0 : "_" })
        return name + "@" + String(hash, radix: 16)
    }

    /// Finds what this host offers. `root` is `--cgroup-root` (default: `ds` in the v2
    /// hierarchy); `worker` names this worker's directory under it (see `directoryName`).
    public static func detect(root: String?, worker: String) throws -> Containment {
        let mounts = (try? String(contentsOfFile: "/proc/self/mounts", encoding: .utf8)) ?? ""
        var v2: String?
        var v1: [String: String] = [:]
        for line in mounts.split(separator: "\n") {
            let f = line.split(separator: " ")
            guard f.count >= 4 else { continue }
            if f[2] == "cgroup2" && v2 == nil { v2 = String(f[1]) }
            if f[2] == "cgroup" {
                for option in f[3].split(separator: ",") where ["memory", "cpu", "freezer", "pids"].contains(option) {
                    v1[String(option)] = String(f[1])
                }
            }
        }
        // v1: under this process's own cgroup of each controller, so enclosing limits hold for tasks too.
        var own: [String: String] = [:]
        for line in ((try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8)) ?? "").split(separator: "\n") {
            let f = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard f.count == 3 else { continue }
            for controller in f[1].split(separator: ",") { own[String(controller)] = String(f[2]) }
        }
        var killDir: String?
        var v2Controllers: Set<Substring> = []
        if let base = root ?? v2.map({ $0 + "/ds" }) {
            let dir = base + "/" + worker
            if (try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)) != nil,
               access(dir + "/cgroup.kill", F_OK) == 0 {
                killDir = dir
                // Limits in v2 need the controllers handed down to the task directories.
                let offered = (try? String(contentsOfFile: base + "/cgroup.controllers", encoding: .utf8)) ?? ""
                v2Controllers = Set(offered.split(whereSeparator: \.isWhitespace)).intersection(["memory", "cpu", "pids"])
                for d in [base, dir] where !v2Controllers.isEmpty {
                    let enable = v2Controllers.map { "+" + $0 }.joined(separator: " ")
                    _ = try? enable.write(toFile: d + "/cgroup.subtree_control", atomically: false, encoding: .utf8)
                }
                let handed = (try? String(contentsOfFile: dir + "/cgroup.subtree_control", encoding: .utf8)) ?? ""
                v2Controllers = Set(handed.split(whereSeparator: \.isWhitespace))
            } else if root != nil {
                throw InputError.configuration("--cgroup-root \(base): cannot make \(dir) with cgroup.kill in it; give a delegated cgroup v2 directory this worker may write")
            }
        }
        if let killDir, v2Controllers.contains("memory") {
            return Containment(summary: "cgroup v2 at \(killDir)", roots: [killDir], limitsMemory: true,
                               limitsCPU: v2Controllers.contains("cpu"))
        }
        var v1Roots: [String] = []
        var used: [String] = []
        for controller in ["freezer", "memory", "cpu", "pids"] {
            guard let mount = v1[controller] else { continue }
            // cgroup.kill replaces the freezer where there is one.
            if controller == "freezer" && killDir != nil { continue }
            let parent = own[controller].map { $0 == "/" ? "" : $0 } ?? ""
            let dir = mount + parent + "/ds/" + worker
            guard (try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)) != nil else { continue }
            v1Roots.append(dir)
            used.append(controller)
        }
        let memory = used.contains("memory"), cpu = used.contains("cpu")
        if let killDir {
            let what = used.isEmpty ? "no v1 controllers" : "cgroup v1 (\(used.joined(separator: ", ")))"
            return Containment(summary: "\(what) + v2 cgroup.kill at \(killDir)", roots: [killDir] + v1Roots, limitsMemory: memory, limitsCPU: cpu)
        }
        if used.contains("freezer") {
            return Containment(summary: "cgroup v1 (\(used.joined(separator: ", "))) at \(v1Roots[0])", roots: v1Roots,
                               limitsMemory: memory, limitsCPU: cpu)
        }
        return .none
    }

    /// Removes this worker's own directories, at its end (they hold no task cgroup by then; one
    /// that still does stays, and the next start with this name kills and removes what is in it).
    public func removeRoots() {
        for root in roots.reversed() { rmdir(root) }
    }

    /// Kills every process of every task cgroup of this worker and removes the cgroups: the
    /// tasks of a killed worker found at start, and those of a supervisor that died.
    public func killAll() {
        let dirs = roots.flatMap { root in
            ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).filter { $0.hasPrefix("task-") }.map { root + "/" + $0 }
        }
        Self.killAndRemove(dirs)
    }

    /// Kills every process in `dirs` and removes them, waiting up to two seconds for them to empty.
    public static func killAndRemove(_ dirs: [String]) {
        for dir in dirs { kill(dir) }
        for _ in 0..<200 {
            var left = false
            for dir in dirs where rmdir(dir) != 0 && errno != ENOENT {
                left = true
                kill(dir)
            }
            if !left { return }
            usleep(10_000)
        }
    }

    private static func kill(_ dir: String) {
        if access(dir + "/cgroup.kill", F_OK) == 0 {
            _ = try? "1".write(toFile: dir + "/cgroup.kill", atomically: false, encoding: .utf8)
            return
        }
        let procs = (try? String(contentsOfFile: dir + "/cgroup.procs", encoding: .utf8)) ?? ""
        for pid in procs.split(separator: "\n").compactMap({ pid_t($0) }) { Glibc.kill(pid, SIGKILL) }
    }

    /// Why this worker cannot run `task` as it asks, or nil.
    public func problem(memoryMax: Int64?, cpuQuota: Int?) -> String? {
        if memoryMax != nil && !limitsMemory {
            return "it asks for memory_max but this worker cannot enforce it (containment: \(summary)); it is never run unlimited"
        }
        if cpuQuota != nil && !limitsCPU {
            return "it asks for cpu_quota but this worker cannot enforce it (containment: \(summary)); it is never run unlimited"
        }
        return nil
    }
}
