#!/usr/bin/env bash
# A soak beyond the test suite: random partitions, kill -9, SIGSTOP, ZooKeeper leader kills and
# graceful restarts on network-namespace hosts, then a check of every task's history.
#   scripts/chaos.sh --minutes N [--seed S] [--session 6s] [--keep]
# Needs root. See scripts/chaos.py for what it checks.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build
exec python3 scripts/chaos.py "$@"
