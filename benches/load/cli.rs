//! Command-line options of `supermq-load`.

use std::time::Duration;

use clap::{Parser, ValueEnum};
use supermq::codec::{ProtocolLevel, QoS};

/// MQTT 3.1.1 load generator: measures throughput, latency, loss and broker cost of any
/// broker over plain TCP.
#[derive(Debug, Parser)]
#[command(name = "supermq-load", version)]
pub struct Cli {
    /// Broker address.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Broker port.
    #[arg(long, default_value_t = 1883)]
    pub port: u16,
    /// Port that subscribers connect to (same host), when it differs from --port: e.g. another
    /// node of a cluster, to measure cross-node delivery.
    #[arg(long)]
    pub sub_port: Option<u16>,
    /// Traffic shape.
    #[arg(long, value_enum, default_value_t = Scenario::OneToOne)]
    pub scenario: Scenario,
    /// Publishers in fan-in, pairs in pairs, clients in mesh. Default: 20 for fan-in and
    /// mesh, 10 for pairs; one-to-one and fan-out always have 1.
    #[arg(long)]
    pub pubs: Option<usize>,
    /// Subscribers in fan-out (default 20); the other scenarios derive theirs.
    #[arg(long)]
    pub subs: Option<usize>,
    /// QoS of every publish and subscription.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=2))]
    pub qos: u8,
    /// Payload bytes per message (at least 24: publisher id, sequence, timestamp).
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u64).range(24..=16_000_000))]
    pub size: u64,
    /// How long publishers publish ("10s", "500ms", "2m"; a bare number is seconds).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub duration: Duration,
    /// Messages each publisher sends; replaces --duration when given.
    #[arg(long)]
    pub count: Option<u64>,
    /// Total offered rate in messages/s, spread over the publishers; 0 = as fast as possible.
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Most unacknowledged QoS 1/2 messages per publisher.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=65_535))]
    pub window: u32,
    /// After the last publish, subscribers keep receiving until everything arrived, or
    /// nothing arrived for this long; what is missing then counts as lost.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub drain: Duration,
    /// The longest the tail may take after the last publish, however steadily it arrives.
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    pub drain_max: Duration,
    /// Extra subscribers that connect, subscribe like the first subscriber and never read.
    #[arg(long, default_value_t = 0)]
    pub stall_subs: usize,
    /// Connections to open in the idle scenario.
    #[arg(long, default_value_t = 10_000)]
    pub conns: usize,
    /// Idle scenario: connections per local source address (127.0.N.2, 127.0.N.3, …, N random
    /// per run) so that ephemeral ports and lingering TIME_WAIT entries never run out; at most
    /// 10,000.
    #[arg(long, default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub per_source: u64,
    /// Idle scenario: how long to let the broker settle before measuring its memory.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub settle: Duration,
    /// Connections being set up at the same time.
    #[arg(long, default_value_t = 200)]
    pub connect_concurrency: usize,
    /// Keep-alive every client announces in CONNECT, in seconds (0: none; some brokers, such
    /// as rumqttd, refuse 0). Clients never send PINGREQ, so keep runs shorter than 1.5× it.
    #[arg(long, default_value_t = 0)]
    pub keep_alive: u16,
    /// Broker process id: report its CPU time and memory from /proc.
    #[arg(long)]
    pub broker_pid: Option<u32>,
    /// With no progress at all (nothing sent or delivered) for this long, stop publishing
    /// and report a stall.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub stall_timeout: Duration,
    /// Topic prefix; the run's nonce is appended so concurrent runs never see each other.
    #[arg(long, default_value = "load")]
    pub prefix: String,
    /// Worker threads of the load generator (1 = single-threaded event loop, leaving the
    /// other cores to the broker).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=256))]
    pub threads: u64,
    /// Print one JSON object on one line instead of text.
    #[arg(long)]
    pub json: bool,
    /// MQTT protocol level the clients speak: 4 (3.1.1) or 5 (MQTT 5). At 5 a publisher's
    /// window is at most the Receive Maximum the broker's CONNACK announces.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u8).range(4..=5))]
    pub protocol: u8,
    /// Subscribers connect with a persistent session (CleanSession 0), so a broker with a
    /// durable store keeps what is queued for them on disk.
    #[arg(long)]
    pub persistent: bool,
}

/// Traffic shapes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// 1 publisher → 1 subscriber on one topic.
    OneToOne,
    /// N publishers on N topics → 1 subscriber of `prefix/+`.
    FanIn,
    /// 1 publisher → M subscribers of one topic.
    FanOut,
    /// N clients, each subscribed to `prefix/+` and publishing on its own topic: every
    /// client receives every message (N×N deliveries per round).
    Mesh,
    /// N independent publisher/subscriber pairs, one topic per pair.
    Pairs,
    /// Open --conns idle connections and report the broker's memory per connection.
    Idle,
}

impl Scenario {
    /// The name used on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::OneToOne => "one-to-one",
            Scenario::FanIn => "fan-in",
            Scenario::FanOut => "fan-out",
            Scenario::Mesh => "mesh",
            Scenario::Pairs => "pairs",
            Scenario::Idle => "idle",
        }
    }
}

impl Cli {
    /// The protocol level as the codec type (the parser bounds it to 4–5).
    pub fn level(&self) -> ProtocolLevel {
        ProtocolLevel::from_u8(self.protocol).unwrap_or(ProtocolLevel::V311)
    }

    /// The QoS as the codec type (the parser bounds it to 0–2).
    pub fn qos(&self) -> QoS {
        QoS::from_u8(self.qos).unwrap_or(QoS::AtMostOnce)
    }

    /// Publisher count after the scenario's default and constraints.
    pub fn pub_count(&self) -> usize {
        match self.scenario {
            Scenario::OneToOne | Scenario::FanOut => 1,
            Scenario::FanIn | Scenario::Mesh => self.pubs.unwrap_or(20).max(1),
            Scenario::Pairs => self.pubs.unwrap_or(10).max(1),
            Scenario::Idle => 0,
        }
    }

    /// Subscriber count (not counting stalled ones) after the scenario's default.
    pub fn sub_count(&self) -> usize {
        match self.scenario {
            Scenario::FanOut => self.subs.unwrap_or(20).max(1),
            Scenario::OneToOne | Scenario::FanIn => 1,
            Scenario::Mesh | Scenario::Pairs => self.pub_count(),
            Scenario::Idle => 0,
        }
    }
}

/// Parses "250ms", "10s", "2m", "1h" or a bare number of seconds (fractions allowed).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let v: f64 = num
        .parse()
        .map_err(|_| format!("bad duration {s:?}: expected e.g. 500ms, 10s, 2m"))?;
    let secs = match unit.trim() {
        "" | "s" => v,
        "ms" => v / 1e3,
        "us" | "µs" => v / 1e6,
        "m" | "min" => v * 60.0,
        "h" => v * 3600.0,
        u => return Err(format!("bad duration unit {u:?} in {s:?}")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("bad duration {s:?}: {e}"))
}
