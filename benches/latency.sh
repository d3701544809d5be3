#!/usr/bin/env bash
# dqwatch against the SQL floor across a slow network: a relay (latency_proxy.py) adds a fixed
# delay each way in front of the local PostgreSQL (127.0.0.1:5432) and MariaDB
# (127.0.0.1:3306). 200 one-row checks, run by dqwatch (4 connections, with and without
# the incident store) and as the same queries in 4 parallel psql / mariadb sessions, at
# 10 ms and 30 ms round trip. Prints a table of medians (numbers, not pass/fail).
#
#   bash benches/latency.sh                       # target/release/dqwatch, else target/debug
#   DQ=/path/to/dqwatch bash benches/latency.sh   # another binary (e.g. a baseline build)
#   ROUNDS=5 RTTS="10 30" N=200 bash benches/latency.sh
#
# Needs: python3, psql, mariadb (client), trust/passwordless login as postgres and root.
# Makes the databases `dqlat` on both servers (a 1,000-row table) and files under
# $BENCH_DIR/latency (default /tmp/dqwatch-bench/latency). About 3-6 minutes.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$ROOT/benches"
WORK=${BENCH_DIR:-/tmp/dqwatch-bench}/latency
N=${N:-200}
ROUNDS=${ROUNDS:-3}
RTTS=${RTTS:-10 30}
PG_PROXY=${PG_PROXY:-15432}
MY_PROXY=${MY_PROXY:-13306}
if [[ -z ${DQ:-} ]]; then
    DQ=$ROOT/target/release/dqwatch
    [[ -x $DQ ]] || DQ=$ROOT/target/debug/dqwatch
fi
[[ -x $DQ ]] || { echo "no dqwatch binary at $DQ: cargo build first" >&2; exit 1; }
unset PGSSLMODE PGDATABASE PGOPTIONS PGHOST PGPORT

rm -rf "$WORK" && mkdir -p "$WORK"

# The data: the same 1,000-row table on both servers.
psql -X -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS dqlat" -c "CREATE DATABASE dqlat" >/dev/null
psql -X -q -h 127.0.0.1 -U postgres -d dqlat -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
CREATE TABLE lat_t (id int PRIMARY KEY, v int NOT NULL);
INSERT INTO lat_t SELECT g, g % 7 FROM generate_series(1, 1000) g;
ANALYZE lat_t;
SQL
mariadb -h 127.0.0.1 -P 3306 -u root >/dev/null <<'SQL'
DROP DATABASE IF EXISTS dqlat; CREATE DATABASE dqlat; USE dqlat;
CREATE TABLE lat_t (id int PRIMARY KEY, v int NOT NULL);
INSERT INTO lat_t SELECT seq, seq % 7 FROM seq_1_to_1000;
ANALYZE TABLE lat_t;
SQL

# The checks: N distinct one-row queries (valid on both servers), never breaching; the floor
# is the same queries dealt round-robin into 4 files.
python3 - "$WORK" "$N" "$PG_PROXY" "$MY_PROXY" <<'PY'
import os, sys
work, n, pg_port, my_port = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
for kind, url in (("pg", f"postgres://postgres@127.0.0.1:{pg_port}/dqlat"),
                  ("my", f"mysql://root@127.0.0.1:{my_port}/dqlat")):
    d = os.path.join(work, kind)
    os.makedirs(os.path.join(d, "checks"))
    os.makedirs(os.path.join(d, "floor"))
    with open(os.path.join(d, "dqwatch.toml"), "w") as f:
        f.write(f'checks_dir = "checks"\nstate = "sqlite://state.db"\n\n[connections.w]\n'
                f'url = "{url}"\nmax_concurrency = 4\nstatement_timeout = "60s"\nmax_rows = 1000\n')
    queries = []
    for i in range(n):
        sql = f"SELECT COUNT(*) AS n, SUM(v) AS total FROM lat_t WHERE id = {i % 1000 + 1}"
        queries.append(sql)
        with open(os.path.join(d, "checks", f"c{i:04d}.sql"), "w") as f:
            f.write(f'-- dqwatch\n-- description = "row {i}"\n-- metric = "n"\n'
                    f'-- [thresholds]\n-- P3 = "> 1"\n{sql}\n')
    for k in range(4):
        with open(os.path.join(d, "floor", f"part{k + 1}.sql"), "w") as f:
            f.write("".join(q + ";\n" for q in queries[k::4]))
PY

