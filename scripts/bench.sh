#!/usr/bin/env bash
# End-to-end benchmark on this machine, release build: starts its own ZooKeeper, one master and
# two workers (4 slots each), runs no-op `true` workloads through ds-submit --wait, and prints one
# JSON object per workload: wall time (submit to end, as the user sees it), tasks per second,
# and hop latency (end of a task to the start of its successor, from the stored timestamps).
#   scripts/bench.sh [chain100] [fanout500]     (default: both)
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build -c release >&2
bin=$(swift build -c release --show-bin-path)

work=$(mktemp -d /tmp/ds-bench.XXXXXX)
port=$((20000 + RANDOM % 20000))
export DS_ZK=127.0.0.1:$port DS_HOME=$work DS_ZK_ROOT=/ds-bench
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  scripts/zookeeper.sh stop "$work/zookeeper"
  rm -rf "$work"
}
trap cleanup EXIT
scripts/zookeeper.sh start "$work/zookeeper" "$port"
"$bin/ds-master" --host 127.0.0.1 --port 5678 --log-level warning 2> "$work/master.log" & pids+=($!)
"$bin/ds-worker" --host 127.0.0.1 --port 1234 --slots 4 --log-level warning 2> "$work/worker1.log" & pids+=($!)
"$bin/ds-worker" --host 127.0.0.1 --port 1235 --slots 4 --log-level warning 2> "$work/worker2.log" & pids+=($!)
sleep 1

chain() {  # chain N: t0 <- t1 <- ... <- tN-1
  local n=$1
  printf '{"name":"chain%d","tasks":[' "$n"
  for ((i = 0; i < n; i++)); do
    [ $i -gt 0 ] && printf ',{"name":"t%d","command":"true","deps":["t%d"]}' $i $((i - 1)) || printf '{"name":"t0","command":"true"}'
  done
  printf ']}'
}
fanout() {  # fanout N: N independent tasks
  local n=$1
  printf '{"name":"fanout%d","tasks":[' "$n"
  for ((i = 0; i < n; i++)); do
    [ $i -gt 0 ] && printf ','
    printf '{"name":"t%d","command":"true"}' $i
  done
  printf ']}'
}

percentile() {  # percentile P < numbers
  sort -n | awk -v p="$1" '{a[NR]=$1} END {if (NR==0) {print "null"; exit} i=int((NR-1)*p/100)+1; printf "%.2f", a[i]}'
}

run() {  # run NAME TASKS JSON
  local name=$1 tasks=$2 json=$3
  local file=$work/$name.json
  printf '%s' "$json" > "$file"
  local t0 t1 id
  t0=$(date +%s.%N)
  "$bin/ds-submit" --wait --json "$file" > "$work/$name.out"
  t1=$(date +%s.%N)
  id=$(grep -o '"instance":{[^}]*' "$work/$name.out" | grep -o '"id":[0-9]*' | head -1 | cut -d: -f2)
  local hops
  hops=$(sqlite3 "$DS_DB_PATH" "SELECT (t.start_time - p.end_time) * 1000 FROM task_instance t JOIN task_instance p
           ON p.workflow_instance_id = t.workflow_instance_id AND p.task_name = 't' || (CAST(substr(t.task_name, 2) AS INTEGER) - 1)
           WHERE t.workflow_instance_id = $id")
  local p50 p99
  if [ "$name" = "${name#chain}" ]; then p50=null; p99=null; else
    p50=$(printf '%s\n' "$hops" | percentile 50); p99=$(printf '%s\n' "$hops" | percentile 99); fi
  awk -v n="$name" -v t="$tasks" -v a="$t0" -v b="$t1" -v p50="$p50" -v p99="$p99" 'BEGIN {
    w = b - a; printf "{\"workload\":\"%s\",\"tasks\":%d,\"wall_seconds\":%.3f,\"tasks_per_second\":%.1f,\"hop_ms_p50\":%s,\"hop_ms_p99\":%s}\n", n, t, w, t / w, p50, p99 }'
}

DS_DB_PATH=$work/ds.db
workloads=("$@")
[ ${#workloads[@]} -gt 0 ] || workloads=(chain100 fanout500)
for w in "${workloads[@]}"; do
  case "$w" in
    chain100) run chain100 100 "$(chain 100)" ;;
    fanout500) run fanout500 500 "$(fanout 500)" ;;
    *) echo "bench.sh: unknown workload $w (chain100, fanout500)" >&2; exit 64 ;;
  esac
done
