#!/bin/sh
# .ci/sanitize.sh - configure a build with AddressSanitizer (leaks
# included) and UndefinedBehaviorSanitizer in its own directory
# (SANITIZE_BUILD, default build/sanitize), build it, and run the whole
# meson test suite there. The suites that start the kaf binary start the
# sanitized one, so its runs are checked too.
#
# Every report fails the run, even one from a kaf process whose failure
# a test expects (a full disk) or whose stderr a test drops: both
# sanitizers abort (exit status 134, which no test accepts), and
# AddressSanitizer writes its reports to files, printed here at the end.
# (GCC's UndefinedBehaviorSanitizer ignores log_path next to ASan; its
# reports go to standard error.)
set -eu

cd "$(dirname "$0")/.."
dir="${SANITIZE_BUILD:-build/sanitize}"

# GCC's -fsanitize=undefined adds null checks on pointers that its
# -Wformat-truncation then takes for possible nulls (in sweep/grid.c);
# the warning is kept, with -Werror, in the normal build.
if [ -d "$dir" ]; then
	meson setup --reconfigure "$dir"
else
	meson setup "$dir" -Db_sanitize=address,undefined \
		-Dbuildtype=debugoptimized -Dc_args=-Wno-format-truncation
fi
ninja -C "$dir"

logs="$(pwd)/$dir/sanitizer-logs"
rm -rf "$logs"
mkdir -p "$logs"
ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:log_path=$logs/asan"
UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1:print_stacktrace=1
export ASAN_OPTIONS UBSAN_OPTIONS

status=0
# The sanitized suites run several times slower: widen their timeouts.
meson test -C "$dir" --print-errorlogs --timeout-multiplier=4 || status=$?
for report in "$logs"/*; do
	[ -e "$report" ] || continue
	echo "sanitize.sh: report in $report:"
	cat "$report"
	status=1
done
exit $status
