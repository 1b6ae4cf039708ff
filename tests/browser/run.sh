#!/usr/bin/env bash
# Browser tests of the web client (ctest "browser"): installs playwright-core from
# package-lock.json when node_modules is missing or stale, then runs app.test.mjs with
# Node's test runner against the tallyd given, driving Debian's Chromium headless.
# usage: run.sh TALLYD SCREENSHOT_DIR
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[ $# -eq 2 ] || { echo "usage: run.sh TALLYD SCREENSHOT_DIR" >&2; exit 2; }
command -v node >/dev/null || { echo "browser tests: node is missing (scripts/deps.sh test installs it)" >&2; exit 1; }
chromium=${CHROMIUM:-/usr/bin/chromium}
[ -x "$chromium" ] || { echo "browser tests: $chromium is missing (scripts/deps.sh test installs it)" >&2; exit 1; }
if [ ! -f "$here/node_modules/playwright-core/package.json" ] ||
   [ "$here/package-lock.json" -nt "$here/node_modules/.package-lock.json" ]; then
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
fi
mkdir -p "$2"
export TALLYD="$1" SCREENSHOT_DIR="$2" CHROMIUM="$chromium" TALLY_TEST_DATA="$here/../data"
exec node --test --test-concurrency=1 "$here/app.test.mjs"