PROXY_PIDS=()
cleanup() { for p in "${PROXY_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

start_proxy() {   # PORT TARGET_PORT DELAY_MS
    python3 "$BENCH/latency_proxy.py" "$1" 127.0.0.1 "$2" "$3" >"$WORK/proxy-$1.log" 2>&1 &
    PROXY_PIDS+=($!)
    for _ in $(seq 100); do grep -qs ready "$WORK/proxy-$1.log" && return 0; sleep 0.05; done
    echo "proxy on $1 did not start" >&2; exit 1
}

floor4() {   # pg|my
    local pids=() rc=0
    for k in 1 2 3 4; do
        if [[ $1 == pg ]]; then
            psql -X -q -v ON_ERROR_STOP=1 -o /dev/null -h 127.0.0.1 -p "$PG_PROXY" -U postgres -d dqlat -f "$WORK/pg/floor/part$k.sql" &
        else
            mariadb -h 127.0.0.1 -P "$MY_PROXY" -u root dqlat <"$WORK/my/floor/part$k.sql" >/dev/null &
        fi
        pids+=($!)
    done
    for p in "${pids[@]}"; do wait "$p" || rc=1; done
    return $rc
}

dq() {   # pg|my [--no-incidents]
    local kind=$1; shift
    "$DQ" run "$@" --config "$WORK/$kind/dqwatch.toml" --format json --output "$WORK/$kind/report.json" >/dev/null 2>"$WORK/$kind/stderr.log"
}

sanity() {   # pg|my: every check ran, none errored
    python3 - "$WORK/$1/report.json" "$N" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
checks = r.get("checks", r if isinstance(r, list) else [])
bad = [c for c in checks if c.get("status") not in ("pass", "breach")]
if len(checks) != int(sys.argv[2]) or bad:
    sys.exit(f"sanity: {len(checks)} checks, {len(bad)} not pass/breach, e.g. {bad[:1]}")
PY
}

now() { date +%s.%N; }
time_it() {   # label cmd...: appends "label seconds" to $WORK/times
    local label=$1; shift
    local t0 t1
    t0=$(now)
    "$@" || [[ $? == 1 ]] || { echo "$label failed" >&2; exit 1; }
    t1=$(now)
    echo "$label $(echo "$t1 - $t0" | bc -l)" >>"$WORK/times"
}

command -v bc >/dev/null || { [[ $(id -u) == 0 ]] && apt-get install -y -qq bc >/dev/null 2>&1; }
: >"$WORK/times"
for rtt in $RTTS; do
    delay=$(echo "$rtt / 2" | bc -l)
    cleanup; PROXY_PIDS=()
    start_proxy "$PG_PROXY" 5432 "$delay"
    start_proxy "$MY_PROXY" 3306 "$delay"
    for kind in pg my; do
        # Warm-up and sanity (this run also opens the state store for the timed runs).
        dq "$kind" --no-incidents || true; sanity "$kind"
        dq "$kind" || true; sanity "$kind"
        floor4 "$kind"
    done
    for r in $(seq "$ROUNDS"); do
        for kind in pg my; do
            time_it "$rtt|$kind|dqwatch --no-incidents" dq "$kind" --no-incidents
            time_it "$rtt|$kind|dqwatch (incidents)" dq "$kind"
            time_it "$rtt|$kind|4 client sessions" floor4 "$kind"
        done
    done
done

python3 - "$WORK/times" "$N" "$DQ" <<'PY'
import statistics, sys
from collections import defaultdict
times = defaultdict(list)
for line in open(sys.argv[1]):
    label, secs = line.rsplit(" ", 1)
    times[label].append(float(secs))
print(f"\n{sys.argv[2]} one-row checks through the latency relay ({sys.argv[3]}); median of "
      f"{len(next(iter(times.values())))} runs, seconds\n")
print("| RTT | server | dqwatch --no-incidents | dqwatch (incidents) | 4 client sessions | ratio (no-inc / floor) |")
print("|---|---|---|---|---|---|")
rtts = sorted({k.split("|")[0] for k in times}, key=float)
for rtt in rtts:
    for kind, name in (("pg", "PostgreSQL"), ("my", "MariaDB")):
        m = lambda what: statistics.median(times[f"{rtt}|{kind}|{what}"])
        a, b, f = m("dqwatch --no-incidents"), m("dqwatch (incidents)"), m("4 client sessions")
        print(f"| {rtt} ms | {name} | {a:.2f} | {b:.2f} | {f:.2f} | {a / f:.2f}x |")
PY
