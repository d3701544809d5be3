#!/usr/bin/env bash
# Fused scans (issue 13): 50 built-in rule checks (freshness_lag, volume_anomaly,
# failure_rate_spike, each with its own condition or window) on one 4 M-row PostgreSQL table,
# keyed by region. Three ways, ROUNDS times each, order rotated:
#   fused   `dqwatch run` as written (the 50 share one scan)
#   alone   `dqwatch run` with `fuse = false` in every check (50 queries)
#   psql    the 50 queries of `dqwatch render` in 4 parallel psql sessions (the floor)
# Wall time, and the server's CPU time: the postmaster's reaped children (cutime + cstime in
# /proc/PID/stat), i.e. every backend and parallel worker of the run. Numbers, not pass/fail.
#
#   bash benches/fused.sh                       # target/release/dqwatch, else target/debug
#   ROUNDS=5 ROWS=4000000 bash benches/fused.sh
#
# Needs psql with trust login as postgres on 127.0.0.1:5432, run on the server's machine as a
# user that may read the postmaster's /proc entry. Makes the database `dqfuse` and files under
# $BENCH_DIR/fused (default /tmp/dqwatch-bench/fused). About 3-5 minutes.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=${BENCH_DIR:-/tmp/dqwatch-bench}/fused
ROUNDS=${ROUNDS:-3}
ROWS=${ROWS:-4000000}
if [[ -z ${DQ:-} ]]; then
    DQ=$ROOT/target/release/dqwatch
    [[ -x $DQ ]] || DQ=$ROOT/target/debug/dqwatch
fi
[[ -x $DQ ]] || { echo "no dqwatch binary at $DQ: cargo build first" >&2; exit 1; }
unset PGSSLMODE PGDATABASE PGOPTIONS PGHOST PGPORT
PSQL=(psql -X -q -h 127.0.0.1 -U postgres)

rm -rf "$WORK" && mkdir -p "$WORK"
"${PSQL[@]}" -d postgres -c "DROP DATABASE IF EXISTS dqfuse" -c "CREATE DATABASE dqfuse" >/dev/null
echo "loading $ROWS rows ..." >&2
"${PSQL[@]}" -d dqfuse -v ON_ERROR_STOP=1 >/dev/null <<SQL
CREATE TABLE fz_orders (id bigint, region text, channel text, status text, amount numeric(10,2), loaded_at timestamp);
INSERT INTO fz_orders
SELECT g, 'r' || (g % 20), 'c' || (g % 10), CASE WHEN g % 23 = 0 THEN 'failed' ELSE 'ok' END,
       (g % 1000) / 10.0, now() - (g % 1209600) * interval '1 second'
FROM generate_series(1, $ROWS) g;
ANALYZE fz_orders;
SQL
PGDATA_DIR=$("${PSQL[@]}" -d dqfuse -At -c "SHOW data_directory")
POSTMASTER=$(head -1 "$PGDATA_DIR/postmaster.pid")

python3 - "$WORK" <<'PY'
import os, sys
work = sys.argv[1]
checks = []
for i in range(20):
    checks.append(("freshness_lag", f'timestamp_column = "loaded_at"\nwhere = "channel = \'c{i % 10}\' AND amount > {i}"'))
for i in range(15):
    checks.append(("volume_anomaly", f'where = "amount >= {i * 5}"'))
for i in range(15):
    checks.append(("failure_rate_spike", f'status_column = "status"\nfailure_values = ["failed"]\n'
                   f'timestamp_column = "loaded_at"\nwindow = "{i + 1}d"\nmin_volume = 10'))
for variant, fuse in (("fused", ""), ("alone", "fuse = false\n")):
    d = os.path.join(work, variant)
    os.makedirs(os.path.join(d, "checks"))
    with open(os.path.join(d, "dqwatch.toml"), "w") as f:
        f.write('checks_dir = "checks"\nstate = "sqlite://state.db"\n\n[connections.w]\n'
                'url = "postgres://postgres@127.0.0.1:5432/dqfuse?sslmode=disable"\n'
                'max_concurrency = 4\nstatement_timeout = "600s"\nmax_rows = 10000\n')
    for n, (rule, params) in enumerate(checks):
        with open(os.path.join(d, "checks", f"c{n:02d}.toml"), "w") as f:
            f.write(f'rule = "{rule}"\n{fuse}[params]\ntable = "fz_orders"\nkey_column = "region"\n{params}\n')
PY

# The floor: each check's own query, dealt into 4 files.
mkdir -p "$WORK/floor"
for n in $(seq -w 0 49); do
    "$DQ" --config "$WORK/alone/dqwatch.toml" render "c$n" > "$WORK/q$n.sql"
    printf '%s;\n' "$(cat "$WORK/q$n.sql")" >> "$WORK/floor/s$((10#$n % 4)).sql"
done
# volume_anomaly needs a state store: one warm-up run each fills it (and the page cache).
for v in fused alone; do
    (cd "$WORK/$v" && "$DQ" run --format json --output /dev/null >/dev/null 2>&1) || true
done

cpu() { awk '{print $16 + $17}' "/proc/$POSTMASTER/stat"; }
TICK=$(getconf CLK_TCK)
measure() { # name, command...
    local name=$1; shift
    sleep 0.5
    local c0 t0 t1 c1
    c0=$(cpu); t0=$(date +%s.%N)
    "$@" >/dev/null 2>&1 || true
    t1=$(date +%s.%N)
    sleep 0.5 # let the postmaster reap the run's backends
    c1=$(cpu)
    echo "$name $(echo "$t1 - $t0" | bc) $(echo "($c1 - $c0) / $TICK" | bc -l)" >> "$WORK/samples"
}
floor() {
    for s in 0 1 2 3; do "${PSQL[@]}" -d dqfuse -f "$WORK/floor/s$s.sql" >/dev/null & done
    wait
}
for r in $(seq "$ROUNDS"); do
    order=(fused alone psql)
    for k in $(seq $(( r % 3 ))); do order=("${order[@]:1}" "${order[0]}"); done
    for what in "${order[@]}"; do
        case $what in
            psql) measure psql floor ;;
            *) measure "$what" bash -c "cd '$WORK/$what' && '$DQ' run --format json --output /dev/null" ;;
        esac
    done
    echo "round $r done" >&2
done

python3 - "$WORK/samples" <<'PY'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, wall, cpu = line.split()
    rows.setdefault(name, []).append((float(wall), float(cpu)))
print("| 50 rule checks, 4 M rows | wall (median) | server CPU (median) | runs |")
print("|---|---:|---:|---:|")
for name in ("fused", "alone", "psql"):
    s = rows.get(name, [])
    if s:
        print(f"| {name} | {statistics.median(w for w, _ in s):.2f} s | "
              f"{statistics.median(c for _, c in s):.2f} s | {len(s)} |")
PY
