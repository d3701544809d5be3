#!/usr/bin/env python3
"""Summarises the state-store statements of a daemon run logged with
RUST_LOG=warn,sqlx::query=debug (the warehouse connections do not log statements).

usage: sqllog.py DAEMON.log [FROM_SECOND TO_SECOND]

Per statement kind (the first words of sqlx's summary): count, rows, total and max elapsed,
over the whole log and per second-of-minute window (default: the busy part, s0-s20, and the
idle part, s20-s60). Also the recorder's batch sizes (rows per `INSERT INTO runs`).
"""

import re
import sys
from collections import defaultdict

ANSI = re.compile(r"\x1b\[[0-9;]*m")
LINE = re.compile(
    r'^(\S+)Z\s+DEBUG sqlx::query: summary="([^"]*)".*?rows_affected=(\d+) rows_returned=(\d+).*?elapsed_secs=([0-9.e-]+)'
)


def main():
    path = sys.argv[1]
    lo, hi = (float(sys.argv[2]), float(sys.argv[3])) if len(sys.argv) > 3 else (0, 20)
    busy = defaultdict(lambda: [0, 0, 0.0, 0.0])
    idle = defaultdict(lambda: [0, 0, 0.0, 0.0])
    minutes = set()
    batches = defaultdict(list)
    with open(path, errors="replace") as f:
        for raw in f:
            line = ANSI.sub("", raw)
            # Drop the (possibly huge) full statement text before matching.
            line = re.sub(r'db\.statement="(?:[^"\\]|\\.)*"', "", line)
            m = LINE.match(line)
            if not m:
                continue
            ts, summary, affected, returned, secs = m.groups()
            sec = int(ts[17:19]) + float("0." + ts[20:26] if len(ts) > 20 else 0)
            minute = ts[:16]
            minutes.add(minute)
            kind = summary.replace(" …", "").strip()[:48]
            rows = int(returned) if kind.startswith(("SELECT", "PRAGMA")) else int(affected)
            bucket = busy if lo <= sec < hi else idle
            b = bucket[kind]
            b[0] += 1
            b[1] += rows
            b[2] += float(secs)
            b[3] = max(b[3], float(secs))
            if kind.startswith("INSERT INTO runs"):
                batches[minute].append(int(affected))
    n = max(1, len(minutes) - 1)
    for name, bucket in ((f"s{lo:.0f}-s{hi:.0f} of each minute", busy), ("rest of each minute", idle)):
        print(f"{name} (per minute, {n} minutes):")
        print(f"  {'statement':48} {'count':>8} {'rows':>9} {'total ms':>9} {'max ms':>8}")
        for kind, (c, r, t, mx) in sorted(bucket.items(), key=lambda kv: -kv[1][2]):
            print(f"  {kind:48} {c / n:8.1f} {r / n:9.0f} {1000 * t / n:9.1f} {1000 * mx:8.1f}")
    print("recorder batches (rows per INSERT INTO runs chunk) per minute:")
    for minute in sorted(batches):
        b = batches[minute]
        print(f"  {minute}: {len(b)} chunks, {sum(b)} runs, max {max(b)}, median {sorted(b)[len(b) // 2]}")


if __name__ == "__main__":
    main()
