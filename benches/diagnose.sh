#!/usr/bin/env bash
# Where dqwatch's time goes, next to psql: run after benches/run.sh (it reuses the binary,
# the dataset and the workloads under $BENCH_DIR). About 2-3 minutes.
#
#   bash benches/diagnose.sh                   # round trips, per-check cost, start-up, TLS, memory
#   DIAG_SERVER_LOG=1 bash benches/diagnose.sh # also: what the server sees per check, from its
#                                              # log (sets log_min_duration_statement = 0 on the
#                                              # dqbench database for one run, then resets it;
#                                              # needs read access to the server log, PG_LOG)
#
# Prints a report; raw files under $BENCH_DIR/diagnose.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BENCH="$ROOT/benches"
WORK=${BENCH_DIR:-/tmp/dqwatch-bench}
export PGHOST=${PGHOST:-127.0.0.1} PGPORT=${PGPORT:-5432} PGUSER=${PGUSER:-postgres}
unset PGSSLMODE PGDATABASE PGOPTIONS
DB=dqbench
URL="postgres://$PGUSER@$PGHOST:$PGPORT/$DB"
PSQL=(psql -X -q -v ON_ERROR_STOP=1 -d "$DB" -o /dev/null)
PSQL_NOTLS=(psql -X -q -v ON_ERROR_STOP=1 -d "dbname=$DB sslmode=disable" -o /dev/null)
DQ="$WORK/bin/dqwatch"
OUT="$WORK/diagnose"
PG_LOG=${PG_LOG:-$(ls /var/log/postgresql/postgresql-*-main.log 2>/dev/null | head -1)}

[[ -x $DQ && -d $WORK/n500 ]] || { echo "run benches/run.sh first (no $DQ or $WORK/n500)" >&2; exit 1; }
command -v strace >/dev/null || { [[ $(id -u) == 0 ]] && apt-get install -y -qq strace >/dev/null 2>&1; } || true
rm -rf "$OUT" && mkdir -p "$OUT"
NOINC=()
"$DQ" run --help 2>/dev/null | grep -q -- --no-incidents && NOINC=(--no-incidents)

# Workloads: 500 and 1 near-free checks (an indexed lookup in a 1,460-row table), so that
# what remains is the fixed cost per check and per process.
for n in 500 1; do
    rm -rf "$WORK/t$n"
    python3 "$BENCH/gen_checks.py" trivial "$n" "$WORK/t$n" "$URL"
    {
        echo 'pids=""'
        for k in 1 2 3 4; do
            [[ -s $WORK/t$n/floor/part$k.sql ]] && echo "${PSQL[*]} -f $WORK/t$n/floor/part$k.sql & pids=\"\$pids \$!\""
        done
        echo 'rc=0; for p in $pids; do wait $p || rc=1; done; exit $rc'
    } >"$WORK/t$n/floor4.sh"
done

hf() {   # NAME RUNS label::cmd...: hyperfine, JSON to $OUT/NAME.json
    local name=$1 runs=$2; shift 2
    local args=()
    for c in "$@"; do args+=(-n "${c%%::*}" "${c#*::}"); done
    hyperfine -N -i --style basic --warmup 2 --runs "$runs" --export-json "$OUT/$name.json" "${args[@]}" >"$OUT/$name.log" 2>&1
}

echo "[1/5] fixed cost per check: 500 near-free checks" >&2
T=$WORK/t500
hf trivial500 10 \
    "dqwatch, 1 connection::$DQ run ${NOINC[*]} --config $T/dqwatch-c1.toml" \
    "psql, 1 session::${PSQL[*]} -f $T/floor/all.sql" \
    "dqwatch, 1 connection, sslmode=disable::$DQ run ${NOINC[*]} --config $T/dqwatch-c1-notls.toml" \
    "psql, 1 session, sslmode=disable::${PSQL_NOTLS[*]} -f $T/floor/all.sql" \
    "dqwatch, 4 connections::$DQ run ${NOINC[*]} --config $T/dqwatch.toml" \
    "psql, 4 sessions::sh $T/floor4.sh"

