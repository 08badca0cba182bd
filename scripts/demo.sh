#!/usr/bin/env bash
# A demo cluster on this machine: ZooKeeper on loopback, one master, one worker, SQLite under
# ./demo; runs the workflows in examples/ with --wait, prints their task tables, and stops
# everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build
bin=$(swift build --show-bin-path)

demo=$PWD/demo
rm -rf "$demo"
mkdir -p "$demo"
port=$((20000 + RANDOM % 20000))
export DS_ZK=127.0.0.1:$port DS_HOME=$demo DS_ZK_ROOT=/ds-demo
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  scripts/zookeeper.sh stop "$demo/zookeeper"
}
trap cleanup EXIT

echo "== ZooKeeper on $DS_ZK"
scripts/zookeeper.sh start "$demo/zookeeper" "$port"
"$bin/ds-master" --host 127.0.0.1 --port 5678 --listen 127.0.0.1:0 2> "$demo/master.log" & pids+=($!)
"$bin/ds-worker" --host 127.0.0.1 --port 1234 --slots 2 --listen 127.0.0.1:0 2> "$demo/worker.log" & pids+=($!)
echo "== master and worker started (logs in $demo/master.log, $demo/worker.log)"

status=0
for workflow in examples/*.json; do
  echo
  echo "== ds-submit --wait $workflow"
  if "$bin/ds-submit" --wait "$workflow" --param who=demo; then
    :
  else
    rc=$?
    case "$workflow" in
      *fails*) echo "(this example fails on purpose: exit $rc)" ;;
      *) status=$rc ;;
    esac
  fi
done
echo
echo "== ds-logs --instance 1 (every task of the first instance, read from the worker's log server)"
"$bin/ds-logs" --instance 1 || status=$?
echo
echo "== a schedule: every second for 3 seconds, each run with the business date of its fire time"
"$bin/ds-submit" --no-start examples/daily-etl.json
start=$(( $(date +%s) + 2 ))
schedule=$("$bin/ds-schedule" add daily-etl --cron '* * * * * ?' --start "$start" --end "$((start + 2))" --param who=cron)
for _ in $(seq 100); do
  [ "$("$bin/ds-schedule" show "$schedule" --json | grep -c instance_id || true)" -ge 3 ] && break
  sleep 0.2
done
"$bin/ds-schedule" show "$schedule" --json | grep instance_id | sed 's/.*"instance_id":\([0-9]*\).*/\1/' \
  | xargs -n1 "$bin/ds-instance" wait > /dev/null || status=$?
"$bin/ds-schedule" show "$schedule"
echo
echo "== task logs are under $demo/logs; the database is $demo/ds.db"
exit $status
