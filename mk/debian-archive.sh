#!/bin/sh
# Prints the URI of the Debian archive this machine's apt is configured
# with (the one its own release, VERSION_CODENAME in /etc/os-release, comes
# from), for mk/python-ft.sh to fetch Debian source packages from. Nothing
# is hard-coded: a user behind their own mirror or proxy gets theirs.
#   1. $GILD_DEBIAN_MIRROR, when set: that archive, apt not asked;
#   2. the archive apt's downloaded Release files say is Debian's
#      (Origin: Debian) for this release;
#   3. before any `apt-get update`: the first archive whose sources entry
#      names this release with the main component.
# apt reads both formats of sources (one-line sources.list, deb822
# *.sources) itself; APT_CONFIG points it at other files, as the tests do.
# Exits 1, saying why on stderr, when none is found.
set -eu

if [ -n "${GILD_DEBIAN_MIRROR:-}" ]; then
	echo "$GILD_DEBIAN_MIRROR"
	exit 0
fi
# shellcheck source=/dev/null
. /etc/os-release
codename=${VERSION_CODENAME:-}
if [ -z "$codename" ]; then
	echo "gild: /etc/os-release names no VERSION_CODENAME; set" \
		"GILD_DEBIAN_MIRROR to a Debian archive's URI" >&2
	exit 1
fi
# shellcheck disable=SC2016 # apt's own $(FIELD) format
archive=$(apt-get indextargets \
	--format '$(ORIGIN) $(RELEASE) $(TARGET_OF) $(REPO_URI)' |
	awk -v rel="$codename" \
		'$1 == "Debian" && $2 == rel && $3 == "deb" { print $4; exit }')
if [ -z "$archive" ]; then
	# shellcheck disable=SC2016
	archive=$(apt-get indextargets --no-release-info \
		--format '$(RELEASE) $(COMPONENT) $(TARGET_OF) $(REPO_URI)' |
		awk -v rel="$codename" \
			'$1 == rel && $2 == "main" && $3 == "deb" { print $4; exit }')
fi
if [ -z "$archive" ]; then
	echo "gild: apt's configuration names no Debian archive for" \
		"$codename; set GILD_DEBIAN_MIRROR to one's URI" >&2
	exit 1
fi
echo "$archive"
