#!/usr/bin/env bash
# Against Verdaccio: authenticated `GET /-/whoami` on the example registry and on Verdaccio,
# with the same wrk settings, alternating targets round by round. Writes machine-readable
# `peers …` lines to stdout (benches/run-all keeps them for benches/report.py) and
# progress to stderr. Everything listens on 127.0.0.1; Verdaccio has no uplinks.
#
# Verdaccio is installed from the npm registry into $CARGO_TARGET_DIR/peers/verdaccio
# (default target/), pinned, and reused while the pinned version is the one installed.
# Environment: TOKENGATE_PEER_ROUNDS (default 3), TOKENGATE_PEER_SECONDS (each run, default
# 5), TOKENGATE_PEER_LEGACY_SECONDS (each run against Verdaccio's legacy mode, default 60).
set -euo pipefail
cd "$(dirname "$0")/.."

verdaccio_version=6.8.0
# verdaccio-audit asks for node-fetch's `cjs` dist-tag; issue #15 found that Verdaccio 6.8
# needs 2.7.0 there to start under Node 20.
node_fetch_version=2.7.0
rounds=${TOKENGATE_PEER_ROUNDS:-3}
seconds=${TOKENGATE_PEER_SECONDS:-5}
# Legacy mode answers a few requests a second, and a closed-loop run loses the requests in
# flight when it stops: a longer run keeps that loss small next to what it counts.
legacy_seconds=${TOKENGATE_PEER_LEGACY_SECONDS:-60}
threads=1
connections=16
# wrk's default (2 s) would count legacy mode's queued requests as timeouts.
timeout_s=60
user=bench

die() {
    echo "peers: error: $*" >&2
    exit 1
}
say() { echo "peers: $*" >&2; }

command -v wrk >/dev/null || die "wrk is required (Debian: apt-get install wrk)"
command -v node >/dev/null || die "Node.js is required to run Verdaccio"
command -v npm >/dev/null || die "npm is required to install Verdaccio and to create the tokens"
command -v curl >/dev/null || die "curl is required"
command -v python3 >/dev/null || die "python3 is required"
for n in "$rounds" "$seconds" "$legacy_seconds"; do
    [[ $n =~ ^[1-9][0-9]*$ ]] || die "rounds and seconds must be whole numbers above 0, not '$n'"
done

target=${CARGO_TARGET_DIR:-target}
# Absolute, so that paths built on it hold wherever they are used.
target=$(mkdir -p "$target" && cd "$target" && pwd)
install=$target/peers/verdaccio
work=$(mktemp -d)
pids=()
# The running wrk, if any; kept apart from `pids` so that a finished one's id, which the
# system may give to another process, is never killed.
wrk_pid=
cleanup() {
    for pid in $wrk_pid "${pids[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- Verdaccio, pinned, into the target folder -------------------------------------------
installed() {
    node -p 'require(process.argv[1]).version' "$install/node_modules/verdaccio/package.json" \
        2>/dev/null || true
}
if [[ $(installed) != "$verdaccio_version" ]]; then
    say "installing Verdaccio $verdaccio_version into $install"
    rm -rf "$install"
    mkdir -p "$install"
    cat >"$install/package.json" <<EOF
{
  "name": "tokengate-peers",
  "private": true,
  "description": "Verdaccio for benches/peers.sh; generated, not part of tokengate",
  "dependencies": { "verdaccio": "$verdaccio_version" },
  "overrides": { "node-fetch": "$node_fetch_version" }
}
EOF
    (cd "$install" && npm install --no-audit --no-fund --loglevel=error >&2) ||
        die "npm install of verdaccio@$verdaccio_version failed"
    [[ $(installed) == "$verdaccio_version" ]] || die "Verdaccio $verdaccio_version did not install"
fi
verdaccio=$install/node_modules/verdaccio/bin/verdaccio
# Every copy of node-fetch in the tree, hoisted or not, must be the pinned one.
fetch_versions=$(cd "$install" && npm ls --all --parseable --long node-fetch |
    sed -n 's/.*:node-fetch@\([^:]*\).*/\1/p' | sort -u) || die "npm ls failed in $install"
[[ $fetch_versions == "$node_fetch_version" ]] ||
    die "node-fetch in $install is '$fetch_versions', not $node_fetch_version: delete $install"

say "building the example registry (release)"
cargo build --release -p tokengate-registry >&2
registry=$target/release/registry

# --- helpers -------------------------------------------------------------------------------
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits until `url`/-/ping answers, or fails with the server's log.
wait_ready() {
    local url=$1 pid=$2 log=$3
    for _ in $(seq 1 300); do
        kill -0 "$pid" 2>/dev/null || die "the server for $url exited: $(tail -n 20 "$log")"
        if curl -sf -o /dev/null "${url}-/ping"; then
            return
        fi
        sleep 0.2
    done
    die "no answer from $url within 60 s: $(tail -n 20 "$log")"
}

# Sets `started` to the server's URL. Not called as $(…): the pid must reach `pids`.
start_verdaccio() {
    local mode=$1 dir=$work/verdaccio-$1 port api
    port=$(free_port)
    mkdir -p "$dir"
    : >"$dir/log"
    case $mode in
        # Login and `npm token create` return a JWT signed with the storage's secret.
        jwt) api=$'    jwt:\n      sign:\n        expiresIn: 7d' ;;
        # No jwt for the API: tokens are the AES-encrypted credentials.
        legacy) api='    legacy: true' ;;
    esac
    cat >"$dir/config.yaml" <<EOF
