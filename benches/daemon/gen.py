#!/usr/bin/env python3
"""Generates the daemon benchmark's fixture: a SQLite warehouse and N check files.

usage: gen.py DIR N BREACH_EVERY

DIR/warehouse.db  table t(k, v): 10,000 rows, k = 0..99 (100 rows per k), indexed on k
DIR/checks/cNNNNN.sql  N checks, each `* * * * *`, metric n = COUNT(*) WHERE k = i % 100;
    every BREACH_EVERY-th check (i % BREACH_EVERY == 0) has P2 = "> 50" and breaches
    (n = 100), the others P2 = "> 1000000" and pass.
Existing files are kept if they already match (a rerun does not rewrite 10,000 files).
"""

import os
import sqlite3
import sys


def main():
    out, n, every = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    os.makedirs(os.path.join(out, "checks"), exist_ok=True)

    wh = os.path.join(out, "warehouse.db")
    if not os.path.exists(wh):
        tmp = wh + ".tmp"
        if os.path.exists(tmp):
            os.remove(tmp)
        db = sqlite3.connect(tmp)
        db.execute("CREATE TABLE t (k INTEGER NOT NULL, v REAL NOT NULL)")
        db.executemany(
            "INSERT INTO t VALUES (?, ?)", ((i % 100, i * 0.5) for i in range(10_000))
        )
        db.execute("CREATE INDEX t_k ON t (k)")
        db.commit()
        db.close()
        os.rename(tmp, wh)

    checks = os.path.join(out, "checks")
    want = set()
    for i in range(n):
        name = f"c{i:05d}.sql"
        want.add(name)
        limit = "> 50" if i % every == 0 else "> 1000000"
        text = (
            "-- dqwatch\n"
            '-- connection = "warehouse"\n'
            '-- schedule = "* * * * *"\n'
            '-- metric = "n"\n'
            "-- [thresholds]\n"
            f'-- P2 = "{limit}"\n'
            f"SELECT COUNT(*) AS n FROM t WHERE k = {i % 100}\n"
        )
        path = os.path.join(checks, name)
        try:
            with open(path) as f:
                if f.read() == text:
                    continue
        except FileNotFoundError:
            pass
        with open(path, "w") as f:
            f.write(text)
    for name in os.listdir(checks):
        if name not in want:
            os.remove(os.path.join(checks, name))


if __name__ == "__main__":
    main()
