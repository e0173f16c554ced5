#!/usr/bin/env python3
"""The registry's data layer against Verdaccio, in one run: at 100, 1,000 and 10,000
packages (three versions each), search latency (p50, p95), packument, abbreviated
document and tarball requests per second, and the wall time of `npm ci` of a
200-dependency lockfile with a cold cache, on the example registry (release build, SQLite
in a data folder) and on Verdaccio, both on loopback. Prints a Markdown section for
BENCHMARKS.md on stdout (benches/run-all keeps it for benches/report.py); progress on
stderr.

Each server is seeded over HTTP, as npm publishes (`PUT /<name>`, one version per
request, a small real tarball), 16 publishes at once, and grows from one scale to the
next, in slices of a tenth of the packages added (100 at least), the servers alternating
slice by slice; the seeding time is reported. Search is `GET /-/v1/search?text=<word>&size=20`,
one request at a time, over a fixed mix of words that hit every package, a tenth, a
hundredth, one package, and none. The request rates are wrk's, as in benches/peers.sh:
one thread, 16 connections, TOKENGATE_DATA_LAYER_SECONDS (default 5) per run, a random
package (and version) per request, no authentication (the packages are public),
TOKENGATE_DATA_LAYER_ROUNDS (default 3) runs per kind, the servers alternating run by
run, the median.

`npm ci`: 200 more packages (`tgci-000`..`tgci-199`, one version each, generated here like
the others) are published to each server first; at every scale, a project whose lockfile
pins all 200 (tarball URL and integrity) is installed with `npm ci` from a fresh folder
(no node_modules) and a fresh `--cache` folder, TOKENGATE_DATA_LAYER_CI_RUNS (default 3)
times per server, the servers alternating; the median wall time is reported.

Needs the release binary (`cargo build --release -p tokengate-registry`), wrk, Node.js
and npm; honours CARGO_TARGET_DIR. Verdaccio 6.8.0 is installed pinned under
$CARGO_TARGET_DIR/peers/verdaccio as benches/peers.sh installs it (reused if there).
TOKENGATE_DATA_LAYER_VERDACCIO_MAX (default 10000) is the largest scale Verdaccio is
seeded to; TOKENGATE_DATA_LAYER_SEARCHES (default 200) the searches per scale and
server, unless TOKENGATE_DATA_LAYER_SEARCH_BUDGET (default 60) seconds of searching pass
first (then at least ten). Every server listens on 127.0.0.1 on a free port and is stopped at the end."""
import base64, concurrent.futures, gzip, hashlib, http.client, io, json, os, pathlib
import secrets, shutil, signal, socket, statistics, subprocess, sys, tarfile, tempfile
import threading, time, urllib.parse

ROOT = pathlib.Path(__file__).resolve().parent.parent
TARGET = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")).resolve()
REGISTRY = TARGET / "release" / "registry"
VERDACCIO_DIR = TARGET / "peers" / "verdaccio"
VERDACCIO_VERSION = "6.8.0"
# See benches/peers.sh: Verdaccio 6.8 needs node-fetch 2.7.0 to start under Node 20.
NODE_FETCH_VERSION = "2.7.0"
SCALES = (100, 1_000, 10_000)
VERSIONS = ("1.0.0", "1.0.1", "1.0.2")
AT_ONCE = 16
CONNECTIONS = 16
SECONDS = int(os.environ.get("TOKENGATE_DATA_LAYER_SECONDS", "5"))
SEARCHES = int(os.environ.get("TOKENGATE_DATA_LAYER_SEARCHES", "200"))
# Seconds of searching per scale and server after which no further round of the mix starts.
SEARCH_BUDGET = float(os.environ.get("TOKENGATE_DATA_LAYER_SEARCH_BUDGET", "60"))
VERDACCIO_MAX = int(os.environ.get("TOKENGATE_DATA_LAYER_VERDACCIO_MAX", "10000"))
# `npm ci` of a lockfile with this many dependencies, cold cache, CI_RUNS times per scale
# and server (alternating servers), the median wall time.
CI_DEPENDENCIES = 200
CI_RUNS = int(os.environ.get("TOKENGATE_DATA_LAYER_CI_RUNS", "3"))
# wrk runs per kind of request, scale and server (alternating servers), the median rate.
RATE_ROUNDS = int(os.environ.get("TOKENGATE_DATA_LAYER_ROUNDS", "3"))
# Each scale's packages are published in this many slices, alternating servers.
SEED_SLICES = 10
ABBREVIATED = "application/vnd.npm.install-v1+json"
USER = "bench"
PASSWORD = secrets.token_urlsafe(18)

