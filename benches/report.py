#!/usr/bin/env python3
"""Writes BENCHMARKS.md from one run of the bench targets.

Usage: benches/run-all (which runs the benches and then this script); or
`benches/report.py --pages STORES_OUTPUT` to replace only the token list pages section,
from a run of that part alone (TOKENGATE_STORE_PARTS=pages); or
`benches/report.py --data-layer DATA_LAYER_OUTPUT` to replace (or add) only the section
of benches/data_layer.py, from a run of it alone; or
`benches/report.py --password-memory PASSWORD_MEMORY_OUTPUT` likewise for
benches/password_memory.py, or `--search-scale SEARCH_SCALE_OUTPUT` for
benches/search_scale.py (run alone, not by run-all). Reads criterion's
estimates under $CARGO_TARGET_DIR/criterion/ (default target/) and the saved output of the
constant_time, http_load, instructions and stores targets and of benches/peers.sh,
benches/abuse.py and benches/password_memory.py, so that no number in BENCHMARKS.md is
typed by hand.
"""
import datetime
import json
import os
import pathlib
import platform
import re
import statistics
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
CRITERION = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "criterion"


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


def instruction_counts(path):
    """Instructions per request by variant, from benches/instructions.sh's output."""
    counts = {}
    for line in pathlib.Path(path).read_text().splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "instructions":
            counts[parts[1]] = int(parts[2])
    return counts


def instruction_section(counts):
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
(target ≤ 2); a malformed token costs {counts["malformed"] / counts["bare_refusal"]:.2f}× a bare
service answering a refusal's shape (`bare_refusal`; target ≤ 1.2) and a request with no
token {counts["missing"] / counts["bare_refusal"]:.2f}×.
"""


def why_missed(m, steps, hot_ratio, random_ratio, malformed_ratio, counts):
    """Each target's outcome, and for a missed one the steps that account for it."""
    bare, floor = m["1_bare_service"], m["4_floor"]
    floor_random = m["4b_floor_random_of_100k"]
    parse = steps["a_header_parse_and_sha256"]
    used_hot = steps["moka_sync_tinylfu_bounded (used)_hot"]
    used_random = steps["moka_sync_tinylfu_bounded (used)_random"]
    map_random = steps["std_hashmap_records_random"]
    moka_random = {k: v for k, v in steps.items() if k.startswith("moka_") and k.endswith("_random")}
    best_name, best_random = min(moka_random.items(), key=lambda kv: kv[1])
    added_hot = m["2_layer_hot_token"] - bare
    added_random = m["3_layer_random_of_100k"] - bare
    out = []
    if hot_ratio <= 2:
        out.append(f"""- **Hot token (≤ 2× the hot floor): held** in this run ({hot_ratio:.2f}×).""")
    else:
        must = parse + used_hot
        out.append(f"""- **Hot token (≤ 2× the hot floor): missed**, {hot_ratio:.2f}×. Two steps no
  implementation can skip, the header parse with SHA-256 (`a`, {fmt_ns(parse)}) and one moka
  hit ({fmt_ns(used_hot)}), add up to {must / floor:.2f}× the floor, whose lookup is a
  `HashMap` probe; that leaves {fmt_ns(max(0.0, 2 * floor - must))} of the 2× budget for the
  clock read (`b`, {fmt_ns(steps["b_system_clock_now"])}), putting `Authenticated` into the
  request (`c` − `c0`, {fmt_ns(steps["c_request_with_authenticated_extension"] - steps["c0_request_alone"])}),
  the status, address and grant checks and cloning the inner service. The measured added
  cost is {fmt_ns(added_hot)}.""")
    if random_ratio <= 3:
        out.append(f"""- **100,000 tokens (≤ 3× the random floor): held** in this run ({random_ratio:.2f}×).""")
    else:
        out.append(f"""- **100,000 tokens (≤ 3× the random floor): missed**, {random_ratio:.2f}×. The random
  floor ({fmt_ns(floor_random)}) pays its own DRAM misses: its lookup among real-size records
  alone is {fmt_ns(map_random)} (`std_hashmap_records_random`). One moka hit on a random key
  costs {fmt_ns(used_random)} in the configuration used ({used_random / map_random:.1f}× the
  `HashMap` lookup); the cheapest moka configuration tried is `{best_name}` at
  {fmt_ns(best_random)}. moka stays the cache, and its hit touches more memory than a
  `HashMap` probe (its own entry, the access-order and frequency bookkeeping, the read
  buffer), so that is where most of the gap is: the layer's added cost is
  {fmt_ns(added_random)}, of which moka's hit alone is {used_random / added_random:.0%}, the
  header parse and SHA-256 {parse / added_random:.0%}.""")
    if malformed_ratio <= 1.2:
        out.append(f"""- **Malformed token (≤ 1.2× a bare service answering a refusal's shape): held**
  ({malformed_ratio:.2f}×).""")
    else:
        out.append(f"""- **Malformed token (≤ 1.2× a bare service answering a refusal's shape): missed**,
  {malformed_ratio:.2f}×. The parse that refuses it costs `d` {fmt_ns(steps["d_malformed_token_parse_only"])}
  and building the refusal `e` {fmt_ns(steps["e_refusal_response_alone"])}, against the bare
  refusal's {fmt_ns(m["1b_bare_refusal_shape"])} in all.{malformed_by_instructions(counts)}""")
    noise = parse / floor
    out.append(f"""- **Noise check.** Step `a` is a part of the floor's work, so it should cost less than
  the floor; this run measured it at {noise:.2f}× the floor.{" Above 1, the machine's load changed between those measurements: ratios that combine steps with variants are unreliable in this run." if noise > 1 else ""}""")
    return "### What held and what did not, and why\n\n" + "\n".join(out) + "\n"


