#!/usr/bin/env python3
"""Writes BENCHMARKS.md from one run of the three bench targets.

Usage: benches/run-all (which runs the benches and then this script). Reads criterion's
estimates under target/criterion/hot_path/ and the saved output of the constant_time and
http_load targets, so that no number in BENCHMARKS.md is typed by hand.
"""
import json
import pathlib
import platform
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
CRITERION = ROOT / "target" / "criterion"


def medians(group):
    """Median of each bench in a criterion group, in nanoseconds, by the bench's title."""
    out = {}
    for path in sorted((CRITERION / group).iterdir()):
        estimates = path / "new" / "estimates.json"
        benchmark = path / "new" / "benchmark.json"
        if estimates.is_file():
            title = json.loads(benchmark.read_text())["function_id"]
            out[title] = json.loads(estimates.read_text())["median"]["point_estimate"]
    return out


def fmt_ns(ns):
    if ns >= 1e6:
        return f"{ns / 1e6:.2f} ms"
    if ns >= 1e3:
        return f"{ns / 1e3:.2f} µs"
    return f"{ns:.1f} ns"


def machine():
    model = "unknown CPU"
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
    rustc = subprocess.run(["rustc", "-V"], capture_output=True, text=True).stdout.strip()
    return f"{model}, {cores} cores, {platform.system()} {platform.release()}, {rustc}"


def instruction_section(path):
    counts = {}
    for line in pathlib.Path(path).read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "instructions":
            counts[parts[1]] = int(parts[2])
    bare, floor = counts["bare"], counts["floor"]
    rows = "\n".join(
        f"| `{name}` | {count:,} | {count / bare:.2f} | {count / floor:.2f} |" for name, count in counts.items()
    )
    return f"""## Instructions per request (callgrind, `benches/instructions.sh`)

Counted, not timed, so these ratios do not move with the machine's load:
(instructions with 20,000 requests − instructions with none) ÷ 20,000. They miss what
instruction counts cannot see (cache misses, atomic contention, which is most of moka's
cost), and under valgrind sha2 takes its portable path instead of the CPU's SHA
extensions, so SHA-256 weighs more here than in the timings above.

| variant | instructions | ÷ bare | ÷ floor |
|---|---|---|---|
{rows}

By instructions, the hot token's added cost is {(counts["layer_hot"] - bare) / floor:.2f}× the floor
(target ≤ 2) and a malformed token costs {counts["malformed"] / bare:.2f}× the bare service
(target ≤ 1.2).
"""


