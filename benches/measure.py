#!/usr/bin/env python3
"""Interleaved, noise-aware timing with hyperfine.

usage: measure.py NAME OUT_DIR ROUNDS RUNS DEADLINE_EPOCH LABEL::CMD [LABEL::CMD ...]

Round 0 runs every command once as a warm-up (not kept). Rounds 1..ROUNDS run every
command (order rotated each round) as one `hyperfine -N -i --runs RUNS` call, so slow
drifts in background load hit all commands alike.

The bench machine is small (2 cores) and shared: a concurrent `cargo build`/`cargo test`
doubles the figures. So each sample records
  * wall times (hyperfine),
  * CPU used by PostgreSQL processes meanwhile (server work, from /proc: live backends
    plus what the postmaster reaped),
  * CPU used by our command tree (client work),
  * "foreign" CPU: everything else the machine did (from /proc/stat),
and is marked noisy when foreign CPU exceeded 5% of the machine or a cargo/rustc
process was seen. Before each sample we wait (up to QUIET_MAX s, default 10) for
cargo/rustc to finish; a sample during which cargo/rustc ran is retried (RETRIES times,
default 1) while DEADLINE_EPOCH is not reached. Steady foreign load is not retried: it
hits the commands of a round alike, which is what the per-round ratios rely on.
Writes OUT_DIR/NAME.json: {label: [sample, ...]}.
"""

import json
import os
import resource
import subprocess
import sys
import threading
import time

HZ = os.sysconf("SC_CLK_TCK")
NCPU = os.cpu_count() or 1
QUIET_MAX = float(os.environ.get("QUIET_MAX", "10"))
RETRIES = int(os.environ.get("RETRIES", "1"))
FOREIGN_LIMIT = 0.05
BUSY = ("cargo", "rustc", "cc1", "cc1plus", "ld", "clippy-driver")


def machine_busy():
    v = list(map(int, open("/proc/stat").readline().split()[1:9]))
    return (sum(v) - v[3] - v[4]) / HZ  # all but idle and iowait


def procs():
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                s = open(f"/proc/{p}/stat").read()
            except OSError:
                continue
            yield s[s.index("(") + 1 : s.rindex(")")], s[s.rindex(")") + 2 :].split() + [p]


def server_cpu():
    """CPU seconds of postgres processes, including reaped ones (the postmaster's cutime)."""
    pg = {p: f for p, (comm, f) in enumerate(procs()) if comm == "postgres"}
    pids = {f[-1] for f in pg.values()}
    total = 0
    for f in pg.values():
        total += int(f[11]) + int(f[12])
        if f[1] not in pids:  # the postmaster: its parent is not a postgres process
            total += int(f[13]) + int(f[14])
    return total / HZ


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def busy_now():
    return any(comm in BUSY for comm, _ in procs())


def wait_quiet(deadline):
    t = time.time()
    while busy_now() and time.time() - t < QUIET_MAX and time.time() < deadline:
        time.sleep(0.5)


def sample(label, cmd, runs, out_dir):
    seen = {"busy": False}
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            if busy_now():
                seen["busy"] = True
            stop.wait(0.25)

    tmp = os.path.join(out_dir, ".sample.json")
    m0, s0, c0, t0 = machine_busy(), server_cpu(), children_cpu(), time.time()
    th = threading.Thread(target=watch, daemon=True)
    th.start()
    subprocess.run(["hyperfine", "-N", "-i", "--style", "none", "--runs", str(runs), "--export-json", tmp, "-n", label, cmd],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    stop.set()
    th.join()
    time.sleep(0.2)  # let the postmaster reap parallel workers and backends
    m1, s1, c1, t1 = machine_busy(), server_cpu(), children_cpu(), time.time()
    res = json.load(open(tmp))["results"][0]
    server, client = s1 - s0, c1 - c0
    foreign = max(0.0, (m1 - m0) - server - client)
    frac = foreign / ((t1 - t0) * NCPU)
    return {
        "times": res["times"],
        "exit_codes": res.get("exit_codes", []),
        "server_cpu_s": server / runs,
        "client_cpu_s": client / runs,
        "foreign_frac": frac,
        "noisy": seen["busy"] or frac > FOREIGN_LIMIT,
        "busy_seen": seen["busy"],
    }


def main(argv):
    if len(argv) < 7:
        sys.exit(__doc__)
    name, out_dir, rounds, runs, deadline = argv[1], argv[2], int(argv[3]), int(argv[4]), float(argv[5])
    cmds = [c.split("::", 1) for c in argv[6:]]
    result = {label: [] for label, _ in cmds}
    for r in range(rounds + 1):
        order = cmds[r % len(cmds) :] + cmds[: r % len(cmds)]
        for label, cmd in order:
            for attempt in range(RETRIES + 1):
                wait_quiet(deadline)
                s = sample(label, cmd, 1 if r == 0 else runs, out_dir)
                s.update(round=r, attempt=attempt)
                if r == 0 or not s["busy_seen"] or time.time() > deadline:
                    break
                print(f"  {name} round {r} {label}: noisy sample (foreign CPU {s['foreign_frac']:.0%}, cargo/rustc seen: {s['busy_seen']}), retrying", file=sys.stderr)
            if r > 0:
                result[label].append(s)
        print(f"  {name} round {r}/{rounds} done", file=sys.stderr)
    json.dump(result, open(os.path.join(out_dir, f"{name}.json"), "w"), indent=1)


if __name__ == "__main__":
    main(sys.argv)
