#!/usr/bin/env bash
# Peak memory of `dqwatch run` against a state store with a long history: 2,000 checks x 100
# keys (a SQLite warehouse; ~30 % of the keys breach: one key-storm incident per check stays
# open), run RUNS times to fill the store (200 k observations a run), then measured with and
# without the incident store, with the text report and with `--format json`. Peak RSS from
# GNU time (`%M`). Numbers, not pass/fail.
#
#   bash benches/memory.sh                      # target/release/dqwatch, else target/debug
#   DQ=/path/to/dqwatch bash benches/memory.sh  # another binary (e.g. a baseline build)
#   KEEP=1 bash benches/memory.sh               # reuse the filled store of the last run
#
# Files under $BENCH_DIR/memory (default /tmp/dqwatch-bench/memory). About 3-10 minutes
# (debug build: most of it is filling the store).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=${BENCH_DIR:-/tmp/dqwatch-bench}/memory
CHECKS=${CHECKS:-2000}
KEYS=${KEYS:-100}
RUNS=${RUNS:-3}
if [[ -z ${DQ:-} ]]; then
    DQ=$ROOT/target/release/dqwatch
    [[ -x $DQ ]] || DQ=$ROOT/target/debug/dqwatch
fi
[[ -x $DQ ]] || { echo "no dqwatch binary at $DQ: cargo build first" >&2; exit 1; }
[[ -x /usr/bin/time ]] || { [[ $(id -u) == 0 ]] && apt-get install -y -qq time >/dev/null 2>&1; }

if [[ -z ${KEEP:-} || ! -f $WORK/state.db ]]; then
    rm -rf "$WORK" && mkdir -p "$WORK/checks"
    python3 - "$WORK" "$CHECKS" "$KEYS" <<'PY'
import os, sqlite3, sys
work, n, keys = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
db = sqlite3.connect(os.path.join(work, "warehouse.db"))
db.execute("CREATE TABLE t (k INTEGER PRIMARY KEY)")
db.executemany("INSERT INTO t VALUES (?)", [(k,) for k in range(keys)])
db.commit()
with open(os.path.join(work, "dqwatch.toml"), "w") as f:
    f.write('checks_dir = "checks"\nstate = "sqlite://state.db"\n\n[connections.w]\n'
            'url = "sqlite://warehouse.db"\nmax_concurrency = 4\nmax_rows = 10000\n')
for i in range(n):
    d = os.path.join(work, "checks", f"d{i // 100:02d}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"c{i:05d}.sql"), "w") as f:
        f.write(f'-- dqwatch\n-- description = "check {i}"\n-- keys = ["key"]\n-- metric = "v"\n'
                f'-- [thresholds]\n-- P3 = "> 70"\n'
                f"SELECT 'k' || k AS key, (k * {i + 7} + {i}) % 100 AS v FROM t\n")
PY
    for r in $(seq "$RUNS"); do
        /usr/bin/time -f %M -o "$WORK/fill$r.rss" "$DQ" run --config "$WORK/dqwatch.toml" --format json --output /dev/null >/dev/null 2>"$WORK/fill$r.err" || [[ $? == 1 ]] || { cat "$WORK/fill$r.err" >&2; exit 1; }
        echo "fill run $r: peak $(( $(tail -1 "$WORK/fill$r.rss") / 1024 )) MiB" >&2
    done
fi

obs=$(python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); print(c.execute('SELECT COUNT(*) FROM observations').fetchone()[0], c.execute(\"SELECT COUNT(*) FROM incidents WHERE state <> 'resolved'\").fetchone()[0])" "$WORK/state.db")
peak() {   # label args...
    local label=$1; shift
    /usr/bin/time -f %M -o "$WORK/peak.rss" "$DQ" run "$@" --config "$WORK/dqwatch.toml" >/dev/null 2>"$WORK/peak.err" || [[ $? == 1 ]] || { cat "$WORK/peak.err" >&2; exit 1; }
    echo "| $label | $(( $(tail -1 "$WORK/peak.rss") / 1024 )) MiB |"
}
echo
echo "$CHECKS checks x $KEYS keys, store before the run: ${obs% *} observations, ${obs#* } open incidents ($DQ)"
echo
echo "| run | peak RSS |"
echo "|---|---|"
peak "dqwatch run --no-incidents" --no-incidents
peak "dqwatch run (incidents)"
peak "dqwatch run --no-incidents --format json" --no-incidents --format json --output "$WORK/report.json"
peak "dqwatch run --format json (incidents)" --format json --output "$WORK/report.json"