def main(constant_time_out, http_load_out, instructions_out=None):
    m = medians("hot_path")
    bare, floor = m["1_bare_service"], m["4_floor"]
    rows = [f"| `{b}` | {fmt_ns(t)} | {t / bare:.2f} | {t / floor:.2f} |" for b, t in m.items()]
    steps = medians("steps")
    step_rows = [f"| `{b}` | {fmt_ns(t)} | {t / floor:.2f} |" for b, t in steps.items()]

    def added(b):
        return (m[b] - bare) / floor

    targets = [
        ("Cache hit, hot token: layer's added cost (2 − 1) ÷ floor (4)", added("2_layer_hot_token"), "≤ 2"),
        ("Cache hit, 100,000 tokens: added cost (3 − 1) ÷ floor (4)", added("3_layer_random_of_100k"), "≤ 4"),
        ("Malformed token refused: (7a) ÷ bare service (1)", m["7a_malformed_token"] / bare, "≤ 1.2"),
        ("Missing header refused: (7b) ÷ bare service (1)", m["7b_missing_header"] / bare, "(no target)"),
        ("Layer (2) ÷ tower-http's fixed-token bearer check (5)",
         m["2_layer_hot_token"] / m["5_tower_http_bearer"], "(context)"),
        ("Two cores, hot token: (9a) ÷ one core (2)", m["9a_two_cores_hot_token"] / m["2_layer_hot_token"], "(context)"),
    ]
    target_rows = [f"| {name} | {value:.2f} | {goal} |" for name, value, goal in targets]

    used_hot = steps["moka_sync_tinylfu_bounded (used)_hot"]
    used_random = steps["moka_sync_tinylfu_bounded (used)_random"]
    bounded_random = {k: v for k, v in steps.items() if k.startswith("moka_") and k.endswith("_random") and "unbounded" not in k}
    best_name, best_random = min(bounded_random.items(), key=lambda kv: kv[1])
    must_hot = steps["a_header_parse_and_sha256"] + used_hot
    added_hot = m["2_layer_hot_token"] - bare
    added_random = m["3_layer_random_of_100k"] - bare
    if added_hot / floor > 2:
        hot = f"""- **Hot token (≤ 2× the floor).** Two steps no implementation can skip, the header parse
  with SHA-256 (`a`, {fmt_ns(steps["a_header_parse_and_sha256"])}) and one moka hit
  ({fmt_ns(used_hot)}), already add up to {must_hot / floor:.2f}× the floor, which has a
  `HashMap` probe where the layer has moka. That leaves {fmt_ns(max(0.0, 2 * floor - must_hot))}
  of the 2× budget for everything else (the clock read, putting `Authenticated` into the
  request, the status, address and access checks, cloning the inner service); the
  measured added cost is {fmt_ns(added_hot)}, {added_hot / floor:.2f}× the floor. Counted in
  instructions (below), which the machine's load does not move, it is within 2×.
"""
    else:
        hot = f"""- **Hot token (≤ 2× the floor)** held in this run ({added_hot / floor:.2f}×); on this shared
  machine other runs have measured it above 2×, while the instruction count (below) stays
  within 2×.
"""
    analysis = f"""### Why the missed targets are missed

{hot}- **100,000 tokens (≤ 4× the floor).** With the entries spread over memory, one moka hit
  alone costs {fmt_ns(used_random)} ({used_random / floor:.2f}× the floor) in the
  configuration used; the cheapest bounded configuration tried is `{best_name}` at
  {fmt_ns(best_random)} ({best_random / floor:.2f}×), and even an unbounded moka cache
  ({fmt_ns(steps["moka_sync_unbounded_random"])}) is far above a `HashMap`
  ({fmt_ns(steps["std_hashmap_random"])}). moka stays the cache, so this target cannot
  hold on this machine: the layer's added cost is {fmt_ns(added_random)},
  {added_random / floor:.2f}× the floor, of which moka's hit is
  {used_random / added_random:.0%}. What was tried: the future cache (replaced by the sync
  cache, whose hits need no `.await`, so the layer answers a hit inside `call` without
  boxing a future), moka's own TTL (replaced by a freshness check on the time the request
  already reads), TinyLFU against LRU, bounded against unbounded; the key is an 11-byte
  id hashed with moka's default keyed hasher (a weaker hasher would let anyone who can
  make ids collide degrade the cache).
- **Malformed token (≤ 1.2× the bare service).** The parse that refuses it is cheap
  (`d`, {fmt_ns(steps["d_malformed_token_parse_only"])}), but a refusal is a real
  response: status, `WWW-Authenticate`, a JSON content type and body. Building that alone
  (`e`, {fmt_ns(steps["e_refusal_response_alone"])}) is
  {steps["e_refusal_response_alone"] / bare:.2f}× the bare service's whole request, whose
  handler returns an empty response with no headers. The refusal costs
  {m["7a_malformed_token"] / bare:.2f}× the bare service; nothing is hashed and the store
  is never asked (the tests check both).
"""

    ct = [line.strip() for line in pathlib.Path(constant_time_out).read_text().splitlines() if "max t" in line]
    ts = [abs(float(re.search(r"max t = ([+-][0-9.]+)", line).group(1))) for line in ct]
    load = [line.strip() for line in pathlib.Path(http_load_out).read_text().splitlines() if line.startswith("http_load")]

    out = f"""# Benchmarks

Generated by `benches/run-all` from one run on one machine; numbers are never typed by
hand. These machines are shared and noisy: read the **ratios**, which compare variants
measured minutes apart in the same run, not the absolute times.

**Machine:** {machine()}

**Commands:** `benches/run-all` runs, in order,
`cargo bench --bench hot_path`, `cargo bench --bench constant_time`,
`cargo bench --bench http_load` and `benches/instructions.sh` (valgrind), then
`benches/report.py`.

## Hot path (criterion, `benches/hot_path.rs`)

Each variant handles the same request: an `Authorization` header and the peer address,
through `oneshot` on a trivial `service_fn`. Medians; "÷ bare" and "÷ floor" are ratios to
variants 1 and 4.

| variant | median | ÷ bare | ÷ floor |
|---|---|---|---|
{chr(10).join(rows)}

What they are:
1. the bare inner service, no layer;
2. the layer, cache hit, always the same token;
3. the layer, cache hit, a token drawn from 100,000 live ones (all cached);
4. the floor: parse the header, check the token's format, SHA-256, one `HashMap` lookup and
   the 32-byte constant-time compare, with no service around it;
5. tower-http's `ValidateRequestHeaderLayer::bearer` (one fixed token, plain comparison);
6. a cache miss served by the memory store on every request (6a), and 1,000 concurrent
   first requests for one token on a cold cache (6b, time for all 1,000);
7. refusals that never hash or reach the store: a bad checksum (7a), no header (7b);
8. the digest comparison alone: equal, first byte differs, last byte differs;
9. variants 2 and 3 on a two-worker runtime with two tasks sharing the requests (time per
   request, so lower than 2 and 3 means the cores were used together).

## Where a cache hit's time goes (`steps` group)

Per-step costs, and moka alone with 100,000 entries keyed by `TokenId` in the
configurations it offers, against a plain `HashMap`. "÷ floor" is the ratio to variant 4.

| step | median | ÷ floor |
|---|---|---|
{chr(10).join(step_rows)}

## Targets

| what | measured | target |
|---|---|---|
{chr(10).join(target_rows)}

{analysis}
## Constant time (dudect, `benches/constant_time.rs`)

Welch's t-test between two classes of inputs; |t| under 5 means no timing difference was
detected. Largest |t| this run: **{max(ts):.2f}**.

```
{chr(10).join(ct)}
```

{instruction_section(instructions_out) if instructions_out else ""}
## HTTP under load (`benches/http_load.rs`)

The same hyper server with and without the layer, one valid token, 32 keep-alive
connections from a client in the same process (one runtime thread for the servers, one
for the client), alternating runs. Loopback only; stops by itself.

```
{chr(10).join(load)}
```
"""
    (ROOT / "BENCHMARKS.md").write_text(out)
    print(out)


if __name__ == "__main__":
    main(*sys.argv[1:4])
