#!/usr/bin/env python3
"""End-to-end benchmark of ds on this machine (release build), one JSON object per workload.

Every workload gets a fresh cluster (its own ZooKeeper root and SQLite file) on one ZooKeeper
server started here, runs no-op `true` tasks through the real binaries, and prints:
wall time (submit to SUCCESS), tasks per second, hop latency p50/p99 (end of a task to the start
of its successor, from the stored timestamps), ZooKeeper requests per task (the server's
zk_packets_received), database transactions per task (counted by the masters), peak RSS of
master and worker (VmHWM), and the physical floor: the same number of `true` processes spawned
directly with the same parallelism, with the overhead over it.

    scripts/bench.py BIN_DIR [workload ...]      workloads: floor fanout chain branches layers many big backlog logs stores

`stores` runs fanout, chain and many on SQLite and on PostgreSQL (a scratch server started by
scripts/postgres.sh, a database per cluster) in the same run, then many on PostgreSQL with one
master instead of two, and prints the ratios.

With PERF_DIR=DIR, each workload of a fresh cluster is also sampled by `perf record -a -g` into
DIR/<workload>.perf.data (read it with `perf report -i ... --sort comm,dso`).
"""
import glob, json, os, random, shutil, signal, socket, sqlite3, statistics, subprocess, sys, tempfile, time

BIN = sys.argv[1]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = tempfile.mkdtemp(prefix="ds-bench-")
os.chmod(WORK, 0o711)  # PostgreSQL's server user must reach its folder in here
BACKLOG_TASKS = int(os.environ.get("BACKLOG_TASKS", "1000000"))
BACKLOG_SECONDS = float(os.environ.get("BACKLOG_SECONDS", "20"))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


ZK_PORT = free_port()
ZK_DIR = os.path.join(WORK, "zookeeper")
PG_DIR = os.path.join(WORK, "postgres")
PG = {}


def postgres():
    """A scratch PostgreSQL (scripts/postgres.sh), started on first use: its DS_DB and DS_DB_PASSWORD_FILE."""
    if not PG:
        out = subprocess.run([os.path.join(ROOT, "scripts", "postgres.sh"), "start", PG_DIR],
                             check=True, capture_output=True, text=True).stdout
        PG.update(line.split("=", 1) for line in out.splitlines() if "=" in line)
    return PG


class Psql:
    """One psql session as PostgreSQL's superuser over the server's socket: the benchmark's own
    reads (waits, states, hops) without a process or a connection each. Rows as tuples of ints,
    floats or strings, like sqlite3's."""
    SEP = "\x1f"

    def __init__(self, database):
        bindir = sorted(glob.glob("/usr/lib/postgresql/*/bin"))[-1]
        with open(os.path.join(PG_DIR, "port")) as f:
            port = f.read().strip()
        argv = [bindir + "/psql", "-X", "-q", "-A", "-t", "-F", self.SEP, "-v", "ON_ERROR_STOP=1",
                "-h", os.path.join(PG_DIR, "socket"), "-p", port, "-U", "postgres", "-d", database]
        if os.getuid() == 0:
            argv = ["runuser", "-u", "postgres", "--"] + argv
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)

    @staticmethod
    def value(text):
        for kind in (int, float):
            try:
                return kind(text)
            except ValueError:
                pass
        return text

    def execute(self, sql, params=()):
        for v in params:  # the script's own ints and names
            sql = sql.replace("?", str(v) if isinstance(v, (int, float)) else "'" + str(v).replace("'", "''") + "'", 1)
        self.p.stdin.write(sql.rstrip().rstrip(";") + ";\n\\echo __end__\n")
        self.p.stdin.flush()
        rows = []
        for line in self.p.stdout:
            line = line.rstrip("\n")
            if line == "__end__":
                break
            if line:
                rows.append(tuple(self.value(v) for v in line.split(self.SEP)))
        return Rows(rows)

    def close(self):
        self.p.stdin.close()
        self.p.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Rows(list):
    def fetchone(self):
        return self[0] if self else None


