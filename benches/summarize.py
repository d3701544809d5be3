#!/usr/bin/env python3
"""Summarizes a benches/run.sh results folder as a Markdown report (stdout).

usage: summarize.py RESULTS_DIR

Reads the samples measure.py wrote (n500.json, n20.json, validate.json), rss.tsv and the
side files written by run.sh.

The verdicts use per-round comparisons: in each round every command ran once (N=500) or
RUNS times (N=20), back to back, so dqwatch / floor within a round shares that round's
background load; the verdict takes the median over rounds. The tables also give the plain
medians over all samples and over the clean samples only (no foreign load seen).
"""

import json
import os
import statistics
import sys

RSS_LIMIT_KIB = 30 * 1024  # "under 30 MB", read as 30 MiB
VALIDATE_LIMIT_S = 1.0
N500_RATIO = 1.10
N20_DELTA_MS = 50.0


def read(path, default=""):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return default


def load(res, name):
    path = os.path.join(res, f"{name}.json")
    return json.load(open(path)) if os.path.exists(path) else {}


def med(samples):
    return statistics.median(t for s in samples for t in s["times"])


def by_round(samples):
    return {s["round"]: statistics.median(s["times"]) for s in samples}


def paired(data, a, b, f, clean_only=False):
    ra = by_round([s for s in data[a] if not (clean_only and s["noisy"])])
    rb = by_round([s for s in data[b] if not (clean_only and s["noisy"])])
    rs = sorted(set(ra) & set(rb))
    vals = [f(ra[r], rb[r]) for r in rs]
    return (statistics.median(vals) if vals else None), vals


def ms(x):
    return f"{x * 1000:.0f} ms" if x < 10 else f"{x:.2f} s"


def table(title, data, floor=None, kind=None):
    head = "| command | median (all samples) | min | median (clean samples) | server CPU / run | client CPU / run |"
    sep = "|---|---:|---:|---:|---:|---:|"
    if floor:
        head += f" per round vs {floor} |"
        sep += "---:|"
    out = [f"### {title}", "", head, sep]
    for label, samples in data.items():
        times = [t for s in samples for t in s["times"]]
        clean = [s for s in samples if not s["noisy"]]
        cm = f"{ms(med(clean))} ({len(clean)}/{len(samples)})" if clean else f"– (0/{len(samples)})"
        row = (f"| {label} | {ms(statistics.median(times))} | {ms(min(times))} | {cm} "
               f"| {statistics.median(s['server_cpu_s'] for s in samples):.2f} s | {statistics.median(s['client_cpu_s'] for s in samples):.2f} s |")
        if floor:
            if label == floor:
                row += " – |"
            elif kind == "ratio":
                m, vals = paired(data, label, floor, lambda a, b: a / b)
                row += f" {m:.3f}× [{', '.join(f'{v:.2f}' for v in vals)}] |"
            else:
                m, vals = paired(data, label, floor, lambda a, b: (a - b) * 1000)
                row += f" {m:+.0f} ms [{', '.join(f'{v:+.0f}' for v in vals)}] |"
        out.append(row)
    return out


