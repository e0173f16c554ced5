#!/usr/bin/env python3
"""What hostile requests cost the example registry, measured against a release build on
loopback, in one run: peak memory for the largest publish body it accepts and for the
64 MiB body of small values it refuses, and how long a login takes while a gzip bomb (an
8 MiB tarball that inflates to 8 GiB) is being published. Prints Markdown.

Needs the release binary (`cargo build --release -p tokengate-registry`); honours
CARGO_TARGET_DIR. Starts its own registries on free ports and stops them."""
import base64, gzip, http.client, io, json, os, subprocess, sys, tempfile, threading, time

TARGET = os.environ.get("CARGO_TARGET_DIR", "target")
BIN = os.path.join(TARGET, "release", "registry")
PASSWORD = "correct horse battery"


def start():
    data = tempfile.mkdtemp()
    process = subprocess.Popen([BIN, "--listen", "127.0.0.1:0", "--data", data],
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in process.stdout:
        if "listening on" in line:
            port = int(line.strip().rstrip("/").rsplit(":", 1)[1])
            break
    else:
        sys.exit("the registry did not start")
    threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True).start()
    return process, port


def mib(process, key):
    for line in open(f"/proc/{process.pid}/status"):
        if line.startswith(key):
            return int(line.split()[1]) / 1024
    sys.exit(f"no {key} for the registry")


def request(port, method, path, body=b"", headers=None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    connection.request(method, path, body=body,
                       headers={"content-type": "application/json", **(headers or {})})
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, data


def session(port, user):
    body = json.dumps({"name": user, "password": PASSWORD}).encode()
    status, data = request(port, "PUT", f"/-/user/org.couchdb.user:{user}", body)
    assert status == 201, data
    return {"authorization": f"Bearer {json.loads(data)['token']}"}


def publish_body(name, version, tarball):
    return json.dumps({
        "_id": name, "name": name, "access": None,
        "versions": {version: {"name": name, "version": version}},
        "dist-tags": {"latest": version},
        "_attachments": {f"{name}-{version}.tgz": {
            "data": base64.b64encode(tarball).decode(), "length": len(tarball)}},
    }).encode()


def memory():
    process, port = start()
    auth = session(port, "alice")
    idle = mib(process, "VmRSS")
    largest = publish_body("big", "1.0.0", os.urandom(46 * 1024 * 1024))
    status, data = request(port, "PUT", "/big", largest, auth)
    assert status == 201, data
    after_largest = mib(process, "VmHWM")
    small_values = (b'{"name":"x","versions":{"1.0.0":{"a":['
                    + b"0," * (31 * 2**20) + b'0]}},"_attachments":{}}')
    status, data = request(port, "PUT", "/x", small_values, auth)
    assert status == 413, data
    after_refused = mib(process, "VmHWM")
    process.kill()
    size = len(largest) / 2**20
    return (f"| the largest publish accepted ({size:.0f} MiB body) | {after_largest:.0f} MiB "
            f"| {after_largest / size:.2f}x the body |\n"
            f"| then a {len(small_values) / 2**20:.0f} MiB body of small values (refused, 413) "
            f"| {after_refused:.0f} MiB | +{after_refused - after_largest:.0f} MiB |\n"
            f"\nIdle, the registry held {idle:.0f} MiB.\n")


def bomb():
    process, port = start()
    auth = session(port, "alice")
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=9) as archive:
        zeros = b"\0" * (16 * 2**20)
        for _ in range(512):
            archive.write(zeros)
    tarball = buffer.getvalue()
    login = json.dumps({"name": "alice", "password": PASSWORD}).encode()

    def login_time():
        started = time.perf_counter()
        status, _ = request(port, "PUT", "/-/user/org.couchdb.user:alice", login)
        assert status == 201
        return time.perf_counter() - started

    quiet = sorted(login_time() for _ in range(5))[2]
    published = {}
    publishing = threading.Thread(target=lambda: published.update(
        status=request(port, "PUT", "/bomb", publish_body("bomb", "1.0.0", tarball), auth)[0]))
    publishing.start()
    time.sleep(0.05)
    during = login_time()
    publishing.join()
    process.kill()
    return (f"A login took {quiet * 1000:.0f} ms alone (median of 5) and {during * 1000:.0f} ms "
            f"while a {len(tarball) / 2**20:.0f} MiB tarball that inflates to 8 GiB was being "
            f"published: **{during / quiet:.2f}x**. The publish answered {published['status']} "
            "(the README search stops at 32 MiB inflated, outside the registry's lock).\n")


if __name__ == "__main__":
    print("## Hostile requests (`benches/abuse.py`)\n")
    print("Peak resident memory of a release build (VmHWM), one registry for both rows:\n")
    print("| request | peak memory | |\n|---|---|---|")
    print(memory())
    print(bomb())
