#!/usr/bin/env python3
"""Generates the dqwatch bench workloads (stdlib only, deterministic).

  gen_checks.py pg N OUT URL
      OUT/dqwatch.toml       one PostgreSQL connection "pg" (max_concurrency = 4)
      OUT/dqwatch-c1.toml    the same with max_concurrency = 1 (diagnostic)
      OUT/dqwatch-notls.toml the same with sslmode=disable (diagnostic)
      OUT/dqwatch-c1-notls.toml  both (diagnostic)
      OUT/checks/cNNNN_*.sql N checks over benches/sql/dataset.sql (ids sort in
                             generation order, which is also dqwatch's run order)
      OUT/floor/all.sql      the same N queries, for one `psql -f` session
      OUT/floor/partK.sql    the same N queries dealt round-robin into 4 files
                             (K = 1..4), for 4 parallel psql sessions

  gen_checks.py trivial N OUT URL
      the same files for N near-free checks (an indexed lookup in the small ledger
      table): what is left of the time is the per-check cost of the client and protocol

  gen_checks.py validate N OUT
      OUT/dqwatch.toml and N checks on a SQLite connection under OUT/checks/,
      100 per folder, with varied headers (thresholds, severity maps, row checks,
      schedules, tags, owners). `dqwatch validate` does not open the database.

The PostgreSQL checks are 12 kinds of data-quality queries (failure rate, risk label,
reconciliation against a ledger, freshness, volume, missing days, negative amounts,
duplicates, joins with customers, percentiles, weekly roll-ups), each with its own
date range / channel / threshold, so the queries are not all the same. The data has
planted problems (see dataset.sql), so a fair share of the checks breach.
"""

import datetime
import os
import random
import sys

START = datetime.date(2024, 7, 1)  # day 0 of the dataset; day 364 is the last
LAST = 364
WINDOW = 275  # checks look at the last 90 days (days 275..364), like real ones do
OUTAGE_DAYS = [300, 361]  # no 'partner' events on these days (dataset.sql also has 40, 111, 190, 250)
CHANNELS = ["web", "app", "store", "partner"]


def day(d):
    return (START + datetime.timedelta(days=d)).isoformat()


def span(rng, lo, hi, bias=None):
    """A [a, b] day range of lo..hi days; with `bias`, often one covering a planted day."""
    length = rng.randint(lo, hi)
    if bias and rng.random() < 0.3:
        end = min(LAST, rng.choice(bias) + rng.randint(0, length - 1))
    else:
        end = rng.randint(WINDOW + length - 1, LAST)
    return max(WINDOW, end - length + 1), end


def chan_filter(rng, weights, col="channel"):
    """'' (all channels) or `AND channel = 'x'`; weights for (all, app, web, store, partner)."""
    pick = rng.choices([None, "app", "web", "store", "partner"], weights=weights)[0]
    return (f"\n  AND {col} = '{pick}'" if pick else ""), pick


FAIL_DAYS = [d for d in range(WINDOW, LAST + 1) if d % 29 == 7]
WEB_GAP_DAYS = [d for d in range(WINDOW, LAST + 1) if d % 37 == 5]


def failure_rate(rng):
    a, b = span(rng, 1, 7, FAIL_DAYS)
    filt, ch = chan_filter(rng, (0.3, 0.5, 0.1, 0.05, 0.05))
    header = {
        "description": f"Daily failure rate {day(a)}..{day(b)} ({ch or 'all channels'})",
        "category": "pipeline_failure",
        "keys": ["day"],
        "metric": "failure_pct",
        "thresholds": {"P1": "> 9", "P2": "> 5"},
    }
    sql = f"""SELECT event_date::text AS day,
       ROUND(100.0 * COUNT(*) FILTER (WHERE status = 'failed') / COUNT(*), 2) AS failure_pct,
       COUNT(*) AS events
FROM events
WHERE event_date BETWEEN DATE '{day(a)}' AND DATE '{day(b)}'{filt}
GROUP BY event_date"""
    return header, sql