# Words in the descriptions: every package says "common", one in ten a colour, one in a
# hundred a made-up animal (two syllables); names are fixed-width, so a full name is in
# no other name.
COLOURS = ("amber", "cobalt", "crimson", "indigo", "ochre", "olive", "scarlet", "teal",
           "sienna", "violet")
SYLLABLES = ("ba", "de", "fi", "go", "ku", "la", "me", "no", "pi", "ru")
ANIMALS = tuple(a + b for a in SYLLABLES for b in SYLLABLES)


def say(text):
    print(f"data_layer: {text}", file=sys.stderr, flush=True)


def name_of(i):
    return f"tgbench-{i:05d}"


def description_of(i):
    return f"a common {COLOURS[i % 10]} {ANIMALS[(i * 37) % 100]} package number {i}"


def search_words(n):
    """The mix, in order, with how many packages each should hit at `n` packages."""
    mix = []
    for k in range(10):
        mix.append(("every package", "common"))
        mix.append(("a tenth", COLOURS[k]))
        mix.append(("a hundredth", ANIMALS[(k * 37) % 100]))
        mix.append(("one (a full name)", name_of((k * 7919) % n)))
        mix.append(("none", f"nosuchword{k}"))
    return mix


def tarball(name, version, description):
    manifest = json.dumps({"name": name, "version": version, "description": description,
                           "main": "index.js"}).encode()
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for path, data in (("package/package.json", manifest),
                           ("package/index.js", b"module.exports = 1;\n")):
            info = tarfile.TarInfo(path)
            info.size, info.mtime, info.mode = len(data), 499162500, 0o644
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def bench_package(i):
    """Package `i` of the scales: (name, description, keywords)."""
    return name_of(i), description_of(i), [COLOURS[i % 10], "bench"]


def ci_package(i):
    """Dependency `i` of the `npm ci` lockfile: none of the search mix's words is in its
    name or description, so the search totals count the scale's packages only."""
    return f"tgci-{i:03d}", f"dependency {i} of the install run", ["install"]


def integrity_of(data):
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def publish_body(base, package, version):
    name, description, keywords = package
    data = tarball(name, version, description)
    manifest = {
        "name": name, "version": version, "description": description,
        "keywords": keywords, "main": "index.js",
        "dist": {"shasum": hashlib.sha1(data).hexdigest(), "integrity": integrity_of(data),
                 "tarball": f"{base}/{name}/-/{name}-{version}.tgz"},
    }
    return json.dumps({
        "_id": name, "name": name, "description": description, "access": None,
        "versions": {version: manifest}, "dist-tags": {"latest": version},
        "_attachments": {f"{name}-{version}.tgz": {
            "content_type": "application/octet-stream",
            "data": base64.b64encode(data).decode(), "length": len(data)}},
    }).encode()


class Client(threading.local):
    """One keep-alive connection per thread."""

    def __init__(self, port):
        self.port, self.connection = port, None

    def request(self, method, path, body=None, headers=None):
        for attempt in (0, 1):
            if self.connection is None:
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
            try:
                self.connection.request(method, path, body=body, headers=headers or {})
                response = self.connection.getresponse()
                return response.status, response.getheaders(), response.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.connection.close()
                self.connection = None
                if attempt:
                    raise


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(process, port, log):
    for _ in range(600):
        if process.poll() is not None:
            sys.exit(f"data_layer: a server exited: {pathlib.Path(log).read_text()[-2000:]}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/-/ping")
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    sys.exit(f"data_layer: no answer on port {port} within 60 s")


