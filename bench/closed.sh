#!/bin/sh
# No-op throughput of one build at 1, 16, 64 and 256 calls in flight
# (build/bench/loadgen --closed K, 3 s, 3 runs each, median), on a gild with
# 2 workers serving bench/apps/bench_app.py. For comparing two checkouts of
# the front end on the same machine: run it in each, one after the other.
#   make bench-tools && sh bench/closed.sh [BUILD_DIR]
set -eu
B=${1:-build}
out=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$out"' EXIT
"$B/gild" serve bench/apps/bench_app.py --listen tcp://127.0.0.1:0 \
    --workers 2 >"$out/stdout" 2>"$out/log" &
pid=$!
i=0
until grep -q '^gild: ready' "$out/stdout"; do
	i=$((i + 1))
	[ $i -le 300 ] || { echo "gild did not start" >&2; exit 1; }
	sleep 0.1
done
url=$(sed -n 's/^gild: listening on //p' "$out/stdout")
printf '%-8s %s\n' "in flight" "calls/s (3 runs, median last)"
for k in 1 16 64 256; do
	runs=""
	for rep in 1 2 3; do
		r=$("$B/bench/loadgen" --url "$url" --fn noop --closed "$k" \
		    --seconds 3 --warmup 200 2>&1 >/dev/null |
		    sed -n 's/.*(\([0-9]*\)\/s).*/\1/p')
		runs="$runs $r"
	done
	med=$(echo $runs | tr ' ' '\n' | sort -n | sed -n 2p)
	printf '%-8s %s  -> %s\n' "$k" "$runs" "$med"
done