def malformed_by_instructions(counts):
    """What instruction counts say about a malformed token's refusal, when they were taken."""
    if not counts:
        return ""
    gate = counts["missing"] - counts["bare_refusal"]
    token = counts["malformed"] - counts["missing"]
    return f""" Counted instead of timed (the instructions table below): a request
  with no token, refused by the same path without reading any token, costs
  {counts["missing"] / counts["bare_refusal"]:.2f}× the bare refusal ({gate:+,} instructions: the gate's own refusal
  path, its summary count and response future); a malformed token costs {token:,} more,
  most of it reading `Authorization` and checking the token's length, alphabet and CRC32
  checksum (`Credentials::from_headers` and `ParsedToken::parse` in a callgrind profile) —
  work the bare service, which reads nothing, does not do. The target leaves all of the
  layer's work a fifth of the answer's cost; the token's reading alone costs about
  {token / counts["bare_refusal"]:.0%} of it."""


def limiter_section(m, hot_path_out):
    """The failure limiter's cost on the hot path and its effect on a flood."""
    floods = {}
    for line in pathlib.Path(hot_path_out).read_text().splitlines():
        if line.startswith("flood "):
            parts = line.split()
            fields = dict(part.split("=", 1) for part in parts[2:])
            floods[parts[1]] = fields
    rows = []
    for name, label, variant in [("no_limit", "without a limiter", "10b_made_up_tokens_no_limit"),
                                 ("failure_limit", "with `FailureLimit` (50/min)", "10c_made_up_tokens_failure_limit")]:
        flood = floods[name]
        pairs = [pair.split(":") for pair in flood["statuses"].split(",")]
        statuses = ", ".join(f"{int(n):,} × {status}" for status, n in pairs)
        rows.append(f"| {label} | {int(flood['requests']):,} | {int(flood['store_lookups']):,} | {statuses} | "
                    f"{fmt_ns(m[variant])} |")
    hot, limited = m["2_layer_hot_token"], m["10a_layer_hot_token_failure_limit"]
    return f"""## The failure limiter (`benches/hot_path.rs`, variant 10)

Cached tokens never consult the limiter, so its cost on the hot path should be nothing:
the hot token through a layer with a limiter (10a) took {fmt_ns(limited)} against
{fmt_ns(hot)} without (2), a ratio of **{limited / hot:.2f}**.

A flood of 10,000 well-formed tokens nobody issued (right prefix, length and checksum, so
each passes every check before the store), from one address, on a fresh manager each:
the store lookups are counted, the time per request is criterion's median with the
memory store (the cheapest store there is; a SQLite or PostgreSQL lookup costs what the
store tables below show, and the limiter saves every one past the budget).

| flood | requests | store lookups | answers | time per request |
|---|---|---|---|---|
{chr(10).join(rows)}

With the memory store, whose lookup is one `HashMap` probe, the limiter's 429 costs
{m["10c_made_up_tokens_failure_limit"] / m["10b_made_up_tokens_no_limit"]:.2f}× the store's own refusal: what it saves is the store lookups (all but the
budget's 50), the expensive part with a real store.

Limits are per node: behind a load balancer, each node allows its own budget.
"""