def installed_verdaccio():
    try:
        return json.loads((VERDACCIO_DIR / "node_modules" / "verdaccio" / "package.json")
                          .read_text())["version"]
    except (OSError, ValueError, KeyError):
        return None


def install_verdaccio():
    if installed_verdaccio() == VERDACCIO_VERSION:
        return
    say(f"installing Verdaccio {VERDACCIO_VERSION} into {VERDACCIO_DIR}")
    shutil.rmtree(VERDACCIO_DIR, ignore_errors=True)
    VERDACCIO_DIR.mkdir(parents=True)
    (VERDACCIO_DIR / "package.json").write_text(json.dumps({
        "name": "tokengate-peers", "private": True,
        "description": "Verdaccio for benches/peers.sh; generated, not part of tokengate",
        "dependencies": {"verdaccio": VERDACCIO_VERSION},
        "overrides": {"node-fetch": NODE_FETCH_VERSION}}, indent=2))
    subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"],
                   cwd=VERDACCIO_DIR, check=True, stdout=sys.stderr)
    if installed_verdaccio() != VERDACCIO_VERSION:
        sys.exit(f"data_layer: Verdaccio {VERDACCIO_VERSION} did not install")


class Servers:
    def __init__(self):
        self.work = tempfile.mkdtemp(prefix="data-layer-")
        self.processes = []

    def start_registry(self, binary=None, name="registry"):
        """A registry (`binary`, the release build by default) on a data folder of its own
        named `name`."""
        data, log = os.path.join(self.work, name), os.path.join(self.work, f"{name}.log")
        port = free_port()
        process = subprocess.Popen([str(binary or REGISTRY), "--listen", f"127.0.0.1:{port}",
                                    "--data", data],
                                   stdout=open(log, "w"), stderr=subprocess.STDOUT,
                                   env={**os.environ, "RUST_LOG": "error"})
        self.processes.append(process)
        wait_ready(process, port, log)
        return process, port

    def start_verdaccio(self):
        folder = os.path.join(self.work, "verdaccio")
        os.makedirs(folder)
        config, log = os.path.join(folder, "config.yaml"), os.path.join(folder, "log")
        pathlib.Path(config).write_text(f"""storage: {folder}/storage
auth:
  htpasswd:
    file: {folder}/htpasswd
    max_users: 100
# No uplinks: nothing leaves the machine.
uplinks: {{}}
packages:
  '**':
    access: $all
    publish: $authenticated
# JWT, as npm gets from a login: legacy tokens check the password (bcrypt) on every request.
security:
  api:
    jwt:
      sign:
        expiresIn: 7d
max_body_size: 10mb
web:
  enable: false
log: {{ type: stdout, format: json, level: error }}
""")
        port = free_port()
        process = subprocess.Popen(
            ["node", str(VERDACCIO_DIR / "node_modules" / "verdaccio" / "bin" / "verdaccio"),
             "--config", config, "--listen", f"127.0.0.1:{port}"],
            stdout=open(log, "w"), stderr=subprocess.STDOUT,
            env={**os.environ, "NODE_ENV": "production"})
        self.processes.append(process)
        wait_ready(process, port, log)
        return process, port

    def stop(self, process):
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def close(self):
        for process in self.processes:
            self.stop(process)
        shutil.rmtree(self.work, ignore_errors=True)


def add_user(client):
    body = json.dumps({"_id": f"org.couchdb.user:{USER}", "name": USER, "password": PASSWORD,
                       "email": f"{USER}@example.com", "type": "user", "roles": [],
                       "date": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())}).encode()
    status, _, data = client.request("PUT", f"/-/user/org.couchdb.user:{USER}", body,
                                     {"content-type": "application/json"})
    if status != 201:
        sys.exit(f"data_layer: adding the user answered {status}: {data[:300]!r}")
    return json.loads(data)["token"]


