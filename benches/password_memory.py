#!/usr/bin/env python3
"""Peak memory of the example registry while passwords are checked: one user, rounds of
16 `npm token create` requests at once (`POST /-/npm/v1/tokens`, each with the account's
password, so each runs one Argon2 check of 19 MiB), against a release build on
loopback. Reports the registry's peak resident memory (VmHWM) for a build from before
Argon2's memory was pooled and for this one, in one run. Prints Markdown.

Needs the release binary (`cargo build --release -p tokengate-registry`); honours
CARGO_TARGET_DIR. The "before" binary is TOKENGATE_BENCH_BEFORE_BIN when set; otherwise
this script builds revision BEFORE (the last one without the pool), exported with
`git archive`, the first time, and keeps the binary in
$CARGO_TARGET_DIR/password-memory-before/. It builds in a target folder of its own
there (a full build, removed after): sharing CARGO_TARGET_DIR would not do, since cargo
names a workspace's own artifacts by their paths inside the workspace, so the old
revision's would overwrite the current build's and then pass for fresh.
TOKENGATE_BENCH_ROUNDS (default 200) sets how many rounds of 16 run; each build gets a
registry and a data folder of its own."""
import concurrent.futures, http.client, json, os, pathlib, shutil, subprocess, sys
import tempfile, threading, time

ROOT = pathlib.Path(__file__).resolve().parent.parent
TARGET = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")).resolve()
AFTER = TARGET / "release" / "registry"
# The last commit without the pool.
BEFORE = "ddd63f40ef53f0d9b9e9dbb13043797ce1eb6507"
AT_ONCE = 16
ROUNDS = int(os.environ.get("TOKENGATE_BENCH_ROUNDS", "200"))
PASSWORD = "correct horse battery"


def before_binary():
    given = os.environ.get("TOKENGATE_BENCH_BEFORE_BIN")
    if given:
        return pathlib.Path(given)
    folder = TARGET / "password-memory-before"
    binary = folder / f"registry-{BEFORE[:12]}"
    if binary.is_file():
        return binary
    source, target = folder / "src", folder / "target"
    for old in (source, target):
        shutil.rmtree(old, ignore_errors=True)
    source.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", BEFORE],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(source)], input=archive, check=True)
    subprocess.run(["cargo", "build", "--release", "--locked", "-p", "tokengate-registry"],
                   cwd=source, env={**os.environ, "CARGO_TARGET_DIR": str(target)},
                   check=True, stdout=sys.stderr)
    shutil.copy2(target / "release" / "registry", binary)
    for done in (source, target):
        shutil.rmtree(done)
    return binary


def start(binary):
    data = tempfile.mkdtemp()
    process = subprocess.Popen([str(binary), "--listen", "127.0.0.1:0", "--data", data],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in process.stdout:
        if "listening on" in line:
            port = int(line.strip().rstrip("/").rsplit(":", 1)[1])
            break
    else:
        sys.exit(f"{binary} did not start")
    threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True).start()
    return process, port, data


def mib(process, key):
    for line in open(f"/proc/{process.pid}/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024
    sys.exit(f"no {key} for the registry")


def request(port, method, path, body, headers=None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    connection.request(method, path, body=body,
                       headers={"content-type": "application/json", **(headers or {})})
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, data


def measure(binary):
    process, port, data = start(binary)
    try:
        body = json.dumps({"name": "alice", "password": PASSWORD}).encode()
        status, reply = request(port, "PUT", "/-/user/org.couchdb.user:alice", body)
        assert status == 201, reply
        auth = {"authorization": f"Bearer {json.loads(reply)['token']}"}
        idle = mib(process, "VmHWM")
        create = json.dumps({"password": PASSWORD, "readonly": False,
                             "cidr_whitelist": []}).encode()

        def one(_):
            status, reply = request(port, "POST", "/-/npm/v1/tokens", create, auth)
            assert status == 201, reply

        started = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(AT_ONCE) as pool:
            for _ in range(ROUNDS):
                list(pool.map(one, range(AT_ONCE)))
        elapsed = time.perf_counter() - started
        return idle, mib(process, "VmHWM"), mib(process, "VmRSS"), elapsed
    finally:
        process.kill()
        process.wait()
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    before = before_binary()
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                          check=True, capture_output=True, text=True).stdout.strip()
    rows = [(f"before ({BEFORE[:7]}): each check allocates its own memory", measure(before)),
            (f"after ({head}, the release build): checks borrow one of four pooled buffers",
             measure(AFTER))]
    (_, (_, before_peak, _, before_time)), (_, (_, after_peak, _, after_time)) = rows
    count = ROUNDS * AT_ONCE
    print("## Password checks and memory (`benches/password_memory.py`)\n")
    print(f"{ROUNDS} rounds of {AT_ONCE} concurrent `npm token create` requests "
          f"(`POST /-/npm/v1/tokens` with the password: {count:,} Argon2 checks of "
          "19 MiB, four at a time), one user, a release build on loopback; a fresh "
          "registry for each build. Peak resident memory is VmHWM.\n")
    print("| build | peak memory (VmHWM) | peak after sign-up | resident at the end "
          "| wall time ÷ creations |")
    print("|---|---|---|---|---|")
    for name, (idle, peak, resident, elapsed) in rows:
        print(f"| {name} | **{peak:.0f} MiB** | {idle:.0f} MiB | {resident:.0f} MiB "
              f"| {elapsed / count * 1000:.1f} ms |")
    print(f"\nPeak memory after ÷ before: **{after_peak / before_peak:.3f}** "
          f"({before_peak:.0f} → {after_peak:.0f} MiB, {before_peak / after_peak:.1f}x less; "
          "target: under 150 MB, "
          f"{'held' if after_peak * 2**20 < 150e6 else 'missed'}: "
          f"{after_peak * 2**20 / 1e6:.0f} MB). Wall time after ÷ before: "
          f"{after_time / before_time:.2f}. \"Peak after sign-up\" is VmHWM once the user "
          "exists, before the first creation (the sign-up hashed one password).\n")
