#!/usr/bin/env bash
# s3-server.sh start|stop STATE_DIR -- a throwaway S3-compatible server for tests.
#
#   start  runs s3rver (npm package pinned in tests/s3; scripts/deps.sh test installs
#          it) on a free loopback port with a fresh temp data dir, waits until it
#          answers, and writes STATE_DIR/endpoint ("http://127.0.0.1:PORT", for
#          TALLY_TEST_S3_FILE) and STATE_DIR/pid. s3rver accepts the access key
#          S3RVER / secret S3RVER; it checks the key, not V4 signatures (those are
#          checked against AWS's vectors in tests/unit/test_storage_sigv4.c).
#          A server left by an earlier start in the same STATE_DIR is stopped first.
#   stop   stops it and removes its data.
set -euo pipefail

cmd=${1:-}
state=${2:-}
if [ -z "$cmd" ] || [ -z "$state" ]; then
  echo "usage: $0 start|stop STATE_DIR" >&2
  exit 2
fi
root=$(cd "$(dirname "$0")/.." && pwd)
s3rver=$root/tests/s3/node_modules/.bin/s3rver

stop() {
  if [ -f "$state/pid" ]; then
    kill "$(cat "$state/pid")" 2>/dev/null || true
    for _ in $(seq 1 50); do
      kill -0 "$(cat "$state/pid")" 2>/dev/null || break
      sleep 0.1
    done
    kill -9 "$(cat "$state/pid")" 2>/dev/null || true
  fi
  if [ -f "$state/data" ]; then
    case "$(cat "$state/data")" in
      */tally-s3.*) rm -rf "$(cat "$state/data")" ;;   # only ever what start made
    esac
  fi
  rm -f "$state/pid" "$state/endpoint" "$state/data"
}

start() {
  mkdir -p "$state"
  stop
  [ -x "$s3rver" ] || "$root/scripts/deps.sh" test
  local dir port
  dir=$(mktemp -d "${TMPDIR:-/tmp}/tally-s3.XXXXXX")
  echo "$dir" >"$state/data"
  # A free port can be taken between the probe and s3rver's listen (other tests pick
  # ports too): try a few.
  for _attempt in 1 2 3 4 5; do
    for _ in $(seq 1 50); do
      port=$((20000 + RANDOM % 40000))
      if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    done
    setsid "$s3rver" -d "$dir" -a 127.0.0.1 -p "$port" --silent >"$dir/s3rver.log" 2>&1 </dev/null &
    echo $! >"$state/pid"
    for _ in $(seq 1 100); do
      kill -0 "$(cat "$state/pid")" 2>/dev/null || break
      if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "http://127.0.0.1:$port" >"$state/endpoint"
        cat "$state/endpoint"
        return 0
      fi
      sleep 0.1
    done
    kill "$(cat "$state/pid")" 2>/dev/null || true
  done
  cat "$dir/s3rver.log" >&2 || true
  stop
  echo "s3-server: s3rver did not start" >&2
  exit 1
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop STATE_DIR" >&2; exit 2 ;;
esac
