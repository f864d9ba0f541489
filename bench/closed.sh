#!/bin/sh
# No-op throughput at 1, 16, 64 and 256 calls in flight (loadgen --closed
# K, 3 s a run) on a gild with 2 workers serving bench/apps/bench_app.py,
# for each build given. A build is BUILD_DIR, or BUILD_DIR:ARGS for extra
# `gild serve` arguments ("build:--pipeline 0"). With several, their
# servers run side by side and the runs take turns (A B A B ...), RUNS of
# each (default 3), so that the machine's drift hits them alike. The
# client is the first build's loadgen. Prints each run, then the median.
#   make bench-tools && sh bench/closed.sh [BUILD[:ARGS]...]
set -eu
[ $# -gt 0 ] || set -- build
RUNS=${RUNS:-3}
out=$(mktemp -d)
pids=""
trap 'for p in $pids; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$out"' EXIT
n=0
loadgen=""
for spec in "$@"; do
	n=$((n + 1))
	dir=${spec%%:*}
	args=""
	[ "$dir" = "$spec" ] || args=${spec#*:}
	[ -n "$loadgen" ] || loadgen="$dir/bench/loadgen"
	# shellcheck disable=SC2086 # ARGS are words for gild
	"$dir/gild" serve bench/apps/bench_app.py --listen tcp://127.0.0.1:0 \
	    --workers 2 $args >"$out/stdout$n" 2>"$out/log$n" &
	pids="$pids $!"
	i=0
	until grep -qs '^gild: ready' "$out/stdout$n"; do
		i=$((i + 1))
		[ $i -le 300 ] || { echo "gild ($spec) did not start" >&2; exit 1; }
		sleep 0.1
	done
	sed -n 's/^gild: listening on //p' "$out/stdout$n" >"$out/url$n"
done
printf '%-8s %-28s %s\n' "in flight" "build" "calls/s ($RUNS runs, median last)"
for k in 1 16 64 256; do
	for b in $(seq 1 $n); do : >"$out/runs$b"; done
	for rep in $(seq 1 "$RUNS"); do
		for b in $(seq 1 $n); do
			"$loadgen" --url "$(cat "$out/url$b")" --fn noop \
			    --closed "$k" --seconds 3 --warmup 200 2>&1 \
			    >/dev/null | sed -n 's/.*(\([0-9]*\)\/s).*/\1/p' \
			    >>"$out/runs$b"
		done
	done
	b=0
	for spec in "$@"; do
		b=$((b + 1))
		runs=$(tr '\n' ' ' <"$out/runs$b")
		med=$(sort -n "$out/runs$b" | sed -n "$(( (RUNS + 1) / 2 ))p")
		printf '%-8s %-28s %s -> %s\n' "$k" "$spec" "$runs" "$med"
	done
done