echo "[2/5] start-up: 1 near-free check" >&2
T1=$WORK/t1
hf startup 20 \
    "dqwatch::$DQ run ${NOINC[*]} --config $T1/dqwatch.toml" \
    "dqwatch sslmode=disable::$DQ run ${NOINC[*]} --config $T1/dqwatch-notls.toml" \
    "psql::${PSQL[*]} -f $T1/floor/all.sql" \
    "psql sslmode=disable::${PSQL_NOTLS[*]} -f $T1/floor/all.sql" \
    "dqwatch --version (process start only)::$DQ --version"

echo "[3/5] round trips: syscalls per check (strace -f -c)" >&2
if command -v strace >/dev/null; then
    strace -f -c -o "$OUT/strace-dqwatch-t500.txt" "$DQ" run "${NOINC[@]}" --config "$WORK/t500/dqwatch-c1.toml" >/dev/null 2>&1 || true
    strace -f -c -o "$OUT/strace-dqwatch-notls-t500.txt" "$DQ" run "${NOINC[@]}" --config "$WORK/t500/dqwatch-notls.toml" >/dev/null 2>&1 || true
    strace -f -c -o "$OUT/strace-psql-t500.txt" "${PSQL[@]}" -f "$WORK/t500/floor/all.sql" || true
    strace -f -c -o "$OUT/strace-dqwatch-n500.txt" "$DQ" run --config "$WORK/n500/dqwatch.toml" >/dev/null 2>&1 || true
    strace -f -e trace=setsockopt -o "$OUT/strace-setsockopt.txt" "$DQ" run "${NOINC[@]}" --config "$WORK/t1/dqwatch.toml" >/dev/null 2>&1 || true
fi

