#!/usr/bin/env python3
"""Side-by-side MQTT broker benchmark: supermq against Mosquitto (and rumqttd if installed).

For every measure and every repetition, each broker is started fresh on a free loopback port,
`supermq-load --json --broker-pid PID` is run against it, and the broker is stopped; brokers
alternate so that slow drifts of the machine hit all of them alike. Medians over the
repetitions go into BENCHMARKS.md, with the machine, the versions, every config file and the
exact load-generator commands. Raw results (one JSON object per run) are kept too.

Two profiles (`--profile raised|defaults|both`): "raised" gives every broker the same large
limits (MAX_QUEUED queued messages per client, unlimited in-flight window) and publishers a
window of 100; "defaults" runs each broker at its shipped limits, what users get, with
publishers that keep at most 20 messages unacknowledged as mosquitto_pub and paho do.

    cargo build --release --bin supermq --bin supermq-load
    python3 benches/compare.py            # both profiles, 3 repetitions of 5 s: ~35 minutes
    python3 benches/compare.py --quick    # 1 repetition of 2 s: a smoke run

Measures, per profile: delivered msgs/s, broker CPU and memory, lost, duplicated and
reordered messages for {1:1, 20:1 fan-in, 1:20 fan-out, 20-client mesh} x QoS 0/1 (and QoS 2
and 50- and 100-client meshes at QoS 1 in the defaults profile); broker peak memory with one
subscriber that never reads. Once, under the first profile: latency at a fixed 10,000
msgs/s (1:1, QoS 0 and 1); broker memory per idle connection.
"""

import argparse
import datetime
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from compare_brokers import (MAX_QUEUED, PROFILES, WINDOW, Mosquitto, Rumqttd, Supermq,
                             free_port, install_mosquitto, machine_busy_s, process_cpu_s, stop,
                             tail)

ROOT = Path(__file__).resolve().parent.parent

THROUGHPUT = [
    ("1:1", ["--scenario", "one-to-one"]),
    ("20:1 fan-in", ["--scenario", "fan-in", "--pubs", "20"]),
    ("1:20 fan-out", ["--scenario", "fan-out", "--subs", "20"]),
    ("20-client mesh", ["--scenario", "mesh", "--pubs", "20"]),
]
# QoS levels of the THROUGHPUT scenarios, and the larger meshes (clients, at QoS 1), per profile.
QOS = {"raised": (0, 1), "defaults": (0, 1, 2)}
LARGE_MESHES = {"raised": (), "defaults": (50, 100)}
PROFILE_TITLE = {"raised": "raised limits", "defaults": "shipped defaults"}
LATENCY_RATE = 10_000


# ----------------------------------------------------------------------------- runs

def throughput_measures(profile):
    """(label, supermq-load arguments) of every throughput measure of `profile`."""
    out = []
    for qos in QOS[profile]:
        for name, scen in THROUGHPUT:
            out.append((f"{name} QoS {qos}", scen + ["--qos", str(qos)]))
    for n in LARGE_MESHES[profile]:
        out.append((f"{n}-client mesh QoS 1",
                    ["--scenario", "mesh", "--pubs", str(n), "--qos", "1"]))
    return out