def risk_label(rng):
    a, b = span(rng, 1, 3, FAIL_DAYS)
    header = {
        "description": f"Failure risk per channel {day(a)}..{day(b)}",
        "category": "pipeline_failure",
        "keys": ["channel"],
        "metric": "failure_pct",
        "severity_column": "risk",
        "severity_map": {"HIGH": "P1", "MEDIUM": "P2", "LOW": "pass"},
    }
    sql = f"""WITH f AS (
    SELECT channel, 100.0 * COUNT(*) FILTER (WHERE status = 'failed') / COUNT(*) AS failure_pct
    FROM events
    WHERE event_date BETWEEN DATE '{day(a)}' AND DATE '{day(b)}'
    GROUP BY channel
)
SELECT channel, ROUND(failure_pct, 2) AS failure_pct,
       CASE WHEN failure_pct > 9 THEN 'HIGH' WHEN failure_pct > 4 THEN 'MEDIUM' ELSE 'LOW' END AS risk
FROM f"""
    return header, sql


def reconciliation(rng):
    a, b = span(rng, 1, 7, WEB_GAP_DAYS)
    ch = rng.choice([None, None, "web", "store", "app"])
    header = {
        "description": f"Events reconcile with the ledger {day(a)}..{day(b)} ({ch or 'all channels'})",
        "category": "reconciliation",
        "impact": ["revenue"],
        "keys": ["day"],
        "metric": "gap",
        "thresholds": {"P0": "> 1000", "P2": "> 0.01"},
    }
    rng_e = f"event_date BETWEEN DATE '{day(a)}' AND DATE '{day(b)}'"
    cf = f" AND channel = '{ch}'" if ch else ""
    sql = f"""WITH e AS (
    SELECT event_date, SUM(amount) FILTER (WHERE status = 'ok') AS total
    FROM events
    WHERE {rng_e}{cf}
    GROUP BY event_date
), l AS (
    SELECT event_date, SUM(total) AS total
    FROM ledger
    WHERE {rng_e}{cf}
    GROUP BY event_date
)
SELECT e.event_date::text AS day, e.total AS events_total, l.total AS ledger_total,
       ABS(e.total - COALESCE(l.total, 0)) AS gap
FROM e LEFT JOIN l USING (event_date)"""
    return header, sql


def freshness(rng):
    j = rng.choice(OUTAGE_DAYS + [LAST]) if rng.random() < 0.3 else rng.randint(WINDOW + 1, LAST)
    header = {
        "description": f"Every channel has events within 6h of the end of {day(j)}",
        "category": "stale_data",
        "keys": ["channel"],
        "metric": "lag_seconds",
        "thresholds": {"P1": "> 6h", "P3": "> 30m"},
        "on_no_data": "P1",
    }
    sql = f"""SELECT ch.channel,
       EXTRACT(EPOCH FROM (TIMESTAMPTZ '{day(j)} 23:59:59+00' - MAX(e.event_ts)))::bigint AS lag_seconds
FROM (VALUES ('web'), ('app'), ('store'), ('partner')) AS ch(channel)
LEFT JOIN events e
  ON e.channel = ch.channel AND e.event_date BETWEEN DATE '{day(j - 1)}' AND DATE '{day(j)}'
GROUP BY ch.channel"""
    return header, sql


def volume(rng):
    j = rng.choice(OUTAGE_DAYS) if rng.random() < 0.25 else rng.randint(WINDOW, LAST)
    header = {
        "description": f"Every channel has events on {day(j)}",
        "category": "missing_data",
        "keys": ["channel"],
        "metric": "events",
        "thresholds": {"P1": "< 100", "P3": "< 700"},
    }
    sql = f"""SELECT ch.channel, COUNT(e.channel) AS events
FROM (VALUES ('web'), ('app'), ('store'), ('partner')) AS ch(channel)
LEFT JOIN events e ON e.channel = ch.channel AND e.event_date = DATE '{day(j)}'
GROUP BY ch.channel"""
    return header, sql


