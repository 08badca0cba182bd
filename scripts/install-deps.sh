#!/usr/bin/env bash
# Installs what a fresh Debian machine lacks to build, test and run ds. Idempotent.
set -euo pipefail
packages=(zookeeper libzookeeper-mt-dev libsqlite3-dev sqlite3 mandoc procps graphviz python3 python3-prometheus-client iproute2 strace)
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
fi
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