def run_once(args, broker, load_args, timeout, profile):
    """Starts `broker` under `profile`, runs the load generator with `load_args`, stops it."""
    with tempfile.TemporaryDirectory(prefix="supermq-compare-") as tmp:
        port = free_port()
        try:
            proc = broker.start(port, tmp, profile)
        except RuntimeError as e:
            return {"error": str(e)}
        # Keep-alive 600 s for every broker: rumqttd refuses 0, and no run lasts 900 s.
        cmd = [str(args.load), "--host", "127.0.0.1", "--port", str(port), "--json",
               "--broker-pid", str(proc.pid), "--keep-alive", "600",
               "--protocol", str(args.protocol)] + load_args
        # What the rest of the machine did meanwhile: everything busy that was neither the
        # broker nor the load generator.
        t0, busy0 = time.monotonic(), machine_busy_s()
        broker0 = process_cpu_s(proc.pid)
        kids0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
            lines = [l for l in out.stdout.splitlines() if l.startswith("{")]
            result = json.loads(lines[-1]) if lines else {
                "error": f"no output (exit {out.returncode}): {out.stderr.strip()[-300:]}"}
        except subprocess.TimeoutExpired:
            result = {"error": f"load generator timed out after {timeout} s"}
        except json.JSONDecodeError as e:
            result = {"error": f"unparsable output: {e}"}
        kids1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        busy1, broker1 = machine_busy_s(), process_cpu_s(proc.pid)
        wall = time.monotonic() - t0
        if None not in (busy0, busy1, broker0, broker1) and wall > 0:
            ours = (kids1.ru_utime + kids1.ru_stime - kids0.ru_utime - kids0.ru_stime
                    + broker1 - broker0)
            other = max(0.0, busy1 - busy0 - ours)
            result["other_cpu_share"] = other / (wall * (os.cpu_count() or 1))
        if proc.poll() is not None:
            result.setdefault("errors", []).append(
                f"{broker.name} died during the run (exit {proc.returncode}): "
                + tail(proc.log_path))
        stop(proc)
        return result


def measure(args, brokers, label, load_args, seconds, profile):
    """Runs one measure `args.reps` times per broker under `profile`, alternating brokers."""
    runs = {b.name: [] for b in brokers}
    timeout = seconds + 120
    for rep in range(args.reps):
        for b in brokers:
            r = run_once(args, b, load_args, timeout, profile)
            r["measure"] = label
            r["profile"] = profile
            r["broker_name"] = b.name
            r["rep"] = rep
            runs[b.name].append(r)
            args.all_runs.append(r)
            with open(args.raw, "a") as f:
                f.write(json.dumps(r) + "\n")
            summary = r.get("error") or short(r)
            print(f"  {profile:<8} {label:<28} {b.name:<10} rep {rep + 1}/{args.reps}: {summary}", flush=True)
    return runs


def short(r):
    if r.get("scenario") == "idle":
        return f"{fmt(r.get('bytes_per_conn'), 0)} B/conn, {r.get('conns_opened')} conns"
    s = (f"{fmt(r.get('delivered_per_s'), 0)} msgs/s, p99 {fmt(r.get('lat_p99_us'), 0)} us, "
         f"lost {r.get('lost')}, dup {r.get('duplicated')}, "
         f"peak rss {fmt(kb_mb(r.get('broker_rss_peak_kb')), 1)} MB")
    if "other_cpu_share" in r:
        s += f", other processes {r['other_cpu_share']:.0%} CPU"
    if r.get("errors"):
        s += f"  [{len(r['errors'])} errors: {r['errors'][0]}]"
    return s


def median(runs, key):
    vals = [r[key] for r in runs if isinstance(r.get(key), (int, float))]
    return statistics.median(vals) if vals else None


def kb_mb(v):
    return None if v is None else v / 1024


def fmt(v, digits=1):
    if v is None:
        return "–"
    if digits == 0:
        return f"{v:,.0f}"
    return f"{v:,.{digits}f}"


def ratio(a, b):
    if a is None or b in (None, 0):
        return "–"
    return f"{a / b:.2f}"


# ----------------------------------------------------------------------------- report

def machine():
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "unknown"
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return {"nproc": os.cpu_count(), "cpu": cpu, "kernel": platform.release(), "memory": mem}


def git_rev():
    try:
        rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "src"],
                               capture_output=True, text=True).stdout.strip()
        return rev + (" (src/ modified)" if dirty else "")
    except OSError:
        return "unknown"


def noise(runs):
    shares = [r["other_cpu_share"] for r in runs if "other_cpu_share" in r]
    if not shares:
        return "unknown"
    return (f"median {statistics.median(shares):.0%}, max {max(shares):.0%}, "
            f"{sum(s > 0.1 for s in shares)} of {len(shares)} runs above 10 %")


