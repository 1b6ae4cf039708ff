#!/usr/bin/env bash
# Installs the Debian packages Tally needs to build, test and run, skipping those
# already present. Run as root (CI and the dev machines are root); otherwise uses sudo.
set -euo pipefail

build_pkgs=(build-essential cmake pkg-config
  libmicrohttpd-dev libjansson-dev libsqlite3-dev libpq-dev libcurl4-openssl-dev
  libssl-dev libjpeg62-turbo-dev libpng-dev libsndfile1-dev libarchive-dev libcmocka-dev
  libsamplerate0-dev libpocketsphinx-dev pocketsphinx-en-us)
test_pkgs=(curl sqlite3 nodejs npm pocketsphinx-testdata postgresql   # postgresql: scripts/pg-cluster.sh runs the tests on it too
  chromium)   # chromium: the browser tests (tests/browser) drive it headless
bench_pkgs=(libjpeg-turbo-progs mate-backgrounds sqlite3 bc pocketsphinx sox dataset-fashion-mnist)

want=("${build_pkgs[@]}")
case "${1:-}" in
  test) want+=("${test_pkgs[@]}") ;;
  bench) want+=("${test_pkgs[@]}" "${bench_pkgs[@]}") ;;
esac

missing=()
for p in "${want[@]}"; do
  # A package is present when dpkg has it, or (node, npm) when its command is on
  # PATH already, from another source than Debian.
  case "$p" in nodejs|npm) command -v "${p%js}" >/dev/null 2>&1 && continue ;; esac
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Test servers from the npm registry, pinned by their package-lock.json: s3rver (an
# S3-compatible server for the S3 blob backend's tests); playwright-core (drives
# Chromium in the browser tests; tests/browser/run.sh also installs it when missing).
npm_dirs=()
case "${1:-}" in test|bench) npm_dirs+=(tests/s3 tests/browser) ;; esac
cd "$(dirname "$0")/.."
for d in "${npm_dirs[@]}"; do
  if [ ! -d "$d/node_modules" ] || [ "$d/package-lock.json" -nt "$d/node_modules" ]; then
    echo "deps: npm ci in $d" >&2
    (cd "$d" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
  fi
done
