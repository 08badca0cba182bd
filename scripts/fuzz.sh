#!/usr/bin/env bash
# Fuzzing (issue 9): builds the libFuzzer harnesses of Fuzz/Harnesses into .build-fuzz/ and runs
# each target for SECONDS (default 300) over its seed corpus, one after the other; exits 1 if any
# target crashed, trapped, broke a property, leaked or took over 25 s on one input, after
# printing that input and its stack, and 0 otherwise, after printing each target's figures.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# Targets (all by default):
#   workflow            WorkflowParser.parse, and the round trip of what it accepts through
#                       canonical JSON and WorkflowDefinition.fromStored
#   parameters          ParameterResolver: substitute (date arithmetic included),
#                       instanceParameters, outputParameters(in:)
#   queue-key           TaskQueueKey(name): decoding, and names sorting as keys do
#   supervisor-request  task-supervisor's request framing and parsing (Sources/task-supervisor/request.c)
# Each harness's comment states the properties it checks.
#
# The Swift targets link the pure model (Sources/Shared/Model and the three files it needs),
# compiled once into a static library with -sanitize=fuzzer,address; the C target links
# request.c with -fsanitize=fuzzer,address. Builds are redone when a source is newer.
# Seeds live in the project, Fuzz/corpus/<target>/: add each crash's input there as a regression
# file. What a run learns goes to .build-fuzz/corpus/<target>/ and seeds the next run. A crash's
# input is saved as .build-fuzz/crashes/<target>-crash-*; replay it with
# `.build-fuzz/bin/<target> FILE` (set SWIFT_BACKTRACE=enable=no for the stack from ASan).
# The full libFuzzer log of each target is .build-fuzz/logs/<target>.log.
#
# scripts/test.sh runs `scripts/fuzz.sh 12` (Tests/EndToEndTests/FuzzTests.swift). Needs only the
# Swift toolchain: swiftc, its clang and lld, and the libFuzzer and ASan runtimes that swift.org
# toolchains ship (scripts/install-deps.sh checks).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-300}
[[ "$seconds" =~ ^[1-9][0-9]*$ ]] || { echo "usage: scripts/fuzz.sh [SECONDS] [TARGET...]" >&2; exit 64; }
shift || true
all_targets=(workflow parameters queue-key supervisor-request)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")

scripts/install-deps.sh  # the toolchain, with its libFuzzer runtime
toolchain=$(dirname "$(readlink -f "$(command -v swiftc)")")
swiftc="$toolchain/swiftc"
clang="$toolchain/clang"