def missing_days(rng):
    a, b = span(rng, 7, 45, OUTAGE_DAYS)
    ch = rng.choice(["partner", "partner", "store"])
    header = {
        "description": f"No day without '{ch}' events {day(a)}..{day(b)}",
        "category": "missing_data",
        "keys": ["day"],
        "severity": "P1",
    }
    sql = f"""SELECT d::date::text AS day
FROM generate_series(DATE '{day(a)}', DATE '{day(b)}', INTERVAL '1 day') AS d
WHERE NOT EXISTS (
    SELECT 1 FROM events e WHERE e.event_date = d::date AND e.channel = '{ch}'
)"""
    return header, sql


def negative_amounts(rng):
    a, b = span(rng, 1, 14)
    header = {
        "description": f"No event has a negative amount {day(a)}..{day(b)}",
        "category": "quality_degradation",
        "keys": ["id"],
        "severity": "P2",
    }
    sql = f"""SELECT id, event_date::text AS day, amount
FROM events
WHERE event_date BETWEEN DATE '{day(a)}' AND DATE '{day(b)}'
  AND amount <= 0"""
    return header, sql


def duplicates(rng):
    a, b = span(rng, 1, 2)
    header = {
        "description": f"No event is loaded twice {day(a)}..{day(b)}",
        "category": "duplicate_load",
        "keys": ["customer_id", "event_ts"],
        "severity": "P2",
    }
    sql = f"""SELECT customer_id, event_ts, COUNT(*) AS copies
FROM events
WHERE event_date BETWEEN DATE '{day(a)}' AND DATE '{day(b)}'
GROUP BY customer_id, event_ts
HAVING COUNT(*) > 1"""
    return header, sql


def avg_by_region(rng):
    a, b = span(rng, 1, 1)
    filt, ch = chan_filter(rng, (0.5, 0.2, 0.1, 0.1, 0.1), col="e.channel")
    header = {
        "description": f"Average amount per region {day(a)}..{day(b)} ({ch or 'all channels'})",
        "category": "quality_degradation",
        "keys": ["region"],
        "metric": "avg_amount",
        "thresholds": {"P2": "< 235", "P3": "> 262"},
    }
    sql = f"""SELECT c.region, ROUND(AVG(e.amount), 2) AS avg_amount, COUNT(*) AS events
FROM events e
JOIN customers c ON c.customer_id = e.customer_id
WHERE e.event_date BETWEEN DATE '{day(a)}' AND DATE '{day(b)}'{filt}
GROUP BY c.region"""
    return header, sql


def p99_by_status(rng):
    a, b = span(rng, 1, 3)
    header = {
        "description": f"99th percentile amount per status {day(a)}..{day(b)}",
        "category": "quality_degradation",
        "keys": ["status"],
        "metric": "p99_amount",
        "thresholds": {"P3": "> 492"},
    }
    sql = f"""SELECT status, percentile_cont(0.99) WITHIN GROUP (ORDER BY amount) AS p99_amount
FROM events
WHERE event_date BETWEEN DATE '{day(a)}' AND DATE '{day(b)}'
GROUP BY status"""
    return header, sql


def weekly_refunds(rng):
    a, b = span(rng, 14, 35)
    header = {
        "description": f"Refund share per week and channel {day(a)}..{day(b)}",
        "category": "quality_degradation",
        "keys": ["week", "channel"],
        "metric": "refund_pct",
        "thresholds": {"P2": "> 1.75"},
    }
    sql = f"""SELECT date_trunc('week', event_date)::date::text AS week, channel,
       ROUND(100.0 * SUM(amount) FILTER (WHERE status = 'refunded') / NULLIF(SUM(amount), 0), 3) AS refund_pct
FROM events
WHERE event_date BETWEEN DATE '{day(a)}' AND DATE '{day(b)}'
GROUP BY 1, 2"""
    return header, sql


