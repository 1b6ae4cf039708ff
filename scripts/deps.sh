#!/usr/bin/env bash
# Installs the Debian packages Tally needs to build, test and run, skipping those
# already present. Run as root (CI and the dev machines are root); otherwise uses sudo.
set -euo pipefail

build_pkgs=(build-essential cmake pkg-config
  libmicrohttpd-dev libjansson-dev libsqlite3-dev libpq-dev libcurl4-openssl-dev
  libssl-dev libjpeg62-turbo-dev libpng-dev libsndfile1-dev libarchive-dev libcmocka-dev)
test_pkgs=(curl sqlite3)
bench_pkgs=(libjpeg-turbo-progs mate-backgrounds sqlite3 bc)

want=("${build_pkgs[@]}")
case "${1:-}" in
  test) want+=("${test_pkgs[@]}") ;;
  bench) want+=("${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
esac

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