PAGES_HEADING = "## Token list pages (`benches/stores.rs`)"


def pages_section(path, dated=False):
    """The token list page times from benches/stores.rs, and the 2x target."""
    runs, notes = [], []
    for line in pathlib.Path(path).read_text().splitlines():
        parts = line.split()
        if len(parts) == 6 and parts[0] == "pages":
            runs.append((parts[1], int(parts[2]), *map(float, parts[3:])))
        elif line.startswith("pages:"):
            notes.append(line)
    if not runs:
        return ""
    rows, targets = [], []
    for store in sorted({run[0] for run in runs}):
        mine = sorted(run for run in runs if run[0] == store)
        _, smallest, first0, cursor0, numbered0 = mine[0]
        for _, listed, first, cursor, numbered in mine:
            rows.append(f"| {store} | {listed:,} | {first:,.1f} | {first / first0:.2f} | {cursor:,.1f} | "
                        f"{cursor / cursor0:.2f} | {numbered:,.1f} | {numbered / numbered0:.2f} |")
        _, largest, first1, cursor1, _ = mine[-1]
        for what, ratio in (("first page", first1 / first0), ("page from a cursor", cursor1 / cursor0)):
            verdict = "held" if ratio <= 2 else "missed"
            targets.append(f"| {store}, {what}: {largest:,} ÷ {smallest:,} tokens | {ratio:.2f} | ≤ 2 ({verdict}) |")
    when = (f"\nMeasured on {datetime.date.today().isoformat()} by `TOKENGATE_STORE_PARTS=pages cargo bench "
            "--bench stores --features sqlite,postgres` and `benches/report.py --pages`, apart from the "
            "run the rest of this file comes from.\n") if dated else ""
    return f"""{PAGES_HEADING}
{when}
`GET /-/npm/v1/tokens` as the registry reads it: one owner's listed tokens (a millisecond
apart, with a tenth as many of their sessions and of another owner's tokens in the same
table), pages of 100 newest first, the median time of `TokenStore::list` over about a
second each. "First": the newest 100; "cursor": the 100 after a cursor halfway down, as
`urls.next` hands it out (`Page::after`); "numbered": the same place by number
(`Page::number`, an offset), for contrast: before cursors, every page counted the owner's
tokens and skipped to its offset like this. "÷ smallest" is the ratio to the smallest
listing of the same store; the target is a page within 2× from 10,000 to 100,000 tokens.

| store | listed tokens | µs first page | ÷ smallest | µs cursor page | ÷ smallest | µs numbered page | ÷ smallest |
|---|---|---|---|---|---|---|---|
{chr(10).join(rows)}

| what | measured | target |
|---|---|---|
{chr(10).join(targets)}

```
{chr(10).join(notes)}
```
"""


