#!/usr/bin/env python3
"""A soak in the manner of Jepsen: a cluster of network-namespace hosts (3 ZooKeeper servers,
2 masters, 3 workers) on a bridge of its own, workflows submitted all along, and random faults:
partitions (a host's link down), kill -9, SIGSTOP, ZooKeeper leader kills and graceful restarts.
Then every fault is healed, every workflow must end, and every task's history is checked against
the markers the tasks wrote themselves:

  - every workflow SUCCESS, nothing lost;
  - no two runs of one task overlapping in time (each run ticks while it lives);
  - exactly one completion per task (a second is counted and printed: a task that finished just
    before its worker was cut off, whose result could not be reported, runs again);
  - every daemon the soak did not kill itself still running.

Usage: scripts/chaos.sh --minutes N [--seed S] [--session S] [--keep]
Needs root (ip netns, veth, a bridge). All traffic stays on the bridge it makes (10.213.0.0/24).
Exit 0 when every invariant holds, 1 when one broke, 64 on misuse, 69 when it cannot run here.
"""
import argparse
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUBNET = "10.213.0"
JVM_OPTIONS = open(os.path.join(ROOT, "scripts/zookeeper/jvm.options")).read().split()


def sh(*args, check=True, quiet=False):
    r = subprocess.run(args, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {r.stderr.strip()}")
    return r


class Network:
    """A bridge and a namespace per host, each with a veth pair; cut/heal takes a host's link down/up."""

    def __init__(self, tag):
        self.tag = tag
        self.bridge = f"dsch{tag}"
        self.hosts = {}  # name -> (namespace, root-side veth, address)

    def up(self):
        sh("ip", "link", "add", self.bridge, "type", "bridge")
        sh("ip", "addr", "add", f"{SUBNET}.1/24", "dev", self.bridge)
        sh("ip", "link", "set", self.bridge, "up")

    def add(self, name, octet):
        ns, outer, inner = f"dsch{self.tag}-{name}", f"dc{self.tag}{name}", f"dci{self.tag}{name}"
        address = f"{SUBNET}.{octet}"
        sh("ip", "netns", "add", ns)
        sh("ip", "link", "add", outer, "type", "veth", "peer", "name", inner)
        sh("ip", "link", "set", inner, "netns", ns)
        sh("ip", "link", "set", outer, "master", self.bridge)
        sh("ip", "link", "set", outer, "up")
        sh("ip", "-n", ns, "addr", "add", f"{address}/24", "dev", inner)
        sh("ip", "-n", ns, "link", "set", inner, "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        self.hosts[name] = (ns, outer, address)
        return address

    def cut(self, name):
        sh("ip", "link", "set", self.hosts[name][1], "down")

    def heal(self, name):
        sh("ip", "link", "set", self.hosts[name][1], "up")

    def down(self):
        for ns, outer, _ in self.hosts.values():
            sh("ip", "link", "del", outer, check=False)
            sh("ip", "netns", "del", ns, check=False)
        sh("ip", "link", "del", self.bridge, check=False)


class Daemon:
    def __init__(self, name, host, argv, env, log):
        self.name, self.host, self.argv, self.env, self.log = name, host, argv, env, log
        self.process = None
        self.stopped = False   # SIGSTOP'd by the soak
        self.killed = False    # expected not to run (between a kill and its restart)

    def start(self):
        out = open(self.log, "ab")
        self.process = subprocess.Popen(self.argv, env=self.env, stdout=out, stderr=out, stdin=subprocess.DEVNULL)
        self.killed = False

    def alive(self):
        return self.process is not None and self.process.poll() is None


def zoo_cfg(directory, address, servers):
    os.makedirs(os.path.join(directory, "data"), exist_ok=True)
    lines = [
        "tickTime=500", "initLimit=10", "syncLimit=5", f"dataDir={directory}/data", "clientPort=2181",
        f"clientPortAddress={address}", "admin.enableServer=false", "4lw.commands.whitelist=ruok,stat,mntr,srvr",
        "maxSessionTimeout=60000", "minSessionTimeout=1000", "snapCount=100000",
    ] + [f"server.{i + 1}={a}:2888:3888" for i, a in enumerate(servers)]
    open(os.path.join(directory, "zoo.cfg"), "w").write("\n".join(lines) + "\n")
    return os.path.join(directory, "zoo.cfg")


def four(address, word):
    import socket
    try:
        with socket.create_connection((address, 2181), timeout=2) as s:
            s.sendall(word.encode())
            s.settimeout(2)
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    return data.decode(errors="replace")
                data += chunk
    except OSError:
        return ""


def workflow(rng, markers, index):
    """A random DAG of 3 to 6 tasks, each ticking into the markers file while it lives."""
    n = rng.randint(3, 6)
    tasks = []
    for i in range(n):
        ticks = rng.randint(2, 15)  # 0.4 to 3 s
        command = (f'm={markers}; echo "start $DS_TASK_INSTANCE_ID $DS_WORKFLOW_INSTANCE_ID $DS_TASK_NAME $(date +%s.%N)" >> $m; '
                   f'for i in $(seq {ticks}); do echo "tick $DS_TASK_INSTANCE_ID $DS_WORKFLOW_INSTANCE_ID $DS_TASK_NAME $(date +%s.%N)" >> $m; sleep 0.2; done; '
                   f'echo "end $DS_TASK_INSTANCE_ID $DS_WORKFLOW_INSTANCE_ID $DS_TASK_NAME $(date +%s.%N)" >> $m')
        deps = sorted(rng.sample([f"t{j}" for j in range(i)], min(i, rng.randint(0, 2)))) if i else []
        tasks.append({"name": f"t{i}", "command": command, "deps": deps})
    return {"name": f"chaos{index % 7}", "tasks": tasks}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, required=True)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--session", default="6s", help="the daemons' DS_ZK_SESSION_TIMEOUT")
    parser.add_argument("--bin", default=os.path.join(ROOT, ".build/debug"), help="where the built ds-* tools are")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args()
    if args.minutes <= 0:
        parser.error("--minutes must be above 0")
    if os.geteuid() != 0:
        print("chaos: needs root (ip netns, veth, a bridge)", file=sys.stderr)
        return 69
    for tool in ["ds-master", "ds-worker", "ds-submit", "task-supervisor"]:
        if not os.access(os.path.join(args.bin, tool), os.X_OK):
            print(f"chaos: {args.bin}/{tool} missing; run swift build first", file=sys.stderr)
            return 69
    taken = sh("ip", "-o", "addr", "show").stdout
    if f" {SUBNET}." in taken:
        print(f"chaos: {SUBNET}.0/24 is already on an interface here (a run that was killed?); "
              f"remove its bridge and namespaces (ip link del dschNNN; ip netns del dschNNN-...) first", file=sys.stderr)
        return 69
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # runs the clean-up below
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    scratch = tempfile.mkdtemp(prefix="ds-chaos-")
    markers = os.path.join(scratch, "markers")
    open(markers, "w").close()
    net = Network(str(os.getpid() % 1000))
    daemons, zks = [], []
    actions = {}
    submitted = []
    stop_submitting = threading.Event()
    try:
        net.up()
        zk_addresses = [net.add(f"z{i}", 31 + i) for i in range(3)]
        for i, address in enumerate(zk_addresses):
            d = os.path.join(scratch, f"zk{i + 1}")
            cfg = zoo_cfg(d, address, zk_addresses)
            open(os.path.join(d, "data", "myid"), "w").write(f"{i + 1}\n")
            ns = net.hosts[f"z{i}"][0]
            zks.append(Daemon(f"zk{i + 1}", f"z{i}", ["ip", "netns", "exec", ns, "java", f"-Dzookeeper.log.dir={d}"] + JVM_OPTIONS
                              + ["-cp", "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar",
                                 "org.apache.zookeeper.server.quorum.QuorumPeerMain", cfg], dict(os.environ), os.path.join(d, "zookeeper.log")))
        for z in zks:
            z.start()
        deadline = time.time() + 180
        while not any("Mode: leader" in four(a, "srvr") for a in zk_addresses):
            if time.time() > deadline:
                raise RuntimeError(f"no ZooKeeper quorum within 180 s; see {scratch}/zk*/zookeeper.log")
            time.sleep(0.2)
        connect = ",".join(f"{a}:2181" for a in zk_addresses)
        env = dict(os.environ, DS_ZK=connect, DS_ZK_ROOT="/chaos", DS_DB=os.path.join(scratch, "ds.db"), DS_HOME=scratch,
                   DS_ZK_SESSION_TIMEOUT=args.session)
        for i in range(2):
            address = net.add(f"m{i}", 11 + i)
            daemons.append(Daemon(f"master{i}", f"m{i}", ["ip", "netns", "exec", net.hosts[f"m{i}"][0], f"{args.bin}/ds-master",
                                                          "--host", address, "--port", "7100"], env, os.path.join(scratch, f"master{i}.log")))
        for i in range(3):
            address = net.add(f"w{i}", 21 + i)
            daemons.append(Daemon(f"worker{i}", f"w{i}", ["ip", "netns", "exec", net.hosts[f"w{i}"][0], f"{args.bin}/ds-worker",
                                                          "--host", address, "--port", "7200", "--slots", "3",
                                                          "--grace", "5s", "--log-dir", os.path.join(scratch, f"logs{i}")], env,
                                  os.path.join(scratch, f"worker{i}.log")))
        for d in daemons:
            d.start()
        time.sleep(3)

        def submit_loop():
            index = 0
            while not stop_submitting.is_set():
                w = workflow(rng, markers, index)
                index += 1
                r = subprocess.run([f"{args.bin}/ds-submit", "-"], input=json.dumps(w), env=env, capture_output=True, text=True)
                if r.returncode == 0 and r.stdout.strip().isdigit():
                    submitted.append(int(r.stdout.strip()))
                elif r.returncode not in (69, 75):  # ZooKeeper or the database away for a moment
                    print(f"chaos: ds-submit exited {r.returncode}: {r.stderr.strip()}", file=sys.stderr)
                stop_submitting.wait(rng.uniform(0.5, 2.0))

        submitter = threading.Thread(target=submit_loop, daemon=True)
        submitter.start()
        print(f"chaos: seed {seed}, {args.minutes} min, session {args.session}, scratch {scratch}", flush=True)

        end = time.time() + args.minutes * 60
        while time.time() < end:
            kind = rng.choice(["partition", "kill", "freeze", "leader", "restart", "zk-partition"])
            actions[kind] = actions.get(kind, 0) + 1
            pause = rng.uniform(2, 15)
            if kind == "partition":
                d = rng.choice(daemons)
                net.cut(d.host)
                time.sleep(pause)
                net.heal(d.host)
            elif kind == "zk-partition":
                z = rng.choice(zks)
                net.cut(z.host)
                time.sleep(pause)
                net.heal(z.host)
            elif kind == "kill":
                d = rng.choice(daemons)
                d.killed = True
                d.process.send_signal(signal.SIGKILL)
                d.process.wait()
                time.sleep(rng.uniform(0.5, 3))
                d.start()
            elif kind == "freeze":
                d = rng.choice(daemons)
                pid = inner_pid(d)
                os.kill(pid, signal.SIGSTOP)
                time.sleep(pause)
                os.kill(pid, signal.SIGCONT)
            elif kind == "leader":
                leader = next((z for z, a in zip(zks, zk_addresses) if "Mode: leader" in four(a, "srvr")), None)
                if leader:
                    leader.process.send_signal(signal.SIGKILL)
                    leader.process.wait()
                    time.sleep(rng.uniform(1, 4))
                    leader.start()
            elif kind == "restart":
                d = rng.choice(daemons)
                d.killed = True
                os.kill(inner_pid(d), signal.SIGTERM)
                try:
                    d.process.wait(timeout=90)
                except subprocess.TimeoutExpired:
                    print(f"chaos: {d.name} did not stop within 90 s of SIGTERM", file=sys.stderr)
                    d.process.kill()
                    d.process.wait()
                d.start()
            time.sleep(rng.uniform(1, 4))
        stop_submitting.set()
        submitter.join()
        print(f"chaos: faults done ({sum(actions.values())}: {actions}); waiting for {len(submitted)} workflows", flush=True)
        return check(args, env, scratch, markers, submitted, daemons, actions, seed)
    finally:
        stop_submitting.set()
        try:
            for d in daemons + zks:
                if d.alive():
                    d.process.send_signal(signal.SIGCONT)
                    d.process.terminate()
            for d in daemons + zks:
                if d.process is not None:
                    try:
                        d.process.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        d.process.kill()
                        d.process.wait()
        finally:
            # Even after a second ^C: a bridge left behind would take the next run's addresses.
            net.down()
            if not args.keep:
                shutil.rmtree(scratch, ignore_errors=True)


def inner_pid(d):
    """The daemon's own pid: `ip netns exec` execs it, so the Popen pid is the daemon's."""
    return d.process.pid


def check(args, env, scratch, markers, submitted, daemons, actions, seed):
    db = sqlite3.connect(os.path.join(scratch, "ds.db"), timeout=30)
    deadline = time.time() + 600
    while True:
        rows = dict(db.execute(f"SELECT id, state FROM workflow_instance WHERE id IN ({','.join(map(str, submitted)) or '0'})").fetchall())
        open_ = [i for i in submitted if rows.get(i) not in ("SUCCESS", "FAILURE", "STOP", "PAUSE")]
        if not open_ or time.time() > deadline:
            break
        time.sleep(1)
    problems = []
    if open_:
        problems.append(f"{len(open_)} workflows did not end within 10 min: {open_[:10]}")
    not_success = {i: s for i, s in rows.items() if s != "SUCCESS"}
    if not_success:
        problems.append(f"workflows not SUCCESS: {dict(list(not_success.items())[:10])}")
    lost = [i for i in submitted if i not in rows]
    if lost:
        problems.append(f"submitted but not stored: {lost[:10]}")
    # Runs per task, from the tasks' own markers: (instance, task) -> attempt -> [first, last, ended]
    runs = {}
    for line in open(markers, errors="replace"):
        parts = line.split()
        if len(parts) != 5:
            continue
        kind, attempt, instance, task, at = parts[0], int(parts[1]), int(parts[2]), parts[3], float(parts[4])
        r = runs.setdefault((instance, task), {}).setdefault(attempt, [at, at, False])
        r[0], r[1] = min(r[0], at), max(r[1], at)
        if kind == "end":
            r[2] = True
    overlaps, twice = [], []
    for key, attempts in runs.items():
        spans = sorted(attempts.items(), key=lambda kv: kv[1][0])
        for (a, (s1, e1, _)), (b, (s2, e2, _)) in zip(spans, spans[1:]):
            if s2 <= e1:
                overlaps.append((key, a, b, round(e1 - s2, 3)))
        if sum(1 for v in attempts.values() if v[2]) > 1:
            twice.append(key)
    if overlaps:
        problems.append(f"{len(overlaps)} tasks ran twice at once (instance, task, attempt, attempt, seconds): {overlaps[:10]}")
    stored = db.execute("SELECT workflow_instance_id, task_name, state, COUNT(*) FROM task_instance GROUP BY 1, 2, 3").fetchall()
    successes = {}
    failovers = 0
    for instance, task, state, count in stored:
        if state == "SUCCESS":
            successes[(instance, task)] = count
        if state == "NEED_FAULT_TOLERANCE":
            failovers += count
    doubled = [k for k, c in successes.items() if c > 1]
    if doubled:
        problems.append(f"tasks stored SUCCESS twice: {doubled[:10]}")
    dead = [d.name for d in daemons if not d.alive()]
    if dead:
        problems.append(f"daemons that stopped on their own: {dead}")
    tasks = sum(len(v) for v in runs.values())
    print(f"chaos: seed {seed}; {len(submitted)} workflows, {len(runs)} tasks, {tasks} runs, {failovers} failovers; "
          f"faults {actions}; overlapping runs {len(overlaps)}; tasks completed more than once {len(twice)} "
          f"(a completion whose report was cut off runs again); daemons up {len(daemons) - len(dead)}/{len(daemons)}")
    for p in problems:
        print("chaos: VIOLATION: " + p, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
