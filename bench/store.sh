#!/usr/bin/env bash
# The store's overhead per trial (claim + epochs + result), median over 1,000 tiny trials, on
# SQLite and on PostgreSQL (a throwaway cluster made by .ci/postgres.sh unless
# GRIDSEARCH_TEST_PG_URL names a server). Usage: bench/store.sh [TRIALS]
set -euo pipefail
cd "$(dirname "$0")/.."
trials=${1:-1000}
if [ -z "${GRIDSEARCH_TEST_PG_URL:-}" ]; then
    pg_dir=$(mktemp -d /tmp/gridsearch-bench-pg.XXXXXX)
    chmod 755 "$pg_dir"
    trap '.ci/postgres.sh stop "$pg_dir"' EXIT
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    eval "$(.ci/postgres.sh start "$pg_dir" "$port")"
fi
cargo run --release --quiet --example store_overhead -- "$trials" "$GRIDSEARCH_TEST_PG_URL"
