#!/usr/bin/env bash
# dqwatch benchmark: `dqwatch run` against psql floors on PostgreSQL (N = 20 and N = 500
# checks over a 4M-row table), peak memory, and `dqwatch validate` on 10,000 checks.
# See benches/README.md. Runs in about 5 minutes (plus ~40 s the first time, to load the
# data), stops by itself, prints a table, and leaves everything under $BENCH_DIR.
#
#   bash benches/run.sh                 # build, load (if needed), generate, measure
#   BENCH_REBUILD=1 bash benches/run.sh # reload the dataset even if it is current
#   DQWATCH_BIN=/path/dqwatch bash benches/run.sh   # measure this binary, skip the build
#
# Environment: PGHOST (127.0.0.1) PGPORT (5432) PGUSER (postgres) PGADMIN_DB (test: where
# `CREATE DATABASE dqbench` is run), BENCH_DIR (/tmp/dqwatch-bench), BENCH_ROWS (4000000),
# ROUNDS_500 (5) ROUNDS_20 (5) RUNS_20 (3) VALIDATE_ROUNDS (3) QUIET_MAX (10 s), RETRIES (1).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$ROOT/benches"
WORK=${BENCH_DIR:-/tmp/dqwatch-bench}
ROWS=${BENCH_ROWS:-4000000}
ROUNDS_500=${ROUNDS_500:-5}
ROUNDS_20=${ROUNDS_20:-5}
RUNS_20=${RUNS_20:-3}
VALIDATE_ROUNDS=${VALIDATE_ROUNDS:-3}
export QUIET_MAX=${QUIET_MAX:-10}
export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}
unset PGSSLMODE PGDATABASE PGOPTIONS          # psql's defaults: sslmode=prefer, like sqlx
ADMIN_DB=${PGADMIN_DB:-test}
DB=dqbench
URL="postgres://$PGUSER@$PGHOST:$PGPORT/$DB"
PSQL=(psql -X -q -v ON_ERROR_STOP=1 -d "$DB" -o /dev/null)
RES="$WORK/results"
T0=$(date +%s)

