#!/usr/bin/env python3
"""Runs `dqwatch daemon` through whole minutes and measures it.

usage: measure.py BIN CONFIG STATE_DB LABEL OUT_JSON

Environment: MINUTES (3): minute boundaries (slots) measured; IDLE_FROM (20) IDLE_TO (55):
the idle window, in seconds after each boundary; SAMPLE (0.2): /proc sampling period, s;
RUST_LOG (warn); PERF_RECORD (unset): if set, `perf record` the daemon over the whole run
into OUT_JSON.perf.data (1: `-g -F 499`, else the perf options to use, e.g.
"--call-graph dwarf -F 199"); for investigation, it perturbs the figures.

Timeline: start the daemon, wait for /healthz, take the first minute boundary at least 3 s
after that as B1; measure B1 .. B_MINUTES; at B_MINUTES + IDLE_TO + 1 s read /metrics and
/proc/PID/status, then SIGTERM and wait for the exit. Then read the state store:

  claim lag  = slots.claimed_at - slots.fire_at  (the scheduler noticed the slot and claimed it)
  start lag  = runs.started_at  - slots.fire_at  (the run's task was spawned; note: taken
               before the warehouse permit, so it does NOT include the max_concurrency wait)
  done lag   = runs.started_at + runs.duration_ms - slots.fire_at  (the check's query
               finished: includes the wait for a permit; an upper bound on the real start)

A run is matched to the slot of its check in the same minute (every check fires every
minute, and a lag of 60 s or more would show as unmatched runs).

CPU: utime+stime of the daemon (all threads) from /proc/PID/stat, sampled every SAMPLE s,
interpolated at window edges. "foreign" CPU is what the rest of the machine did meanwhile
(/proc/stat busy minus the daemon): noise.
"""

import json
import math
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import datetime, timezone