echo "[4/5] memory: validate 1 vs 10,000 checks; run N=500 with and without incidents" >&2
: >"$OUT/rss.tsv"
for c in "validate 1 check::$DQ validate --config $WORK/t1/dqwatch.toml" \
         "validate 10,000 checks::$DQ validate --config $WORK/v10k/dqwatch.toml" \
         "run N=1 ${NOINC[*]}::$DQ run ${NOINC[*]} --config $WORK/t1/dqwatch.toml" \
         "run N=500 near-free ${NOINC[*]}::$DQ run ${NOINC[*]} --config $WORK/t500/dqwatch.toml"; do
    /usr/bin/time -f %M -o "$OUT/.rss" ${c#*::} >/dev/null 2>&1 || true
    printf '%s\t%s\n' "${c%%::*}" "$(cat "$OUT/.rss")" >>"$OUT/rss.tsv"
done

echo "[5/5] server view (DIAG_SERVER_LOG=1 to enable)" >&2
if [[ -n ${DIAG_SERVER_LOG:-} && -r $PG_LOG ]]; then
    start=$(stat -c %s "$PG_LOG")
    psql -X -Atq -d "${PGADMIN_DB:-test}" -c "ALTER DATABASE $DB SET log_min_duration_statement = 0"
    trap 'psql -X -Atq -d "${PGADMIN_DB:-test}" -c "ALTER DATABASE $DB RESET log_min_duration_statement"' EXIT
    "$DQ" run "${NOINC[@]}" --config "$WORK/n500/dqwatch-c1.toml" >/dev/null 2>&1 || true
    sleep 1
    psql -X -Atq -d "${PGADMIN_DB:-test}" -c "ALTER DATABASE $DB RESET log_min_duration_statement"
    trap - EXIT
    tail -c +"$((start + 1))" "$PG_LOG" >"$OUT/server.log"
fi

python3 - "$OUT" "$WORK" <<'EOF'
import json, os, re, statistics, sys
out, work = sys.argv[1], sys.argv[2]

def hf(name):
    p = os.path.join(out, f"{name}.json")
    if not os.path.exists(p):
        return {}
    return {r["command"]: r for r in json.load(open(p))["results"]}

def line(r, per=None):
    med = statistics.median(r["times"]) * 1000
    s = f"| {r['command']} | {med:.0f} ms | {min(r['times']) * 1000:.0f} ms | {r['user'] * 1000:.0f} ms | {r['system'] * 1000:.0f} ms |"
    return s + (f" {med / per * 1000:.0f} µs |" if per else "")

print("# dqwatch diagnostics\n")
print("## Fixed cost per check: 500 near-free checks (wall, client CPU)\n")
print("| command | median | min | user | sys | per check |\n|---|---:|---:|---:|---:|---:|")
t = hf("trivial500")
for r in t.values():
    print(line(r, 500))
print("\n## Start-up: 1 near-free check\n")
print("| command | median | min | user | sys |\n|---|---:|---:|---:|---:|")
for r in hf("startup").values():
    print(line(r))

def strace(name):
    p = os.path.join(out, f"strace-{name}.txt")
    if not os.path.exists(p):
        return None
    calls = {}
    for l in open(p):
        f = l.split()
        if len(f) >= 5 and f[-1].isidentifier() and f[3].isdigit():
            calls[f[-1]] = (int(f[3]), int(f[4]) if len(f) == 6 else 0)
    return calls

print("\n## Syscalls per check (strace -f -c)\n")
print("| run | sendto | recvfrom (EAGAIN) | epoll_wait | futex |\n|---|---:|---:|---:|---:|")
for name, n in [("dqwatch-t500", 500), ("dqwatch-notls-t500", 500), ("psql-t500", 500), ("dqwatch-n500", 500)]:
    c = strace(name)
    if c:
        g = lambda k: c.get(k, (0, 0))
        print(f"| {name} | {g('sendto')[0] / n:.2f} | {g('recvfrom')[0] / n:.2f} ({g('recvfrom')[1] / n:.2f}) | {g('epoll_wait')[0] / n:.2f} | {g('futex')[0] / n:.2f} |")
ss = os.path.join(out, "strace-setsockopt.txt")
if os.path.exists(ss):
    nodelay = sum("TCP_NODELAY" in l for l in open(ss))
    print(f"\nsetsockopt(TCP_NODELAY) calls by dqwatch: {nodelay} (libpq sets it on every connection)")

print("\n## Peak RSS\n\n| command | max RSS |\n|---|---:|")
for l in open(os.path.join(out, "rss.tsv")):
    label, kib = l.rstrip("\n").split("\t")
    print(f"| {label} | {int(kib) / 1024:.1f} MiB |")

log = os.path.join(out, "server.log")
if os.path.exists(log):
    text = open(log).read()
    n = 500
    counts = {
        "BEGIN READ ONLY": len(re.findall(r"statement: BEGIN READ ONLY", text)),
        "ROLLBACK": len(re.findall(r"statement: ROLLBACK", text)),
        "parse <unnamed> (the query)": len(re.findall(r"parse <unnamed>:", text)),
        "execute <unnamed>": len(re.findall(r"execute <unnamed>:", text)),
        "parse sqlx_s_N (named, kept: column names of an empty result)": len(re.findall(r"parse sqlx_s_\d+:", text)),
        "catalog lookups (pg_attribute, column origins)": len(re.findall(r"pg_catalog\.pg_attribute", text)),
        "'Connection reset by peer' at exit": len(re.findall(r"Connection reset by peer", text)),
    }
    print(f"\n## Server view of `dqwatch run` N=500 on 1 connection (log_min_duration_statement = 0)\n")
    print("| statement | count | per check |\n|---|---:|---:|")
    for k, v in counts.items():
        print(f"| {k} | {v} | {v / n:.2f} |")
EOF
