#!/bin/sh
# Checks that the Debian packages gild needs are installed. As root it
# installs the missing ones with apt-get; otherwise it prints the exact
# command and fails. Usage: mk/deps.sh PACKAGE...
set -eu
missing=""
for pkg in "$@"; do
	status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
	[ "$status" = "installed" ] || missing="$missing $pkg"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -eq 0 ]; then
	echo "gild: installing missing Debian packages:$missing" >&2
	export DEBIAN_FRONTEND=noninteractive
	# All output to stderr: make runs this inside $(shell ...).
	{ apt-get update -qq || apt-get update; } >&2
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $missing >&2
else
	echo "gild: missing Debian packages:$missing" >&2
	echo "gild: install them with:" >&2
	echo "    sudo apt-get install -y$missing" >&2
	exit 1
fi