def active_by_segment(rng):
    j = rng.randint(WINDOW, LAST)
    header = {
        "description": f"Active customers per segment on {day(j)}",
        "category": "missing_data",
        "keys": ["segment"],
        "metric": "active_customers",
        "thresholds": {"P2": "< 2080"},
    }
    sql = f"""SELECT c.segment, COUNT(DISTINCT e.customer_id) AS active_customers
FROM events e
JOIN customers c ON c.customer_id = e.customer_id
WHERE e.event_date = DATE '{day(j)}'
GROUP BY c.segment"""
    return header, sql


def trivial(rng):
    """A check that costs the server next to nothing: shows dqwatch's fixed cost per check."""
    j = rng.randint(WINDOW, LAST)
    header = {
        "description": f"Ledger rows on {day(j)}",
        "keys": ["day"],
        "metric": "channels",
        "thresholds": {"P3": "< 4"},
    }
    sql = f"""SELECT event_date::text AS day, COUNT(*) AS channels
FROM ledger
WHERE event_date = DATE '{day(j)}'
GROUP BY event_date"""
    return header, sql


KINDS = [  # (generator, weight)
    (failure_rate, 14),
    (risk_label, 6),
    (reconciliation, 14),
    (freshness, 8),
    (volume, 10),
    (missing_days, 6),
    (negative_amounts, 8),
    (duplicates, 6),
    (avg_by_region, 8),
    (p99_by_status, 5),
    (weekly_refunds, 2),
    (active_by_segment, 4),
]


def toml_value(v):
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, int):
        return str(v)
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


def header_text(h):
    lines = ["-- dqwatch"]
    tables = []
    for k, v in h.items():
        if isinstance(v, dict):
            tables.append((k, v))
        else:
            lines.append(f"-- {k} = {toml_value(v)}")
    for name, t in tables:
        lines.append(f"-- [{name}]")
        for k, v in t.items():
            lines.append(f"-- {k} = {toml_value(v)}")
    return "\n".join(lines) + "\n"


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def gen_pg(n, out, url, kinds=None):
    kinds = kinds or KINDS
    notls = url + ("&" if "?" in url else "?") + "sslmode=disable"
    variants = {  # file: (url, max_concurrency, what)
        "dqwatch.toml": (url, 4, "the benchmarked config"),
        "dqwatch-c1.toml": (url, 1, "diagnostic: one connection, to compare with one psql session"),
        "dqwatch-notls.toml": (notls, 4, "diagnostic: sslmode=disable"),
        "dqwatch-c1-notls.toml": (notls, 1, "diagnostic: one connection, sslmode=disable"),
    }
    for name, (u, conc, what) in variants.items():
        write(os.path.join(out, name), f"""# Generated by benches/gen_checks.py: {n} PostgreSQL checks ({what}).
checks_dir = "checks"
state = "sqlite://state/state.db"

[connections.pg]
url = "{u}"
max_concurrency = {conc}
statement_timeout = "120s"
max_rows = 10000
""")
    # Every run of N draws its own sequence; N = 20 is the first 20 of the same sequence.
    rng = random.Random(20250630)
    gens = [g for g, _ in kinds]
    weights = [w for _, w in kinds]
    queries = []
    for i in range(n):
        gen = rng.choices(gens, weights=weights)[0]
        h, sql = gen(rng)
        h = {"connection": "pg", "tags": ["bench", gen.__name__], **h}
        write(os.path.join(out, "checks", f"c{i:04d}_{gen.__name__}.sql"), header_text(h) + sql + "\n")
        queries.append(sql)
    write(os.path.join(out, "floor", "all.sql"), "".join(q + ";\n" for q in queries))
    for k in range(4):
        write(os.path.join(out, "floor", f"part{k + 1}.sql"), "".join(q + ";\n" for q in queries[k::4]))


