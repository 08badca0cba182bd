#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks to build, test and run ds. Idempotent.
set -euo pipefail
packages=(zookeeper libzookeeper-mt-dev libsqlite3-dev sqlite3 mandoc procps graphviz python3 python3-prometheus-client iproute2 strace postgresql)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "install-deps: installing ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y "${missing[@]}"
  # Debian's postgresql starts its own cluster (15/main on port 5432) where an init system lets it.
  # ds never uses it (scripts/postgres.sh and the tests start scratch servers as the postgres user):
  # stop what the install just started, so it holds no port and no memory. Its start.conf is left
  # as Debian made it.
  if [[ " ${missing[*]} " == *" postgresql "* ]] && command -v pg_lsclusters >/dev/null; then
    pg_lsclusters --no-header 2>/dev/null | while read -r version name _ status _; do
      if [ "$status" = online ]; then
        echo "install-deps: stopping Debian's own PostgreSQL cluster $version/$name, which ds does not use" >&2
        $sudo pg_ctlcluster "$version" "$name" stop || true
      fi
    done
  fi
fi
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || { echo "install-deps: no PostgreSQL server after installing postgresql" >&2; exit 69; }
command -v java >/dev/null || { echo "install-deps: java missing after installing zookeeper" >&2; exit 69; }
command -v swift >/dev/null || {
  echo "install-deps: no swift on PATH; install the Swift 6 toolchain (swift.org) first" >&2
  exit 69
}
# scripts/fuzz.sh (which the tests run) links the libFuzzer runtime of the toolchain's own clang,
# which swift.org toolchains ship.
toolchain=$(dirname "$(readlink -f "$(command -v swiftc)")")
compgen -G "$("$toolchain/clang" -print-resource-dir 2>/dev/null)/lib/*/libclang_rt.fuzzer*.a" >/dev/null || {
  echo "install-deps: the Swift toolchain in $toolchain lacks clang's libFuzzer runtime (libclang_rt.fuzzer); install the swift.org toolchain" >&2
  exit 69
}