def splice_pages(path):
    """Replaces (or adds, before the comparison with Verdaccio) the token list pages section
    of BENCHMARKS.md with one from `path`, for a run of that part alone."""
    doc = (ROOT / "BENCHMARKS.md").read_text()
    section = pages_section(path, dated=True)
    start = doc.find(PAGES_HEADING)
    if start >= 0:
        end = doc.find("\n## ", start + 1)
        doc = doc[:start] + section + doc[end:]
    else:
        at = doc.find("## Against Verdaccio")
        doc = doc[:at] + section + "\n" + doc[at:]
    (ROOT / "BENCHMARKS.md").write_text(doc)


DATA_LAYER_HEADING = "## The data layer against Verdaccio"
PASSWORD_MEMORY_HEADING = "## Password checks and memory"
SEARCH_SCALE_HEADING = "## Search alone at 1,000 and 10,000 packages"


def splice_section(path, heading, before=None, note=""):
    """Replaces the section of BENCHMARKS.md that starts with `heading` with a script's
    output in `path` (its first line is that heading), for a run of that script alone; a
    missing section goes before the heading `before` (or at the end). `note` goes under
    the heading."""
    doc = (ROOT / "BENCHMARKS.md").read_text()
    section = pathlib.Path(path).read_text().strip("\n") + "\n"
    if note:
        title, _, rest = section.partition("\n")
        section = f"{title}\n\n{note.strip()}\n\n{rest.lstrip()}"
    start = doc.find(heading)
    if start >= 0:
        end = doc.find("\n## ", start + 1)
        doc = doc[:start] + section + (doc[end:] if end >= 0 else "")
    else:
        at = doc.find(before) if before else -1
        doc = doc[:at] + section + "\n" + doc[at:] if at >= 0 else doc.rstrip("\n") + "\n\n" + section
    (ROOT / "BENCHMARKS.md").write_text(doc)


def stores_section(path):
    """The miss-path throughput table and the scale table from benches/stores.rs."""
    runs, scale, notes = {}, [], []
    for line in pathlib.Path(path).read_text().splitlines():
        parts = line.split()
        if len(parts) == 5 and parts[0] == "stores":
            runs[(parts[1], parts[2], parts[3])] = float(parts[4])
        elif len(parts) == 6 and parts[0] == "scale":
            scale.append(parts[1:])
        elif line.startswith(("stores:", "scale:")):
            notes.append(line)
    names = sorted({k[0] for k in runs})
    rows = []
    for name in names:
        for load in ("real", "made_up"):
            one, two = runs.get((name, load, "1")), runs.get((name, load, "2"))
            if one is None or two is None:
                continue
            base = runs.get(("sqlite_1_readers", load, "1"))
            rows.append(f"| {name} | {load.replace('_', '-')} | {one:,.0f} | {two:,.0f} | "
                        f"{one / base:.2f} | {two / base:.2f} |")
    scale_rows = []
    first = None
    for size, rss, per, cached, store in scale:
        first = first or (float(cached), float(store))
        scale_rows.append(f"| {int(size):,} | {float(rss):.1f} | {int(per):,} | {float(cached):.2f} | "
                          f"{float(cached) / first[0]:.2f} | {float(store):.2f} | {float(store) / first[1]:.2f} |")
    pages = pages_section(path)
    pages = f"\n{pages}\n" if pages else ""
    return f"""## Store lookups on the miss path (`benches/stores.rs`)

Every request's lookup reaches the store (cache TTL zero, unknown ids not remembered), 64
concurrent tasks, through `Tokens::authenticate`. "real": tokens drawn from 10,000 live
ones; "made-up": well-formed tokens the store does not know (a flood). SQLite with one read
connection (what one connection behind a mutex allowed) and with the pool of four;
PostgreSQL on the machine's server with its default pool. Lookups per second, and the
ratio to SQLite with one reader on one worker. SQLite work runs on tokio's blocking pool,
so even one worker can keep both cores busy; on this 2-core machine a second worker
competes with those threads.

| store | load | 1 worker | 2 workers | 1 worker ÷ base | 2 workers ÷ base |
|---|---|---|---|---|---|
{chr(10).join(rows)}

```
{chr(10).join(notes)}
```

## Scale: live tokens in SQLite

Each size in a fresh process: the tokens created, the cache (bounded at 100,000 records)
warmed to its bound, then 20,000 lookups of tokens drawn at random from all the live ones,
through the cache (a miss asks the store) and from the store alone. "bytes per cached
token" is the growth of resident memory while warming, divided by the tokens warmed (the
record, its slot and moka's entry; resident memory is coarse, so read it as an estimate).

| live tokens | resident MiB | bytes per cached token | µs per lookup (cache) | ÷ smallest | µs per store lookup | ÷ smallest |
|---|---|---|---|---|---|---|
{chr(10).join(scale_rows)}
{pages}"""


