#!/usr/bin/env bash
# The whole test suite: unit tests of the pure core, and end-to-end tests that start their own
# ZooKeeper servers and run the built ds-* binaries as separate processes.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
swift build --build-tests
swift test --skip-build --disable-swift-testing "$@"
