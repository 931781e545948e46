#!/bin/sh
# .ci/fuzz.sh - build the libFuzzer harnesses of tests/fuzz with clang
# (AddressSanitizer and UndefinedBehaviorSanitizer on) and run each for
# FUZZ_SECONDS seconds (default 30), starting from its committed seed
# corpus and past crashes. Any crash, leak, sanitizer report or broken
# invariant fails the script; the input that caused it is left in the
# build directory (FUZZ_BUILD, default build/fuzz) as crash-*, to be
# committed under tests/fuzz/regressions/NAME/ once fixed.
set -eu

cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-30}"
out="${FUZZ_BUILD:-build/fuzz}"
cc="${FUZZ_CC:-clang}"
harnesses="spec set csv"

mkdir -p "$out"

# Can $cc link a fuzzer? Debian's clang needs libclang-rt-dev for that,
# which it only recommends.
can_fuzz() {
	echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n)' \
		'{ (void)d; (void)n; return 0; }' > "$out/probe.c"
	"$cc" -fsanitize=fuzzer,address,undefined -o "$out/probe" \
		"$out/probe.c" > /dev/null 2>&1
}

if ! can_fuzz; then
	sudo=""
	if [ "$(id -u)" -ne 0 ]; then
		sudo="sudo"
	fi
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get update
	$sudo apt-get install -y --no-install-recommends clang libclang-rt-dev
	if ! can_fuzz; then
		echo "fuzz.sh: $cc cannot build a libFuzzer harness" >&2
		exit 1
	fi
fi

# The built-in datasets, embedded exactly as meson.build does it.
python3 core/datasets/embed.py "$out/datasets_embed.c" \
	boston=core/datasets/boston.csv \
	breast_cancer=core/datasets/breast_cancer.csv \
	digits=core/datasets/digits.csv \
	iris=core/datasets/iris.csv \
	wine=core/datasets/wine.csv

sources="core/cli.c core/data.c core/engine.c core/error.c core/log.c
core/model.c core/rng.c sweep/grid.c $out/datasets_embed.c"
# -ffp-contract=off and friends as in meson.build, so parsing behaves the
# same; no -fopenmp: the parsers do not use it and its pragmas are hints.
cflags="-std=c17 -g -O1 -D_DEFAULT_SOURCE
-ffp-contract=off -fno-fast-math -fno-trapping-math -Wall -Wextra
-Wno-unknown-pragmas -fsanitize=fuzzer,address,undefined
-fno-sanitize-recover=all -Icore -Isweep"

for name in $harnesses; do
	echo "fuzz.sh: building fuzz_$name"
	# shellcheck disable=SC2086
	"$cc" $cflags -o "$out/fuzz_$name" "tests/fuzz/fuzz_$name.c" \
		$sources -lm
done

status=0
for name in $harnesses; do
	corpus="$out/corpus/$name"
	seeds="tests/fuzz/corpus/$name"
	past="tests/fuzz/regressions/$name"
	mkdir -p "$corpus"
	set -- "$corpus" "$seeds"
	if [ -d "$past" ]; then
		set -- "$@" "$past"
	fi
	case $name in
	csv) dict=tests/fuzz/csv.dict ;;
	*) dict=tests/fuzz/grid.dict ;;
	esac
	echo "fuzz.sh: running fuzz_$name for $seconds s"
	# Inputs past 64 kB only slow the search; the size limits are
	# tested on big files by tests/test_faults.c.
	if ! ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	     UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
	     "$out/fuzz_$name" -max_total_time="$seconds" -max_len=65536 \
	     -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
	     -artifact_prefix="$out/fuzz_$name-" -dict="$dict" "$@" \
	     > "$out/fuzz_$name.log" 2>&1; then
		tail -n 60 "$out/fuzz_$name.log"
		echo "fuzz.sh: fuzz_$name FAILED; input saved as" \
		     "$out/fuzz_$name-crash-* (or leak-, timeout-, oom-)"
		status=1
	else
		grep -E "^stat::number_of_executed_units|^Done" \
		     "$out/fuzz_$name.log" || true
	fi
done
exit $status