PEER_TARGETS = {
    "registry": ("tokengate example registry", "`npm token create`"),
    "verdaccio-jwt": ("Verdaccio, JWT mode", "`npm token create`"),
    "verdaccio-jwt-login": ("Verdaccio, JWT mode", "login (`npm adduser`)"),
    "verdaccio-legacy": ("Verdaccio, legacy mode", "`npm token create`"),
}


def fmt_us(us):
    """A latency from wrk (µs); legacy mode's run into seconds."""
    return f"{us / 1e6:.2f} s" if us >= 1e6 else fmt_ns(us * 1e3)


def peers_section(path):
    """The example registry against Verdaccio, from the lines benches/peers.sh printed."""
    versions, settings, seen, checks, runs = {}, {}, {}, {}, {}
    for line in pathlib.Path(path).read_text().splitlines():
        parts = line.split()
        if len(parts) < 2 or parts[0] != "peers":
            continue
        kind, rest = parts[1], parts[2:]
        if kind == "version":
            versions[rest[0]] = rest[1]
        elif kind == "setting":
            settings[rest[0]] = int(rest[1])
        elif kind == "seen":
            seen[(rest[0], rest[1])] = rest[2]
        elif kind == "check":
            checks[rest[0]] = rest[1:]
        elif kind == "run":
            _, target, requests, duration_us, p50, p99 = rest
            runs.setdefault(target, []).append(
                (int(requests) / (int(duration_us) / 1e6), int(p50), int(p99), int(requests)))
    stats = {
        target: {
            "rate": statistics.median(r[0] for r in rounds),
            "p50": statistics.median(r[1] for r in rounds),
            "p99": statistics.median(r[2] for r in rounds),
            "requests": statistics.median(r[3] for r in rounds),
        }
        for target, rounds in runs.items()
    }
    ours = stats["registry"]
    rows = []
    for target, (server, token) in PEER_TARGETS.items():
        if target not in stats:
            continue
        s = stats[target]
        ratio = "—" if target == "registry" else f"{ours['rate'] / s['rate']:,.0f}×"
        latency = "—" if target == "registry" else f"{s['p50'] / ours['p50']:,.0f}×"
        rows.append(f"| {server} | {token} | {s['rate']:,.1f} | {fmt_us(s['p50'])} | "
                    f"{fmt_us(s['p99'])} | {ratio} | {latency} |")
    per_round = [f"{target:<20} " + "  ".join(f"{r[0]:>10,.1f}" for r in rounds)
                 for target, rounds in runs.items()]
    wrong = ", ".join(f"{target} {checks[target][2]}" for target in PEER_TARGETS if target in checks)
    legacy = stats.get("verdaccio-legacy")
    legacy_note = ""
    if legacy:
        done, lost = legacy["requests"], settings["connections"]
        legacy_note = f"""
Legacy mode completes few requests per run (median {done:,.0f}); the requests in flight when
a run stops, at most {lost}, are not counted, so its true rate may be up to {lost / done:.0%} higher
than shown, and its ratio up to {lost / (done + lost):.0%} lower.
"""
    hash_prefix = seen.get(("verdaccio-legacy", "hash_prefix"), "?")
    cost = hash_prefix.strip("$").split("$")[-1] if hash_prefix.startswith("$2") else "?"
    secret = seen.get(("verdaccio-legacy", "secret_length"), "?")
    return f"""
## Against Verdaccio (`benches/peers.sh`)

Authenticated `GET /-/whoami` on the example registry (`examples/registry`, release build,
`--memory`) and on Verdaccio {versions['verdaccio']} (installed from the npm registry, node-fetch
pinned to {versions['node-fetch']} through `overrides`; Node {versions['node']}), both on 127.0.0.1, Verdaccio
with no uplinks and both logging errors only. On each server a user is made with the
CouchDB `PUT /-/user/org.couchdb.user:<name>` that `npm adduser` sends, then a token with
`npm token create` (npm {versions['npm']}) logged in as that user. Load: wrk {versions['wrk']} (Debian's
package), `-t{settings['threads']} -c{settings['connections']} --timeout {settings['timeout_s']}s`, {settings['seconds']} s per run ({settings['legacy_seconds']} s against legacy mode), the
targets alternating round by round, {settings['rounds']} rounds; medians over the rounds.

Before measuring, each token got 200 with the user's name, and the same token with one
character changed did not; the statuses of those refusals:
{wrong}. Verdaccio answers some refused tokens with an anonymous 200 `{{}}`, so a run fails
not only on any socket error or response that is not 2xx but also when a response's size is
not that of the authenticated answer.

This compares whole servers, tokengate's example registry (axum on tokio's multi-threaded
runtime) against Verdaccio (Express on one Node.js event loop), not the layer alone. wrk runs
on the same machine and takes its share of the cores; where its one thread is the limit, it
lowers the registry's figure, and so the ratios.

| server | token | requests/s | p50 | p99 | tokengate ÷ it (requests/s) | its p50 ÷ tokengate's |
|---|---|---|---|---|---|---|
{chr(10).join(rows)}
{legacy_note}
What each checks per request, as read in the installed sources:

- **tokengate**: the layer parses the bearer token offline (prefix, length, base62
  alphabet, CRC32 checksum), hashes it with SHA-256, looks its id up in the moka cache (the
  memory store behind it on a miss), compares the digests in constant time, then checks
  revocation and expiry, the address allow-list (none here) and the grants
  (`src/token.rs`, `src/tokens/mod.rs`, `src/tokens/check.rs`).
- **Verdaccio, JWT mode** (`security.api.jwt.sign` set): `Auth.apiJWTmiddleware`
  (`@verdaccio/auth`, `src/auth.ts`, `src/utils.ts`) verifies the JWT with `jsonwebtoken`
  (HMAC-SHA-256 with the storage's secret, and its expiry). A token from `npm token create`
  carries a token key, so `enforceGeneratedTokenMetadata` (`@verdaccio/middleware`,
  `src/middlewares/token-auth.ts`) also finds that key among the user's tokens in the token
  database (`@verdaccio/local-storage-legacy`, `src/token.ts`: lowdb, held in memory), which
  makes revocation take effect, and checks its CIDR list and read-only flag. A login's JWT
  has no key: the signature and expiry are all that is checked.
- **Verdaccio, legacy mode** (`security.api.legacy: true`, no JWT for the API): the token is
  the user's name and password (and the token key), AES-encrypted with the storage's secret
  ({secret} characters here, so aes-256-ctr: `@verdaccio/signature`, `src/signature.ts`). Each
  request decrypts it, then `Auth.authenticate` asks verdaccio-htpasswd (`src/htpasswd.ts`,
  `src/utils.ts`): `reload()` stats the htpasswd file and, as it compares the modification
  times as `Date` objects by identity (`this.lastTime === stats.mtime`, never equal), reads
  and parses the file again; then `verifyPassword` runs bcryptjs (bcrypt in JavaScript)
  against the stored hash (`{hash_prefix}`: bcrypt, cost {cost}), slow by design; then the same
  token-key lookup as JWT mode.

Requests/s per round:

```
{chr(10).join(per_round)}
```
"""


