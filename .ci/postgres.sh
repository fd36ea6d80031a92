#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests: `start DIR PORT` makes one in DIR (owned by the
# postgres user when run as root: the server refuses to run as root), listening on 127.0.0.1:PORT
# only, with password logins over TCP; it prints the variables the tests read. `stop DIR` ends it.
# Roles: gridsearch (password gridsearch, owns database gridsearch) and norights (password
# norights, may not connect to it), for the bad-input tests.
set -euo pipefail
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
as_owner() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
case "$1" in
start)
    dir=$2 port=$3
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres: "$dir"
    as_owner "$bindir/initdb" -D "$dir/data" -A trust -U postgres >"$dir/initdb.log"
    cat >"$dir/data/pg_hba.conf" <<HBA
local all postgres trust
host all all 127.0.0.1/32 scram-sha-256
HBA
    as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
        -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir" start >/dev/null
    as_owner "$bindir/psql" -h "$dir" -p "$port" -U postgres -q -v ON_ERROR_STOP=1 <<SQL
CREATE ROLE gridsearch LOGIN PASSWORD 'gridsearch';
CREATE DATABASE gridsearch OWNER gridsearch;
REVOKE CONNECT ON DATABASE gridsearch FROM PUBLIC;
CREATE ROLE norights LOGIN PASSWORD 'norights';
SQL
    echo "export GRIDSEARCH_TEST_PG_URL=postgres://gridsearch:gridsearch@127.0.0.1:$port/gridsearch"
    echo "export GRIDSEARCH_TEST_PG_DATA=$dir/data"
    echo "export GRIDSEARCH_TEST_PG_BIN=$bindir"
    ;;
stop)
    as_owner "$bindir/pg_ctl" -D "$2/data" -m fast stop >/dev/null || true
    ;;
esac
