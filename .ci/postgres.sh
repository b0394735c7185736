#!/usr/bin/env bash
# Start a throwaway PostgreSQL server on loopback for the tuning tests (Debian package), then print the URL
# the tests read from DLSP_TEST_POSTGRES_URL. Prints nothing (and the PostgreSQL test skips) when it cannot.
set -uo pipefail
log() { echo "postgres: $*" >&2; }
if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    log "installing the postgresql package"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) >/dev/null 2>&1 \
      || { log "could not install postgresql"; exit 0; }
  else
    log "no postgresql and no root apt-get to install it"; exit 0
  fi
fi
version=$(ls /usr/lib/postgresql | sort -n | tail -1)
if ! pg_lsclusters -h 2>/dev/null | grep -q "^$version main"; then
  pg_createcluster "$version" main >/dev/null 2>&1 || { log "could not create a cluster"; exit 0; }
fi
pg_ctlcluster "$version" main start >/dev/null 2>&1 || pg_lsclusters -h | grep -q online || { log "could not start"; exit 0; }
port=$(pg_lsclusters -h | awk -v v="$version" '$1 == v && $2 == "main" {print $3}')
as_postgres() { su postgres -s /bin/sh -c "$1" 2>/dev/null; }
as_postgres "psql -p $port -qtAc \"SELECT 1 FROM pg_roles WHERE rolname = 'dlsp'\"" | grep -q 1 \
  || as_postgres "psql -p $port -qc \"CREATE ROLE dlsp LOGIN PASSWORD 'dlsp'\""
as_postgres "psql -p $port -qc 'DROP DATABASE IF EXISTS dlsp_tune'" && as_postgres "createdb -p $port -O dlsp dlsp_tune" \
  || { log "could not create the database"; exit 0; }
echo "postgresql+psycopg://dlsp:dlsp@127.0.0.1:$port/dlsp_tune"