def table(header, rows):
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def per_broker_table(results, brokers, first_col, metric, digits, scale=None):
    """One row per measure: the median of `metric` per broker, and supermq/Mosquitto."""
    names = [b.name for b in brokers]
    header = [first_col] + names
    if "mosquitto" in names and "supermq" in names:
        header.append("supermq / Mosquitto")
    rows = []
    for label, runs in results:
        vals = {}
        for n in names:
            v = median(runs[n], metric)
            vals[n] = scale(v) if (scale and v is not None) else v
        row = [label] + [fmt(vals[n], digits) for n in names]
        if len(header) > len(names) + 1:
            row.append(ratio(vals["supermq"], vals["mosquitto"]))
        rows.append(row)
    return table(header, rows)


def integrity_table(results, brokers):
    rows = []
    for label, runs in results:
        for b in brokers:
            rs = runs[b.name]
            rows.append([label, b.name,
                         fmt(median(rs, "delivered"), 0), fmt(median(rs, "expected"), 0),
                         fmt(median(rs, "lost"), 0), fmt(median(rs, "duplicated"), 0),
                         fmt(median(rs, "reordered"), 0)])
    return table(["measure", "broker", "delivered", "expected", "lost", "duplicated",
                  "reordered"], rows)


def threads_text(t):
    return "its default, one connection thread per core" if t == 0 else f"{t} connection thread(s)"


def profile_text(args, profile):
    """What `profile` sets for every broker and the load generator, in words."""
    window = (f"Publishers of the load generator keep at most {WINDOW[profile]} QoS 1/2 "
              f"messages unacknowledged (`--window {WINDOW[profile]}`)")
    if profile == "raised":
        inflight = ("unlimited (supermq: 65,535, rumqttd: 65,535)" if args.inflight == 0
                    else f"{args.inflight}")
        return (f"**raised** (sections marked \"{PROFILE_TITLE[profile]}\"): equivalent, "
                f"raised limits for every broker: at most {MAX_QUEUED:,} queued messages per "
                f"client, in-flight window {inflight}, no queued-bytes bound; supermq's "
                "slow-consumer disconnect is off, as Mosquitto has none. "
                f"{window}, the load generator's default.")
    return (f"**defaults** (sections marked \"{PROFILE_TITLE[profile]}\"): each broker at "
            "its shipped limits, what users get (see the config files below). "
            f"{window}, as mosquitto_pub and paho do.")


def config_files(brokers, profiles):
    """Markdown: each kind of broker's config file and what each profile adds to it."""
    out = ["Each broker's config file is its part below (PORT is the run's port), followed "
           "by what the profile adds."]
    first = {}
    for b in brokers:
        first.setdefault(type(b), b)
    for b in first.values():
        cmd = " ".join([Path(b.path).name] + b.command(Path(b.conf_name))[1:])
        note = ("; `worker_threads` is that of each supermq column, see above"
                if isinstance(b, Supermq) else "")
        out += ["", f"**{b.name}** (`{cmd}`{note}):", "", "```", b.base_text("PORT").rstrip(),
                "```"]
        for profile in profiles:
            extra = b.profile_text(profile)
            shipped = b.shipped if profile == "defaults" else ""
            if extra:
                out += ["", f"The {profile} profile adds" + (f" ({shipped})" if shipped else "")
                        + ":", "", "```", extra.rstrip(), "```"]
            else:
                out += ["", f"The {profile} profile adds nothing"
                        + (f": {shipped}." if shipped else ".")]
    return "\n".join(out)


