#!/usr/bin/env python3
"""Snowflake figures against the fakesnow stand-in (issue 12): per check, the time dqwatch adds
around the server's own query time, and the peak memory of a check that streams a 1M-row result
capped at max_rows. Numbers, not pass/fail; results go to stdout as a Markdown table.

    python3 benches/warehouses.py [--url http://127.0.0.1:18999] [--bin target/debug/dqwatch]

Needs a running fakesnow (`python -m fakesnow -s -p 18999`), a dqwatch built with
`--features snowflake-arrow`, and GNU time (/usr/bin/time). Only the standard library.

How the overhead is measured. The server's own time of a check's query is taken as the wall time
of one raw `query-request` carrying the check's rendered SQL, sent over a logged-in session with
nothing else (median of ROUNDS). dqwatch's time is the check's `duration_ms` in the JSON report of
`dqwatch run` (median of ROUNDS runs; max_concurrency = 1 so checks do not share the server).
The overhead is the difference: the screen, the describe-only round trip that checks the
statement type, building the request, decoding the rows and judging them. The session login is
paid once per process by whichever check runs first; it is measured apart and taken out.
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
        f"max_concurrency = 1\n{extra}\n"
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
    logins = [login(base)[1] for _ in range(ROUNDS)]
    work = tempfile.mkdtemp(prefix="dqwatch-wh-bench-")
    os.makedirs(f"{work}/checks")
    with open(f"{work}/dqwatch.toml", "w") as f:
        f.write(config(base))
    for cid, text in CHECKS.items():
        with open(f"{work}/checks/{cid}.toml", "w") as f:
            f.write(text)

    def dq_run(*args, env_extra=None):
        return subprocess.run([dq, "--config", "dqwatch.toml", *args], cwd=work, capture_output=True, text=True)

    # The server's own time: each rendered query (both sides of a reconciliation) on a warm session.
    server, describe = {}, {}
    for cid in CHECKS:
        out = dq_run("render", cid).stdout
        parts = [p for p in out.split("\n\n") if p.strip()]
        for p in parts:  # warm-up
            query(base, token, p)
        server[cid] = statistics.median(sum(query(base, token, p) for p in parts) for _ in range(ROUNDS))
        describe[cid] = statistics.median(sum(query(base, token, p, True) for p in parts) for _ in range(ROUNDS))
    # dqwatch's time per check.
    took = {cid: [] for cid in CHECKS}
    for _ in range(ROUNDS):
        doc = json.loads(dq_run("run", "--format", "json", "--fail-on", "P0").stdout)
        for c in doc["checks"]:
            took[c["id"]].append(c["duration_ms"] / 1000)
    login_s = statistics.median(logins)
    print(f"dqwatch: {dq}; fakesnow: {base}; {ROUNDS} rounds; login-request median {login_s * 1000:.1f} ms "
          "(paid once per process, by the first check; taken out below)\n")
    print("| check | server (raw query-request) ms | describe-only round trip ms | dqwatch duration ms | overhead ms (dqwatch − server) |")
    print("|---|---:|---:|---:|---:|")
    for cid in CHECKS:
        times = sorted(took[cid])
        # The slowest run of a check may hold the login; the median of the rest does not.
        d = statistics.median(times[:-1] if len(times) > 2 else times)
        print(f"| {cid} | {server[cid] * 1000:.1f} | {describe[cid] * 1000:.1f} | {d * 1000:.1f} | {(d - server[cid]) * 1000:.1f} |")

    # Peak memory: a check reading a 1M-row result capped at max_rows, against a 10-row one.
    print("\n| check (max_rows 10000) | peak RSS (GNU time) |")
    print("|---|---:|")
    for name, sql in [("10 rows", "SELECT n, label, amount FROM big1m WHERE n < 1011"), ("1M rows, capped", "SELECT n, label, amount FROM big1m")]:
        mem = tempfile.mkdtemp(prefix="dqwatch-wh-mem-")
        os.makedirs(f"{mem}/checks")
        with open(f"{mem}/dqwatch.toml", "w") as f:
            f.write(config(base, "max_rows = 10000\nstatement_timeout = \"300s\""))
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