def mntr():
    with socket.create_connection(("127.0.0.1", ZK_PORT), timeout=5) as s:
        s.sendall(b"mntr")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    out = {}
    for line in data.decode().splitlines():
        k, _, v = line.partition("\t")
        try:
            out[k] = float(v)
        except ValueError:
            pass
    return out


class Cluster:
    def __init__(self, name, window=None, store="sqlite"):
        self.name = name
        self.dir = os.path.join(WORK, name)
        os.makedirs(self.dir)
        self.env = dict(os.environ, DS_ZK=f"127.0.0.1:{ZK_PORT}", DS_ZK_ROOT="/" + name,
                        DS_DB=os.path.join(self.dir, "ds.db"), DS_HOME=self.dir)
        self.database = None
        if store == "postgres":
            pg = postgres()
            self.database = "bench_" + "".join(ch if ch.isalnum() else "_" for ch in name.lower())
            with Psql("postgres") as admin:
                admin.execute(f"CREATE DATABASE {self.database} OWNER ds")
            self.env.update(DS_DB=pg["DS_DB"].rsplit("/", 1)[0] + "/" + self.database,
                            DS_DB_PASSWORD_FILE=pg["DS_DB_PASSWORD_FILE"])
        self.procs = []
        self.port = 9000
        self.window = window

    def daemon(self, tool, *args):
        self.port += 1
        log = open(os.path.join(self.dir, f"{tool}-{self.port}.log"), "w")
        p = subprocess.Popen([os.path.join(BIN, tool), "--host", "127.0.0.1", "--port", str(self.port), *args],
                             env=self.env, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        p.tool, p.logpath = tool, log.name
        self.procs.append(p)
        return p

    def master(self):
        extra = ["--queue-window", str(self.window)] if self.window else []
        return self.daemon("ds-master", *extra)

    def worker(self, slots=4):
        return self.daemon("ds-worker", "--slots", str(slots), "--log-dir", os.path.join(self.dir, "logs"))

    def write(self, workflow):
        path = os.path.join(self.dir, f"{workflow['name']}-{random.random()}.json")
        with open(path, "w") as f:
            json.dump(workflow, f)
        return path

    def submit(self, path, *args):
        out = subprocess.run([os.path.join(BIN, "ds-submit"), path, *args], env=self.env, capture_output=True, text=True)
        if out.returncode not in (0,):
            raise SystemExit(f"ds-submit failed ({out.returncode}): {out.stderr}")
        return out.stdout

    def db(self):
        return Psql(self.database) if self.database else sqlite3.connect(self.env["DS_DB"])

    def wait_all(self, ids, timeout=3600):
        """Polls one connection every 20 ms: the poller must not steal the CPU it measures."""
        deadline = time.time() + timeout
        marks = ",".join("?" * len(ids))
        db = self.db()
        while time.time() < deadline:
            left = db.execute(f"SELECT COUNT(*) FROM workflow_instance WHERE id IN ({marks}) AND state NOT IN ('SUCCESS','FAILURE')", ids).fetchone()[0]
            if left == 0:
                db.close()
                return
            time.sleep(0.02)
        raise SystemExit(f"{self.name}: timed out")

    def peak_rss_mb(self, tool):
        peaks = []
        for p in self.procs:
            if p.tool == tool and p.poll() is None:
                with open(f"/proc/{p.pid}/status") as f:
                    for line in f:
                        if line.startswith("VmHWM:"):
                            peaks.append(int(line.split()[1]) / 1024)
        return round(max(peaks), 1) if peaks else None

    def cpu_seconds(self, tool):
        """User + system CPU of the live daemons of one kind (children's time not included)."""
        total = 0.0
        tick = os.sysconf("SC_CLK_TCK")
        for p in self.procs:
            if p.tool == tool and p.poll() is None:
                with open(f"/proc/{p.pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / tick
        return round(total, 2)

    def stop(self):
        stats = {"master_peak_rss_mb": self.peak_rss_mb("ds-master"), "worker_peak_rss_mb": self.peak_rss_mb("ds-worker"),
                 "master_cpu_s": self.cpu_seconds("ds-master"), "worker_cpu_s": self.cpu_seconds("ds-worker")}
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        transactions = 0
        requests = {}
        for p in self.procs:
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            with open(p.logpath) as f:
                for line in f:
                    if "stats:" not in line:
                        continue
                    for token in line.rsplit("stats:", 1)[1].split():
                        name, _, value = token.partition("=")
                        if name == "db_transactions":
                            transactions += int(value)
                        elif name.startswith("zk_"):
                            kinds = requests.setdefault(p.tool.replace("ds-", ""), {})
                            kinds[name[3:]] = kinds.get(name[3:], 0) + int(value)
        stats["db_transactions"] = transactions
        stats["zk_requests"] = requests
        return stats


def hops(cluster, ids):
    """End of each dependency to the start of its dependent, over the successful attempts."""
    with cluster.db() as db:
        defs = {}
        for (iid, js) in db.execute("SELECT w.id, d.json FROM workflow_instance w JOIN workflow_definition d ON d.id = w.definition_id"):
            if iid in ids:
                defs[iid] = {t["name"]: t.get("deps", []) for t in json.loads(js)["tasks"]}
        times = {}
        for (iid, name, start, end) in db.execute("SELECT workflow_instance_id, task_name, start_time, end_time FROM task_instance WHERE state = 'SUCCESS'"):
            times[(iid, name)] = (start, end)
    out = []
    for iid, tasks in defs.items():
        for name, deps in tasks.items():
            if deps and (iid, name) in times:
                out.append((times[(iid, name)][0] - max(times[(iid, d)][1] for d in deps)) * 1000)
    return out


def zk_cpu():
    with open(os.path.join(ZK_DIR, "zookeeper.pid")) as f:
        pid = f.read().strip()
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_profiler(name):
    """With PERF_DIR set, `perf record` samples the whole machine (call graphs) while a workload runs."""
    folder = os.environ.get("PERF_DIR")
    if not folder:
        return None
    if not shutil.which("perf"):
        raise SystemExit("PERF_DIR is set but perf is not installed (Debian: apt-get install -y linux-perf)")
    os.makedirs(folder, exist_ok=True)
    out = os.path.join(folder, name + ".perf.data")
    p = subprocess.Popen(["perf", "record", "-a", "-g", "-F", "999", "-o", out], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)  # perf needs a moment before it samples
    return p


def stop_profiler(p):
    if p:
        p.send_signal(signal.SIGINT)
        p.wait()


def pct(values, p):
    if not values:
        return None
    v = sorted(values)
    return round(v[min(len(v) - 1, int(len(v) * p / 100))], 2)


def floor_seconds(n, parallel):
    """n `true` processes, `parallel` at a time, each spawned on its own (xargs -I)."""
    t = time.time()
    subprocess.run(["sh", "-c", f"seq {n} | xargs -P {parallel} -I{{}} true"], check=True)
    return time.time() - t


def run(name, workflows, masters=1, workers=2, slots=4, window=None, submit_parallel=1, store="sqlite"):
    c = Cluster(name, window, store)
    for _ in range(masters):
        c.master()
    for _ in range(workers):
        c.worker(slots)
    time.sleep(1.0)
    paths = [c.write(w) for w in workflows]
    before = mntr()["zk_packets_received"]
    zk_before = zk_cpu()
    profiler = start_profiler(name)
    t0 = time.time()
    if submit_parallel > 1:
        procs = [subprocess.Popen([os.path.join(BIN, "ds-submit"), p], env=c.env, stdout=subprocess.PIPE, text=True) for p in paths]
        ids = [int(p.communicate()[0].strip()) for p in procs]
    else:
        ids = [int(c.submit(p).strip()) for p in paths]
    c.wait_all(ids)
    wall = time.time() - t0
    stop_profiler(profiler)
    packets = mntr()["zk_packets_received"] - before
    with c.db() as db:
        marks = ",".join("?" * len(ids))
        states = [s for (s,) in db.execute(f"SELECT state FROM workflow_instance WHERE id IN ({marks})", ids)]
    hop = hops(c, set(ids))
    stats = c.stop()
    tasks = sum(len(w["tasks"]) for w in workflows)
    floor = floor_seconds(tasks, workers * slots)
    return {
        "workload": name, "store": store, "masters": masters, "tasks": tasks, "workflows": len(ids), "all_success": all(s == "SUCCESS" for s in states),
        "wall_seconds": round(wall, 3), "tasks_per_second": round(tasks / wall, 1),
        "hop_ms_p50": pct(hop, 50), "hop_ms_p99": pct(hop, 99),
        "zk_ops_per_task": round(packets / tasks, 2), "db_tx_per_task": round(stats["db_transactions"] / tasks, 3),
        "master_peak_rss_mb": stats["master_peak_rss_mb"], "worker_peak_rss_mb": stats["worker_peak_rss_mb"],
        "floor_seconds": round(floor, 3), "overhead_vs_floor": round(wall / floor, 2),
        "master_cpu_s": stats["master_cpu_s"], "worker_cpu_s": stats["worker_cpu_s"],
        "zookeeper_cpu_s": round(zk_cpu() - zk_before, 2),
        # Requests each kind of daemon sent, per task, by request type (from their stop-time stats).
        "zk_requests_per_task": {tool: {k: round(v / tasks, 2) for k, v in sorted(kinds.items())}
                                 for tool, kinds in sorted(stats["zk_requests"].items())},
    }


def shell(name, deps=()):
    t = {"name": name, "command": "true"}
    if deps:
        t["deps"] = list(deps)
    return t


def fanout(n):
    return {"name": f"fanout{n}", "tasks": [shell(f"t{i}") for i in range(n)]}


def chain(n):
    return {"name": f"chain{n}", "tasks": [shell(f"t{i}", [f"t{i-1}"] if i else []) for i in range(n)]}


def branch_chain(n):
    """chain(n) with a SWITCH between each pair of tasks: n - 1 decisions on the master."""
    tasks = []
    for i in range(n):
        tasks.append(shell(f"t{i}", [f"s{i-1}"] if i else []))
        if i < n - 1:
            tasks.append({"name": f"s{i}", "type": "SWITCH", "deps": [f"t{i}"],
                          "cases": [{"when": "1 == 1", "then": [f"t{i+1}"]}], "default_branch": []})
    return {"name": f"branches{n}", "tasks": tasks}


def layers(depth, width):
    tasks = []
    for l in range(depth):
        for i in range(width):
            deps = [f"l{l-1}t{i}", f"l{l-1}t{(i + 1) % width}"] if l else []
            tasks.append(shell(f"l{l}t{i}", deps))
    return {"name": f"layers{depth}x{width}", "tasks": tasks}


def big(n, lanes=100):
    return {"name": f"big{n}", "tasks": [shell(f"t{i}", [f"t{i - lanes}"] if i >= lanes else []) for i in range(n)]}


def dry_run_seconds(workflow):
    c = Cluster("dryrun" + str(random.randint(0, 1 << 30)))
    path = c.write(workflow)
    best = None
    for _ in range(3):
        t = time.time()
        c.submit(path, "--dry-run")
        d = time.time() - t
        best = d if best is None else min(best, d)
    return round(best, 3)


def backlog():
    """BACKLOG_TASKS ready tasks in one group with no worker, then workers for BACKLOG_SECONDS."""
    window = 1000
    c = Cluster("backlog", window)
    c.master()
    time.sleep(1.0)
    prio = ["LOWEST", "LOW", "MEDIUM", "HIGH", "HIGHEST"]
    marker = os.path.join(c.dir, "ran")
    workflow = {"name": "backlog", "tasks": [
        {"name": f"t{i}", "priority": prio[i % 5], "command": f"echo {prio[i % 5]} >> {marker}"} for i in range(BACKLOG_TASKS)]}
    path = c.write(workflow)
    t0 = time.time()
    iid = int(c.submit(path).strip())
    baseline = None
    # Wait until the master has stored every attempt and filled the window.
    while True:
        with c.db() as db:
            n = db.execute("SELECT COUNT(*) FROM task_instance WHERE workflow_instance_id = ?", (iid,)).fetchone()[0]
        if n == BACKLOG_TASKS:
            break
        time.sleep(0.5)
    # ...and until the window is full (the master fills it after storing the attempts).
    baseline_nodes = 20
    while mntr()["zk_znode_count"] < baseline_nodes + window - 5 and time.time() - t0 < 600:
        time.sleep(0.2)
    enqueue = time.time() - t0
    time.sleep(1.0)
    largest = peak_nodes = mntr()["zk_znode_count"]
    for _ in range(2):
        c.worker(4)
    t1 = time.time()
    while time.time() - t1 < BACKLOG_SECONDS:
        peak_nodes = max(peak_nodes, mntr()["zk_znode_count"])
        time.sleep(0.05)
    with open(marker) as f:
        ran = [line.strip() for line in f if line.strip()]
    stats = c.stop()
    errors = 0
    for p in c.procs:
        with open(p.logpath) as f:
            errors += sum(1 for line in f if " error " in line or "ZooKeeper:" in line and "retry" not in line)
    return {
        "workload": "backlog", "ready_tasks": BACKLOG_TASKS, "queue_window": window,
        "seconds_to_store_and_queue": round(enqueue, 1), "znodes_before_workers": int(largest),
        "peak_znodes_while_running": int(peak_nodes), "ran_in_sample": len(ran), "sample_seconds": BACKLOG_SECONDS,
        "tasks_per_second": round(len(ran) / BACKLOG_SECONDS, 1),
        "ran_in_priority_order": all(prio.index(a) >= prio.index(b) for a, b in zip(ran, ran[1:])),
        "highest_priority_tasks_left": BACKLOG_TASKS // 5 - ran.count("HIGHEST"),
        "daemon_errors": errors, "master_peak_rss_mb": stats["master_peak_rss_mb"],
    }


def logs():
    """A 50 MB task log read through the worker's log server by ds-logs (whole, -n 3, --instance),
    beside the floor of reading the file with cat; then 20 clients that ask for it and never read,
    and the worker's RSS growth they cause."""
    c = Cluster("logs")
    c.master()
    w = c.daemon("ds-worker", "--slots", "1", "--log-dir", os.path.join(c.dir, "logs"), "--listen", "127.0.0.1:0")
    time.sleep(1.0)
    size = 50_000_000
    path = c.write({"name": "biglog", "tasks": [{"name": "a", "command": f"yes 0123456789abcdefghijklmnopqrstuvwxyz | head -c {size}"}]})
    iid = int(c.submit(path).strip())
    c.wait_all([iid])
    with c.db() as db:
        tid, log = db.execute("SELECT id, log_path FROM task_instance WHERE workflow_instance_id = ?", (iid,)).fetchone()

    def best_of(argv, n=3):
        best = None
        for _ in range(n):
            t = time.time()
            out = subprocess.run(argv, env=c.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            if out.returncode != 0:
                raise SystemExit(f"{argv}: {out.stderr.decode()}")
            d = time.time() - t
            best = d if best is None else min(best, d)
        return round(best, 3)

    tool = os.path.join(BIN, "ds-logs")
    figures = {"workload": "logs", "log_bytes": size,
               "cat_floor_seconds": best_of(["cat", log]),
               "ds_logs_seconds": best_of([tool, str(tid)]),
               "ds_logs_tail3_seconds": best_of([tool, "-n", "3", str(tid)]),
               "ds_logs_instance_seconds": best_of([tool, "--instance", str(iid)])}
    with open(w.logpath) as f:
        port = int(next(line for line in f if "listening on http://" in line).rsplit(":", 1)[1].split()[0])

    def rss_kib():
        with open(f"/proc/{w.pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    before = rss_kib()
    silent = []
    for _ in range(20):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", port))
        s.sendall(f"GET /logs/{tid} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        silent.append(s)
    time.sleep(3)
    figures["rss_growth_kib_20_silent_clients"] = rss_kib() - before
    for s in silent:
        s.close()
    c.stop()
    figures["ratio_ds_logs_to_cat"] = round(figures["ds_logs_seconds"] / max(figures["cat_floor_seconds"], 1e-3), 1)
    return figures


def schedules(count=20, seconds=10, masters=3):
    """`count` schedules firing every second for `seconds` s on `masters` masters: instances per
    fire time (must be exactly one), the lag from fire time to the instance stored and to its
    task started; beside it, the same task submitted with ds-submit (submit to task started)."""
    c = Cluster("schedules" + str(random.randint(0, 9999)))
    for _ in range(masters):
        c.master()
    c.worker(8)
    time.sleep(1.0)
    path = c.write({"name": "tick", "tasks": [shell("t")]})
    # The floor: submitted by hand, the stored instance to its task started.
    ids = [int(c.submit(path).strip()) for _ in range(10)]
    c.wait_all(ids)
    marks = ",".join("?" * len(ids))
    with c.db() as db:
        floor = [(t - s) * 1000 for (s, t) in db.execute(
            f"SELECT w.submit_time, t.start_time FROM workflow_instance w JOIN task_instance t ON t.workflow_instance_id = w.id WHERE w.id IN ({marks})", ids)]
    subprocess.run([os.path.join(BIN, "ds-submit"), "--no-start", path], env=c.env, check=True, capture_output=True)
    start = int(time.time()) + 3
    sids = []
    for _ in range(count):
        out = subprocess.run([os.path.join(BIN, "ds-schedule"), "add", "tick", "--cron", "* * * * * ?", "--start", str(start),
                              "--end", str(start + seconds - 1)], env=c.env, check=True, capture_output=True, text=True)
        sids.append(int(out.stdout.strip()))
    time.sleep(start + seconds + 3 - time.time())
    with c.db() as db:
        ids = [i for (i,) in db.execute("SELECT id FROM workflow_instance WHERE schedule_id IS NOT NULL")]
    c.wait_all(ids)
    with c.db() as db:
        rows = db.execute("SELECT w.schedule_id, w.schedule_time, w.submit_time, t.start_time FROM workflow_instance w "
                          "JOIN task_instance t ON t.workflow_instance_id = w.id WHERE w.schedule_id IS NOT NULL").fetchall()
        per_fire = db.execute("SELECT COUNT(*) FROM workflow_instance WHERE schedule_id IS NOT NULL GROUP BY schedule_id, schedule_time").fetchall()
    stats = c.stop()
    lag = [(s - f) * 1000 for (_, f, s, _) in rows]
    to_start = [(t - f) * 1000 for (_, f, _, t) in rows]
    stored_to_start = [(t - s) * 1000 for (_, _, s, t) in rows]
    return {"workload": "schedules", "schedules": count, "masters": masters, "fire_times": count * seconds,
            "instances": len(rows), "max_instances_per_fire_time": max(n for (n,) in per_fire),
            "fire_to_stored_ms_p50": pct(lag, 50), "fire_to_stored_ms_p99": pct(lag, 99),
            "fire_to_task_start_ms_p50": pct(to_start, 50), "fire_to_task_start_ms_p99": pct(to_start, 99),
            "stored_to_task_start_ms_p50": pct(stored_to_start, 50),
            "floor_submit_to_task_start_ms_p50": pct(floor, 50), "floor_submit_to_task_start_ms_p99": pct(floor, 99),
            "ratio_stored_to_start_vs_floor": round(pct(stored_to_start, 50) / max(pct(floor, 50), 0.001), 2),
            "db_transactions": stats["db_transactions"], "master_cpu_s": stats["master_cpu_s"]}


def stores():
    """Fan-out, chain and many on SQLite and PostgreSQL in one run; many on PostgreSQL with one
    master and with two. Each run's JSON, then the ratios (PostgreSQL over SQLite)."""
    many = [dict(fanout(20), name=f"many{i}") for i in range(50)]
    cases = [("fanout", [fanout(1000)], 1, 1), ("chain", [chain(100)], 1, 1), ("many", many, 2, 50)]
    r = {}
    for label, workflows, masters, parallel in cases:
        for store in ("sqlite", "postgres"):
            r[label, store] = run(f"{label}-{store}", workflows, masters=masters, submit_parallel=parallel, store=store)
            print(json.dumps(r[label, store]), flush=True)
    r["many1", "postgres"] = run("many-postgres-one-master", many, masters=1, submit_parallel=50, store="postgres")
    print(json.dumps(r["many1", "postgres"]), flush=True)
    ratio = lambda a, b: round(a / b, 2) if a and b else None
    print(json.dumps({
        "workload": "stores",
        "fanout_tasks_per_s": {s: r["fanout", s]["tasks_per_second"] for s in ("sqlite", "postgres")},
        "fanout_postgres_over_sqlite": ratio(r["fanout", "postgres"]["tasks_per_second"], r["fanout", "sqlite"]["tasks_per_second"]),
        "chain_hop_ms_p50": {s: r["chain", s]["hop_ms_p50"] for s in ("sqlite", "postgres")},
        "chain_hop_ms_p99": {s: r["chain", s]["hop_ms_p99"] for s in ("sqlite", "postgres")},
        "chain_hop_p50_postgres_over_sqlite": ratio(r["chain", "postgres"]["hop_ms_p50"], r["chain", "sqlite"]["hop_ms_p50"]),
        "many_tasks_per_s": {s: r["many", s]["tasks_per_second"] for s in ("sqlite", "postgres")},
        "many_postgres_over_sqlite": ratio(r["many", "postgres"]["tasks_per_second"], r["many", "sqlite"]["tasks_per_second"]),
        "db_tx_per_task": {f"{label}_{s}": r[label, s]["db_tx_per_task"] for label, _, _, _ in cases for s in ("sqlite", "postgres")},
        "postgres_many_two_masters_over_one": ratio(r["many", "postgres"]["tasks_per_second"], r["many1", "postgres"]["tasks_per_second"]),
        "floor_seconds_1000_spawns": r["fanout", "sqlite"]["floor_seconds"],
    }), flush=True)


def main():
    subprocess.run([os.path.join(ROOT, "scripts", "zookeeper.sh"), "start", ZK_DIR, str(ZK_PORT)], check=True)
    try:
        chosen = sys.argv[2:] or ["floor", "fanout", "chain", "layers", "many", "big", "backlog"]
        for w in chosen:
            if w == "floor":
                n = 1000
                print(json.dumps({"workload": "floor", "processes": n, "parallel": 8,
                                  "seconds": round(floor_seconds(n, 8), 3)}), flush=True)
            elif w == "fanout":
                print(json.dumps(run("fanout" + str(random.randint(0, 9999)), [fanout(1000)])), flush=True)
            elif w == "stores":
                stores()
            elif w == "logs":
                print(json.dumps(logs()), flush=True)
            elif w == "chain":
                print(json.dumps(run("chain", [chain(100)])), flush=True)
            elif w == "branches":
                # Beside "chain": the same 100 shell tasks, each pair joined through a SWITCH.
                print(json.dumps(run("branches", [branch_chain(100)])), flush=True)
            elif w == "layers":
                print(json.dumps(run("layers", [layers(10, 20)])), flush=True)
            elif w == "many":
                wfs = [dict(fanout(20), name=f"many{i}") for i in range(50)]
                print(json.dumps(run("many", wfs, masters=2, submit_parallel=50)), flush=True)
            elif w == "big":
                wf = big(10000)
                result = run("big", [wf])
                result["dry_run_seconds"] = dry_run_seconds(wf)
                print(json.dumps(result), flush=True)
            elif w == "schedules":
                print(json.dumps(schedules()), flush=True)
            elif w == "schedule":
                # One schedule: each fire alone, beside the floor of one submitted instance.
                print(json.dumps(schedules(count=1, seconds=20)), flush=True)
            elif w == "backlog":
                print(json.dumps(backlog()), flush=True)
            else:
                raise SystemExit(f"unknown workload {w}")
    finally:
        subprocess.run([os.path.join(ROOT, "scripts", "zookeeper.sh"), "stop", ZK_DIR])
        if PG:
            subprocess.run([os.path.join(ROOT, "scripts", "postgres.sh"), "stop", PG_DIR])


if __name__ == "__main__":
    main()
