#!/bin/bash
# Offline queues of persistent sessions, supermq (shipped persistence defaults: sync =
# "always", memory_window 64, max_memory 64 MiB) against Mosquitto (persistence true): SESS
# sessions subscribe and go offline, 4 publishers queue PER messages of SIZE bytes for each
# (QoS 1, window 20), the broker is restarted (supermq killed with SIGKILL; Mosquitto stopped
# with SIGTERM, since it writes its store only then or every autosave_interval), then the
# sessions reconnect 8 at a time and take everything. Needs
# `cargo build --release --bin supermq --bench durable_queues` and /usr/sbin/mosquitto.
# Prints per broker: fill and drain rates, restart time, RSS after the fill, after the
# restart and after the drain, and the store's size on disk. BROKERS=supermq skips Mosquitto.
set -u
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
SESS=${SESS:-10000}
PER=${PER:-100}
SIZE=${SIZE:-1024}
SMQ=$ROOT/target/release/supermq
export RUST_BACKTRACE=0
DQ=$(ls -t "$ROOT"/target/release/deps/durable_queues-* | grep -v '\.d$' | head -1)
PORT=18870

wait_port() {
    for _ in $(seq 1 6000); do
        (echo >/dev/tcp/127.0.0.1/$PORT) 2>/dev/null && return 0
        sleep 0.01
    done
    echo "broker never listened" >&2
    exit 1
}
rss_mb() { awk '/VmRSS/ {printf "%.0f", $2/1024}' /proc/$1/status; }
field() { python3 -c "import json,sys; d=json.loads(sys.argv[1]); print(d[sys.argv[2]])" "$1" "$2"; }

run() { # name start-command stop-signal
    local name=$1 start=$2 sig=$3 d
    d=$(mktemp -d)
    # Mosquitto started as root runs as its own user, which must be able to write here.
    chmod 777 "$d"
    export D=$d
    eval "$start" & local pid=$!
    wait_port
    # Listening, but this broker's? One that could not start must not let the load go to
    # whatever holds the port.
    if ! kill -0 $pid 2>/dev/null; then echo "$name did not start" >&2; exit 1; fi
    echo "$name: setup $($DQ setup $PORT "$SESS")" >&2
    local fill
    fill=$($DQ fill $PORT "$SESS" "$PER" "$SIZE")
    echo "$name: $fill rss $(rss_mb $pid) MB" >&2
    local rss_fill
    rss_fill=$(rss_mb $pid)
    kill -"$sig" $pid
    wait $pid 2>/dev/null
    local t0=$EPOCHREALTIME
    eval "$start" & pid=$!
    # Until the first CONNACK: the port may accept before the broker serves.
    $DQ ready $PORT >/dev/null
    local restart
    restart=$(python3 -c "print(round(($EPOCHREALTIME - $t0) * 1000))")
    local rss_restart
    rss_restart=$(rss_mb $pid)
    echo "$name: restarted in $restart ms, rss $rss_restart MB" >&2
    local drain
    drain=$($DQ drain $PORT "$SESS" "$PER")
    echo "$name: $drain" >&2
    local rss_drain
    rss_drain=$(rss_mb $pid)
    local disk
    disk=$(du -sm "$d" | cut -f1)
    kill $pid
    wait $pid 2>/dev/null
    rm -rf "$d"
    echo "$name sessions=$SESS per=$PER size=$SIZE fill_per_s=$(field "$fill" per_s)" \
        "drain_per_s=$(field "$drain" per_s) drain_bad=$(field "$drain" bad)" \
        "restart_ms=$restart rss_fill_mb=$rss_fill rss_restart_mb=$rss_restart" \
        "rss_drain_mb=$rss_drain disk_mb=$disk"
}

SMQ_START='printf "[[listener]]\nbind = \"127.0.0.1:$PORT\"\n[log]\nlevel = \"warn\"\n[sys]\ninterval = \"0s\"\n[limits]\nmax_connections = 100000\n[persistence]\ndir = \"$D/data\"\n" > $D/s.conf; exec $SMQ -c $D/s.conf >/dev/null 2>&1'
MOSQ_START='printf "listener $PORT 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\nsys_interval 0\npersistence true\npersistence_location $D/\nlog_dest none\nmax_queued_messages 1000\n" > $D/m.conf; exec /usr/sbin/mosquitto -c $D/m.conf >/dev/null 2>&1'

# BROKERS=supermq runs supermq alone (e.g. to vary SIZE at a fixed count).
case "${BROKERS:-both}" in
    supermq) run supermq "$SMQ_START" KILL ;;
    *)
        run supermq "$SMQ_START" KILL
        run mosquitto "$MOSQ_START" TERM
        ;;
esac
