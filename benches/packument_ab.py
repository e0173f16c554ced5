#!/usr/bin/env python3
"""Packument read rates of two registry binaries on the same data, alternating.

    python3 benches/packument_ab.py OLD_BINARY NEW_BINARY [PACKAGES]

Seeds a data folder with OLD (so that NEW, which migrates older schemas forward, reads it
too), then runs wrk against a fresh copy of it under each binary in turn, three rounds,
for the full and the abbreviated packument, and prints the median rates and NEW ÷ OLD.
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

ROUNDS = 3
KINDS = ("packument", "abbreviated")


def start(binary, data, work):
    port, log = d.free_port(), os.path.join(work, "server.log")
    process = subprocess.Popen([binary, "--listen", f"127.0.0.1:{port}", "--data", data],
                               stdout=open(log, "w"), stderr=subprocess.STDOUT,
                               env={**os.environ, "RUST_LOG": "error"})
    d.wait_ready(process, port, log)
    return process, port


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
    for round_ in range(ROUNDS):
        for label, binary in (("old", old), ("new", new)):
            data = os.path.join(work, f"{label}-{round_}")
            shutil.copytree(seeded, data)
            process, port = start(binary, data, work)
            for kind in KINDS:
                rates[(label, kind)].append(d.rate(port, n, kind, work))
            process.terminate()
            process.wait()
    for kind in KINDS:
        was = statistics.median(rates[("old", kind)])
        now = statistics.median(rates[("new", kind)])
        print(f"{kind}: old {was:,.0f}/s, new {now:,.0f}/s, new ÷ old {now / was:.2f}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
