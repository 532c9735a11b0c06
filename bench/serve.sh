#!/usr/bin/env bash
# strata serve under load: N concurrent pollers on the channel endpoint a
# fleet polls (If-None-Match: most answers are 304, a mover changes the
# channel twice a second) and on the lineage page, on SQLite and a throwaway
# PostgreSQL, against the CLI answering the same questions (a process each,
# start included). Prints one table. SERVE_POLLERS, SERVE_SECONDS and
# SERVE_VERSIONS tune it.
set -euo pipefail
ROOT=${ROOT:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$ROOT"
[ -x bin/strata ] || make -s cli
go run ./bench/servebench -strata "$ROOT/bin/strata" -n "${SERVE_POLLERS:-32}" -d "${SERVE_SECONDS:-5}s" -versions "${SERVE_VERSIONS:-100}"
