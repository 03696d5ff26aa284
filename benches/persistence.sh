#!/bin/bash
# Durable store figures (BENCHMARKS.md "Durable store: first figures"): supermq with
# [persistence] sync = "always" against Mosquitto with persistence true, a persistent-session
# subscriber, 1:1 QoS 1 at full speed and at 10,000 msgs/s. Needs
# `cargo build --release --bin supermq --bin supermq-load` and /usr/sbin/mosquitto.
# Prints: label delivered/s lost duplicated p50_us p99_us. REPS (3) sets the repetitions.
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
LOAD=$ROOT/target/release/supermq-load
SMQ=$ROOT/target/release/supermq
run_smq() { # label persistence(true/false) args...
  local label=$1; shift; local pers=$1; shift
  local d=$(mktemp -d); local port=18860
  printf '[[listener]]\nbind = "127.0.0.1:%s"\n[log]\nlevel="warn"\n[sys]\ninterval="0s"\n[persistence]\nenabled = %s\ndir = "%s/data"\nsync = "always"\n' $port $pers $d > $d/s.conf
  $SMQ -c $d/s.conf >/dev/null 2>&1 & local pid=$!; sleep 0.5
  # A broker that could not bind (a port held by another process) must not let the load
  # go to whatever holds the port.
  if ! kill -0 $pid 2>/dev/null; then echo "$label: supermq did not start" >&2; exit 1; fi
  local out=$($LOAD --port $port --json --keep-alive 600 --window 20 --size 1024 --broker-pid $pid "$@" 2>/dev/null | tail -1)
  kill $pid; wait $pid 2>/dev/null; rm -rf $d
  echo "$label $(echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(round(d["delivered_per_s"]), d["lost"], d["duplicated"], round(d["lat_p50_us"]), round(d["lat_p99_us"]))')"
}
run_mosq() {
  local label=$1; shift
  local d=$(mktemp -d); local port=18861
  printf 'listener %s 127.0.0.1\nallow_anonymous true\nset_tcp_nodelay true\nsys_interval 0\npersistence true\npersistence_location %s/\nlog_dest none\n' $port $d > $d/m.conf
  /usr/sbin/mosquitto -c $d/m.conf >/dev/null 2>&1 & local pid=$!; sleep 0.5
  if ! kill -0 $pid 2>/dev/null; then echo "$label: mosquitto did not start" >&2; exit 1; fi
  local out=$($LOAD --port $port --json --keep-alive 600 --window 20 --size 1024 --broker-pid $pid "$@" 2>/dev/null | tail -1)
  kill $pid; wait $pid 2>/dev/null; rm -rf $d
  echo "$label $(echo "$out" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(round(d["delivered_per_s"]), d["lost"], d["duplicated"], round(d["lat_p50_us"]), round(d["lat_p99_us"]))')"
}
for rep in $(seq 1 "${REPS:-3}"); do
  run_smq "smq-durable-1to1" true --scenario one-to-one --qos 1 --persistent --duration 4s
  run_mosq "mosq-persist-1to1" --scenario one-to-one --qos 1 --persistent --duration 4s
  run_smq "smq-clean-1to1" false --scenario one-to-one --qos 1 --duration 4s
  run_smq "smq-durable-10k" true --scenario one-to-one --qos 1 --persistent --rate 10000 --duration 4s
  run_mosq "mosq-persist-10k" --scenario one-to-one --qos 1 --persistent --rate 10000 --duration 4s
done
# Clean sessions only: the store on (the default) against off, 20-client QoS 1 mesh.
for rep in $(seq 1 "${REPS:-3}"); do
  run_smq "smq-mesh-store-on" true --scenario mesh --qos 1 --duration 4s
  run_smq "smq-mesh-store-off" false --scenario mesh --qos 1 --duration 4s
done
