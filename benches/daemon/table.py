#!/usr/bin/env python3
"""Prints the daemon benchmark's table from measure.py's JSON files.

usage: table.py RESULT.json [RESULT.json ...]
"""

import json
import sys



def ms(v):
    return "-" if v is None else (f"{v:.0f} ms" if v < 10_000 else f"{v / 1000:.1f} s")


def verdict(ok):
    return "met" if ok else "MISSED"


def main():
    results = [json.load(open(p)) for p in sys.argv[1:]]
    labels = [r["label"] for r in results]
    rows = []

    def row(name, f):
        rows.append((name, [f(r) for r in results]))

    n = lambda r: r["minutes"][0]["slots"] if r["minutes"] else 0
    row("minutes measured", lambda r: str(len(r["minutes"])))
    row("startup to /healthz", lambda r: f"{r['startup_s']:.1f} s")
    row("claim lag p50 / p99", lambda r: f"{ms(r['claim_ms']['p50'])} / {ms(r['claim_ms']['p99'])}")
    row("claim lag max", lambda r: ms(r["claim_ms"]["max"]))
    row("start lag p50 / p99", lambda r: f"{ms(r['start_ms']['p50'])} / {ms(r['start_ms']['p99'])}")
    row("start lag max", lambda r: ms(r["start_ms"]["max"]))
    row("done lag p50 / p99", lambda r: f"{ms(r['done_ms']['p50'])} / {ms(r['done_ms']['p99'])}")
    row("done lag max", lambda r: ms(r["done_ms"]["max"]))
    row(
        "/metrics lag hist: n, <=1s",
        lambda r: (
            f"{r['metrics_lag_histogram'].get('count', 0):.0f}, "
            f"{r['metrics_lag_histogram'].get('buckets', {}).get('1', float('nan')):.0f}"
        ),
    )
    row("peak memory (VmHWM)", lambda r: f"{r['vm_hwm_mb']:.0f} MB")
    row("RSS after load / at end", lambda r: f"{r['rss_ready_mb']:.0f} / {r['vm_rss_end_mb']:.0f} MB")
    row(
        "idle CPU (s20-55), per min",
        lambda r: " ".join(f"{m['idle_cpu_pct']:.2f}%" for m in r["minutes_cpu"]),
    )
    row(
        "CPU per minute",
        lambda r: " ".join(f"{m['cpu_s']:.1f}s" for m in r["minutes_cpu"]),
    )
    row(
        "busy until (s after slot)",
        lambda r: " ".join(str(m["busy_until_s"]) for m in r["minutes_cpu"]),
    )
    row(
        "last check done (s)",
        lambda r: " ".join(f"{m['last_done_s']:.1f}" if m["last_done_s"] is not None else "-" for m in r["minutes"]),
    )
    row(
        "foreign CPU s20-55 (% mach)",
        lambda r: " ".join(f"{m['idle_foreign_pct_of_machine']:.1f}%" for m in r["minutes_cpu"]),
    )
    row(
        "CPU s0-5 daemon/foreign %",
        lambda r: " ".join(
            f"{m.get('burst_cpu_pct', float('nan')):.0f}/{m.get('burst_foreign_pct', float('nan')):.0f}"
            for m in r["minutes_cpu"]
        ),
    )
    row("slots per minute", lambda r: " ".join(str(m["slots"]) for m in r["minutes"]))
    row("runs per minute", lambda r: " ".join(str(m["runs"]) for m in r["minutes"]))
    row(
        "duplicates / unmatched",
        lambda r: f"{sum(m['runs_duplicated_checks'] for m in r['minutes'])} / {r['runs_unmatched']}",
    )
    row("incidents", lambda r: ", ".join(f"{k} {v}" for k, v in sorted(r["incidents"].items())) or "0")
    row("SIGTERM to exit", lambda r: f"{r['stop_s']:.1f} s (rc {r['exit_code']})")

    nw = max(len(name) for name, _ in rows) + 2
    vw = [max(len(labels[i]), *(len(vals[i]) for _, vals in rows)) + 3 for i in range(len(labels))]
    print(f"{'':{nw}}" + "".join(f"{l:>{vw[i]}}" for i, l in enumerate(labels)))
    for name, vals in rows:
        print(f"{name:{nw}}" + "".join(f"{v:>{vw[i]}}" for i, v in enumerate(vals)))

    print()
    print("targets (10,000 checks, * * * * *):")
    for r in results:
        exp = max(m["slots"] for m in r["minutes"]) if r["minutes"] else 0
        complete = all(
            m["slots"] == m["runs"] == m["runs_distinct_checks"] == exp and m["runs_duplicated_checks"] == 0
            for m in r["minutes"]
        )
        idle = max(m["idle_cpu_pct"] for m in r["minutes_cpu"])
        p99 = r["start_ms"]["p99"] or 0
        p99d = r["done_ms"]["p99"] or 0
        print(
            f"  {r['label']}: p99 start lag {ms(p99)} < 1 s: {verdict(p99 < 1000)}"
            f" (p99 done lag {ms(p99d)}: {verdict(p99d < 1000)}); "
            f"peak memory {r['vm_hwm_mb']:.0f} MB < 200 MB: {verdict(r['vm_hwm_mb'] < 200)}; "
            f"idle CPU max {idle:.2f}% of a core (near zero = under 1%): {verdict(idle < 1)}; "
            f"every slot once ({exp}/min): {verdict(complete and exp > 0)}"
        )


if __name__ == "__main__":
    main()
