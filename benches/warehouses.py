#!/usr/bin/env python3
"""Snowflake figures against the fakesnow stand-in (issue 12): per check, the time dqwatch adds
around the server's own query time, and the peak memory of a check that streams a 1M-row result
capped at max_rows. Numbers, not pass/fail; results go to stdout as a Markdown table.

    python3 benches/warehouses.py [--url http://127.0.0.1:18999] [--bin target/debug/dqwatch]

Needs a running fakesnow (`python -m fakesnow -s -p 18999`), a dqwatch built with
`--features snowflake-arrow`, and GNU time (/usr/bin/time). Only the standard library.

How the overhead is measured. Each `dqwatch run` (ROUNDS of them) reports every check's
`duration_ms` (JSON report) and, at debug level, the Snowflake driver's wall time of the check's
describe-only request, of its execute request (the query-request that runs the statement, polls
included: the server's own time plus one loopback HTTP exchange) and of reading the rows. The
overhead is duration − execute, from the same run, so that load on the machine between
measurements does not leak in: the describe-only round trip, reading rows, the screen,
judging and (for the history rules schema and volume) the state store. The first check of
each process also pays the login (in its describe time).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROUNDS = int(os.environ.get("ROUNDS", "5"))
DB = "DQ_BENCH"


def post(url, body, token=None):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f'Snowflake Token="{token}"')
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read())


def login(base):
    t = time.perf_counter()
    v = post(
        f"{base}/session/v1/login-request?databaseName={DB}&schemaName=PUBLIC",
        {"data": {"LOGIN_NAME": "bench", "PASSWORD": "x", "ACCOUNT_NAME": "FAKE", "SESSION_PARAMETERS": {}}},
    )
    return v["data"]["token"], time.perf_counter() - t


def query(base, token, sql, describe=False):
    t = time.perf_counter()
    v = post(f"{base}/queries/v1/query-request", {"sqlText": sql, "sequenceId": 1, "describeOnly": describe}, token)
    took = time.perf_counter() - t
    if not v.get("success"):
        raise SystemExit(f"{sql}: {v}")
    return took


PLANT = [
    "CREATE OR REPLACE TABLE events (id INT, event_date DATE)",
    "INSERT INTO events SELECT n, DATEADD('day', -n, CURRENT_DATE()) FROM (VALUES (1),(2),(4),(5),(6),(7)) v(n)",
    "CREATE OR REPLACE TABLE loads (dataset VARCHAR, loaded_at TIMESTAMP_NTZ)",
    "INSERT INTO loads VALUES ('fresh', DATEADD('minute', -10, CURRENT_TIMESTAMP()::TIMESTAMP_NTZ)), ('stale', DATEADD('hour', -3, CURRENT_TIMESTAMP()::TIMESTAMP_NTZ))",
    "CREATE OR REPLACE TABLE runs (pipeline VARCHAR, status VARCHAR, run_at TIMESTAMP_NTZ)",
    "INSERT INTO runs VALUES ('etl', 'failed', CURRENT_TIMESTAMP()::TIMESTAMP_NTZ), ('etl', 'ok', CURRENT_TIMESTAMP()::TIMESTAMP_NTZ), ('ml', 'ok', CURRENT_TIMESTAMP()::TIMESTAMP_NTZ)",
    "CREATE OR REPLACE TABLE revenue (subject VARCHAR, day DATE, amount NUMBER(12,2))",
    "INSERT INTO revenue VALUES ('shop', CURRENT_DATE(), 50), ('shop', DATEADD('day', -1, CURRENT_DATE()), 100), ('shop', DATEADD('day', -7, CURRENT_DATE()), 100)",
    "CREATE OR REPLACE TABLE ledger (region VARCHAR, amount NUMBER(12,2))",
    "INSERT INTO ledger VALUES ('EU', 250000), ('US', 120000)",
    "CREATE OR REPLACE TABLE billing (region VARCHAR, amount NUMBER(12,2))",
    "INSERT INTO billing VALUES ('EU', 240000), ('US', 120000)",
    "CREATE OR REPLACE TABLE orders (id INT, note VARCHAR)",
    "INSERT INTO orders VALUES (6, 'a'), (7, 'b'), (7, 'b'), (8, 'c')",
    "CREATE OR REPLACE TABLE t1000 (n INT)",
    "INSERT INTO t1000 WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 1000) SELECT n FROM r",
    "CREATE OR REPLACE TABLE big1m AS SELECT a.n * 1000 + b.n AS n, 'row ' || a.n AS label, a.n * 0.5 AS amount FROM t1000 a, t1000 b",
]

CHECKS = {
    "missing_partition": 'rule = "missing_partition"\n[params]\ntable = "events"\npartition_column = "event_date"\nlookback = "7d"\n',
    "freshness": 'rule = "freshness_lag"\n[params]\ntable = "loads"\ntimestamp_column = "loaded_at"\nkey_column = "dataset"\n[thresholds]\nP2 = "> 2h"\n',
    "failure_rate": 'rule = "failure_rate_spike"\n[params]\ntable = "runs"\nstatus_column = "status"\nfailure_values = ["failed"]\ntimestamp_column = "run_at"\nkey_column = "pipeline"\nmin_volume = 1\n[thresholds]\nP2 = "> 15"\n',
    "trend": 'rule = "trend_risk"\n[params]\ntable = "revenue"\nkey_column = "subject"\ndate_column = "day"\nvalue_column = "amount"\n',
    "reconciliation": 'rule = "reconciliation_gap"\n[params]\nsource = { table = "ledger", key_column = "region", value_expression = "SUM(amount)" }\ntarget = { table = "billing", key_column = "region", value_expression = "SUM(amount)" }\ntolerance_abs = 9999.99\n',
    "duplicates": 'rule = "duplicate_rows"\n[params]\ntable = "orders"\nkey_columns = ["id"]\n',
    "schema": 'rule = "schema_change"\n[params]\ntable = "orders"\n',
    "volume": 'rule = "volume_anomaly"\n[params]\ntable = "orders"\n',
}


def config(base, extra=""):
    return (
        'state = "sqlite://state.db"\n[connections.warehouse]\n'
        f'url = "snowflake://bench@fakeacct/{DB}/PUBLIC"\npassword = "x"\napi_base = "{base}"\n'
        f"max_concurrency = 2\n{extra}\n"
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default=os.environ.get("DQWATCH_TEST_SNOWFLAKE_URL", "http://127.0.0.1:18999"))
    ap.add_argument("--bin", default=os.environ.get("DQWATCH_BIN", "target/debug/dqwatch"))
    a = ap.parse_args()
    base, dq = a.url.rstrip("/"), os.path.abspath(a.bin)
    token, _ = login(base)
    for sql in PLANT:
        query(base, token, sql)
    work = tempfile.mkdtemp(prefix="dqwatch-wh-bench-")
    os.makedirs(f"{work}/checks")
    with open(f"{work}/dqwatch.toml", "w") as f:
        f.write(config(base))
    for cid, text in CHECKS.items():
        with open(f"{work}/checks/{cid}.toml", "w") as f:
            f.write(text)

    def dq_run(*args, env_extra=None):
        return subprocess.run([dq, "--config", "dqwatch.toml", *args], cwd=work, capture_output=True, text=True)

    # Per run: each check's duration (JSON report) and, from the driver's debug event, the
    # wall time of its describe-only and execute requests and of reading the rows.
    per = {cid: [] for cid in CHECKS}
    for _ in range(ROUNDS):
        r = subprocess.run([dq, "--config", "dqwatch.toml", "--log-format", "json", "run", "--format", "json", "--fail-on", "P0"],
                           cwd=work, capture_output=True, text=True, env={**os.environ, "RUST_LOG": "dqwatch::warehouse=debug"})
        doc = json.loads(r.stdout)
        events = {}
        for line in r.stderr.splitlines():
            try:
                e = json.loads(line)
            except ValueError:
                continue
            f = e.get("fields", {})
            if f.get("message") == "snowflake statement":
                events.setdefault(f["check"], []).append(f)
        for c in doc["checks"]:
            ev = events.get(c["id"], [])
            if not ev:
                continue
            # A reconciliation's two sides run at once: the slower one is on the clock.
            slow = max(ev, key=lambda f: f["describe_ms"] + f["execute_ms"] + f["read_ms"])
            per[c["id"]].append((c["duration_ms"], slow["execute_ms"], slow["describe_ms"], slow["read_ms"]))
    print(f"dqwatch: {dq}; fakesnow: {base}; {ROUNDS} runs; medians\n")
    print("| check | duration ms | execute request ms (server + loopback HTTP) | overhead ms (duration − execute) | of it: describe-only request ms | of it: reading rows ms | of it: the rest ms |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    med = statistics.median
    for cid, xs in per.items():
        if not xs:
            continue
        d, ex, de, rd = (med(x[i] for x in xs) for i in range(4))
        over = med(x[0] - x[1] for x in xs)
        rest = med(x[0] - x[1] - x[2] - x[3] for x in xs)
        print(f"| {cid} | {d:.1f} | {ex:.1f} | {over:.1f} | {de:.1f} | {rd:.2f} | {rest:.1f} |")

    # Peak memory: a check reading a 1M-row result capped at max_rows, against a 10-row one;
    # the same on SQLite (sqlx streams rows) for reference.
    lite = tempfile.mkdtemp(prefix="dqwatch-wh-lite-")
    import sqlite3
    con = sqlite3.connect(f"{lite}/big.db")
    con.execute("CREATE TABLE big1m (n INTEGER, label TEXT, amount REAL)")
    con.executemany("INSERT INTO big1m VALUES (?, ?, ?)", ((i, f"row {i // 1000}", i * 0.5) for i in range(1_000_000)))
    con.commit()
    con.close()
    print("\n| check (max_rows 10000) | peak RSS (GNU time) |")
    print("|---|---:|")
    cases = [
        ("Snowflake (fakesnow), 10 rows", config(base, "max_rows = 10000\nstatement_timeout = \"300s\""), "SELECT n, label, amount FROM big1m WHERE n < 1011"),
        ("Snowflake (fakesnow), 1M rows", config(base, "max_rows = 10000\nstatement_timeout = \"300s\""), "SELECT n, label, amount FROM big1m"),
        ("SQLite, 10 rows", f'[connections.warehouse]\nurl = "sqlite://{lite}/big.db"\nmax_rows = 10000\n', "SELECT n, label, amount FROM big1m WHERE n < 10"),
        ("SQLite, 1M rows", f'[connections.warehouse]\nurl = "sqlite://{lite}/big.db"\nmax_rows = 10000\n', "SELECT n, label, amount FROM big1m"),
    ]
    for name, cfg, sql in cases:
        mem = tempfile.mkdtemp(prefix="dqwatch-wh-mem-")
        os.makedirs(f"{mem}/checks")
        with open(f"{mem}/dqwatch.toml", "w") as f:
            f.write(cfg)
        with open(f"{mem}/checks/rows.sql", "w") as f:
            f.write(f"-- dqwatch\n-- on_no_data = \"pass\"\n{sql}\n")
        r = subprocess.run(["/usr/bin/time", "-v", dq, "--config", "dqwatch.toml", "run", "--no-incidents", "--format", "json"],
                           cwd=mem, capture_output=True, text=True)
        rss = next((l.split(":")[1].strip() for l in r.stderr.splitlines() if "Maximum resident set size" in l), "?")
        doc = json.loads(r.stdout) if r.stdout.strip() else {}
        c = (doc.get("checks") or [{}])[0]
        print(f"| {name} ({c.get('rows')} rows read, capped={c.get('capped')}, {c.get('duration_ms')} ms) | {int(rss) / 1024:.1f} MiB |")


if __name__ == "__main__":
    sys.exit(main())