out=.build-fuzz
mkdir -p "$out/bin" "$out/lib" "$out/logs" "$out/crashes"
model_sources=(Sources/Shared/Model/*.swift Sources/Shared/Engine/TaskGraph.swift
               Sources/Shared/CLI/ExitStatus.swift Sources/Shared/ZooKeeper/ZooKeeperTypes.swift)
swift_flags=(-O -g -sanitize=fuzzer,address -parse-as-library)

# Whether $1 is missing or older than any of the other files.
stale() {
  local target=$1; shift
  [ -e "$target" ] || return 0
  [ -n "$(find "$@" "$0" -newer "$target" 2>/dev/null | head -1)" ]
}

build_model() {
  local lib="$out/lib/libDSModel.a"
  stale "$lib" "${model_sources[@]}" || return 0
  echo "fuzz: building the model library" >&2
  "$swiftc" "${swift_flags[@]}" -module-name DSModel -emit-library -static \
    -emit-module -emit-module-path "$out/lib/DSModel.swiftmodule" "${model_sources[@]}" -o "$lib"
}

build() {
  local target=$1 bin="$out/bin/$1" harness
  case "$target" in
    supervisor-request)
      local sources=(Fuzz/Harnesses/supervisor_request_fuzz.c Sources/task-supervisor/request.c)
      stale "$bin" "${sources[@]}" Sources/task-supervisor/request.h || return 0
      echo "fuzz: building $target" >&2
      # A small first buffer, so that short inputs make it grow and move.
      "$clang" -g -O1 -fsanitize=fuzzer,address -fuse-ld=lld -Wall -Wextra -Werror -DREQUEST_BUFFER_INITIAL=8 \
        -ISources/task-supervisor "${sources[@]}" -o "$bin"
      return ;;
    workflow) harness=WorkflowParserFuzz ;;
    parameters) harness=ParameterResolverFuzz ;;
    queue-key) harness=TaskQueueKeyFuzz ;;
    *) echo "fuzz: unknown target '$target'; targets are ${all_targets[*]}" >&2; exit 64 ;;
  esac
  build_model
  local sources=(Fuzz/Harnesses/FuzzRequire.swift "Fuzz/Harnesses/$harness.swift")
  stale "$bin" "${sources[@]}" "$out/lib/libDSModel.a" || return 0
  echo "fuzz: building $target" >&2
  "$swiftc" "${swift_flags[@]}" -use-ld=lld -I "$out/lib" -L "$out/lib" -lDSModel "${sources[@]}" -o "$bin"
}

for target in "${targets[@]}"; do build "$target"; done

# Swift's own crash reporter would stop libFuzzer from saving the input; ASan prints the stack.
export SWIFT_BACKTRACE=enable=no
export ASAN_OPTIONS=handle_sigill=1:handle_abort=1:allocator_may_return_null=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}
symbolizer="$toolchain/llvm-symbolizer"
[ -x "$symbolizer" ] && export ASAN_SYMBOLIZER_PATH="$symbolizer"
demangle() { if [ -x "$toolchain/swift-demangle" ]; then "$toolchain/swift-demangle" --simplified; else cat; fi; }

failed=()
summary=()
for target in "${targets[@]}"; do
  log="$out/logs/$target.log"
  mkdir -p "$out/corpus/$target"
  dict=()
  [ -f "Fuzz/dictionaries/$target.dict" ] && dict=(-dict="Fuzz/dictionaries/$target.dict")
  echo "fuzz: $target for ${seconds}s" >&2
  # The Swift targets' model has no unsafe code, and Foundation's date formatting allocates so
  # much that allocation stacks and the quarantine (for use-after-free) took 2/3 of the time;
  # the C target keeps them.
  lean=malloc_context_size=0:quarantine_size_mb=0
  [ "$target" = supervisor-request ] && lean=
  status=0
  ASAN_OPTIONS="$ASAN_OPTIONS${lean:+:$lean}" "$out/bin/$target" -max_total_time="$seconds" -timeout=25 -rss_limit_mb=3072 -print_final_stats=1 \
    -artifact_prefix="$out/crashes/$target-" "${dict[@]}" "$out/corpus/$target" "Fuzz/corpus/$target" \
    >"$log" 2>&1 || status=$?
  pcs=$(sed -n 's/.*Loaded [0-9]* PC tables* (\([0-9]*\) PCs).*/\1/p' "$log" | head -1)
  line=$(grep -E '^#[0-9]+[[:space:]]+(DONE|INITED|NEW|REDUCE|pulse)' "$log" | tail -1 || true)
  cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$line")
  ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$line")
  corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$line")
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
  figures="$(printf '%-19s %9s runs %7s exec/s  coverage %5s of %5s PCs (%s features)  corpus %s' \
    "$target" "${runs:-?}" "${rate:-?}" "${cov:-?}" "${pcs:-?}" "${ft:-?}" "${corp:-?}")"
  if [ "$status" -eq 0 ] && ! [[ "${runs:-0}" -gt 0 ]]; then
    failed+=("$target")
    summary+=("$figures  FAILED (no inputs ran; see $log)")
  elif [ "$status" -ne 0 ]; then
    failed+=("$target")
    summary+=("$figures  FAILED (exit $status)")
    {
      echo "fuzz: $target FAILED (libFuzzer exit $status); from $log:"
      sed -n '/Fatal error\|property failed\|ERROR: \|==ERROR\|^ALARM\|Test unit written\|^Base64/,$p' "$log" \
        | grep -v '^  0x\|^Shadow\|^  [A-Z][a-z ]*: *[0-9a-f ]*$\|^=*$' | head -80 | demangle
    } >&2
  else
    summary+=("$figures")
  fi
done

echo "fuzz: ${seconds}s per target" >&2
printf '  %s\n' "${summary[@]}" >&2
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: failed: ${failed[*]}; inputs are in $out/crashes/" >&2
  exit 1
fi
