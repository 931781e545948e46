#!/bin/sh
# setup.sh - install kaf's build dependencies from Debian, build it, and run
# the main job: experiment 3 (24 cells x 1000 runs) with its report.
#
#   ./setup.sh          everything: deps, build, exp3 into kaf.db and report/
#   ./setup.sh deps     only install the Debian packages
#   ./setup.sh build    only configure and compile into build/
set -eu

cd "$(dirname "$0")"

PACKAGES="build-essential meson ninja-build pkg-config python3 \
libsqlite3-dev sqlite3 libcmocka-dev gnuplot-nox"

deps() {
	sudo=""
	if [ "$(id -u)" -ne 0 ]; then
		sudo="sudo"
	fi
	export DEBIAN_FRONTEND=noninteractive
	$sudo apt-get update
	# shellcheck disable=SC2086
	$sudo apt-get install -y --no-install-recommends $PACKAGES
}

build() {
	if [ -d build ]; then
		meson setup --reconfigure build
	else
		meson setup build
	fi
	ninja -C build
}

case "${1:-all}" in
deps) deps ;;
build) build ;;
all)
	deps
	build
	./build/kaf sweep --preset exp3
	;;
*)
	echo "usage: $0 [deps|build]" >&2
	exit 2
	;;
esac