storage: $dir/storage
auth:
  htpasswd:
    file: $dir/htpasswd
    max_users: 100
# No uplinks: nothing leaves the machine.
uplinks: {}
packages:
  '**':
    access: \$authenticated
    publish: \$authenticated
security:
  api:
$api
web:
  enable: false
# error, not info or warn: logging each request (legacy mode warns about every slow
# password check) would measure the logger.
log: { type: stdout, format: json, level: error }
EOF
    NODE_ENV=production node "$verdaccio" --config "$dir/config.yaml" --listen "127.0.0.1:$port" \
        >"$dir/log" 2>&1 &
    pids+=($!)
    wait_ready "http://127.0.0.1:$port/" "$!" "$dir/log"
    started=http://127.0.0.1:$port/
}

# Sets `started`, as start_verdaccio does.
start_registry() {
    local log=$work/registry.log url=
    # Made here: the background child opens it only when it gets to run.
    : >"$log"
    RUST_LOG=error "$registry" --memory --listen 127.0.0.1:0 >"$log" 2>&1 &
    local pid=$!
    pids+=("$pid")
    # Its first line names the address it bound.
    for _ in $(seq 1 100); do
        url=$(sed -n '1s/.* \(http:[^ ]*\)$/\1/p' "$log")
        [[ -n $url ]] && break
        kill -0 "$pid" 2>/dev/null || die "the registry exited: $(cat "$log")"
        sleep 0.1
    done
    [[ -n $url ]] || die "the registry did not say where it listens: $(cat "$log")"
    wait_ready "$url" "$pid" "$log"
    started=$url
}

password=$(python3 -c 'import secrets; print(secrets.token_urlsafe(18))')

# The user, made the way `npm adduser` does (npm-profile's adduserCouch: this PUT, this
# body); prints the session token the server answers with.
add_user() {
    local url=$1
    curl -sf -X PUT -H 'content-type: application/json' \
        --data "{\"_id\":\"org.couchdb.user:$user\",\"name\":\"$user\",\"password\":\"$password\",\"email\":\"$user@example.com\",\"type\":\"user\",\"roles\":[],\"date\":\"$(date -u +%Y-%m-%dT%H:%M:%S.000Z)\"}" \
        "${url}-/user/org.couchdb.user:$user" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])' ||
        die "adding the user on $url failed"
}

# `npm token create` (for every package, read-write: npm 11 sends no permission unless
# told one, which the registry refuses) as a logged-in user, in a sandbox (own home, cache and config), the
# password from the environment rather than a prompt; prints the new token. Not --json:
# npm redacts npm_… tokens there.
npm_token() {
    local url=$1 session=$2 name=$3 out
    mkdir -p "$work/npm-home" "$work/npm-cache"
    printf '%s:_authToken=%s\n' "${url#http:}" "$session" >"$work/$name.npmrc"
    out=$(env -i PATH="$PATH" HOME="$work/npm-home" npm_config_userconfig="$work/$name.npmrc" \
        npm_config_cache="$work/npm-cache" npm_config_registry="$url" \
        npm_config_update_notifier=false npm_config_password="$password" \
        npm token create --packages-and-scopes-permission=read-write 2>&1) ||
        die "npm token create on $url failed: $out"
    sed -n 's/^Created token //p' <<<"$out"
}