def gen_validate(n, out):
    write(os.path.join(out, "dqwatch.toml"), """# Generated by benches/gen_checks.py: checks for `dqwatch validate`.
checks_dir = "checks"
state = "sqlite://state/state.db"

[connections.lite]
url = "sqlite://warehouse.db"
max_concurrency = 4
statement_timeout = "30s"

[impact.revenue]
min_severity = "P1"
""")
    rng = random.Random(10000)
    schedules = ["*/5 * * * *", "0 * * * *", "30 7 * * *", "0 6 * * 1-5", "15 */2 * * *", None]
    for i in range(n):
        kind = i % 4
        h = {
            "description": f"Generated check {i}: {['threshold', 'severity map', 'rows fail', 'multi-level'][kind]}",
            "connection": "lite",
            "category": rng.choice(["missing_data", "stale_data", "reconciliation", "pipeline_failure", "duplicate_load", "quality_degradation"]),
            "tags": [f"team{i % 17}", rng.choice(["finance", "ops", "quality"])],
        }
        sched = rng.choice(schedules)
        if sched:
            h["schedule"] = sched
        if i % 5 == 0:
            h["owners"] = [f"owner{i % 50}@example.com"]
        if i % 7 == 0:
            h["impact"] = ["revenue"]
            h["runbook"] = f"https://wiki.example.com/runbooks/check-{i}"
        if kind == 0:
            h["keys"] = ["day"]
            h["metric"] = "value"
            h["thresholds"] = {"P1": f"> {rng.randint(50, 500)}", "P3": f"> {rng.randint(1, 49)}"}
            sql = f"SELECT event_date AS day, COUNT(*) AS value\nFROM events\nWHERE amount > {i % 100}\nGROUP BY event_date"
        elif kind == 1:
            h["keys"] = ["dataset"]
            h["metric"] = "score"
            h["severity_column"] = "risk"
            h["severity_map"] = {"HIGH": "P1", "MEDIUM": "P2", "LOW": "pass"}
            sql = f"SELECT dataset, score, CASE WHEN score < {i % 50} THEN 'HIGH' WHEN score < 80 THEN 'MEDIUM' ELSE 'LOW' END AS risk\nFROM quality_scores"
        elif kind == 2:
            h["keys"] = ["order_id"]
            h["severity"] = rng.choice(["P0", "P1", "P2", "P3"])
            sql = f"SELECT order_id, total\nFROM orders\nWHERE total <= 0 AND order_id % {i % 13 + 2} = 0"
        else:
            h["metric"] = "lag_seconds"
            h["thresholds"] = {"P0": "> 1d", "P1": "> 2h", "P2": "> 45m", "P3": "> 10m"}
            h["on_no_data"] = "pass"
            h["open_after"] = 1 + i % 3
            h["resolve_after"] = 2
            sql = "SELECT CAST((julianday('now') - julianday(MAX(last_updated))) * 86400 AS INTEGER) AS lag_seconds\nFROM critical_datasets"
        write(os.path.join(out, "checks", f"group{i // 100:03d}", f"check_{i:05d}.sql"), header_text(h) + sql + "\n")


def main(argv):
    if len(argv) >= 4 and argv[1] == "pg":
        gen_pg(int(argv[2]), argv[3], argv[4] if len(argv) > 4 else "postgres://postgres@127.0.0.1:5432/dqbench")
    elif len(argv) >= 4 and argv[1] == "trivial":
        gen_pg(int(argv[2]), argv[3], argv[4] if len(argv) > 4 else "postgres://postgres@127.0.0.1:5432/dqbench", [(trivial, 1)])
    elif len(argv) == 4 and argv[1] == "validate":
        gen_validate(int(argv[2]), argv[3])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
