#!/bin/sh
# Runs one libFuzzer target for SECONDS on a scratch copy of its committed
# seed corpus (tests/fuzz/corpus/NAME/), so new inputs it finds stay out of
# the tree. A crash leaves its input in the scratch folder and fails.
# usage: tests/fuzz/run.sh BINARY SECONDS
set -eu
bin=$1
seconds=$2
name=$(basename "$bin")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp -r "tests/fuzz/corpus/$name/." "$work/"
echo "$name: fuzzing for ${seconds}s from $(ls "$work" | wc -l) seeds"
if "$bin" -max_total_time="$seconds" -print_final_stats=1 \
	-artifact_prefix="$work/" "$work" 2>&1 | tail -n 25; then
	echo "$name: no crash in ${seconds}s"
else
	echo "$name: CRASH (see above)"
	exit 1
fi
