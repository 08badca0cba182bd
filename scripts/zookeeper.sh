#!/usr/bin/env bash
# Start or stop a standalone ZooKeeper on loopback for the demo and the benchmark.
#   scripts/zookeeper.sh start DIR PORT   writes DIR/zoo.cfg, starts the server, waits for "imok"
#   scripts/zookeeper.sh stop DIR         stops the server started in DIR, by its pid
# The configuration is scripts/zookeeper/zoo.cfg.in and the JVM flags scripts/zookeeper/jvm.options,
# shared with the tests. ZK_EXTRA_CONFIG adds zoo.cfg lines; ZK_JAVA_OPTS adds JVM flags after the
# shared ones (the last of two alike wins). The shared -XX:TieredStopAtLevel=1 -XX:+UseSerialGC:
# on a small machine shared with the daemons, C2's compile threads took a fifth of the CPU of a
# fresh server's first 1,000 tasks, while C1's code serves requests as cheaply as a warmed-up C2's
# (measured: scripts/bench.sh fanout, repeated); the serial GC adds no collector threads for a
# heap this small.
set -euo pipefail
cmd=${1:?usage: zookeeper.sh start DIR PORT | stop DIR}
dir=${2:?usage: zookeeper.sh start DIR PORT | stop DIR}
case "$cmd" in
start)
  port=${3:?usage: zookeeper.sh start DIR PORT}
  mkdir -p "$dir/data"
  shared=$(cd "$(dirname "$0")" && pwd)/zookeeper
  sed -e "s|@DATA_DIR@|$dir/data|" -e "s|@PORT@|$port|" "$shared/zoo.cfg.in" > "$dir/zoo.cfg"
  if [ -n "${ZK_EXTRA_CONFIG:-}" ]; then printf '%s\n' "$ZK_EXTRA_CONFIG" >> "$dir/zoo.cfg"; fi
  # shellcheck disable=SC2046 # the options are words
  java -Dzookeeper.log.dir="$dir" $(cat "$shared/jvm.options") ${ZK_JAVA_OPTS:-} \
    -cp /etc/zookeeper/conf:/usr/share/java/zookeeper.jar org.apache.zookeeper.server.quorum.QuorumPeerMain "$dir/zoo.cfg" > "$dir/zookeeper.log" 2>&1 &
  echo $! > "$dir/zookeeper.pid"
  for _ in $(seq 1 300); do
    # A server still starting can accept the connection and never answer: bound each try.
    if timeout 2 bash -c 'exec 3<>/dev/tcp/127.0.0.1/"$1" && printf ruok >&3 && grep -q imok <&3' _ "$port" 2>/dev/null; then exit 0; fi
    kill -0 "$(cat "$dir/zookeeper.pid")" 2>/dev/null || { echo "zookeeper.sh: server exited; see $dir/zookeeper.log" >&2; tail -20 "$dir/zookeeper.log" >&2; exit 69; }
    sleep 0.1
  done
  echo "zookeeper.sh: no answer on 127.0.0.1:$port after 30s; see $dir/zookeeper.log" >&2
  exit 69
  ;;
stop)
  [ -f "$dir/zookeeper.pid" ] || exit 0
  pid=$(cat "$dir/zookeeper.pid")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$dir/zookeeper.pid"
  ;;
*) echo "usage: zookeeper.sh start DIR PORT | stop DIR" >&2; exit 64 ;;
esac
