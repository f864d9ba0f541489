#!/bin/sh
# Runs every test program given (CUnit binaries, tests/python/test_*.py and
# fuzz targets) and prints what ran: the tests skipped and the expected
# failures by name, then one closing line "N passed, N failed, N skipped,
# N expected failures". "ft:PROGRAM" runs an integration suite against the
# free-threaded runtime (GILD_TEST_RUNTIME=free-threaded: see
# tests/integration/harness.h); "ftpy:FILE.py" runs a Python test file
# under the free-threaded Python ($FT_PYTHON).
#
# A program reports its counts in a last line "GILD_COUNTS passed=P
# failed=F skipped=S xfail=X left_out=L" (tests/test_main.c,
# tests/python/runner.py) and names each skip, expected failure and
# unexpected pass on a line "SKIP: ", "XFAIL: " or "XPASS: ". A program
# that prints no counts (it crashed, or is a fuzz target) counts as one
# test; one that exits non-zero after its counts (a leak report at exit)
# adds one failure.
# Environment: B (build folder), PYTHON (the system python3), FT_PYTHON,
# NOT_RUN ("WHAT: WHY;" entries: suites this build leaves out, printed at
# the end), GILD_TEST_ONLY (runs only the tests whose name contains it;
# what it leaves out is counted and said).
set -u
B=${B:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
export B PYTHON
passed=0 failed=0 skipped=0 xfail=0 left_out=0
failed_names=""
all_skipped=""
log=$(mktemp)
marks=$(mktemp)
fails=$(mktemp)
trap 'rm -f "$log" "$marks" "$fails"' EXIT

# field NAME LINE: the value of NAME=V in a GILD_COUNTS line.
field() {
	echo "$2" | sed -n "s/.* $1=\([0-9]*\).*/\1/p"
}

# what_failed NAME LOG: keeps the lines of LOG that say what failed (a
# CUnit test, named even when its output came between its name and
# "FAILED", and its assertions, a Python test and its exception, a
# sanitizer's summary, the runner's own "!!!"), 15 at most, to be printed
# again at the end: a CI log is often read from its tail only.
what_failed() {
	awk '/^  Test: / { t = $0; sub(/ \.\.\..*$/, "", t) }
	/\.\.\.FAILED$/ || /^FAILED$/ { print (t != "" ? t " ...FAILED" : $0); next }
	/^    [0-9]+\. / || /^(FAIL|ERROR|XPASS): / ||
	/^[A-Za-z.]*(Error|Exception): / || /SUMMARY: [A-Za-z]*Sanitizer/ ||
	/^!!! / { print }' "$2" | head -n 15 | sed "s|^ *|  $1: |" >>"$fails"
}

# count NAME STATUS LOG: adds what program NAME reported.
count() {
	line=$(grep '^GILD_COUNTS ' "$3" | tail -1)
	grep -E '^ *(SKIP|XFAIL|XPASS): ' "$3" | sed "s|^ *|$1: |" >>"$marks"
	f=$(field failed "$line")
	if [ "$2" -ne 0 ] || [ "${f:-0}" -gt 0 ]; then
		what_failed "$1" "$3"
		echo "  $1: exited with status $2" >>"$fails"
	fi
	if [ -z "$line" ]; then
		if [ "$2" -eq 0 ]; then
			passed=$((passed + 1))
		else
			failed=$((failed + 1))
			failed_names="$failed_names $1"
		fi
		return
	fi
	p=$(field passed "$line")
	f=$(field failed "$line")
	s=$(field skipped "$line")
	passed=$((passed + p))
	failed=$((failed + f))
	skipped=$((skipped + s))
	xfail=$((xfail + $(field xfail "$line")))
	left_out=$((left_out + $(field left_out "$line")))
	if [ "$2" -ne 0 ] && [ "$f" -eq 0 ]; then
		echo "!!! $1 exited with status $2 after its tests passed"
		failed=$((failed + 1))
	fi
	[ "$2" -ne 0 ] && failed_names="$failed_names $1"
	if [ "$p" -eq 0 ] && [ "$f" -eq 0 ] && [ "$s" -gt 0 ]; then
		all_skipped="$all_skipped $1"
	fi
}

start_all=$(date +%s)
for t in "$@"; do
	echo "=== $t"
	start=$(date +%s)
	case "$t" in
	*/fuzz_*) timeout 900 tests/fuzz/run.sh "$t" "${FUZZ_SECONDS:-60}" >"$log" 2>&1 ;;
	ft:*) GILD_TEST_RUNTIME=free-threaded timeout 600 "${t#ft:}" >"$log" 2>&1 ;;
	ftpy:*) PYTHONPATH="$B/python${PYTHONPATH:+:$PYTHONPATH}" timeout 600 "$FT_PYTHON" tests/python/runner.py "${t#ftpy:}" >"$log" 2>&1 ;;
	*.py) PYTHONPATH="$B/python${PYTHONPATH:+:$PYTHONPATH}" timeout 600 "$PYTHON" tests/python/runner.py "$t" >"$log" 2>&1 ;;
	*) timeout 600 "$t" >"$log" 2>&1 ;;
	esac
	rc=$?
	[ $rc -eq 124 ] && echo "!!! $t timed out" >>"$log"
	cat "$log"
	echo "--- $t: $(($(date +%s) - start)) s"
	count "$t" $rc "$log"
done
echo
echo "tests took $(($(date +%s) - start_all)) s"
if grep -q ': SKIP: ' "$marks"; then
	echo "skipped:"
	sed -n 's/: SKIP: /: /p' "$marks" | sed 's/^/  /'
fi
for name in $all_skipped; do
	echo "!!! every test of $name was skipped"
done
if [ -n "${NOT_RUN:-}" ]; then
	echo "not run in this build:"
	echo "$NOT_RUN" | tr ';' '\n' | sed -n 's/^ *\(..*\)/  \1/p'
fi
if grep -q ': XFAIL: ' "$marks"; then
	echo "expected failures (known bugs; each must fail until fixed):"
	sed -n 's/: XFAIL: /: /p' "$marks" | sed 's/^/  /'
fi
if grep -q ': XPASS: ' "$marks"; then
	echo "unexpected passes (failures: remove their expected-failure mark):"
	sed -n 's/: XPASS: /: /p' "$marks" | sed 's/^/  /'
fi
if [ "$left_out" -gt 0 ]; then
	echo "!!! GILD_TEST_ONLY=${GILD_TEST_ONLY:-} left out $left_out tests"
fi
if [ -s "$fails" ]; then
	echo "what failed (each program's whole output is above, after === NAME):"
	cat "$fails"
fi
[ -n "$failed_names" ] && echo "failing:$failed_names"
echo "$passed passed, $failed failed, $skipped skipped, $xfail expected failures"
[ "$failed" -eq 0 ]
