#!/bin/sh
# Runs every test program given (CUnit binaries and tests/python/test_*.py)
# and prints one closing line: "N passed, N failed". "ft:PROGRAM" runs an
# integration suite against the free-threaded runtime
# (GILD_TEST_RUNTIME=free-threaded: see tests/integration/harness.h);
# "ftpy:FILE.py" runs a Python test file under the free-threaded Python
# ($FT_PYTHON).
# Environment: B (build folder), PYTHON (the system python3).
set -u
B=${B:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
export B PYTHON
passed=0
failed=0
failed_names=""
log=$(mktemp)
trap 'rm -f "$log"' EXIT

count() { # name status log: adds the counts a runner printed, or 1 for the program
	p=$(sed -n 's/^ *tests *[0-9]* *[0-9]* *\([0-9]*\) *\([0-9]*\).*/\1 \2/p' "$3" | tail -1)
	if [ -z "$p" ]; then
		p=$(sed -n 's/^PYTEST_COUNTS \([0-9]*\) \([0-9]*\)$/\1 \2/p' "$3" | tail -1)
	fi
	set -- "$1" "$2" "$3" $p
	if [ $# -eq 5 ]; then
		passed=$((passed + $4))
		failed=$((failed + $5))
		[ "$5" -eq 0 ] && [ "$2" -ne 0 ] && failed=$((failed + 1))
	elif [ "$2" -eq 0 ]; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
	fi
	if [ "$2" -ne 0 ]; then failed_names="$failed_names $1"; fi
}

start_all=$(date +%s)
for t in "$@"; do
	echo "=== $t"
	start=$(date +%s)
	case "$t" in
	*/fuzz_*) timeout 600 tests/fuzz/run.sh "$t" "${FUZZ_SECONDS:-60}" >"$log" 2>&1 ;;
	ft:*) GILD_TEST_RUNTIME=free-threaded timeout 600 "${t#ft:}" >"$log" 2>&1 ;;
	ftpy:*) PYTHONPATH="$B/python${PYTHONPATH:+:$PYTHONPATH}" timeout 600 "$FT_PYTHON" tests/python/runner.py "${t#ftpy:}" >"$log" 2>&1 ;;
	*.py) PYTHONPATH="$B/python${PYTHONPATH:+:$PYTHONPATH}" timeout 600 "$PYTHON" tests/python/runner.py "$t" >"$log" 2>&1 ;;
	*) timeout 600 "$t" >"$log" 2>&1 ;;
	esac
	rc=$?
	cat "$log"
	[ $rc -eq 124 ] && echo "!!! $t timed out"
	echo "--- $t: $(($(date +%s) - start)) s"
	count "$t" $rc "$log"
done
echo "tests took $(($(date +%s) - start_all)) s"
[ -n "$failed_names" ] && echo "failing:$failed_names"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