def throughput_sections(results, brokers, profile):
    """The (title, intro, table) sections of the throughput measures of `profile`."""
    at = PROFILE_TITLE[profile]
    window = WINDOW[profile]
    if profile == "defaults":
        integrity = ("Medians per run, each broker at its shipped limits. QoS 0 may "
                     "legitimately lose messages under overload; QoS 1 and 2 must not lose "
                     "any that were acknowledged, nor duplicate any (QoS 2). Mosquitto "
                     "acknowledges a publish on receipt and drops what no longer fits a "
                     "subscriber's queue (max_queued_messages 1000); supermq paces the "
                     "publishers of a full queue instead, until its subscriber has taken "
                     "nothing for session.stall_timeout (2 s), and drops after that.")
    else:
        integrity = ("Medians per run. QoS 0 may legitimately lose messages under "
                     "overload; QoS 1 must not lose any that were acknowledged.")
    return [
        (f"Throughput, {at}",
         "Delivered messages per second (higher is better), publishers as fast as the "
         f"broker takes them; QoS 1 and 2 publishers keep at most {window} messages "
         "unacknowledged.",
         per_broker_table(results, brokers, "scenario", "delivered_per_s", 0)),
        (f"Delivery integrity, {at}", integrity, integrity_table(results, brokers)),
        (f"Broker CPU per million delivered messages, {at}",
         "CPU seconds (user + system) per 10⁶ deliveries; lower is better.",
         per_broker_table(results, brokers, "scenario", "broker_cpu_s_per_m", 2)),
        (f"Broker peak memory under load, {at}",
         "Peak resident set size in MB during the throughput runs; lower is better.",
         per_broker_table(results, brokers, "scenario", "broker_rss_peak_kb", 1,
                          scale=kb_mb)),
        (f"Latency under full load, {at}",
         "End-to-end p99 latency in milliseconds while publishing as fast as possible "
         "(queueing included); lower is better.",
         per_broker_table(results, brokers, "scenario", "lat_p99_us", 2,
                          scale=lambda v: v / 1000)),
    ]


def stall_section(args, brokers, record, profile):
    """Runs the never-reading-subscriber measure under `profile`; returns its section."""
    sd = f"{args.stall_duration:g}s"
    label = f"1:1 QoS 1 + 1 stalled subscriber, {sd}"
    load_args = ["--scenario", "one-to-one", "--qos", "1", "--size", "1024",
                 "--window", str(WINDOW[profile]), "--stall-subs", "1", "--duration", sd]
    results = [(label, record(label, load_args, args.stall_duration, profile))]
    body = "\n\n".join([
        "**Broker peak RSS** (MB)\n\n" + per_broker_table(
            results, brokers, "measure", "broker_rss_peak_kb", 1, scale=kb_mb),
        "**Delivered to the live subscriber** (msgs/s)\n\n" + per_broker_table(
            results, brokers, "measure", "delivered_per_s", 0),
        "**Live subscriber p99 latency** (ms)\n\n" + per_broker_table(
            results, brokers, "measure", "lat_p99_us", 2, scale=lambda v: v / 1000),
        "**Delivery integrity**\n\n" + integrity_table(results, brokers),
    ])
    bound = (f"{MAX_QUEUED:,} messages for every broker" if profile == "raised" else
             "each broker's shipped one: 1,000 messages for supermq and Mosquitto")
    return (f"A subscriber that never reads, {PROFILE_TITLE[profile]}",
            "A full-speed QoS 1 publisher, one live subscriber and one that subscribes and "
            "then never reads: what the broker buffers for it (queue bound: "
            f"{bound}) and whether the live subscriber suffers. Lost, duplicated and reordered "
            "count the live subscriber's messages only.", body)


