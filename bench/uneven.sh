#!/bin/sh
# The uneven-workers investigation of issue 16 (docs/benchmarks.md, "Uneven
# workers"): each suspect as an A/B inside one bench/speedup.py run, so that
# the machine's drift hits both sides alike, each rep waiting (10 s at
# most) for the other tasks on the machine to go quiet; then the vCPUs'
# speed (bench/vcpus.py) and whether a process's speed is a property of its
# lifetime (bench/lifetimes.py).
#
#   sh bench/uneven.sh [OLD] [REPS]
#
# OLD: a build folder of gild from before the dispatch change, or a commit
# to build one from (09af500, main before the sched merge: built once into
# /tmp/gild-OLD with git archive and make; without OLD the dispatch A/B is
# left out). REPS: reps per A/B (20). Writes bench/results/uneven-DATE-*.json
# (each run's summary, and bench/stamps.py's reading of its stamps; the
# stamps themselves stay in /tmp) and prints the load and steal around each.
set -eu
old=${1:-}
reps=${2:-20}
out=bench/results
tmp=${TMPDIR:-/tmp}
mkdir -p "$out"
date=$(date +%Y%m%d-%H%M%S)
if [ -n "$old" ] && [ ! -d "$old" ]; then
	dir=$tmp/gild-$old
	if [ ! -x "$dir/build/gild" ]; then
		mkdir -p "$dir"
		git archive "$old" | tar -x -C "$dir"
		make -C "$dir" -j2 PYTHON_FT_CONFIG= >&2
	fi
	old=$dir/build
fi
machine() {
	echo "load $(cut -d' ' -f1-3 /proc/loadavg); steal ticks" \
		"$(grep -E '^cpu[0-9]' /proc/stat | awk '{printf "%s %s ", $1, $9}')"
}
run() { # NAME ARGS...: one speedup run and its stamps' reading
	name=$1
	shift
	echo "== $name: $*" >&2
	echo "   before: $(machine)" >&2
	/usr/bin/python3 bench/speedup.py --reps "$reps" --block 5 --quiet 10 \
		--no-ft "$@" --stamps "$tmp/uneven-$date-$name-stamps.json" \
		>"$out/uneven-$date-$name.json"
	echo "   after:  $(machine)" >&2
	/usr/bin/python3 bench/stamps.py "$tmp/uneven-$date-$name-stamps.json" \
		>"$out/uneven-$date-$name-calls.json"
}
# Today's state: every way, the control (N plain processes) included.
run state
# The template's pages: workers forked from the template (gild) against
# workers that exec and import the app themselves (b).
run template --only gild-map,gild-submit,b-map,b-submit,pool-map \
	--b-args "--spawn exec"
# Wake-up placement: b's workers pinned one per CPU, gild's where the
# kernel puts them.
run placement --only gild-map,gild-submit,b-map,b-submit,pool-map,procs \
	--b-args "" --pin b-map,b-submit
# Dispatch with one slow worker (every way's worker i pinned to CPU i, a
# spinning process on the last CPU): today's build against the old one.
if [ -n "$old" ]; then
	run dispatch --slow-cpu --build-b "$old" \
		--only gild-map,gild-submit,b-map,b-submit,pool-map,procs
fi
# The vCPUs' own speed, alone and together, 30 s in quarter seconds.
echo "== vcpus   before: $(machine)" >&2
/usr/bin/python3 bench/vcpus.py --seconds 30 >"$out/uneven-$date-vcpus.json"
echo "   after:  $(machine)" >&2
# Is a process slow for its lifetime? 8 plain processes; 2 gild workers;
# 3 gild servers of one worker and 3 plain processes taking turns: one
# process at a time, pinned to CPU 0.
for how in exec gild mixed; do
	n=8
	[ $how = gild ] && n=2
	[ $how = mixed ] && n=6
	echo "== lifetimes $how   before: $(machine)" >&2
	/usr/bin/python3 bench/lifetimes.py --how $how --procs $n --rounds 12 \
		--cpus 0 >"$out/uneven-$date-lifetimes-$how.json"
done
echo "   after:  $(machine)" >&2