def main(constant_time_out, http_load_out, instructions_out=None, stores_out=None, peers_out=None,
         hot_path_out=None, abuse_out=None, password_memory_out=None, data_layer_out=None):
    m = medians("hot_path")
    bare, floor = m["1_bare_service"], m["4_floor"]
    rows = [f"| `{b}` | {fmt_ns(t)} | {t / bare:.2f} | {t / floor:.2f} |" for b, t in m.items()]
    steps = medians("steps")
    step_rows = [f"| `{b}` | {fmt_ns(t)} | {t / floor:.2f} |" for b, t in steps.items()]

    floor_random = m["4b_floor_random_of_100k"]
    bare_refusal = m["1b_bare_refusal_shape"]

    def added(b):
        return (m[b] - bare) / floor

    def verdict(value, limit):
        return "held" if value <= limit else "missed"

    hot_ratio = added("2_layer_hot_token")
    random_ratio = (m["3_layer_random_of_100k"] - bare) / floor_random
    malformed_ratio = m["7a_malformed_token"] / bare_refusal
    targets = [
        ("Cache hit, hot token: layer's added cost (2 − 1) ÷ hot floor (4)", hot_ratio,
         f"≤ 2 ({verdict(hot_ratio, 2)})"),
        ("Cache hit, 100,000 tokens: added cost (3 − 1) ÷ random floor (4b)", random_ratio,
         f"≤ 3 ({verdict(random_ratio, 3)})"),
        ("Malformed token refused: (7a) ÷ bare service answering a refusal's shape (1b)",
         malformed_ratio, f"≤ 1.2 ({verdict(malformed_ratio, 1.2)})"),
        ("Malformed token refused: (7a) ÷ bare empty service (1), the ratio reported before",
         m["7a_malformed_token"] / bare, "(context)"),
        ("Random floor (4b) ÷ hot floor (4)", floor_random / floor, "(context)"),
        ("Missing header refused: (7b) ÷ bare service (1)", m["7b_missing_header"] / bare, "(no target)"),
        ("Layer (2) ÷ tower-http's fixed-token bearer check (5)",
         m["2_layer_hot_token"] / m["5_tower_http_bearer"], "(context)"),
        ("Two cores, hot token: (9a) ÷ one core (2)", m["9a_two_cores_hot_token"] / m["2_layer_hot_token"], "(context)"),
    ]
    target_rows = [f"| {name} | {value:.2f} | {goal} |" for name, value, goal in targets]

    counts = instruction_counts(instructions_out) if instructions_out else None
    analysis = why_missed(m, steps, hot_ratio, random_ratio, malformed_ratio, counts)

    ct = [line.strip() for line in pathlib.Path(constant_time_out).read_text().splitlines() if "max t" in line]
    ts = [abs(float(re.search(r"max t = ([+-][0-9.]+)", line).group(1))) for line in ct]
    load = [line.strip() for line in pathlib.Path(http_load_out).read_text().splitlines() if line.startswith("http_load")]

    out = f"""# Benchmarks

Generated by `benches/run-all` from one run on one machine; numbers are never typed by
hand. These machines are shared and noisy: read the **ratios**, which compare variants
measured minutes apart in the same run, not the absolute times.

**Machine:** {machine()}

**Date:** {datetime.date.today().isoformat()}

**Commands:** `benches/run-all` runs, in order,
`cargo bench --bench hot_path`, `cargo bench --bench constant_time`,
`cargo bench --bench http_load`, `benches/instructions.sh` (valgrind),
`cargo bench --bench stores --features sqlite,postgres`, `benches/peers.sh` (wrk against
Verdaccio), `benches/data_layer.py` (the registry's data layer against Verdaccio),
`benches/abuse.py` and `benches/password_memory.py` (against release builds of the
example registry), then `benches/report.py`.

## Hot path (criterion, `benches/hot_path.rs`)

Each variant handles the same request: an `Authorization` header and the peer address,
through `oneshot` on a trivial `service_fn`. Medians; "÷ bare" and "÷ floor" are ratios to
variants 1 and 4.

| variant | median | ÷ bare | ÷ floor |
|---|---|---|---|
{chr(10).join(rows)}

What they are:
1. the bare inner service, no layer (1b: a bare service that answers every request with
   the layer's refusal: 401, `WWW-Authenticate`, the same JSON body and headers);
2. the layer, cache hit, always the same token;
3. the layer, cache hit, a token drawn from 100,000 live ones (all cached);
4. the floor: parse the header, check the token's format, SHA-256, one `HashMap` lookup
   among 100,000 records of the real size and the 32-byte constant-time compare, with no
   service around it, on the hot token (4) and on keys drawn as variant 3 draws them (4b);
5. tower-http's `ValidateRequestHeaderLayer::bearer` (one fixed token, plain comparison);
6. a cache miss served by the memory store on every request (6a), and 1,000 concurrent
   first requests for one token on a cold cache (6b, time for all 1,000);
7. refusals that never hash or reach the store: a bad checksum (7a), no header (7b);
8. the digest comparison alone: equal, first byte differs, last byte differs;
9. variants 2 and 3 on a two-worker runtime with two tasks sharing the requests (time per
   request, so lower than 2 and 3 means the cores were used together);
10. the failure limiter (`FailureLimit`, 50 failures a minute per address, as the example
   registry sets it): the hot token through a layer that has one (10a), and a flood of
   well-formed tokens nobody issued, from one address, without it (10b) and with it (10c).

## Where a cache hit's time goes (`steps` group)

Per-step costs, and moka alone with 100,000 entries keyed by `TokenId` in the
configurations it offers (and with foldhash's keyed hasher instead of SipHash), against a
plain `HashMap` (of `Arc<u64>`, and of real-size records as the floor holds them). "÷ floor"
is the ratio to variant 4.

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

{instruction_section(counts) if counts else ""}
## HTTP under load (`benches/http_load.rs`)

The same hyper server with and without the layer, one valid token, 32 keep-alive
connections from a client in the same process (one runtime thread for the servers, one
for the client), alternating runs. Loopback only; stops by itself.

```
{chr(10).join(load)}
```

{limiter_section(m, hot_path_out) if hot_path_out else ""}
{stores_section(stores_out) if stores_out else ""}{peers_section(peers_out) if peers_out else ""}
{pathlib.Path(data_layer_out).read_text() if data_layer_out else ""}{pathlib.Path(abuse_out).read_text() if abuse_out else ""}
{pathlib.Path(password_memory_out).read_text() if password_memory_out else ""}"""
    (ROOT / "BENCHMARKS.md").write_text(out)
    print(out)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--pages"]:
        splice_pages(sys.argv[2])
    elif sys.argv[1:2] == ["--data-layer"]:
        splice_section(sys.argv[2], DATA_LAYER_HEADING, before="## Hostile requests")
    elif sys.argv[1:2] == ["--search-scale"]:
        splice_section(sys.argv[2], SEARCH_SCALE_HEADING, before="## Hostile requests")
    elif sys.argv[1:2] == ["--password-memory"]:
        splice_section(sys.argv[2], PASSWORD_MEMORY_HEADING, note=(
            f"(This section comes from a run of `benches/password_memory.py` alone on "
            f"{datetime.date.today().isoformat()}, apart from the run the rest of this page "
            "comes from; the next `run-all` writes them together.)\n"))
    else:
        main(*sys.argv[1:10])
