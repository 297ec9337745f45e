#!/usr/bin/env bash
# Make a PostgreSQL server reachable on 127.0.0.1 for the tests and print
#   export MLCYCLE_TEST_POSTGRES_URI=...
# on stdout (everything else goes to stderr). Uses a running server when there is one; otherwise
# installs Debian's PostgreSQL if missing and starts the cluster.
set -euo pipefail
log() { echo "postgres.sh: $*" >&2; }

PGHOST=127.0.0.1
PGPORT=${PGPORT:-5432}
ROLE=mlcycle
PASSWORD=mlcycle

as_postgres() {
  if [ "$(id -u)" = 0 ]; then su postgres -s /bin/bash -c "$*"; else sudo -u postgres bash -c "$*"; fi
}

if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  log "installing PostgreSQL"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2 && apt-get install -y -qq postgresql >&2
fi

if ! pg_isready -h "$PGHOST" -p "$PGPORT" -q; then
  cluster=$(pg_lsclusters -h | awk 'NR==1 {print $1" "$2}')
  if [ -z "$cluster" ]; then
    log "creating a cluster"
    version=$(ls /usr/lib/postgresql | sort -V | tail -1)
    pg_createcluster "$version" main >&2
    cluster="$version main"
  fi
  log "starting cluster $cluster"
  pg_ctlcluster $cluster start >&2 || true
  for _ in $(seq 1 60); do
    pg_isready -h "$PGHOST" -p "$PGPORT" -q && break
    sleep 0.5
  done
  pg_isready -h "$PGHOST" -p "$PGPORT" -q || { log "PostgreSQL did not start"; exit 1; }
fi

as_postgres "psql -p $PGPORT -tAc \"SELECT 1 FROM pg_roles WHERE rolname='$ROLE'\"" | grep -q 1 \
  || as_postgres "psql -p $PGPORT -qc \"CREATE ROLE $ROLE LOGIN CREATEDB PASSWORD '$PASSWORD'\"" >&2
# Tests drop their databases WITH (FORCE), which must be able to end any backend still in them,
# an autovacuum worker included (those run as the superuser).
as_postgres "psql -p $PGPORT -qc \"GRANT pg_signal_backend TO $ROLE\"" >&2
as_postgres "psql -p $PGPORT -tAc \"SELECT 1 FROM pg_database WHERE datname='$ROLE'\"" | grep -q 1 \
  || as_postgres "createdb -p $PGPORT -O $ROLE $ROLE" >&2

echo "export MLCYCLE_TEST_POSTGRES_URI=postgresql+psycopg://$ROLE:$PASSWORD@$PGHOST:$PGPORT/$ROLE"
