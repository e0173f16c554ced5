#!/usr/bin/env bash
# Instructions per request for each variant of benches/instructions.rs, counted by
# valgrind's callgrind: (count with N requests - count with none) / N. Unlike times, these
# do not move with the machine's load.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "error: valgrind is required" >&2; exit 1; }
cargo bench --bench instructions --no-run >/dev/null 2>&1
binary=$(ls -t "${CARGO_TARGET_DIR:-target}"/release/deps/instructions-* | grep -v '\.d$' | head -n 1)
n=${TOKENGATE_INSTRUCTION_REQUESTS:-20000}
count() {
    TOKENGATE_VARIANT=$1 TOKENGATE_ITERATIONS=$2 valgrind --tool=callgrind \
        --callgrind-out-file=/dev/null "$binary" 2>&1 | sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}
echo "instructions: $n requests per variant, callgrind"
for variant in bare bare_refusal layer_hot floor malformed missing; do
    base=$(count "$variant" 0)
    full=$(count "$variant" "$n")
    echo "instructions $variant $(( (full - base) / n ))"
done