HZ = os.sysconf("SC_CLK_TCK")
NCPU = os.cpu_count() or 1
MINUTES = int(os.environ.get("MINUTES", "3"))
IDLE_FROM = float(os.environ.get("IDLE_FROM", "20"))
IDLE_TO = float(os.environ.get("IDLE_TO", "55"))
SAMPLE = float(os.environ.get("SAMPLE", "0.2"))


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def proc_cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    fields = s[s.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / HZ  # utime + stime (fields 14, 15)


def proc_status(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM", "Threads", "VmSize"):
                out[k] = int(v.split()[0]) if k != "Threads" else int(v)
    return out


def machine_busy():
    with open("/proc/stat") as f:
        v = list(map(int, f.readline().split()[1:9]))
    return (sum(v) - v[3] - v[4]) / HZ  # all but idle and iowait


class Sampler(threading.Thread):
    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.samples = []  # (t, cpu_s, machine_busy_s, rss_kb)
        self.stop = threading.Event()

    def run(self):
        nxt = time.time()
        while not self.stop.is_set():
            try:
                t = time.time()
                cpu = proc_cpu(self.pid)
                rss = proc_status(self.pid).get("VmRSS", 0)
                self.samples.append((t, cpu, machine_busy(), rss))
            except (FileNotFoundError, ProcessLookupError, ValueError):
                return
            nxt += SAMPLE
            time.sleep(max(0.0, nxt - time.time()))

    def at(self, t, idx):
        """Linear interpolation of column idx at time t."""
        s = self.samples
        if not s:
            return math.nan
        if t <= s[0][0]:
            return s[0][idx]
        for a, b in zip(s, s[1:]):
            if a[0] <= t <= b[0]:
                if b[0] == a[0]:
                    return b[idx]
                return a[idx] + (b[idx] - a[idx]) * (t - a[0]) / (b[0] - a[0])
        return s[-1][idx]

    def cpu(self, t0, t1):
        """(daemon CPU s, foreign CPU s) in [t0, t1]."""
        d = self.at(t1, 1) - self.at(t0, 1)
        m = self.at(t1, 2) - self.at(t0, 2)
        return d, max(0.0, m - d)

    def rss_max(self, t0, t1):
        v = [r for (t, _, _, r) in self.samples if t0 <= t <= t1]
        return max(v) if v else None


def http_get(port, path, timeout=5):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
        return r.read().decode()


def parse_ts(s):
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()


def fmt_ts(t):
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def pct(values, p):
    """Nearest-rank percentile."""
    if not values:
        return None
    v = sorted(values)
    k = max(0, math.ceil(p / 100 * len(v)) - 1)
    return v[k]


def stats(values):
    return {
        "n": len(values),
        "p50": pct(values, 50),
        "p90": pct(values, 90),
        "p99": pct(values, 99),
        "max": max(values) if values else None,
    }


def lag_histogram(text):
    """dqwatch_scheduler_lag_seconds from the exposition: count, sum, cumulative buckets."""
    h = {"buckets": {}}
    for line in text.splitlines():
        if not line.startswith("dqwatch_scheduler_lag_seconds"):
            continue
        name, _, value = line.rpartition(" ")
        if name.startswith("dqwatch_scheduler_lag_seconds_bucket"):
            le = name.split('le="')[1].split('"')[0]
            h["buckets"][le] = float(value)
        elif name.startswith("dqwatch_scheduler_lag_seconds_count"):
            h["count"] = float(value)
        elif name.startswith("dqwatch_scheduler_lag_seconds_sum"):
            h["sum"] = float(value)
        elif "quantile=" in name:
            q = name.split('quantile="')[1].split('"')[0]
            h.setdefault("quantiles", {})[q] = float(value)
    return h


def analyse(db_path, boundaries):
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True)
    lo, hi = fmt_ts(boundaries[0]), fmt_ts(boundaries[-1])
    out = {"minutes": []}
    slots = db.execute(
        "SELECT check_id, fire_at, claimed_at FROM slots WHERE fire_at BETWEEN ? AND ?", (lo, hi)
    ).fetchall()
    out["slots_outside_window"] = db.execute(
        "SELECT COUNT(*) FROM slots WHERE fire_at < ? OR fire_at > ?", (lo, hi)
    ).fetchone()[0]
    runs = db.execute(
        "SELECT check_id, started_at, duration_ms, outcome FROM runs WHERE started_at >= ?", (lo,)
    ).fetchall()
    out["runs_before_window"] = db.execute(
        "SELECT COUNT(*) FROM runs WHERE started_at < ?", (lo,)
    ).fetchone()[0]
    slot_of = {}
    for check, fire, claimed in slots:
        slot_of[(check, fire[:16])] = (parse_ts(fire), parse_ts(claimed))
    claim = {}
    for check, fire, claimed in slots:
        claim.setdefault(fire, []).append((parse_ts(claimed) - parse_ts(fire)) * 1000)
    per_min = {}
    unmatched = 0
    for check, started, dur, outcome in runs:
        key = (check, started[:16])
        s = slot_of.get(key)
        if s is None:
            unmatched += 1
            continue
        m = per_min.setdefault(started[:16], {"start": [], "done": [], "checks": {}, "outcomes": {}})
        st = parse_ts(started)
        m["start"].append((st - s[0]) * 1000)
        m["done"].append((st + dur / 1000 - s[0]) * 1000)
        m["checks"][check] = m["checks"].get(check, 0) + 1
        m["outcomes"][outcome] = m["outcomes"].get(outcome, 0) + 1
    out["runs_unmatched"] = unmatched
    all_claim, all_start, all_done = [], [], []
    for b in boundaries:
        fire = fmt_ts(b)
        c = claim.get(fire, [])
        m = per_min.get(fire[:16], {"start": [], "done": [], "checks": {}, "outcomes": {}})
        distinct_slots = len({k for (k, f, _) in slots if f == fire})
        dup_runs = sum(1 for v in m["checks"].values() if v > 1)
        out["minutes"].append(
            {
                "fire_at": fire,
                "slots": len(c),
                "slots_distinct_checks": distinct_slots,
                "runs": len(m["start"]),
                "runs_distinct_checks": len(m["checks"]),
                "runs_duplicated_checks": dup_runs,
                "outcomes": m["outcomes"],
                "claim_ms": stats(c),
                "start_ms": stats(m["start"]),
                "done_ms": stats(m["done"]),
                "last_done_s": (max(m["done"]) / 1000) if m["done"] else None,
            }
        )
        all_claim += c
        all_start += m["start"]
        all_done += m["done"]
    out["claim_ms"] = stats(all_claim)
    out["start_ms"] = stats(all_start)
    out["done_ms"] = stats(all_done)
    out["incidents"] = dict(db.execute("SELECT state, COUNT(*) FROM incidents GROUP BY state").fetchall())
    out["outbox"] = db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
    db.close()
    return out


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def main():
    binary, config, state_db, label, out_json = sys.argv[1:6]
    port = int(os.environ["PORT"])
    env = dict(os.environ)
    env.setdefault("RUST_LOG", "warn")
    errlog = open(out_json.replace(".json", ".log"), "w")
    t_launch = time.time()
    proc = subprocess.Popen(
        [binary, "--config", config, "daemon"],
        stdout=errlog,
        stderr=errlog,
        env=env,
    )
    sampler = Sampler(proc.pid)
    sampler.start()
    perf = None
    if os.environ.get("PERF_RECORD"):
        opts = os.environ["PERF_RECORD"]
        opts = ["-g", "-F", "499"] if opts == "1" else opts.split()
        perf = subprocess.Popen(
            ["perf", "record", *opts, "-p", str(proc.pid), "-o", out_json + ".perf.data"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ready = None
    while time.time() - t_launch < 120:
        if proc.poll() is not None:
            sys.exit(f"{label}: the daemon exited with {proc.returncode}; see {errlog.name}")
        try:
            if http_get(port, "/healthz", 1).strip() == "ok":
                ready = time.time()
                break
        except OSError:
            pass
        time.sleep(0.05)
    if ready is None:
        proc.kill()
        sys.exit(f"{label}: no /healthz within 120 s")
    status_ready = proc_status(proc.pid)
    b1 = math.ceil((ready + 3) / 60) * 60
    boundaries = [b1 + 60 * i for i in range(MINUTES)]
    end = boundaries[-1] + IDLE_TO + 1
    log(
        f"{label}: ready in {ready - t_launch:.2f} s (RSS {status_ready.get('VmRSS', 0) / 1024:.0f} MB); "
        f"slots at {', '.join(time.strftime('%H:%M', time.gmtime(b)) for b in boundaries)} UTC; "
        f"done in ~{end - time.time():.0f} s"
    )
    while time.time() < end:
        if proc.poll() is not None:
            sys.exit(f"{label}: the daemon exited early with {proc.returncode}; see {errlog.name}")
        time.sleep(min(1.0, max(0.0, end - time.time())))
    try:
        metrics = http_get(port, "/metrics", 10)
    except OSError as e:
        metrics = f"# error: {e}"
    with open(out_json.replace(".json", ".metrics.txt"), "w") as f:
        f.write(metrics)
    status_end = proc_status(proc.pid)
    if perf:
        perf.send_signal(signal.SIGINT)
        perf.wait(timeout=60)
    t_term = time.time()
    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = "killed after 30 s"
    t_exit = time.time()
    sampler.stop.set()
    sampler.join(timeout=2)
    errlog.close()

    minutes_cpu = []
    for i, b in enumerate(boundaries):
        edge = boundaries[i + 1] if i + 1 < len(boundaries) else b + IDLE_TO
        busy, foreign = sampler.cpu(b, edge)
        idle, idle_foreign = sampler.cpu(b + IDLE_FROM, b + IDLE_TO)
        burst, burst_foreign = sampler.cpu(b, b + 5)
        # Last 1-s bucket of the minute in which the daemon used more than 5% of a core.
        busy_until = None
        for s in range(int(edge - b)):
            if sampler.cpu(b + s, b + s + 1)[0] > 0.05:
                busy_until = s + 1
        minutes_cpu.append(
            {
                "window_s": edge - b,
                "cpu_s": busy,
                "foreign_cpu_s": foreign,
                "idle_window": [IDLE_FROM, IDLE_TO],
                "idle_cpu_pct": 100 * idle / (IDLE_TO - IDLE_FROM),
                "idle_foreign_pct_of_machine": 100 * idle_foreign / (IDLE_TO - IDLE_FROM) / NCPU,
                "busy_until_s": busy_until,
                "burst_cpu_pct": 100 * burst / 5,
                "burst_foreign_pct": 100 * burst_foreign / 5,
                "rss_max_mb": (sampler.rss_max(b, edge) or 0) / 1024,
            }
        )
    before_idle, before_foreign = sampler.cpu(ready + 0.5, boundaries[0] - 0.5)
    result = {
        "label": label,
        "ncpu": NCPU,
        "startup_s": ready - t_launch,
        "rss_ready_mb": status_ready.get("VmRSS", 0) / 1024,
        "vm_hwm_mb": status_end.get("VmHWM", 0) / 1024,
        "vm_rss_end_mb": status_end.get("VmRSS", 0) / 1024,
        "threads": status_end.get("Threads"),
        "before_first_slot_cpu_pct": 100 * before_idle / max(1e-9, boundaries[0] - ready - 1),
        "minutes_cpu": minutes_cpu,
        "stop_s": t_exit - t_term,
        "exit_code": rc,
        "boundaries": [fmt_ts(b) for b in boundaries],
        "metrics_lag_histogram": lag_histogram(metrics),
        "rss_series": [(round(t - t_launch, 2), r) for (t, _, _, r) in sampler.samples[:: max(1, int(1 / SAMPLE))]],
        "cpu_series": [(round(t - t_launch, 2), round(c, 2)) for (t, c, _, _) in sampler.samples[:: max(1, int(1 / SAMPLE))]],
    }
    result.update(analyse(state_db, boundaries))
    with open(out_json, "w") as f:
        json.dump(result, f, indent=1)
    log(f"{label}: stopped in {result['stop_s']:.1f} s (exit {rc}); results in {out_json}")


if __name__ == "__main__":
    main()
