#!/usr/bin/env bash
# Start or stop ZooKeeper on loopback for the demo, the benchmark, or an operator's trial.
#   scripts/zookeeper.sh start DIR PORT            a standalone server: writes DIR/zoo.cfg, starts it, waits for "imok"
#   scripts/zookeeper.sh stop DIR                  stops the server started in DIR, by its pid
#   scripts/zookeeper.sh ensemble-start DIR BASEPORT
#                                                  a 3-server ensemble in DIR/1 DIR/2 DIR/3: client ports
#                                                  BASEPORT..BASEPORT+2, quorum ports BASEPORT+3..+5, election
#                                                  ports BASEPORT+6..+8; waits for a quorum, prints the connect string
#   scripts/zookeeper.sh ensemble-stop DIR         stops the three servers started in DIR, by their pids
# The configuration is scripts/zookeeper/zoo.cfg.in (plus the ensemble's server.N lines) and the JVM
# flags scripts/zookeeper/jvm.options, shared with the tests. ZK_EXTRA_CONFIG adds zoo.cfg lines;
# ZK_JAVA_OPTS adds JVM flags after the shared ones (the last of two alike wins). The shared
# -XX:TieredStopAtLevel=1 -XX:+UseSerialGC: on a small machine shared with the daemons, C2's compile
# threads took a fifth of the CPU of a fresh server's first 1,000 tasks, while C1's code serves
# requests as cheaply as a warmed-up C2's (measured: scripts/bench.sh fanout, repeated); the serial
# GC adds no collector threads for a heap this small.
set -euo pipefail
usage="usage: zookeeper.sh start DIR PORT | stop DIR | ensemble-start DIR BASEPORT | ensemble-stop DIR"
cmd=${1:?$usage}
dir=${2:?$usage}
shared=$(cd "$(dirname "$0")" && pwd)/zookeeper

# The answer to a four-letter word on 127.0.0.1:PORT. A server still starting can accept the
# connection and never answer: each try is bounded.
four() { timeout 2 bash -c 'exec 3<>/dev/tcp/127.0.0.1/"$1" && printf %s "$2" >&3 && cat <&3' _ "$1" "$2" 2>/dev/null || true; }

# configure DIR PORT [server.N lines...]: DIR/zoo.cfg from the shared template.
configure() {
  local d=$1 port=$2
  shift 2
  mkdir -p "$d/data"
  sed -e "s|@DATA_DIR@|$d/data|" -e "s|@PORT@|$port|" "$shared/zoo.cfg.in" > "$d/zoo.cfg"
  if [ $# -gt 0 ]; then printf '%s\n' "$@" >> "$d/zoo.cfg"; fi
  if [ -n "${ZK_EXTRA_CONFIG:-}" ]; then printf '%s\n' "$ZK_EXTRA_CONFIG" >> "$d/zoo.cfg"; fi
}

# launch DIR: starts the server configured in DIR in the background; its pid in DIR/zookeeper.pid.
launch() {
  local d=$1
  # shellcheck disable=SC2046 # the options are words
  java -Dzookeeper.log.dir="$d" $(cat "$shared/jvm.options") ${ZK_JAVA_OPTS:-} \
    -cp /etc/zookeeper/conf:/usr/share/java/zookeeper.jar org.apache.zookeeper.server.quorum.QuorumPeerMain "$d/zoo.cfg" > "$d/zookeeper.log" 2>&1 &
  echo $! > "$d/zookeeper.pid"
}

# await DIR PORT PATTERN SECONDS WORD: waits until WORD's answer on PORT matches PATTERN.
await() {
  local d=$1 port=$2 pattern=$3 seconds=$4 word=$5
  for _ in $(seq 1 $((seconds * 10))); do
    if four "$port" "$word" | grep -Eq "$pattern"; then return 0; fi
    kill -0 "$(cat "$d/zookeeper.pid")" 2>/dev/null || { echo "zookeeper.sh: server exited; see $d/zookeeper.log" >&2; tail -20 "$d/zookeeper.log" >&2; return 69; }
    sleep 0.1
  done
  echo "zookeeper.sh: no answer to $word matching '$pattern' on 127.0.0.1:$port after ${seconds}s; see $d/zookeeper.log" >&2
  return 69
}

# halt DIR: SIGTERM, then SIGKILL after 5 s, by the pid in DIR/zookeeper.pid.
halt() {
  local d=$1 pid
  [ -f "$d/zookeeper.pid" ] || return 0
  pid=$(cat "$d/zookeeper.pid")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$d/zookeeper.pid"
}

case "$cmd" in
start)
  port=${3:?usage: zookeeper.sh start DIR PORT}
  configure "$dir" "$port"
  launch "$dir"
  await "$dir" "$port" '^imok' 30 ruok || exit $?
  ;;
stop)
  halt "$dir"
  ;;
ensemble-start)
  base=${3:?usage: zookeeper.sh ensemble-start DIR BASEPORT}
  servers=()
  for i in 1 2 3; do servers+=("server.$i=127.0.0.1:$((base + 2 + i)):$((base + 5 + i))"); done
  for i in 1 2 3; do
    configure "$dir/$i" $((base + i - 1)) "${servers[@]}"
    echo "$i" > "$dir/$i/data/myid"
  done
  # No server serves alone: start all three, then wait for each to lead or follow.
  for i in 1 2 3; do launch "$dir/$i"; done
  for i in 1 2 3; do
    await "$dir/$i" $((base + i - 1)) '^Mode: (leader|follower)' 120 srvr || { for j in 1 2 3; do halt "$dir/$j"; done; exit 69; }
  done
  for i in 1 2 3; do echo "server $i 127.0.0.1:$((base + i - 1)) $(four $((base + i - 1)) srvr | grep '^Mode:')" >&2; done
  echo "127.0.0.1:$base,127.0.0.1:$((base + 1)),127.0.0.1:$((base + 2))"
  ;;
ensemble-stop)
  for i in 1 2 3; do halt "$dir/$i"; done
  ;;
*) echo "$usage" >&2; exit 64 ;;
esac
