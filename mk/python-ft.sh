#!/bin/sh
# Provides a free-threaded CPython (PEP 703, "3.13t") for gild-worker-ft and
# prints the path of its pythonX.Yt-config on stdout. Everything else goes
# to stderr. In order, it uses:
#   1. $GILD_PYTHON_FT, the path of a pythonX.Yt-config the user already has;
#   2. a free-threaded python3.13t or python3.14t on PATH, when its -config
#      sits next to it;
#   3. the one built earlier into the cache, $GILD_FT_CACHE, by default
#      ${XDG_CACHE_HOME:-$HOME/.cache}/gild/python3.13t-pgo-static;
#   4. otherwise it builds one there from the Debian source package of
#      python3.13 (Debian 13's, fetched with a temporary deb-src list that
#      touches nothing in /etc/apt, from the Debian archive apt is already
#      configured with, in either sources format, or $GILD_DEBIAN_MIRROR:
#      mk/debian-archive.sh), configured --disable-gil, static
#      (libpython3.13t.a, which gild-worker-ft links as mk/pylink.sh says)
#      and with profile-guided optimization (PGO) trained on a bounded
#      PROFILE_TASK; not LTO, which made the build five times as long for a
#      few per cent (docs/runtimes.md has the numbers). About 7 minutes on
#      two cores; the log is kept next to the cache. The cache's name says
#      how it is built, so that changing how builds anew instead of reusing
#      an older build (~/.cache/gild/python3.13t: shared, no PGO).
# Usage: mk/python-ft.sh [DEBIAN-BUILD-DEPENDENCY...]
# The arguments are the Debian packages the build needs (mk/deps.sh installs
# them when root, or names them); they are only checked when building.
set -eu

is_ft_config() {
	[ -x "$1" ] || return 1
	# A free-threaded build's ABI flags contain "t" (python3.13t).
	case $("$1" --abiflags 2>/dev/null) in *t*) return 0 ;; esac
	echo "gild: $1 is not a free-threaded Python (abiflags lack 't')" >&2
	return 1
}

if [ -n "${GILD_PYTHON_FT:-}" ]; then
	if is_ft_config "$GILD_PYTHON_FT"; then
		echo "$GILD_PYTHON_FT"
		exit 0
	fi
	echo "gild: GILD_PYTHON_FT=$GILD_PYTHON_FT is not a free-threaded" \
		"pythonX.Yt-config" >&2
	exit 1
fi

for exe in python3.14t python3.13t; do
	path=$(command -v "$exe" 2>/dev/null) || continue
	if is_ft_config "$path-config"; then
		echo "$path-config"
		exit 0
	fi
done

cache=${GILD_FT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gild/python3.13t-pgo-static}
config=$cache/bin/python3.13t-config
# The stamp is written last, so a build cut short is redone, not reused.
if [ -f "$cache/.gild-complete" ] && is_ft_config "$config"; then
	echo "$config"
	exit 0
fi

here=$(cd "$(dirname "$0")" && pwd)
"$here/deps.sh" "$@" >&2

mkdir -p "$cache"
exec 9>"$cache.lock"
if ! flock -n 9; then
	echo "gild: waiting for another build of the free-threaded Python" >&2
	flock 9
	if [ -f "$cache/.gild-complete" ]; then
		echo "$config"
		exit 0
	fi
fi

log=$cache.build.log
# PGO's training run (one line: configure puts it in a Makefile).
profile_task="-m test --pgo --timeout=1200"
for t in int long float complex collections dataclasses difflib fstring \
	functools generators heapq itertools operator pprint re statistics \
	bisect binop; do
	profile_task="$profile_task test_$t"
done
work=$(mktemp -d "${TMPDIR:-/tmp}/gild-python-ft.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "gild: building a free-threaded CPython 3.13 into $cache" \
	"(about 7 minutes on two cores; log: $log)" >&2
(
	set -x
	cd "$work"
	mkdir -p lists/partial
	# The Debian archive this machine's apt configuration already uses:
	# the one its own release comes from. Its next release's sources are
	# there too.
	archive=$("$here/debian-archive.sh")
	echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg]" \
		"$archive trixie main" > src.list
	apt="-o Dir::Etc::SourceList=$work/src.list -o Dir::Etc::SourceParts=/dev/null
		-o Dir::State::Lists=$work/lists -o APT::Sandbox::User=root"
	# shellcheck disable=SC2086
	apt-get $apt update
	# shellcheck disable=SC2086
	apt-get $apt source python3.13
	cd python3.13-*/
	# The profile comes from a bounded PROFILE_TASK: the regression tests
	# of plain Python code out of the --pgo set (about 1 minute
	# instrumented on two cores, against 4 or more for the whole set).
	./configure --prefix="$cache" --disable-gil --disable-shared \
		--enable-optimizations --without-ensurepip \
		--disable-test-modules PROFILE_TASK="$profile_task"
	make -j"$(nproc)"
	rm -rf "$cache"
	make install
) > "$log" 2>&1 || {
	tail -n 30 "$log" >&2
	echo "gild: building the free-threaded Python failed; the log is $log" >&2
	echo "gild: or point GILD_PYTHON_FT at a pythonX.Yt-config you have" >&2
	exit 1
}
if ! is_ft_config "$config"; then
	echo "gild: the build finished but $config is not free-threaded" >&2
	exit 1
fi
touch "$cache/.gild-complete"
echo "gild: free-threaded Python ready: $cache/bin/python3.13t" >&2
echo "$config"
