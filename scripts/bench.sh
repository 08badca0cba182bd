#!/usr/bin/env bash
# The benchmark: release build, then scripts/bench.py (one JSON object per workload).
#   scripts/bench.sh [floor fanout chain layers many big backlog]
# BACKLOG_TASKS (default 1000000) and BACKLOG_SECONDS (default 20) size the backlog workload.
# PERF_DIR=DIR also records a whole-machine `perf record -a -g` profile of each workload in DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
command -v python3 >/dev/null || { apt-get update && apt-get install -y python3; }
swift build -c release >&2
exec python3 scripts/bench.py "$(swift build -c release --show-bin-path)" "$@"
