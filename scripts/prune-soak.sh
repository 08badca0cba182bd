#!/usr/bin/env bash
# Soak of bounded growth (issue 23, item 5): finished instances arrive at RATE a second until TOTAL
# have, while a real ds-master prunes with --prune-older-than KEEP --prune-every EVERY; the database's
# size and row counts are printed every INTERVAL seconds. With pruning, the size levels off (SQLite
# reuses the pages pruned rows free; it does not give them back to the file system) instead of
# growing with every instance. Not part of the test suite.
#   scripts/prune-soak.sh [TOTAL [RATE [KEEP [EVERY]]]]     defaults: 100000 500 30s 10s
# Each instance is written finished (SUCCESS, end time now) with 3 task attempts and an alert, in
# one transaction per second, straight into the SQLite file with sqlite3: the master's own rounds do
# not limit the rate, so 100,000 instances take minutes, not hours. The pruning is the master's.
# Needs a built tree (swift build), ZooKeeper (scripts/install-deps.sh) and sqlite3.
set -euo pipefail
total=${1:-100000}
rate=${2:-500}
keep=${3:-30s}
every=${4:-10s}
interval=${INTERVAL:-10}
for n in "$total" "$rate" "$interval"; do
  [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "prune-soak.sh: '$n' is not a positive number; usage: prune-soak.sh [TOTAL [RATE [KEEP [EVERY]]]]" >&2; exit 64; }
done
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$(cd "$root" && swift build --show-bin-path)
[ -x "$bin/ds-master" ] || { echo "prune-soak.sh: no $bin/ds-master; run swift build first" >&2; exit 69; }
command -v sqlite3 >/dev/null || { echo "prune-soak.sh: no sqlite3; run scripts/install-deps.sh" >&2; exit 69; }

dir=$(mktemp -d /tmp/ds-prune-soak-XXXXXX)
db=$dir/ds.db
zkport=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
master=""
cleanup() {
  [ -n "$master" ] && kill "$master" 2>/dev/null && wait "$master" 2>/dev/null || true
  "$root/scripts/zookeeper.sh" stop "$dir/zk" >/dev/null 2>&1 || true
}
trap cleanup EXIT
"$root/scripts/zookeeper.sh" start "$dir/zk" "$zkport" >/dev/null
DS_ZK=127.0.0.1:$zkport DS_DB=$db DS_HOME=$dir "$bin/ds-master" --port 5999 \
  --prune-older-than "$keep" --prune-every "$every" > "$dir/master.log" 2>&1 &
master=$!
for _ in $(seq 1 600); do
  [ -s "$db" ] && sqlite3 "$db" "SELECT 1 FROM workflow_definition LIMIT 0" >/dev/null 2>&1 && break
  kill -0 "$master" 2>/dev/null || { echo "prune-soak.sh: the master exited; see $dir/master.log" >&2; cat "$dir/master.log" >&2; exit 70; }
  sleep 0.1
done
sqlite3 -cmd ".timeout 30000" "$db" "INSERT INTO workflow_definition (name, version, json, created_at) VALUES ('soak', 1, '{\"name\":\"soak\",\"tasks\":[{\"name\":\"t1\",\"command\":\"true\"}]}', strftime('%s','now'))"

size() { du -k --apparent-size -c "$db" "$db-wal" 2>/dev/null | tail -1 | cut -f1; }
counts() { sqlite3 -cmd ".timeout 30000" "$db" "SELECT (SELECT COUNT(*) FROM workflow_instance), (SELECT COUNT(*) FROM task_instance), (SELECT COUNT(*) FROM alert)" | tr '|' ' '; }
echo "prune-soak: $total instances at $rate/s, pruned by the master when older than $keep, every $every; database $db" >&2
printf '%8s %10s %10s %10s %10s %10s\n' seconds written instances attempts alerts size_kb
start=$(date +%s)
written=0
next_report=$interval
while [ "$written" -lt "$total" ]; do
  batch=$(( total - written < rate ? total - written : rate ))
  now=$(date +%s.%N)
  sqlite3 -cmd ".timeout 30000" "$db" <<SQL
BEGIN IMMEDIATE;
CREATE TEMP TABLE mark AS SELECT COALESCE(MAX(id), 0) AS last FROM workflow_instance;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $batch)
INSERT INTO workflow_instance (definition_id, name, version, state, priority, params_json, submit_time, start_time, end_time, run, run_start_time)
  SELECT (SELECT id FROM workflow_definition WHERE name = 'soak'), 'soak', 1, 'SUCCESS', 'MEDIUM', '{"dt":"20261206"}', $now, $now, $now, 1, $now FROM n;
INSERT INTO task_instance (workflow_instance_id, task_name, attempt, state, priority, worker_group, host, log_path, exit_code, output_json, submit_time, start_time, end_time)
  SELECT i.id, 't' || k.k, 1, 'SUCCESS', 'MEDIUM', 'default', '127.0.0.1:1234', '/var/log/ds/' || i.id || '/t' || k.k || '.log', 0, '{"rows":"42"}', $now, $now, $now
  FROM workflow_instance i, (SELECT 1 AS k UNION ALL SELECT 2 UNION ALL SELECT 3) k WHERE i.id > (SELECT last FROM mark);
INSERT INTO alert (kind, dedup_key, workflow_instance_id, content_json, create_time, state, sent_time)
  SELECT 'WORKFLOW_SUCCESS', 'soak:' || id, id, '{"title":"instance ' || id || ' ended SUCCESS"}', $now, 'SENT', $now FROM workflow_instance WHERE id > (SELECT last FROM mark);
DROP TABLE mark;
COMMIT;
SQL
  written=$((written + batch))
  elapsed=$(( $(date +%s) - start ))
  if [ "$elapsed" -ge "$next_report" ] || [ "$written" -ge "$total" ]; then
    # shellcheck disable=SC2046 # three numbers
    printf '%8s %10s %10s %10s %10s %10s\n' "$elapsed" "$written" $(counts) "$(size)"
    next_report=$((elapsed + interval))
  fi
  kill -0 "$master" 2>/dev/null || { echo "prune-soak.sh: the master exited; see $dir/master.log" >&2; tail -20 "$dir/master.log" >&2; exit 70; }
  sleep 1
done
echo "prune-soak: all $total written; the master's prunes:" >&2
grep "prune:" "$dir/master.log" | tail -5 >&2 || true
echo "prune-soak: folder $dir (removed: rm -rf $dir)" >&2
