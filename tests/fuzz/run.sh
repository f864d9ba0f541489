#!/bin/sh
# Runs one libFuzzer target for SECONDS on a scratch copy of its committed
# seed corpus (tests/fuzz/corpus/NAME/), so new inputs it finds stay out of
# the tree. Passes only when the target ran its time and said so ("Done N
# runs"), exited 0, and printed no sanitizer report; a missing binary, a
# crash (its input is shown), a hang past SECONDS + FUZZ_GRACE (default 60)
# seconds, or a single input running over 10 s fails.
# usage: tests/fuzz/run.sh BINARY SECONDS
set -eu
bin=$1
seconds=$2
grace=${FUZZ_GRACE:-60}
name=$(basename "$bin")
if [ ! -x "$bin" ]; then
	echo "$name: FAIL: no fuzz target at $bin"
	exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/corpus"
cp -r "tests/fuzz/corpus/$name/." "$work/corpus/"
echo "$name: fuzzing for ${seconds}s from $(ls "$work/corpus" | wc -l) seeds"
# The status is the target's, not a pipe's: dash has no pipefail.
rc=0
timeout -s KILL $((seconds + grace)) "$bin" -max_total_time="$seconds" \
	-timeout=10 -print_final_stats=1 -artifact_prefix="$work/" \
	"$work/corpus" >"$work/log" 2>&1 || rc=$?
tail -n 25 "$work/log"
why=""
if [ "$rc" -eq 137 ]; then
	why="still running ${grace}s past its ${seconds}s: killed"
elif [ "$rc" -ne 0 ]; then
	why="exited with status $rc"
elif grep -Eq 'ERROR: [A-Za-z]+Sanitizer|runtime error:|^SUMMARY: ' \
	"$work/log"; then
	why="a sanitizer report"
elif ! grep -Eq '^Done [0-9]+ runs in' "$work/log"; then
	why="it never said it was done ('Done N runs')"
fi
if [ -n "$why" ]; then
	echo "$name: FAIL: $why"
	for f in "$work"/crash-* "$work"/timeout-* "$work"/leak-* \
		"$work"/oom-*; do
		[ -f "$f" ] && echo "input $(basename "$f"): $(od -An -c "$f" | head -4)"
	done
	exit 1
fi
echo "$name: no crash in ${seconds}s"
