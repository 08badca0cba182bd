#!/usr/bin/env bash
# A scratch PostgreSQL for trying ds on several hosts locally, for the benchmark and for the tests.
#   scripts/postgres.sh start DIR [PORT] [--host ADDR]
#       makes a cluster in DIR/data (initdb), starts it on ADDR:PORT (default 127.0.0.1 and a free
#       port) with its socket in DIR/socket, makes the user `ds` (password in DIR/password, mode 600)
#       and the database `ds`, and prints what to use, one KEY=VALUE a line:
#           DS_DB=postgres://ds@127.0.0.1:PORT/ds
#           DS_DB_PASSWORD_FILE=DIR/password
#       (`set -a; eval "$(scripts/postgres.sh start /tmp/pg)"; set +a` exports both.)
#   scripts/postgres.sh stop DIR
#       stops the server started in DIR, by the pid in DIR/data/postmaster.pid; DIR is kept, and
#       `start DIR` starts it again on the same port with its data (a restart).
# PostgreSQL refuses to run as root: as root, the server runs as the `postgres` user (DIR/data and
# DIR/socket are its; DIR and the password file stay root's). A scratch server: fsync is off, which
# loses data on a machine's crash, never on a server's. Needs Debian's postgresql (scripts/install-deps.sh).
# The superuser `postgres` connects over the socket only (trust: the socket's folder is the server
# user's, mode 700); every TCP connection needs a password (scram-sha-256).
set -euo pipefail
usage="usage: postgres.sh start DIR [PORT] [--host ADDR] | stop DIR"
cmd=${1:?$usage}
dir=${2:?$usage}
shift 2

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
[ -n "$bindir" ] && [ -x "$bindir/initdb" ] || { echo "postgres.sh: no PostgreSQL server in /usr/lib/postgresql/*/bin; run scripts/install-deps.sh" >&2; exit 69; }

# as_server CMD...: runs CMD as the user the server runs as (postgres when we are root).
as_server() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# pid_of DIR: the postmaster's pid, from the first line of its pid file (empty if none).
pid_of() { head -1 "$1/data/postmaster.pid" 2>/dev/null || true; }

# free_port: a TCP port nothing listens on now (the server's start fails if another takes it first).
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

stop() {
  local pid
  pid=$(pid_of "$dir")
  if [ -z "$pid" ] || ! kill -0 "$pid" 2>/dev/null; then
    echo "postgres.sh: no server running in $dir" >&2
    return 0
  fi
  # SIGINT: PostgreSQL's fast shutdown (clients disconnected, a clean checkpoint). Then SIGQUIT
  # (immediate), then SIGKILL: a scratch server must not outlive whoever stops it.
  kill -INT "$pid" 2>/dev/null || true
  for signal in QUIT KILL; do
    for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    echo "postgres.sh: server $pid still running after 30s; sending SIG$signal" >&2
    kill -"$signal" "$pid" 2>/dev/null || true
  done
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  echo "postgres.sh: server $pid did not stop" >&2
  return 70
}

