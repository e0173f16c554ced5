#!/usr/bin/env python3
"""Read rates of two registry binaries on the same data, alternating.

    python3 benches/packument_ab.py OLD_BINARY NEW_BINARY [PACKAGES]

Seeds a data folder with OLD (so that NEW, which migrates older schemas forward, reads it
too), then runs wrk against a fresh copy of it under each binary in turn, three rounds,
for the full and the abbreviated packument and for tarballs (anonymous, a random package
and version per request), and prints the median rates, the server's CPU time per request
(user and system, from /proc: what the ratio of rates shows on an idle machine, and
steadier than it on a shared one) and NEW ÷ OLD of each.
TOKENGATE_AB_ROUNDS (default 3) sets the rounds.
Reuses data_layer.py's seeding, wrk script and helpers; needs wrk.
"""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import data_layer as d  # noqa: E402

ROUNDS = int(os.environ.get("TOKENGATE_AB_ROUNDS", "3"))
KINDS = ("packument", "abbreviated", "tarball")


def start(binary, data, work):
    port, log = d.free_port(), os.path.join(work, "server.log")
    process = subprocess.Popen([binary, "--listen", f"127.0.0.1:{port}", "--data", data],
                               stdout=open(log, "w"), stderr=subprocess.STDOUT,
                               env={**os.environ, "RUST_LOG": "error"})
    d.wait_ready(process, port, log)
    return process, port


def cpu_seconds(pid):
    """User and system CPU time of process `pid` so far (Linux)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(process, port, n, kind, work):
    """(requests/s, server CPU µs per request) of one wrk run."""
    before = cpu_seconds(process.pid)
    requests, seconds = d.wrk_run(port, n, kind, work)
    return requests / seconds, (cpu_seconds(process.pid) - before) * 1e6 / requests


def main():
    old, new = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    work = tempfile.mkdtemp(prefix="packument-ab-")
    seeded = os.path.join(work, "seeded")
    process, port = start(old, seeded, work)
    token = d.add_user(d.Client(port))
    d.seed(port, token, [d.bench_package(i) for i in range(n)])
    process.terminate()
    process.wait()
    rates = {(label, kind): [] for label in ("old", "new") for kind in KINDS}
    cpu = {(label, kind): [] for label in ("old", "new") for kind in KINDS}
    for round_ in range(ROUNDS):
        for label, binary in (("old", old), ("new", new)):
            data = os.path.join(work, f"{label}-{round_}")
            shutil.copytree(seeded, data)
            process, port = start(binary, data, work)
            for kind in KINDS:
                rate, cost = measure(process, port, n, kind, work)
                rates[(label, kind)].append(rate)
                cpu[(label, kind)].append(cost)
            process.terminate()
            process.wait()
    for kind in KINDS:
        was = statistics.median(rates[("old", kind)])
        now = statistics.median(rates[("new", kind)])
        cpu_was = statistics.median(cpu[("old", kind)])
        cpu_now = statistics.median(cpu[("new", kind)])
        print(f"{kind}: old {was:,.0f}/s, new {now:,.0f}/s, new ÷ old {now / was:.2f}; "
              f"server CPU per request old {cpu_was:.1f} µs, new {cpu_now:.1f} µs, "
              f"new ÷ old {cpu_now / cpu_was:.2f}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