# Before measuring: the token gets 200 naming the user, and a wrong token does not name
# the user (Verdaccio answers an anonymous 200 `{}` there, the registry 401). The size of
# the good response is what every measured response must have.
declare -A expected
check() {
    local name=$1 url=$2 token=$3 ok wrong status head body
    ok=$(curl -s -o "$work/body" -w '%{http_code} %{size_header} %{size_download}' \
        -H "Authorization: Bearer $token" "${url}-/whoami")
    read -r status head body <<<"$ok"
    [[ $status == 200 ]] || die "$name: /-/whoami with the token answered $status: $(cat "$work/body")"
    python3 -c 'import json, sys; sys.exit(json.load(open(sys.argv[1])).get("username") != sys.argv[2])' \
        "$work/body" "$user" || die "$name: /-/whoami does not name $user: $(cat "$work/body")"
    expected[$name]=$((head + body))
    # The same token with its middle character changed (the last one can be base64
    # padding, which decoding ignores).
    local half=$((${#token} / 2)) other=A
    [[ ${token:half:1} == A ]] && other=B
    wrong=$(curl -s -o "$work/body" -w '%{http_code}' \
        -H "Authorization: Bearer ${token:0:half}$other${token:half+1}" "${url}-/whoami")
    if python3 -c 'import json, sys; sys.exit(json.load(open(sys.argv[1])).get("username") != sys.argv[2])' \
        "$work/body" "$user" 2>/dev/null; then
        die "$name: a wrong token was accepted as $user"
    fi
    echo "peers check $name 200 ${expected[$name]} $wrong"
}

# --- the servers, the users, the tokens ----------------------------------------------------
say "starting the example registry and Verdaccio (JWT mode, legacy mode)"
start_registry
registry_url=$started
start_verdaccio jwt
jwt_url=$started
start_verdaccio legacy
legacy_url=$started

declare -A url token
session=$(add_user "$registry_url")
url[registry]=$registry_url
token[registry]=$(npm_token "$registry_url" "$session" registry)
session=$(add_user "$jwt_url")
url[verdaccio-jwt]=$jwt_url
token[verdaccio-jwt]=$(npm_token "$jwt_url" "$session" verdaccio-jwt)
# The login's own JWT, which carries no token key: no token lookup on each request.
url[verdaccio-jwt-login]=$jwt_url
token[verdaccio-jwt-login]=$session
session=$(add_user "$legacy_url")
url[verdaccio-legacy]=$legacy_url
token[verdaccio-legacy]=$(npm_token "$legacy_url" "$session" verdaccio-legacy)
targets=(registry verdaccio-jwt verdaccio-jwt-login verdaccio-legacy)
for name in "${targets[@]}"; do
    [[ -n ${token[$name]} ]] || die "$name: no token"
done

echo "peers version verdaccio $(installed)"
echo "peers version node-fetch $fetch_versions"
echo "peers version node $(node -v)"
echo "peers version npm $(npm -v)"
echo "peers version wrk $(wrk -v 2>&1 | sed -n '1s/^wrk \([^ ]*\).*/\1/p')"
echo "peers setting threads $threads"
echo "peers setting connections $connections"
echo "peers setting timeout_s $timeout_s"
echo "peers setting seconds $seconds"
echo "peers setting legacy_seconds $legacy_seconds"
echo "peers setting rounds $rounds"
# What the runs' Verdaccio really used: the password hash (bcrypt and its cost) and the
# secret's length (32 characters selects aes-256-ctr for legacy tokens).
for mode in jwt legacy; do
    echo "peers seen verdaccio-$mode hash_prefix $(cut -d: -f2 "$work/verdaccio-$mode/htpasswd" | cut -c1-7)"
    echo "peers seen verdaccio-$mode secret_length $(python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1]))["secret"]))' "$work/verdaccio-$mode/storage/.verdaccio-db.json")"
done
for name in "${targets[@]}"; do
    check "$name" "${url[$name]}" "${token[$name]}"
done

# --- the measurement -------------------------------------------------------------------------
# wrk's done() hook prints exact counts (its own summary rounds the bytes).
cat >"$work/report.lua" <<'EOF'
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("wrk_result %d %d %d %d %d %d %d %d %d %d\n",
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
EOF
for round in $(seq 1 "$rounds"); do
    for name in "${targets[@]}"; do
        length=$seconds
        [[ $name == verdaccio-legacy ]] && length=$legacy_seconds
        say "round $round/$rounds: $name, ${length} s"
        # In the background and waited for, so that an interrupt is handled at once rather
        # than when wrk ends.
        wrk -t"$threads" -c"$connections" -d"${length}s" --timeout "${timeout_s}s" \
            -s "$work/report.lua" -H "Authorization: Bearer ${token[$name]}" \
            "${url[$name]}-/whoami" >"$work/wrk.out" 2>&1 &
        wrk_pid=$!
        wait "$wrk_pid" || die "wrk failed: $(cat "$work/wrk.out")"
        wrk_pid=
        read -r _ requests duration bytes e_connect e_read e_write non_2xx e_timeout p50 p99 \
            < <(grep '^wrk_result ' "$work/wrk.out") || die "no result from wrk: $(cat "$work/wrk.out")"
        ((e_connect + e_read + e_write + e_timeout == 0)) ||
            die "$name: socket errors (connect $e_connect, read $e_read, write $e_write, timeout $e_timeout)"
        ((non_2xx == 0)) || die "$name: $non_2xx responses were not 2xx or 3xx"
        ((requests > 0)) || die "$name: no request completed in ${length} s"
        # Every response must be the size of the authenticated one: an anonymous answer
        # (Verdaccio's 200 `{}`) is shorter. A response cut off by the stop may add a part.
        size=${expected[$name]}
        ((bytes >= requests * size && bytes < (requests + 1) * size)) ||
            die "$name: $bytes bytes for $requests responses of $size bytes: some were not the user's"
        echo "peers run $round $name $requests $duration $p50 $p99"
    done
done
