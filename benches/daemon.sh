#!/usr/bin/env bash
# dqwatch benchmark: the `dqwatch daemon` scheduler with 10,000 checks on a SQLite warehouse,
# each scheduled every minute (`* * * * *`). Per max_concurrency setting (4 and 16) it runs
# the daemon through MINUTES minute boundaries and reports the lag from a slot's fire time to
# its claim / start / finish (from the state store), peak memory (VmHWM), CPU while idle
# between slots and per minute (/proc), and checks that every slot ran exactly once.
# See benches/daemon/README.md. Takes about 4-5 minutes per setting, stops by itself, prints
# a table, and leaves everything under $BENCH_DIR.
#
#   bash benches/daemon.sh                          # build, generate, measure 4 and 16
#   DQWATCH_BIN=/path/dqwatch bash benches/daemon.sh   # measure this binary, skip the build
#   CONCURRENCY="4" MINUTES=5 bash benches/daemon.sh
#
# Environment: BENCH_DIR (/tmp/dqwatch-daemon-bench), N_CHECKS (10000), BREACH_EVERY (100:
# 1% of checks breach), CONCURRENCY ("4 16"), MINUTES (3), IDLE_FROM (20) IDLE_TO (55),
# RUST_LOG (warn), PERF_RECORD (unset; 1 or perf options: perf record each daemon into
# $BENCH_DIR/results/cN.json.perf.data; perturbs the figures).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
HERE="$ROOT/benches/daemon"
WORK=${BENCH_DIR:-/tmp/dqwatch-daemon-bench}
N=${N_CHECKS:-10000}
BREACH_EVERY=${BREACH_EVERY:-100}
CONCURRENCY=${CONCURRENCY:-"4 16"}
export MINUTES=${MINUTES:-3}
RES="$WORK/results"
T0=$(date +%s)

log() { printf '[%4ds] %s\n' "$(( $(date +%s) - T0 ))" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

command -v python3 >/dev/null || die "python3 is needed"
rm -rf "$RES" && mkdir -p "$RES" "$WORK/bin"

# ---------------------------------------------------------------------------- binary
# Others edit src/ meanwhile: build (retrying a briefly broken tree), then measure a private
# copy so that a rebuild cannot swap the binary under the daemon.
if [[ -n ${DQWATCH_BIN:-} ]]; then
    cp "$DQWATCH_BIN" "$WORK/bin/dqwatch"
    echo "given: $DQWATCH_BIN" >"$RES/provenance.txt"
else
    ok=0
    for attempt in 1 2 3 4 5; do
        log "cargo build --release (attempt $attempt)"
        if (cd "$ROOT" && cargo build --release -q) >"$RES/build.log" 2>&1; then ok=1; break; fi
        tail -5 "$RES/build.log" >&2
        sleep 30
    done
    [[ $ok == 1 ]] || die "the build kept failing; see $RES/build.log"
    cp "$ROOT/target/release/dqwatch" "$WORK/bin/dqwatch"
    { cd "$ROOT" && git rev-parse HEAD && git status --short -- src Cargo.toml Cargo.lock; } \
        >"$RES/provenance.txt" 2>&1 || true
fi
BIN="$WORK/bin/dqwatch"

# ---------------------------------------------------------------------------- fixture
log "generating $N checks and the warehouse in $WORK/fixture"
python3 "$HERE/gen.py" "$WORK/fixture" "$N" "$BREACH_EVERY"
rm -rf "$WORK/fixture/templates" && cp -r "$ROOT/config/templates" "$WORK/fixture/templates"

# ---------------------------------------------------------------------------- runs
results=()
for c in $CONCURRENCY; do
    run="$WORK/c$c"
    rm -rf "$run" && mkdir -p "$run"
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    cat >"$run/dqwatch.toml" <<EOF
checks_dir = "$WORK/fixture/checks"
templates_dir = "$WORK/fixture/templates"
state = "sqlite://state.db"

[daemon]
timezone = "UTC"
listen = "127.0.0.1:$port"
catch_up = true

[connections.warehouse]
url = "sqlite://$WORK/fixture/warehouse.db"
max_concurrency = $c
statement_timeout = "60s"
max_rows = 10000
EOF
    "$BIN" --config "$run/dqwatch.toml" validate >"$run/validate.log" 2>&1 ||
        die "validate failed: $(tail -3 "$run/validate.log")"
    log "max_concurrency = $c: daemon on :$port, $MINUTES minute boundaries"
    PORT=$port python3 "$HERE/measure.py" "$BIN" "$run/dqwatch.toml" "$run/state.db" \
        "max_concurrency=$c" "$RES/c$c.json"
    results+=("$RES/c$c.json")
done

# ---------------------------------------------------------------------------- table
echo
echo "dqwatch daemon: $N checks every minute on SQLite, $(nproc) cores, $(date -u +%FT%TZ)"
echo "binary: $(head -1 "$RES/provenance.txt")"
python3 "$HERE/table.py" "${results[@]}" | tee "$RES/table.txt"
echo
echo "claim = slots.claimed_at - fire_at; start = runs.started_at - fire_at (task spawned, before"
echo "the warehouse permit); done = started_at + duration_ms - fire_at (query finished, includes"
echo "the max_concurrency wait). Foreign CPU = rest of the machine (noise). Raw: $RES"
log "done"