def write_report(args, brokers, sections, commands, started, problems):
    m = machine()
    lines = [
        "# Benchmarks: supermq and Mosquitto side by side",
        "",
        f"Generated by `benches/compare.py` on {started:%Y-%m-%d %H:%M} UTC in "
        f"{(datetime.datetime.now(datetime.timezone.utc) - started).total_seconds() / 60:.1f} "
        "minutes. Do not edit by hand: run the script again.",
        "",
    ]
    if args.quick:
        lines += ["> **Quick smoke run** (1 repetition, 2 s per run): numbers are indicative "
                  "only. Run without `--quick` for the published medians.", ""]
    lines += [
        "## Machine and versions",
        "",
        f"- CPU: {m['cpu']}, {m['nproc']} logical CPUs; memory {m['memory']}; "
        f"kernel {m['kernel']}",
        f"- CPU share used by other processes during the runs: {noise(args.all_runs)} "
        "(anything well above 0 % makes every number here noisier)",
    ]
    for b in brokers:
        lines.append(f"- {b.name}: `{b.version()}` ({b.path})")
    lines += [
        f"- supermq source: {git_rev() if args.supermq.resolve().is_relative_to(ROOT) else 'binary given with --supermq'}",
        f"- load generator: `{args.load}`, single-threaded, on the same machine",
        "",
        "## Method",
        "",
        f"Each run starts the broker fresh on a free loopback port, runs the load generator "
        f"once, and stops the broker; brokers alternate, {args.reps} repetition(s) each, and "
        f"every table shows the **median**. Throughput runs publish for {args.duration} s; "
        "subscribers then keep receiving until everything has arrived, or nothing has "
        "arrived for 2 s, or 20 s have passed; anything missing then counts as lost. "
        "Payloads are 1,024 bytes.",
        "",
        "Every broker runs with TCP_NODELAY on, $SYS publishing off and no persistence, in "
        "every profile. supermq "
        f"runs {threads_text(args.supermq_threads[0])} in the `supermq` column (the ratios use "
        "it); Mosquitto is single-threaded by design"
        + "".join(f"; the `supermq ({'one per core' if t == 0 else t} threads)` column runs "
                  f"{threads_text(t)}" for t in args.supermq_threads[1:])
        + ". `engine.worker_threads` is the number of connection threads (src/engine.rs); "
        "on this 2-core machine the load generator needs the other core.",
        "",
        "Delivered msgs/s counts every copy to every subscriber, over the time from the first "
        "publish to the last delivery. Broker CPU is utime+stime from `/proc/PID/stat` over "
        "the run, per million delivered messages; peak RSS is the larger of the kernel's "
        "VmHWM and a 100 ms sampler. A message is lost when a publisher sent it and a "
        "subscriber that should have had it never did.",
        "",
        "### Profiles",
        "",
        "Limits differ by profile; every section says which one it ran under.",
        "",
    ]
    lines += [f"- {profile_text(args, pr)}" for pr in args.profiles]
    lines += ["", "### Config files", "", config_files(brokers, args.profiles), ""]
    for title, intro, body in sections:
        lines += [f"## {title}", ""]
        if intro:
            lines += [intro, ""]
        lines += [body, ""]
    lines += ["## Anomalies reported by the load generator", ""]
    if problems:
        lines += [f"- {p}" for p in problems]
    else:
        lines.append("None: no errors, no stalls, no broker exits.")
    lines += [
        "",
        "## Commands",
        "",
        "Each measure ran `supermq-load --host 127.0.0.1 --port PORT --json --broker-pid PID "
        f"--protocol {args.protocol}` with:",
        "",
        "```",
    ]
    lines += commands
    lines += [
        "```",
        "",
        "## How to reproduce",
        "",
        "```sh",
        "apt-get install -y mosquitto          # once",
        "cargo build --release --bin supermq --bin supermq-load",
        "python3 benches/compare.py            # or --quick for a 1-repetition smoke run",
        "```",
        "",
        "Options: `--profile raised|defaults|both`, `--reps N`, `--duration S`, "
        "`--only throughput,latency,idle,stall`, `--brokers supermq,mosquitto`, "
        "`--supermq-threads 1,0`, `--inflight N` (raised profile). rumqttd joins "
        "the comparison when a `rumqttd` binary is on PATH (`cargo install rumqttd`, "
        "config format 0.19+) or given with `--rumqttd PATH`. Raw per-run JSON goes to "
        f"`{args.raw.relative_to(ROOT) if args.raw.is_relative_to(ROOT) else args.raw}`.",
        "",
        "The load generator works against any MQTT 3.1.1 broker on its own, for example "
        "`target/release/supermq-load --port 1883 --scenario fan-out --subs 20 --qos 1 "
        "--duration 10s --broker-pid $(pidof mosquitto)`; see `supermq-load --help`.",
        "",
    ]
    # The cross-node section belongs to benches/cluster_bench.py: kept as it was.
    begin, end = "<!-- cluster: generated by benches/cluster_bench.py -->", "<!-- /cluster -->"
    old = args.out.read_text() if args.out.exists() else ""
    if begin in old and end in old:
        lines += [old[old.index(begin):old.index(end) + len(end)], ""]
    args.out.write_text("\n".join(lines))