def seed(port, token, packages, versions=VERSIONS):
    """Publishes `packages` (from bench_package or ci_package), each version in turn, 16
    packages at once; seconds."""
    client = Client(port)
    base = f"http://127.0.0.1:{port}"
    headers = {"content-type": "application/json", "authorization": f"Bearer {token}"}

    def one(package):
        for version in versions:
            status, _, data = client.request("PUT", f"/{package[0]}",
                                             publish_body(base, package, version), headers)
            if status not in (200, 201):
                raise RuntimeError(f"publishing {package[0]}@{version} answered {status}: {data[:300]!r}")

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(AT_ONCE) as pool:
        for _ in pool.map(one, packages):
            pass
    return time.perf_counter() - started


def search(port, n):
    """Sequential searches over the mix: (p50 ms, p95 ms, {kind: (hits, p50 ms)}, count)."""
    client = Client(port)
    mix = search_words(n)
    kinds = len({kind for kind, _ in mix})
    times, hits, by_kind = [], {}, {}

    def one(word):
        path = f"/-/v1/search?text={urllib.parse.quote(word)}&size=20"
        started = time.perf_counter()
        status, _, data = client.request("GET", path)
        elapsed = (time.perf_counter() - started) * 1000
        if status != 200:
            sys.exit(f"data_layer: {path} answered {status}: {data[:300]!r}")
        return elapsed, json.loads(data)

    # One untimed search of each kind: warms the server, and checks what it finds.
    for kind, word in mix[:kinds]:
        _, body = one(word)
        hits[kind] = body.get("total", len(body["objects"]))
        if kind == "one (a full name)" and (
                not body["objects"] or body["objects"][0]["package"]["name"] != word):
            sys.exit(f"data_layer: searching {word!r} did not find it first: {body}")
    started = time.perf_counter()
    for count in range(max(SEARCHES, kinds)):
        # Past the budget, stop after a whole group of kinds (two groups at least).
        if (count % kinds == 0 and count >= 2 * kinds
                and time.perf_counter() - started > SEARCH_BUDGET):
            break
        kind, word = mix[count % len(mix)]
        elapsed, _ = one(word)
        times.append(elapsed)
        by_kind.setdefault(kind, []).append(elapsed)
    times.sort()
    hits = {kind: (seen, statistics.median(by_kind[kind])) for kind, seen in hits.items()}
    return times[len(times) // 2], times[int(len(times) * 0.95)], hits, len(times)


def one_at_a_time(port, path, count=40):
    """Median milliseconds of `count` requests for `path`, one at a time, one keep-alive
    connection (the first not counted)."""
    client = Client(port)
    times = []
    for _ in range(count + 1):
        started = time.perf_counter()
        status, _, _ = client.request("GET", path)
        times.append((time.perf_counter() - started) * 1000)
        assert status == 200, (path, status)
    return statistics.median(times[1:])


LUA = """
local n, kind = {n}, "{kind}"
math.randomseed(20261202)
request = function()
  local name = string.format("tgbench-%05d", math.random(0, n - 1))
  if kind == "tarball" then
    return wrk.format("GET", "/" .. name .. "/-/" .. name .. "-1.0." .. math.random(0, 2) .. ".tgz")
  elseif kind == "abbreviated" then
    return wrk.format("GET", "/" .. name, {{["Accept"] = "{abbreviated}"}})
  end
  return wrk.format("GET", "/" .. name)
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("wrk_result %d %d %d %d %d %d %d\\n", summary.requests,
    summary.duration, e.connect, e.read, e.write, e.status, e.timeout))
end
"""


def check_reads(port, n, abbreviated_type_expected):
    """One of each measured request, answered as it should be before it is timed."""
    client = Client(port)
    name = name_of(n - 1)
    status, headers, data = client.request("GET", f"/{name}")
    assert status == 200 and set(json.loads(data)["versions"]) == set(VERSIONS), (status, data[:300])
    status, headers, data = client.request("GET", f"/{name}", headers={"accept": ABBREVIATED})
    content_type = dict((k.lower(), v) for k, v in headers).get("content-type", "")
    assert status == 200 and set(json.loads(data)["versions"]) == set(VERSIONS), (status, data[:300])
    if abbreviated_type_expected:
        assert content_type.startswith(ABBREVIATED), content_type
    status, _, data = client.request("GET", f"/{name}/-/{name}-1.0.2.tgz")
    assert status == 200 and data[:2] == b"\x1f\x8b", (status, data[:100])
    return content_type.split(";")[0]


def rate(port, n, kind, work):
    requests, seconds = wrk_run(port, n, kind, work)
    return requests / seconds


def wrk_run(port, n, kind, work):
    """One wrk run of `kind` over `n` packages: (requests answered, seconds)."""
    script = os.path.join(work, f"{kind}-{n}.lua")
    pathlib.Path(script).write_text(LUA.format(n=n, kind=kind, abbreviated=ABBREVIATED))
    out = subprocess.run(["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{SECONDS}s", "--timeout", "30s",
                          "-s", script, f"http://127.0.0.1:{port}/"],
                         capture_output=True, text=True, check=True).stdout
    line = next((l for l in out.splitlines() if l.startswith("wrk_result ")), None)
    if line is None:
        sys.exit(f"data_layer: no result from wrk: {out}")
    requests, duration, *errors = map(int, line.split()[1:])
    if any(errors) or requests == 0:
        sys.exit(f"data_layer: {kind} on port {port}: errors (connect, read, write, status, "
                 f"timeout) {errors}, {requests} requests")
    return requests, duration / 1e6


CI_VERSION = "1.0.0"


def ci_project(base):
    """package.json and package-lock.json (v3) of a project that depends on the
    CI_DEPENDENCIES ci packages, resolved on the server at `base`, as `npm install` writes
    them: with a lockfile that names every tarball and its integrity, `npm ci` asks for the
    tarballs only."""
    packages = [ci_package(i) for i in range(CI_DEPENDENCIES)]
    dependencies = {name: CI_VERSION for name, _, _ in packages}
    manifest = {"name": "tgci-app", "version": "1.0.0", "private": True,
                "dependencies": dependencies}
    lock = {"name": "tgci-app", "version": "1.0.0", "lockfileVersion": 3, "requires": True,
            "packages": {"": {"name": "tgci-app", "version": "1.0.0",
                              "dependencies": dependencies}}}
    for name, description, _ in packages:
        lock["packages"][f"node_modules/{name}"] = {
            "version": CI_VERSION,
            "resolved": f"{base}/{name}/-/{name}-{CI_VERSION}.tgz",
            "integrity": integrity_of(tarball(name, CI_VERSION, description))}
    return manifest, lock


def npm_ci_seconds(port, work, run):
    """Wall seconds of one `npm ci` of the ci project against the server on `port`: a fresh
    project folder (no node_modules), a fresh `--cache` folder, no user config, no audit;
    checks that every dependency was installed."""
    base = f"http://127.0.0.1:{port}"
    project = os.path.join(work, f"ci-{port}-{run}")
    cache, userconfig = os.path.join(project, ".cache"), os.path.join(project, ".npmrc-empty")
    os.makedirs(project)
    manifest, lock = ci_project(base)
    for file, content in (("package.json", manifest), ("package-lock.json", lock)):
        pathlib.Path(project, file).write_text(json.dumps(content, indent=2))
    pathlib.Path(userconfig).write_text("")
    env = {k: v for k, v in os.environ.items() if not k.lower().startswith("npm_config_")}
    started = time.perf_counter()
    done = subprocess.run(["npm", "ci", f"--registry={base}/", f"--cache={cache}",
                           f"--userconfig={userconfig}", "--no-audit", "--no-fund",
                           "--ignore-scripts", "--no-update-notifier", "--loglevel=error"],
                          cwd=project, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"data_layer: npm ci against {base} failed: {done.stderr[-2000:]}")
    installed = [name for name in manifest["dependencies"]
                 if pathlib.Path(project, "node_modules", name, "package.json").is_file()]
    if len(installed) != CI_DEPENDENCIES:
        sys.exit(f"data_layer: npm ci against {base} installed {len(installed)} of "
                 f"{CI_DEPENDENCIES} dependencies")
    shutil.rmtree(project)
    return seconds


def npm_version():
    return subprocess.run(["npm", "--version"], capture_output=True, text=True).stdout.strip()


def node_version():
    return subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()


def rss_mib(process):
    try:
        for line in open(f"/proc/{process.pid}/status"):
            if line.startswith("VmRSS"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def main():
    if not REGISTRY.is_file():
        sys.exit(f"data_layer: {REGISTRY} is missing: cargo build --release -p tokengate-registry")
    for tool in ("wrk", "node", "npm"):
        if shutil.which(tool) is None:
            sys.exit(f"data_layer: {tool} is required")
    install_verdaccio()
    servers = Servers()
    results = {}  # (server, n) -> dict
    types = {}
    try:
        targets = {}
        for server, start in (("registry", servers.start_registry),
                              ("verdaccio", servers.start_verdaccio)):
            process, port = start()
            targets[server] = (process, port, add_user(Client(port)))
        ci_seeding = {}
        for server, (_, port, token) in targets.items():
            say(f"{server}: publishing the {CI_DEPENDENCIES} dependencies of the npm ci project")
            ci_seeding[server] = seed(port, token, [ci_package(i) for i in range(CI_DEPENDENCIES)],
                                      (CI_VERSION,))
        seeded = 0
        for n in SCALES:
            active = {server: target for server, target in targets.items()
                      if server == "registry" or n <= VERDACCIO_MAX}
            if "verdaccio" not in active:
                say(f"verdaccio: not seeded to {n:,} (TOKENGATE_DATA_LAYER_VERDACCIO_MAX={VERDACCIO_MAX})")
            # Seeded a slice at a time, the servers alternating, so that both see the same
            # load from whatever else runs on the machine.
            step = max(100, (n - seeded) // SEED_SLICES)
            seconds = {server: 0.0 for server in active}
            say(f"seeding {seeded:,} to {n:,} packages, {step:,} at a time per server")
            for low in range(seeded, n, step):
                for server, (_, port, token) in active.items():
                    seconds[server] += seed(port, token, [bench_package(i)
                                                          for i in range(low, min(n, low + step))])
            published = (n - seeded) * len(VERSIONS)
            seeded = n
            for server, (process, port, _) in active.items():
                r = {"seed_s": seconds[server], "published": published,
                     "publish_rate": published / seconds[server]}
                say(f"{server}: {published:,} publishes in {seconds[server]:.1f} s; searching")
                types[server] = check_reads(port, n, server == "registry")
                r["p50"], r["p95"], r["hits"], r["searches"] = search(port, n)
                name = name_of(n // 2)
                r["packument_one"] = one_at_a_time(port, f"/{name}")
                r["tarball_one"] = one_at_a_time(port, f"/{name}/-/{name}-1.0.1.tgz")
                results[(server, n)] = r
            # Rates and installs round by round, the servers alternating, for the same reason.
            for kind in ("packument", "abbreviated", "tarball"):
                rounds = {server: [] for server in active}
                for round_ in range(RATE_ROUNDS):
                    for server, (_, port, _) in active.items():
                        rounds[server].append(rate(port, n, kind, servers.work))
                        say(f"{server} at {n:,}: {kind} {round_ + 1}/{RATE_ROUNDS}, "
                            f"{rounds[server][-1]:,.0f}/s")
                for server in active:
                    results[(server, n)][kind] = statistics.median(rounds[server])
            runs = {server: [] for server in active}
            for run in range(CI_RUNS):
                for server, (_, port, _) in active.items():
                    runs[server].append(npm_ci_seconds(port, servers.work, run))
                    say(f"{server} at {n:,}: npm ci {run + 1}/{CI_RUNS} in {runs[server][-1]:.2f} s")
            for server, (process, _, _) in active.items():
                r = results[(server, n)]
                r["ci"], r["ci_runs"], r["rss"] = statistics.median(runs[server]), runs[server], rss_mib(process)
                say(f"{server} at {n:,}: search p50 {r['p50']:.2f} ms p95 {r['p95']:.2f} ms, "
                    f"packument {r['packument']:,.0f}/s, abbreviated {r['abbreviated']:,.0f}/s, "
                    f"tarball {r['tarball']:,.0f}/s, npm ci {r['ci']:.2f} s")
    finally:
        servers.close()
    print(report(results, types, ci_seeding))


def report(results, types, ci_seeding):
    def ratio(n, key):
        v = results.get(("verdaccio", n))
        if key in ("searches", "ci_runs"):
            return ""
        return f"{results[('registry', n)][key] / v[key]:.3g}" if v else "—"

    def cell(server, n, key, fmt):
        r = results.get((server, n))
        if not r:
            return "not run"
        if key == "ci_runs":
            return ", ".join(f"{x:.2f}" for x in r[key])
        return fmt.format(r[key])

    rows = []
    for n in SCALES:
        for key, what, fmt in (("p50", "search p50 (ms)", "{:.2f}"), ("p95", "search p95 (ms)", "{:.2f}"),
                               ("searches", "searches timed", "{:,}"),
                               ("packument_one", "packument, one at a time, p50 (ms)", "{:.2f}"),
                               ("tarball_one", "tarball, one at a time, p50 (ms)", "{:.2f}"),
                               ("packument", "packument (req/s)", "{:,.0f}"),
                               ("abbreviated", "abbreviated document (req/s)", "{:,.0f}"),
                               ("tarball", "tarball (req/s)", "{:,.0f}"),
                               ("publish_rate", "seeding (publishes/s)", "{:,.0f}"),
                               ("seed_s", "seeding time (s)", "{:.1f}"),
                               ("rss", "resident memory after (MiB)", "{:.0f}"),
                               ("ci", f"npm ci, {CI_DEPENDENCIES} dependencies, cold cache, median (s)",
                                "{:.2f}"),
                               ("ci_runs", "npm ci, each run in order (s)", "")):
            rows.append(f"| {n:,} | {what} | {cell('registry', n, key, fmt)} "
                        f"| {cell('verdaccio', n, key, fmt)} | {ratio(n, key)} |")
    hits = []
    for (server, n), r in sorted(results.items(), key=lambda item: (item[0][1], item[0][0])):
        seen = "; ".join(f"{kind}: {totals} hits, {p50:.2f} ms"
                         for kind, (totals, p50) in r["hits"].items())
        hits.append(f"| {n:,} | {server} | {seen} |")
    reg = {n: results[("registry", n)] for n in SCALES}
    big, mid = reg[SCALES[-1]], reg[SCALES[-2]]
    flat = big["p50"] / mid["p50"]
    targets = [
        f"| search p50 at {SCALES[-1]:,} packages | {big['p50']:.2f} ms | under 10 ms "
        f"({'held' if big['p50'] < 10 else 'missed'}) |",
        f"| search p50, {SCALES[-1]:,} ÷ {SCALES[-2]:,} packages | {flat:.2f} | within 2x "
        f"({'held' if flat <= 2 else 'missed'}) |",
    ]
    for key, what in (("packument", "packument"), ("tarball", "tarball")):
        for n in SCALES:
            v = results.get(("verdaccio", n))
            if v:
                x = reg[n][key] / v[key]
                targets.append(f"| {what} req/s, registry ÷ Verdaccio, {n:,} packages | {x:.1f} "
                               f"| ≥ 10 ({'held' if x >= 10 else 'missed'}) |")
    for n in SCALES:
        v = results.get(("verdaccio", n))
        if v:
            x = reg[n]["ci"] / v["ci"]
            targets.append(f"| npm ci time, registry ÷ Verdaccio, {n:,} packages | {x:.2f} "
                           "| (measured; no target) |")
    skipped = [n for n in SCALES if ("verdaccio", n) not in results]
    note = (f"\nVerdaccio was not seeded to {', '.join(f'{n:,}' for n in skipped)} packages in this "
            "run (TOKENGATE_DATA_LAYER_VERDACCIO_MAX), so those rows have no ratio.\n"
            if skipped else "")
    return f"""## The data layer against Verdaccio (`benches/data_layer.py`)

From one run of `benches/data_layer.py` alone ({time.strftime("%Y-%m-%d", time.gmtime())}), on the machine above (shared, noisy: read
the ratios). The example registry (release build, SQLite data folder: `registry.db`, FTS5
trigram search, content-addressed tarballs) and Verdaccio {VERDACCIO_VERSION} (no uplinks, JWT
tokens, `access: $all`), both on 127.0.0.1, each seeded over HTTP as npm publishes: one
version per `PUT`, a ~300-byte tarball, {AT_ONCE} publishes at once, three versions per
package, growing from one scale to the next in slices of a tenth of the packages added
(100 at least), the servers alternating slice by slice so that both see the machine's
load alike (the seeding rows count the packages added at that scale). Search: `GET /-/v1/search?text=<word>&size=20`, one request at a time,
{max(1, SEARCHES // 50) * 50} per scale and server (fewer, in whole groups of the five kinds, when they take
longer than {SEARCH_BUDGET:.0f} s), over words that hit every package, a tenth, a hundredth,
one (a full name) and none. `npm ci`: a project whose `package-lock.json` (version 3, as
npm writes it) pins {CI_DEPENDENCIES} dependencies, each with its tarball's URL on the server
and its integrity, so npm fetches {CI_DEPENDENCIES} tarballs and no packument; npm
{npm_version()} (Node.js {node_version()}), a fresh project folder with no `node_modules` and a
fresh `--cache` folder for every run, no user config, `--no-audit --no-fund --ignore-scripts`;
{CI_RUNS} runs per scale and server, the servers alternating run by run, the median wall
time of the whole `npm ci` process (npm's own start-up and unpacking included, which both
servers pay alike). Its {CI_DEPENDENCIES} packages (`tgci-000` to
`tgci-{CI_DEPENDENCIES - 1:03d}`, one version each, words from no search) were published to each
server before the first scale (registry {ci_seeding["registry"]:.1f} s, Verdaccio
{ci_seeding["verdaccio"]:.1f} s) and are there, beside the scale's packages, at every scale.
"One at a time": 40 requests for one
package on one keep-alive connection, the median. Request rates: wrk, `-t1 -c{CONNECTIONS}`, {SECONDS} s per run, a random
package (and version) per request, anonymous, {RATE_ROUNDS} runs per kind and server, the
servers alternating run by run, the median; abbreviated is `Accept: {ABBREVIATED}`
(the registry answered `{types.get('registry', '?')}`, Verdaccio `{types.get('verdaccio', '?')}`).
"registry ÷ Verdaccio": above 1 is the registry faster for rates, below 1 for latencies.

| packages | measure | registry | Verdaccio | registry ÷ Verdaccio |
|---|---|---|---|---|
{chr(10).join(rows)}
{note}
| what | measured | target |
|---|---|---|
{chr(10).join(targets)}

By kind of word: the total each server reported (an untimed search of each kind before
the timed ones) and the median time:

| packages | server | hits and p50 by kind of word |
|---|---|---|
{chr(10).join(hits)}
"""


if __name__ == "__main__":
    main()