start() {
  local port="" host=127.0.0.1
  while [ $# -gt 0 ]; do
    case $1 in
      --host) host=${2:?"postgres.sh: --host needs an address"}; shift 2 ;;
      [0-9]*) port=$1; shift ;;
      *) echo "postgres.sh: unknown argument '$1'; $usage" >&2; exit 64 ;;
    esac
  done
  if [ -n "$port" ] && { ! [[ $port =~ ^[0-9]+$ ]] || [ "$port" -lt 1 ] || [ "$port" -gt 65535 ]; }; then
    echo "postgres.sh: port '$port' is not from 1 to 65535" >&2; exit 64
  fi
  if [ -n "$(pid_of "$dir")" ] && kill -0 "$(pid_of "$dir")" 2>/dev/null; then
    echo "postgres.sh: a server already runs in $dir (pid $(pid_of "$dir")); stop it first" >&2; exit 64
  fi
  if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || { echo "postgres.sh: no 'postgres' user to run the server as; run scripts/install-deps.sh" >&2; exit 69; }
  fi
  if [ -e "$dir/data/PG_VERSION" ] && [ -e "$dir/port" ] && [ -e "$dir/password" ]; then
    # A server this script made and stopped: started again on its port, its data as they were
    # (a restart, for an outage test or after a reboot).
    dir=$(cd "$dir" && pwd)
    port=${port:-$(cat "$dir/port")}
    [ -f "$dir/host" ] && [ "$host" = 127.0.0.1 ] && host=$(cat "$dir/host")
    launch "$port" "$host" || { echo "postgres.sh: the server did not start again; see $dir/data/postgres.log" >&2; tail -5 "$dir/data/postgres.log" >&2 2>/dev/null || true; exit 69; }
    echo "$port" > "$dir/port"
    announce "$port" "$host"
    return 0
  fi
  if [ -e "$dir/data" ]; then
    echo "postgres.sh: $dir/data exists but holds no cluster this script made; give a new folder (or remove it)" >&2; exit 64
  fi
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  # The server's user must reach DIR/data and DIR/socket; DIR itself stays ours.
  chmod 711 "$dir"
  mkdir -m 700 "$dir/data" "$dir/socket"
  [ "$(id -u)" -eq 0 ] && chown postgres:postgres "$dir/data" "$dir/socket"
  if [ "$(id -u)" -eq 0 ] && ! runuser -u postgres -- test -w "$dir/data"; then
    rm -rf "$dir/data" "$dir/socket"
    echo "postgres.sh: the postgres user cannot reach $dir: a folder above it is closed to others (mktemp -d makes one so); give a folder under one others may enter, such as /tmp/NAME" >&2
    exit 64
  fi
  (umask 077; head -c 24 /dev/urandom | base64 | tr -d '/+=\n' > "$dir/password")
  chmod 600 "$dir/password"
  as_server "$bindir/initdb" -D "$dir/data" -U postgres -E UTF8 --locale=C.UTF-8 \
    --auth-local=trust --auth-host=scram-sha-256 > "$dir/initdb.log" 2>&1 \
    || { echo "postgres.sh: initdb failed; see $dir/initdb.log" >&2; tail -5 "$dir/initdb.log" >&2; exit 70; }
  # Other hosts (network namespaces on a bridge) connect with the password too.
  printf '%s\n' "host all all 0.0.0.0/0 scram-sha-256" "host all all ::/0 scram-sha-256" | as_server tee -a "$dir/data/pg_hba.conf" >/dev/null
  echo "$host" > "$dir/host"
  local tries=0
  while :; do
    local p=${port:-$(free_port)}
    if launch "$p" "$host"; then
      port=$p
      break
    fi
    tries=$((tries + 1))
    # A free port taken by another between our look and the server's bind: try another.
    if [ -n "$port" ] || [ $tries -ge 5 ] || [ -n "$(pid_of "$dir")" ]; then
      echo "postgres.sh: the server did not start; see $dir/data/postgres.log" >&2
      tail -5 "$dir/data/postgres.log" >&2 2>/dev/null || true
      stop >/dev/null 2>&1 || true
      exit 69
    fi
  done
  echo "$port" > "$dir/port"
  local password
  password=$(cat "$dir/password")
  as_server "$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir/socket" -p "$port" -U postgres -d postgres > /dev/null <<SQL \
    || { echo "postgres.sh: making the user ds failed" >&2; stop >/dev/null 2>&1 || true; exit 70; }
CREATE ROLE ds LOGIN CREATEDB PASSWORD '$password';
CREATE DATABASE ds OWNER ds;
SQL
  announce "$port" "$host"
}

# launch PORT HOST: starts the cluster in DIR/data and waits until it serves.
launch() {
  as_server "$bindir/pg_ctl" -D "$dir/data" -l "$dir/data/postgres.log" -w -t 180 \
    -o "-p $1 -k $dir/socket -h $2 -c max_connections=300 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
    start > "$dir/pg_ctl.log" 2>&1
}

# announce PORT HOST: what to use, on stdout; where it runs, on stderr.
announce() {
  local shown=$2
  [[ $2 == *:* ]] && shown="[$2]"
  echo "postgres.sh: PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') serves $shown:$1 (pid $(pid_of "$dir")); stop it with: scripts/postgres.sh stop $dir" >&2
  echo "DS_DB=postgres://ds@$shown:$1/ds"
  echo "DS_DB_PASSWORD_FILE=$dir/password"
}

case $cmd in
  start) start "$@" ;;
  stop) stop ;;
  *) echo "$usage" >&2; exit 64 ;;
esac