# ----------------------------------------------------------------------------- main

def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--protocol", type=int, choices=(4, 5), default=4,
                   help="MQTT level every client speaks: 4 (3.1.1) or 5 (MQTT 5)")
    p.add_argument("--duration", type=float, default=5.0, help="seconds per throughput run")
    p.add_argument("--stall-duration", type=float, default=10.0)
    p.add_argument("--idle-conns", type=int, default=10_000)
    p.add_argument("--quick", action="store_true", help="1 repetition, 2 s runs")
    p.add_argument("--only", default="throughput,latency,idle,stall")
    p.add_argument("--brokers", default="supermq,mosquitto,rumqttd")
    p.add_argument("--supermq", type=Path, default=ROOT / "target/release/supermq")
    p.add_argument("--load", type=Path, default=ROOT / "target/release/supermq-load")
    p.add_argument("--mosquitto", type=Path,
                   default=Path(shutil.which("mosquitto") or "/usr/sbin/mosquitto"))
    p.add_argument("--rumqttd", type=Path, default=shutil.which("rumqttd"))
    p.add_argument("--supermq-threads", default="1,0",
                   help="supermq engine.worker_threads, comma-separated (0 = one per core): "
                        "the first is the `supermq` column the ratios use, each other one "
                        "adds a column")
    p.add_argument("--profile", choices=("raised", "defaults", "both"), default="both",
                   help="broker limits: raised (equal, large queues and windows), defaults "
                        "(each broker as shipped, publishers' window 20) or both")
    p.add_argument("--inflight", type=int, default=0,
                   help="outbound QoS 1/2 window per client in the raised profile "
                        "(0 = unlimited)")
    p.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    p.add_argument("--raw", type=Path, default=ROOT / "target/compare-results.jsonl")
    args = p.parse_args()
    if args.quick:
        args.reps, args.duration, args.stall_duration = 1, 2.0, 2.0
    only = set(args.only.split(","))
    args.profiles = PROFILES if args.profile == "both" else (args.profile,)
    # Measures that do not depend on queue bounds run once, under the first profile.
    first = args.profiles[0]

    for binary in (args.supermq, args.load):
        if not binary.exists():
            sys.exit(f"{binary} not found: cargo build --release --bin supermq --bin supermq-load")
    wanted = args.brokers.split(",")
    brokers = []
    threads = [int(t) for t in str(args.supermq_threads).split(",")]
    args.supermq_threads = threads
    if "supermq" in wanted:
        brokers.append(Supermq(args.supermq, args, threads[0]))
        for t in threads[1:]:
            label = "one per core" if t == 0 else f"{t}"
            brokers.append(Supermq(args.supermq, args, t, f"supermq ({label} threads)"))
    if "mosquitto" in wanted and not args.mosquitto.exists():
        install_mosquitto()
    if "mosquitto" in wanted:
        if args.mosquitto.exists():
            brokers.append(Mosquitto(args.mosquitto, args))
        else:
            print("mosquitto not found (apt-get install -y mosquitto): skipped")
    if "rumqttd" in wanted and args.rumqttd:
        brokers.append(Rumqttd(Path(args.rumqttd), args))

    # Idle connections need one descriptor each, in the load generator and in the broker;
    # both inherit this limit.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)

    args.raw.parent.mkdir(parents=True, exist_ok=True)
    args.raw.write_text("")
    started = datetime.datetime.now(datetime.timezone.utc)
    args.all_runs = []
    print(f"brokers: {', '.join(b.name for b in brokers)}; "
          f"profiles: {', '.join(args.profiles)}; reps {args.reps}; "
          f"{args.duration} s per run; open-files limit {soft}", flush=True)

    dur = f"{args.duration:g}s"
    sections, commands, problems = [], [], []

    def record(label, load_args, seconds, profile):
        commands.append(f"# {label} ({profile} profile)")
        commands.append(" ".join(load_args))
        runs = measure(args, brokers, label, load_args, seconds, profile)
        for name, rs in runs.items():
            for r in rs:
                where = f"{label} ({profile}), {name}, rep {r['rep'] + 1}"
                for e in ([r["error"]] if "error" in r else []) + r.get("errors", []):
                    problems.append(f"{where}: {e}")
                # One core is all the load generator has: near it, the broker may be faster
                # than measured.
                busy = (r.get("loadgen_cpu_s") or 0) / max(r.get("elapsed_s") or 0, 1e-9)
                if busy > 0.9:
                    problems.append(f"{where}: load generator used {busy:.0%} of a core; "
                                    "try supermq-load --threads 2")
        return runs

    if "throughput" in only:
        for profile in args.profiles:
            results = []
            for label, scen in throughput_measures(profile):
                load_args = scen + ["--size", "1024", "--window", str(WINDOW[profile]),
                                    "--duration", dur]
                results.append((label, record(label, load_args, args.duration, profile)))
            sections += throughput_sections(results, brokers, profile)

    if "latency" in only:
        results = []
        for qos in (0, 1):
            label = f"1:1 QoS {qos} at {LATENCY_RATE:,} msgs/s"
            load_args = ["--scenario", "one-to-one", "--qos", str(qos), "--size", "1024",
                         "--window", str(WINDOW[first]), "--rate", str(LATENCY_RATE),
                         "--duration", dur]
            results.append((label, record(label, load_args, args.duration, first)))
        body = []
        for metric, title in (("lat_p50_us", "p50"), ("lat_p99_us", "p99"),
                              ("lat_p999_us", "p99.9"), ("lat_max_us", "max")):
            body.append(f"**{title}** (µs)\n\n"
                        + per_broker_table(results, brokers, "scenario", metric, 0))
        body.append("**Broker CPU per million messages** (s)\n\n"
                    + per_broker_table(results, brokers, "scenario", "broker_cpu_s_per_m", 2))
        sections.append((f"Latency at a fixed rate, {PROFILE_TITLE[first]}",
                         f"One publisher paced at {LATENCY_RATE:,} msgs/s (bursts owed "
                         "every millisecond), one subscriber; end-to-end latency in "
                         "microseconds, lower is better. Far below every queue bound, so "
                         "run under one profile only.", "\n\n".join(body)))

    if "idle" in only:
        conns = min(args.idle_conns, max(0, soft - 200))
        if conns < args.idle_conns:
            problems.append(f"idle: open-files limit {soft} allows only {conns} connections")
        if conns > 0:
            label = f"{conns:,} idle connections"
            load_args = ["--scenario", "idle", "--conns", str(conns)]
            runs = record(label, load_args, 30, first)
            rows = []
            for b in brokers:
                rs = runs[b.name]
                rows.append([b.name, fmt(median(rs, "conns_opened"), 0),
                             fmt(median(rs, "connect_s"), 2),
                             fmt(kb_mb(median(rs, "broker_rss_before_kb")), 1),
                             fmt(kb_mb(median(rs, "broker_rss_after_kb")), 1),
                             fmt(median(rs, "bytes_per_conn"), 0)])
            body = table(["broker", "opened", "connect time (s)", "RSS before (MB)",
                          "RSS after (MB)", "bytes per connection"], rows)
            if "supermq" in runs and "mosquitto" in runs:
                body += ("\n\nsupermq / Mosquitto bytes per connection: " + ratio(
                    median(runs["supermq"], "bytes_per_conn"),
                    median(runs["mosquitto"], "bytes_per_conn")))
            sections.append((f"Memory per idle connection, {PROFILE_TITLE[first]}",
                             f"{label} (CONNECT with keep-alive 600 s, then silence); broker RSS "
                             "growth divided by the connections opened, lower is better. "
                             "No messages flow, so run under one profile only.",
                             body))

    if "stall" in only:
        for profile in args.profiles:
            sections.append(stall_section(args, brokers, record, profile))

    write_report(args, brokers, sections, commands, started, problems)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