log() { printf '[%4ds] %s\n' "$(( $(date +%s) - T0 ))" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------------------- tools
need() {
    command -v "$1" >/dev/null 2>&1 && return 0
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        log "installing $2"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null 2>&1 ||
            { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null 2>&1; } || true
    fi
    command -v "$1" >/dev/null 2>&1 || die "$1 is needed (apt-get install $2)"
}
need psql postgresql-client
need hyperfine hyperfine
need python3 python3
[[ -x /usr/bin/time ]] || need /usr/bin/time time
pg_isready -q -h "$PGHOST" -p "$PGPORT" || die "PostgreSQL is not accepting connections on $PGHOST:$PGPORT"

rm -rf "$RES" && mkdir -p "$RES" "$WORK/bin"

# ---------------------------------------------------------------------------- binary
# Someone may be editing src/ meanwhile: build, retry a broken build a few times, then
# measure a private copy so that a rebuild cannot swap the binary mid-run.
if [[ -n ${DQWATCH_BIN:-} ]]; then
    cp "$DQWATCH_BIN" "$WORK/bin/dqwatch"
    echo "given: $DQWATCH_BIN" >"$RES/provenance.txt"
else
    for attempt in 1 2 3 4 5; do
        log "cargo build --release (attempt $attempt)"
        if (cd "$ROOT" && cargo build --release --quiet) 2>"$RES/build.log"; then built=1; break; fi
        built=0; log "build failed (see $RES/build.log); retrying in 30 s"; sleep 30
    done
    [[ $built == 1 ]] || die "the release build keeps failing: $RES/build.log"
    cp "$ROOT/target/release/dqwatch" "$WORK/bin/dqwatch"
    {
        echo "commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
        echo "uncommitted changes in src/: $(git -C "$ROOT" status --porcelain -- src 2>/dev/null | wc -l) file(s)"
    } >"$RES/provenance.txt"
fi
DQ="$WORK/bin/dqwatch"
"$DQ" --version >>"$RES/provenance.txt"

# ---------------------------------------------------------------------------- dataset
VERSION="$(sha1sum "$BENCH/sql/dataset.sql" | cut -c1-12)-$ROWS"
current=$(psql -X -Atq -d "$DB" -c "SELECT version FROM bench_meta" 2>/dev/null || true)
if [[ $current != "$VERSION" || -n ${BENCH_REBUILD:-} ]]; then
    log "loading dataset into database $DB ($ROWS events; ~40 s)"
    psql -X -q -v ON_ERROR_STOP=1 -d "$ADMIN_DB" -o /dev/null \
        -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB" 2>/dev/null
    psql -X -q -d "$DB" -o /dev/null -v rows="$ROWS" -v version="$VERSION" -f "$BENCH/sql/dataset.sql" \
        || die "loading the dataset failed"
else
    log "dataset $DB is current ($VERSION); BENCH_REBUILD=1 reloads it"
fi
psql -X -Atq -d "$DB" -c "SELECT events || ' events, ' || pg_size_pretty(pg_total_relation_size('events')) FROM bench_meta" >"$RES/dataset.txt"
psql -X -Atq -d "$DB" -c "SELECT 'PostgreSQL ' || current_setting('server_version') || ', shared_buffers ' || current_setting('shared_buffers')
    || ', jit ' || current_setting('jit') || ', max_parallel_workers_per_gather ' || current_setting('max_parallel_workers_per_gather')
    || ', ssl ' || current_setting('ssl') || '; machine: ' || '$(nproc) CPUs, $(free -g | awk '/^Mem/{print $2}') GiB RAM'" >"$RES/server.txt"

# ---------------------------------------------------------------------------- workloads
log "generating workloads in $WORK"
for n in 20 500; do
    rm -rf "$WORK/n$n"
    python3 "$BENCH/gen_checks.py" pg "$n" "$WORK/n$n" "$URL"
    {   # the 4-session floor: 4 psql at once, fails if any of them fails
        echo 'pids=""'
        for k in 1 2 3 4; do echo "${PSQL[*]} -f $WORK/n$n/floor/part$k.sql & pids=\"\$pids \$!\""; done
        echo 'rc=0; for p in $pids; do wait $p || rc=1; done; exit $rc'
    } >"$WORK/n$n/floor4.sh"
done
rm -rf "$WORK/v10k"
python3 "$BENCH/gen_checks.py" validate 10000 "$WORK/v10k"

# ---------------------------------------------------------------------------- sanity
# Every check must run (no errors: hyperfine -i would hide them), some must breach, the
# floors must run clean. This also warms the cache for both sides.
for n in 20 500; do
    log "checking the N=$n workload (dqwatch and both floors run clean)"
    set +e
    "$DQ" run --config "$WORK/n$n/dqwatch.toml" --format json -o "$RES/report-n$n.json" >"$RES/report-n$n.txt" 2>&1 &
    dq_pid=$!
    # While it runs: how many connections dqwatch holds and whether they use TLS.
    : >"$RES/conns-n$n.txt"
    while kill -0 "$dq_pid" 2>/dev/null; do
        psql -X -Atq -d "$DB" -c "SELECT count(*) || ' ' || count(*) FILTER (WHERE s.ssl) || ' ' || coalesce(max(s.version), '-')
            FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.application_name = 'dqwatch'" >>"$RES/conns-n$n.txt" 2>/dev/null
        sleep 0.05
    done
    wait "$dq_pid"; rc=$?
    set -e
    [[ $rc == 1 ]] || die "dqwatch run N=$n exited $rc (expected 1: breaches at P1): $RES/report-n$n.txt"
    python3 - "$RES/report-n$n.json" <<'EOF' || die "dqwatch run N=$n: see above"
import json, sys
s = json.load(open(sys.argv[1]))["summary"]
if s["errors"] or not s["breached"]:
    sys.exit(f"unexpected summary {s}")
EOF
    "${PSQL[@]}" -f "$WORK/n$n/floor/all.sql" || die "psql -f all.sql failed for N=$n"
    sh "$WORK/n$n/floor4.sh" || die "the 4-session floor failed for N=$n"
done
psql -X -Atq -d "$DB" -c "SELECT CASE WHEN ssl THEN 'TLS ' || version ELSE 'no TLS' END FROM pg_stat_ssl WHERE pid = pg_backend_pid()" >"$RES/psql-tls.txt"
"$DQ" validate --config "$WORK/v10k/dqwatch.toml" >"$RES/validate.txt" 2>&1 || die "validate of the 10k checks failed: $RES/validate.txt"

# ---------------------------------------------------------------------------- timing
# measure.py: hyperfine per sample, commands interleaved round by round (order rotated),
# round 0 a warm-up; samples taken while other work ran on the machine (a concurrent
# cargo build/test, say) are retried, and flagged if they stay noisy. See measure.py.
F20="$WORK/n20" F500="$WORK/n500"
# `dqwatch run` records incidents in its state store (SQLite under nN/state/) unless
# --no-incidents: the sanity run above opened them, so the timed runs are repeat runs.
# The --no-incidents variants isolate the check engine (what the psql floor compares with).
NOINC=()
"$DQ" run --help 2>/dev/null | grep -q -- --no-incidents && NOINC=(--no-incidents)
v500=() v20=()
if [[ ${#NOINC[@]} == 1 ]]; then
    v500=("dqwatch --no-incidents::$DQ run --no-incidents --config $F500/dqwatch.toml")
    v20=("dqwatch --no-incidents::$DQ run --no-incidents --config $F20/dqwatch.toml")
fi
log "N=500: $ROUNDS_500 rounds of dqwatch / psql 1 session / psql 4 sessions"
python3 "$BENCH/measure.py" n500 "$RES" "$ROUNDS_500" 1 $(( $(date +%s) + 200 )) \
    "dqwatch::$DQ run --config $F500/dqwatch.toml" \
    "${v500[@]}" \
    "psql 1 session::${PSQL[*]} -f $F500/floor/all.sql" \
    "psql 4 sessions::sh $F500/floor4.sh"
log "N=20: $ROUNDS_20 rounds x $RUNS_20 runs (with TLS-off and max_concurrency=1 variants)"
python3 "$BENCH/measure.py" n20 "$RES" "$ROUNDS_20" "$RUNS_20" $(( $(date +%s) + 130 )) \
    "dqwatch::$DQ run --config $F20/dqwatch.toml" \
    "${v20[@]}" \
    "psql 1 session::${PSQL[*]} -f $F20/floor/all.sql" \
    "psql 4 sessions::sh $F20/floor4.sh" \
    "dqwatch ${NOINC[*]} max_concurrency=1::$DQ run ${NOINC[*]} --config $F20/dqwatch-c1.toml" \
    "dqwatch ${NOINC[*]} sslmode=disable::$DQ run ${NOINC[*]} --config $F20/dqwatch-notls.toml" \
    "psql 1 session sslmode=disable::psql -X -q -v ON_ERROR_STOP=1 -o /dev/null -d 'dbname=$DB sslmode=disable' -f $F20/floor/all.sql"
log "validate 10k: $VALIDATE_ROUNDS rounds x 4 runs"
python3 "$BENCH/measure.py" validate "$RES" "$VALIDATE_ROUNDS" 4 $(( $(date +%s) + 30 )) \
    "validate 10k::$DQ validate --config $WORK/v10k/dqwatch.toml"

# ---------------------------------------------------------------------------- memory
log "peak RSS (/usr/bin/time -f %M, 2 runs each)"
rss() {   # LABEL cmd...: the largest max RSS of 2 runs, in KiB
    local label=$1; shift
    for _ in 1 2; do /usr/bin/time -f "%M" -o "$RES/.rss" "$@" >/dev/null 2>&1 || true; cat "$RES/.rss"; done |
        sort -n | tail -1 | sed "s/^/$label\t/" >>"$RES/rss.tsv"
}
: >"$RES/rss.tsv"
rss "dqwatch run N=20" "$DQ" run --config "$F20/dqwatch.toml"
rss "dqwatch run N=500" "$DQ" run --config "$F500/dqwatch.toml"
if [[ ${#NOINC[@]} == 1 ]]; then
    rss "dqwatch run --no-incidents N=20" "$DQ" run --no-incidents --config "$F20/dqwatch.toml"
    rss "dqwatch run --no-incidents N=500" "$DQ" run --no-incidents --config "$F500/dqwatch.toml"
fi
rss "dqwatch validate 10k" "$DQ" validate --config "$WORK/v10k/dqwatch.toml"
rss "psql 1 session N=20" "${PSQL[@]}" -f "$F20/floor/all.sql"

# ---------------------------------------------------------------------------- report
python3 "$BENCH/summarize.py" "$RES" | tee "$RES/summary.md"
log "done in $(( $(date +%s) - T0 )) s; raw results in $RES"