def main(res):
    out = ["# dqwatch benchmark results", ""]
    for label, f in [("binary", "provenance.txt"), ("dataset", "dataset.txt"), ("server", "server.txt"), ("psql connection", "psql-tls.txt")]:
        out.append(f"- {label}: {read(os.path.join(res, f)).replace(chr(10), '; ')}")
    for n in (20, 500):
        lines = [l.split() for l in read(os.path.join(res, f"conns-n{n}.txt")).splitlines() if l.strip()]
        if lines:
            peak = max(lines, key=lambda l: int(l[0]))
            out.append(f"- dqwatch connections seen during a N={n} run: at most {peak[0]}, {peak[1]} of them TLS ({peak[2]})")
        rep = os.path.join(res, f"report-n{n}.json")
        if os.path.exists(rep):
            s = json.load(open(rep))["summary"]
            out.append(f"- N={n} checks: {s['passed']} pass, {s['breached']} breach ({', '.join(f'{v} {k}' for k, v in s['breaches'].items())} keys), {s['errors']} errors")
    out.append("- samples are *clean* when no foreign CPU load (> 5 % of the machine) and no cargo/rustc was seen during them")
    out.append("")

    t500, t20, tv = load(res, "n500"), load(res, "n20"), load(res, "validate")
    if t500:
        out += table("N = 500 checks (1 run per round)", t500, "psql 4 sessions", "ratio") + [""]
    if t20:
        out += table("N = 20 checks (several runs per round; per-round figure = median of the round's runs)", t20, "psql 1 session", "delta") + [""]
    if tv:
        out += table("validate, 10,000 checks (warm page cache)", tv) + [""]
    rss = [l.split("\t") for l in read(os.path.join(res, "rss.tsv")).splitlines() if "\t" in l]
    if rss:
        out += ["### Peak memory (max RSS of 2 runs, /usr/bin/time)", "", "| command | max RSS |", "|---|---:|"]
        out += [f"| {label} | {int(k) / 1024:.1f} MiB = {int(k) * 1024 / 1e6:.1f} MB ({int(k)} KiB) |" for label, k in rss] + [""]

    verdicts = []
    out += ["### Targets", "", "| target | measured (median over rounds of the per-round comparison) | verdict |", "|---|---|---|"]
    for label in ("dqwatch", "dqwatch --no-incidents"):
        if label in t500 and "psql 4 sessions" in t500:
            m, vals = paired(t500, label, "psql 4 sessions", lambda a, b: a / b)
            mc, valsc = paired(t500, label, "psql 4 sessions", lambda a, b: a / b, clean_only=True)
            plain = med(t500[label]) / med(t500["psql 4 sessions"])
            ok = m <= N500_RATIO
            if label == "dqwatch":
                verdicts.append(ok)
            clean = f"; clean rounds only: {mc:.3f}× over {len(valsc)}" if mc else ""
            out.append(f"| N=500: `{label}` ≤ {N500_RATIO}× the 4-session floor | **{m:.3f}×** over {len(vals)} rounds "
                       f"(ratio of plain medians {plain:.3f}×{clean}) | {'MET' if ok else 'MISSED'} |")
    for label in ("dqwatch", "dqwatch --no-incidents"):
        if label in t20 and "psql 1 session" in t20:
            m, vals = paired(t20, label, "psql 1 session", lambda a, b: (a - b) * 1000)
            mc, valsc = paired(t20, label, "psql 1 session", lambda a, b: (a - b) * 1000, clean_only=True)
            plain = (med(t20[label]) - med(t20["psql 1 session"])) * 1000
            ok = m <= N20_DELTA_MS
            if label == "dqwatch":
                verdicts.append(ok)
            clean = f"; clean rounds only: {mc:+.0f} ms over {len(valsc)}" if mc is not None else ""
            out.append(f"| N=20: `{label}` ≤ 1-session floor + {N20_DELTA_MS:.0f} ms | **{m:+.0f} ms** over {len(vals)} rounds "
                       f"(difference of plain medians {plain:+.0f} ms{clean}) | {'MET' if ok else 'MISSED'} |")
    run_rss = [(l, int(k)) for l, k in rss if l.startswith("dqwatch run")]
    if run_rss:
        worst = max(run_rss, key=lambda x: x[1])
        ok = worst[1] < RSS_LIMIT_KIB
        verdicts.append(ok)
        dec = worst[1] * 1024 / 1e6
        note = f"; {dec:.1f} MB in decimal units, {'over' if dec >= 30 else 'under'} 30 MB" if ok else ""
        out.append(f"| `dqwatch run` peak RSS < 30 MiB | {worst[1] / 1024:.1f} MiB ({worst[0]}{note}) | {'MET' if ok else 'MISSED'}{' (at the limit)' if ok and dec >= 30 else ''} |")
    if tv:
        times = [t for s in next(iter(tv.values())) for t in s["times"]]
        ok = statistics.fmean(times) < VALIDATE_LIMIT_S
        verdicts.append(ok)
        vr = [int(k) for l, k in rss if l.startswith("dqwatch validate")]
        extra = f"; peak RSS {vr[0] / 1024:.1f} MiB" if vr else ""
        out.append(f"| `dqwatch validate`, 10k checks < 1 s | mean {ms(statistics.fmean(times))}, max {ms(max(times))} over {len(times)} runs{extra} | {'MET' if ok else 'MISSED'} |")
    out.append("")
    out.append(f"{sum(verdicts)} of {len(verdicts)} targets met (verdicts on the default `dqwatch run`; the --no-incidents rows are for information).")
    print("\n".join(out))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
