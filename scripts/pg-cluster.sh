#!/usr/bin/env bash
# pg-cluster.sh start|stop STATE_DIR -- a private, throwaway PostgreSQL cluster for tests.
#
#   start  installs PostgreSQL if missing (scripts/deps.sh test), then initdb's a
#          cluster in a fresh temp dir owned by an unprivileged user (postgres refuses
#          to run as root; PG_TEST_USER, default nobody), with fsync off, listening
#          only on a unix socket in that dir (port: a free one, which only names the
#          socket). Writes STATE_DIR/url (a libpq URL of the "postgres" database, for
#          TALLY_TEST_DB_FILE) and STATE_DIR/cluster (the temp dir), prints the URL.
#          A cluster left by an earlier start in the same STATE_DIR is stopped first.
#   stop   stops the cluster and removes its temp dir and STATE_DIR's files.
set -euo pipefail

cmd=${1:-}
state=${2:-}
if [ -z "$cmd" ] || [ -z "$state" ]; then
  echo "usage: $0 start|stop STATE_DIR" >&2
  exit 2
fi
here=$(cd "$(dirname "$0")" && pwd)
user=${PG_TEST_USER:-nobody}

pg_bin() {
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  [ -n "$d" ] && [ -x "$d/initdb" ] && echo "$d"
}

as_user() {
  if [ "$(id -u)" -eq 0 ]; then
    setpriv --reuid="$user" --regid="$(id -g "$user")" --clear-groups -- "$@"
  else
    "$@"   # already unprivileged: run the cluster as ourselves
  fi
}

stop() {
  [ -f "$state/cluster" ] || return 0
  local dir bin
  dir=$(cat "$state/cluster")
  bin=$(pg_bin || true)
  if [ -n "$bin" ] && [ -f "$dir/data/postmaster.pid" ]; then
    as_user "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  case "$dir" in
    */tally-pg.*) rm -rf "$dir" ;;   # only ever what start made
  esac
  rm -f "$state/cluster" "$state/url"
}

start() {
  mkdir -p "$state"
  stop
  local bin
  bin=$(pg_bin || true)
  if [ -z "$bin" ]; then
    "$here/deps.sh" test
    bin=$(pg_bin)
  fi
  local dir port
  # Under /tmp (PG_TEST_TMP), not $TMPDIR: the cluster's user must reach the dir. Mode
  # 0700: only that user (and root, whose tests connect) can reach the socket, since
  # the cluster trusts every local connection.
  dir=$(mktemp -d "${PG_TEST_TMP:-/tmp}/tally-pg.XXXXXX")
  chmod 700 "$dir"
  if [ "$(id -u)" -eq 0 ]; then chown "$user" "$dir"; fi
  echo "$dir" >"$state/cluster"
  # A port nobody listens on over TCP either, so the socket name is unambiguous.
  for _ in $(seq 1 50); do
    port=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
  done
  as_user "$bin/initdb" -D "$dir/data" -U tallytest --auth=trust --encoding=UTF8 --locale=C.UTF-8 \
    >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; stop; exit 1; }
  cat >>"$dir/data/postgresql.conf" <<EOF
listen_addresses = ''
port = $port
unix_socket_directories = '$dir'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 300
shared_buffers = 32MB
max_locks_per_transaction = 128
log_min_messages = warning
EOF
  as_user "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 start >/dev/null ||
    { cat "$dir/postgres.log" >&2; stop; exit 1; }
  local url="postgresql://tallytest@/postgres?host=$dir&port=$port"
  echo "$url" >"$state/url"
  echo "$url"
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop STATE_DIR" >&2; exit 2 ;;
esac
