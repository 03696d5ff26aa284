#!/bin/bash
# What the operations features cost (BENCHMARKS.md "Operations features: cost"):
# 1. Throughput at the shipped defaults (HTTP server on, agent notices on, webhooks and
#    $events off) against the same broker before those features (BEFORE=path to a supermq
#    binary built at the last commit without them), QoS 1 1:1 and 20-client mesh.
# 2. Connection churn (connect, subscribe, disconnect, one client after another) without and
#    with a webhook on client.connected and client.disconnected, POSTed to a local receiver.
# Needs `cargo build --release --bin supermq --bin supermq-load --bench durable_queues`.
set -u
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SMQ=$ROOT/target/release/supermq
BEFORE=${BEFORE:?set BEFORE to the earlier supermq binary}
LOAD=$ROOT/target/release/supermq-load
DQ=$(ls -t "$ROOT"/target/release/deps/durable_queues-* | grep -v '\.d$' | head -1)
PORT=18880
export RUST_BACKTRACE=0

run_load() { # label binary extra-config args...
    local label=$1 bin=$2 extra=$3; shift 3
    local d; d=$(mktemp -d)
    printf '[[listener]]\nbind = "127.0.0.1:%s"\n[persistence]\ndir = "%s/data"\n%b' $PORT "$d" "$extra" > "$d/s.conf"
    "$bin" -c "$d/s.conf" >/dev/null 2>&1 & local pid=$!
    sleep 0.5
    local out
    out=$($LOAD --port $PORT --json --keep-alive 600 --size 1024 --broker-pid $pid "$@" 2>/dev/null | tail -1)
    kill $pid; wait $pid 2>/dev/null; rm -rf "$d"
    echo "$label $(echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(round(d["delivered_per_s"]), d["lost"], d["duplicated"])')"
}

run_churn() { # label extra-config
    local label=$1 extra=$2
    local d; d=$(mktemp -d)
    printf '[[listener]]\nbind = "127.0.0.1:%s"\n[persistence]\nenabled = false\n%b' $PORT "$extra" > "$d/s.conf"
    "$SMQ" -c "$d/s.conf" >/dev/null 2>&1 & local pid=$!
    sleep 0.5
    echo "$label $($DQ setup $PORT 5000)"
    kill $pid; wait $pid 2>/dev/null; rm -rf "$d"
}

for rep in 1 2 3; do
    run_load "before-1to1" "$BEFORE" "" --scenario one-to-one --qos 1 --duration 4s
    run_load "after-1to1" "$SMQ" "" --scenario one-to-one --qos 1 --duration 4s
    run_load "before-mesh" "$BEFORE" "" --scenario mesh --qos 1 --duration 4s
    run_load "after-mesh" "$SMQ" "" --scenario mesh --qos 1 --duration 4s
done

# A webhook receiver answering 200 to every POST.
HOOK_PORT=18881
python3 - "$HOOK_PORT" <<'PY' &
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200); self.send_header("content-length", "0"); self.end_headers()
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
HOOK_PID=$!
sleep 0.5
HOOK="[[webhook]]\nurl = \"http://127.0.0.1:$HOOK_PORT/hook\"\nevents = [\"client.connected\", \"client.disconnected\"]\n"
for rep in 1 2 3; do
    run_churn "churn-no-webhook" ""
    run_churn "churn-webhook" "$HOOK"
done
kill $HOOK_PID
