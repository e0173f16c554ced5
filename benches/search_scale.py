#!/usr/bin/env python3
"""Search latency of the example registry alone at 1,000 and 10,000 packages: the search
part of benches/data_layer.py, without Verdaccio and the other measures, for one or more
registry builds side by side (to compare a branch with main in one run).

    benches/search_scale.py [LABEL=PATH ...]

Each PATH is a registry binary (default: `main=$CARGO_TARGET_DIR/release/registry`).
Every build gets its own server (SQLite data folder, 127.0.0.1, a free port), seeded over
HTTP as data_layer.py seeds (the same packages, three versions each, 16 publishes at
once, the 200 `npm ci` packages first), the servers seeded at the same time. At each
scale, each server is searched in turn with data_layer.py's mix (words that hit every
package, a tenth, a hundredth, one full name, none; `size=20`, one request at a time,
TOKENGATE_DATA_LAYER_SEARCHES and _SEARCH_BUDGET as there). Prints a section for
BENCHMARKS.md on stdout (`benches/report.py --search-scale OUTPUT` puts it there): pooled
p50 and p95 and the p50 of each kind per scale, and the 10,000 ÷ 1,000 ratio of each;
progress on stderr."""
import concurrent.futures, pathlib, sys, time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import data_layer as dl  # noqa: E402

SCALES = (1_000, 10_000)


def builds(argv):
    if not argv:
        return [("main", dl.REGISTRY)]
    found = []
    for arg in argv:
        label, sep, path = arg.partition("=")
        if not sep or not label or not path:
            sys.exit(f"search_scale: expected LABEL=PATH, got {arg!r}")
        found.append((label, pathlib.Path(path).resolve()))
    return found


def main():
    chosen = builds(sys.argv[1:])
    for label, path in chosen:
        if not path.is_file():
            sys.exit(f"search_scale: {label}: no registry binary at {path}")
    servers = dl.Servers()
    results = {}  # (label, n) -> (p50, p95, {kind: (hits, p50)}, count)
    try:
        targets = {}
        for label, path in chosen:
            _, port = servers.start_registry(path, f"registry-{label}")
            targets[label] = (port, dl.add_user(dl.Client(port)))

        def seed_all(packages, versions=dl.VERSIONS):
            with concurrent.futures.ThreadPoolExecutor(len(targets)) as pool:
                done = {label: pool.submit(dl.seed, port, token, packages, versions)
                        for label, (port, token) in targets.items()}
                return {label: future.result() for label, future in done.items()}

        dl.say("publishing the npm ci packages")
        seed_all([dl.ci_package(i) for i in range(dl.CI_DEPENDENCIES)], (dl.CI_VERSION,))
        seeded = 0
        for n in SCALES:
            dl.say(f"seeding {seeded:,} to {n:,} packages")
            seconds = seed_all([dl.bench_package(i) for i in range(seeded, n)])
            dl.say("seeded in " + ", ".join(f"{label} {s:.0f} s" for label, s in seconds.items()))
            seeded = n
            for label, (port, _) in targets.items():
                results[(label, n)] = dl.search(port, n)
                dl.say(f"{label} at {n:,}: search p50 {results[(label, n)][0]:.2f} ms")
    finally:
        servers.close()
    print(section(report(chosen, results), sys.argv[1:]))


def report(chosen, results):
    small, big = SCALES
    kinds = list(results[(chosen[0][0], small)][2])
    rows = []
    for label, _ in chosen:
        for what, pick in [("pooled p50", lambda r: r[0]), ("pooled p95", lambda r: r[1])] + [
                (f"{kind} p50", lambda r, kind=kind: r[2][kind][1]) for kind in kinds]:
            a, b = pick(results[(label, small)]), pick(results[(label, big)])
            rows.append(f"| {label} | {what} | {a:.2f} | {b:.2f} | {b / a:.2f} |")
        hits = "; ".join(f"{kind}: {results[(label, big)][2][kind][0]}" for kind in kinds)
        rows.append(f"| {label} | `total` at {big:,} | {hits} | | |")
    return f"""| build | search (ms) | {small:,} packages | {big:,} packages | {big:,} ÷ {small:,} |
|---|---|---|---|---|
{chr(10).join(rows)}"""


HEADING = "## Search alone at 1,000 and 10,000 packages (`benches/search_scale.py`)"


def section(table, argv):
    """The BENCHMARKS.md section around `table`, naming the command that made it."""
    command = " ".join(["benches/search_scale.py", *argv])
    return f"""{HEADING}

From one run of `{command}` ({time.strftime("%Y-%m-%d", time.gmtime())}), on the machine
above (shared, noisy: read the ratios), with `CARGO_TARGET_DIR` set to the folder of the
builds named. Each build is a release build of the example registry with its own SQLite
data folder on 127.0.0.1, seeded as `benches/data_layer.py` seeds (the builds at the same
time): the 200 `npm ci` packages, then 1,000 packages of three versions each, searched,
then up to 10,000, searched again. Search is `benches/data_layer.py`'s: `GET
/-/v1/search?text=<word>&size=20`, one request at a time, over words that hit every
package, a tenth, a hundredth, one (a full name) and none; "pooled" is over all of them,
the others per kind. The builds are searched one after the other at each scale. The last
row of each build is the `total` it answered at 10,000 packages.

{table}
"""


if __name__ == "__main__":
    main()
