use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use super::*;

const SHIPPED: &str = include_str!("../../config/appserver.conf");

pub(super) fn err(text: &str) -> String {
    match Config::from_toml_str(text) {
        Ok(config) => panic!("expected an error for {text:?}, got {config:?}"),
        Err(e) => e.to_string(),
    }
}

pub(super) fn addr(s: &str) -> SocketAddr {
    s.parse().expect("test address")
}

#[test]
fn shipped_file_is_the_default() {
    assert_eq!(
        Config::from_toml_str(SHIPPED).expect("shipped"),
        Config::default()
    );
}

#[test]
fn shipped_file_loads_from_disk() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/appserver.conf");
    assert_eq!(Config::load(&path).expect("load"), Config::default());
}

#[test]
fn empty_and_comment_only_files_are_the_default() {
    assert_eq!(Config::from_toml_str("").expect("empty"), Config::default());
    let comments = "# nothing here\n\n[session]\n# still nothing\n";
    assert_eq!(
        Config::from_toml_str(comments).expect("comments"),
        Config::default()
    );
}

#[test]
fn default_has_one_tcp_listener_on_1883() {
    let config = Config::default();
    assert_eq!(
        config.listeners,
        vec![ListenerConfig {
            name: "tcp".to_owned(),
            protocol: ListenerProtocol::Tcp,
            bind: addr("0.0.0.0:1883"),
            cert_file: None,
            key_file: None,
            ca_file: None,
            require_client_cert: false,
            use_cn_as_username: false,
            ws_path: "/mqtt".to_owned(),
            tls_handshake_timeout: None,
        }]
    );
}

#[test]
fn non_default_values_round_trip() {
    let text = r#"
[[listener]]
name = "internal"
bind = "127.0.0.1:1884"

[[listener]]
name = "public-v6"
protocol = "tcp"
bind = "[::]:8883"

[limits]
max_connections = 5000
max_packet_size = 65536
connect_timeout = "500ms"
min_keep_alive = 5
max_keep_alive = 600
max_client_id_len = 23
allow_zero_keep_alive = false
max_topic_levels = 32
max_topic_length = 1024

[session]
max_inflight = 65535
max_queued_messages = 10
max_queued_bytes = 1024
queue_full_policy = "drop_oldest"
queue_qos0_offline = true
slow_consumer_timeout = "0s"
persistent_session_expiry = "1d"
max_sessions = 42
max_subscriptions = 50

[retain]
enabled = false
max_messages = 7
max_payload_size = 268435455
max_bytes = 2048
send_to_shared_subscribers = true

[auth]
allow_anonymous = false

[log]
level = "info,supermq=debug,tokio::net=WARN"

[engine]
worker_threads = 4
write_buffer_size = 4096
read_buffer_size = 1024
transparent_huge_pages = true

[sys]
interval = 60

[cluster]
enabled = true
node_id = "node-1"
name = "plant"
listen = "10.0.0.1:7883"
seeds = ["10.0.0.2:7883", "node3.local:7883"]
secret = "s3"
ping_interval = "1s"
reconnect_min = "50ms"
reconnect_max = "2s"
route_queue = 1000
sync_timeout = "250ms"
max_route_connections = 8
handshake_timeout = "2s"

[groups]
strategy = "hash_topic"
"#;
    let expected = Config {
        listeners: vec![
            ListenerConfig {
                name: "internal".to_owned(),
                protocol: ListenerProtocol::Tcp,
                bind: addr("127.0.0.1:1884"),
                ..ListenerConfig::default()
            },
            ListenerConfig {
                name: "public-v6".to_owned(),
                protocol: ListenerProtocol::Tcp,
                bind: addr("[::]:8883"),
                ..ListenerConfig::default()
            },
        ],
        limits: Limits {
            max_connections: 5000,
            max_packet_size: 65536,
            connect_timeout: Duration::from_millis(500),
            min_keep_alive: 5,
            max_keep_alive: 600,
            max_client_id_len: 23,
            allow_zero_keep_alive: false,
            max_topic_levels: 32,
            max_topic_length: 1024,
        },
        session: SessionConfig {
            max_inflight: 65535,
            max_queued_messages: 10,
            max_queued_bytes: 1024,
            queue_full_policy: QueueFullPolicy::DropOldest,
            queue_qos0_offline: true,
            slow_consumer_timeout: Duration::ZERO,
            persistent_session_expiry: Duration::from_secs(86_400),
            max_sessions: 42,
            max_subscriptions: 50,
        },
        retain: RetainConfig {
            enabled: false,
            max_messages: 7,
            max_payload_size: 268_435_455,
            max_bytes: 2048,
            send_to_shared_subscribers: true,
        },
        auth: AuthConfig {
            allow_anonymous: false,
            ..AuthConfig::default()
        },
        log: LogConfig {
            level: "info,supermq=debug,tokio::net=WARN".to_owned(),
        },
        engine: EngineConfig {
            worker_threads: 4,
            write_buffer_size: 4096,
            read_buffer_size: 1024,
            transparent_huge_pages: true,
        },
        sys: SysConfig {
            interval: Duration::from_secs(60),
        },
        cluster: ClusterConfig {
            enabled: true,
            node_id: "node-1".to_owned(),
            name: "plant".to_owned(),
            listen: addr("10.0.0.1:7883"),
            advertise: None,
            seeds: vec!["10.0.0.2:7883".to_owned(), "node3.local:7883".to_owned()],
            secret: Some("s3".to_owned()),
            ping_interval: Duration::from_secs(1),
            reconnect_min: Duration::from_millis(50),
            reconnect_max: Duration::from_secs(2),
            route_queue: 1000,
            sync_timeout: Duration::from_millis(250),
            max_route_connections: 8,
            handshake_timeout: Duration::from_secs(2),
            tls_cert_file: None,
            tls_key_file: None,
            tls_ca_file: None,
        },
        groups: GroupsConfig {
            strategy: GroupStrategy::HashTopic,
        },
    };
    assert_eq!(Config::from_toml_str(text).expect("valid"), expected);
}

#[test]
fn partial_sections_keep_other_defaults() {
    let config = Config::from_toml_str("[session]\nmax_inflight = 5\n").expect("valid");
    let mut expected = Config::default();
    expected.session.max_inflight = 5;
    assert_eq!(config, expected);
}

#[test]
fn alternative_toml_spellings_are_accepted() {
    let dotted = Config::from_toml_str("session.max_inflight = 7\nsys.interval = \"2h\"")
        .expect("dotted keys");
    assert_eq!(dotted.session.max_inflight, 7);
    assert_eq!(dotted.sys.interval, Duration::from_secs(7200));

    let inline = Config::from_toml_str(
        r#"listener = [{ name = "a", bind = "127.0.0.1:1" }, { name = "b", bind = "127.0.0.1:2" }]"#,
    )
    .expect("inline listeners");
    assert_eq!(inline.listeners.len(), 2);
    assert_eq!(inline.listeners[1].bind, addr("127.0.0.1:2"));
}

#[test]
fn listener_fields_default_individually() {
    let config = Config::from_toml_str("[[listener]]\nbind = \"127.0.0.1:1883\"").expect("valid");
    assert_eq!(config.listeners.len(), 1);
    assert_eq!(config.listeners[0].name, "tcp");
    assert_eq!(config.listeners[0].protocol, ListenerProtocol::Tcp);
}

#[test]
fn listeners_that_can_coexist_are_accepted() {
    let text = r#"
[[listener]]
name = "v4"
bind = "0.0.0.0:1883"
[[listener]]
name = "v6"
bind = "[::]:1883"
[[listener]]
name = "ephemeral-a"
bind = "127.0.0.1:0"
[[listener]]
name = "ephemeral-b"
bind = "127.0.0.1:0"
"#;
    assert_eq!(
        Config::from_toml_str(text).expect("valid").listeners.len(),
        4
    );
}

/// Each case: (what is wrong, config text, dotted key, 1-based line).
const BAD: &[(&str, &str, &str, usize)] = &[
    ("unknown section", "[sessions]\nmax_inflight = 5", "sessions", 1),
    ("unknown top-level key", "\n\nverbose = true", "verbose", 3),
    // Found by the config fuzz target: an empty quoted key was named by an empty string.
    ("empty quoted key", "'' = 1", "\"\"", 1),
    ("quoted key with a line break", "[\"a\\nb\"]", "\"a\\nb\"", 1),
    (
        "unknown key in a section",
        "[session]\nmax_inflight = 5\nmax_infligt = 6",
        "session.max_infligt",
        3,
    ),
    (
        "unknown key in a listener",
        "[[listener]]\nname = \"a\"\nport = 1883",
        "listener.port",
        3,
    ),
    (
        "string for an integer",
        "[limits]\nmax_connections = \"many\"",
        "limits.max_connections",
        2,
    ),
    (
        "string for a boolean",
        "[auth]\nallow_anonymous = \"yes\"",
        "auth.allow_anonymous",
        2,
    ),
    ("integer for a section", "limits = 5", "limits", 1),
    (
        "float for an integer",
        "[retain]\nmax_messages = 1.5",
        "retain.max_messages",
        2,
    ),
    (
        "zero inflight",
        "\n[session]\nmax_inflight = 0",
        "session.max_inflight",
        3,
    ),
    (
        "inflight above u16",
        "[session]\nmax_inflight = 70000",
        "session.max_inflight",
        2,
    ),
    (
        "negative connections",
        "[limits]\nmax_connections = -5",
        "limits.max_connections",
        2,
    ),
    (
        "packet size below 16",
        "[limits]\nmax_packet_size = 8",
        "limits.max_packet_size",
        2,
    ),
    (
        "packet size above the MQTT maximum",
        "[limits]\nmax_packet_size = 268435461",
        "limits.max_packet_size",
        2,
    ),
    (
        "client id length below 23",
        "[limits]\nmax_client_id_len = 22",
        "limits.max_client_id_len",
        2,
    ),
    (
        "keep-alive above u16",
        "[limits]\nmax_keep_alive = 65536",
        "limits.max_keep_alive",
        2,
    ),
    (
        "min keep-alive above max",
        "[limits]\nmin_keep_alive = 60\nmax_keep_alive = 30",
        "limits.max_keep_alive",
        3,
    ),
    (
        "queued bytes below 1024",
        "[session]\nmax_queued_bytes = 1000",
        "session.max_queued_bytes",
        2,
    ),
    (
        "zero sessions",
        "[session]\nmax_sessions = 0",
        "session.max_sessions",
        2,
    ),
    (
        "write buffer too small",
        "[engine]\nwrite_buffer_size = 100",
        "engine.write_buffer_size",
        2,
    ),
    (
        "read buffer too small",
        "[engine]\nread_buffer_size = 1023",
        "engine.read_buffer_size",
        2,
    ),
    (
        "absurd worker count",
        "[engine]\nworker_threads = 5000",
        "engine.worker_threads",
        2,
    ),
    (
        "duration with an unknown unit",
        "[limits]\nconnect_timeout = \"10 parsecs\"",
        "limits.connect_timeout",
        2,
    ),
    (
        "duration without a unit",
        "[session]\nslow_consumer_timeout = \"30\"",
        "session.slow_consumer_timeout",
        2,
    ),
    (
        "zero connect timeout",
        "[limits]\nconnect_timeout = \"0s\"",
        "limits.connect_timeout",
        2,
    ),
    ("negative duration", "[sys]\ninterval = -1", "sys.interval", 2),
    (
        "overflowing duration",
        "[session]\npersistent_session_expiry = \"99999999999999999999s\"",
        "session.persistent_session_expiry",
        2,
    ),
    (
        "duration above ten years",
        "[session]\npersistent_session_expiry = \"3651d\"",
        "session.persistent_session_expiry",
        2,
    ),
    (
        "date-time for a duration",
        "[sys]\ninterval = 1979-05-27T07:32:00Z",
        "sys.interval",
        2,
    ),
    (
        "unknown queue policy",
        "[session]\nqueue_full_policy = \"drop_all\"",
        "session.queue_full_policy",
        2,
    ),
    ("unknown log level", "[log]\nlevel = \"verbose\"", "log.level", 2),
    (
        "bad level in a directive",
        "[log]\nlevel = \"info,supermq=loud\"",
        "log.level",
        2,
    ),
    ("empty log level", "[log]\nlevel = \"\"", "log.level", 2),
    (
        "host name as bind address",
        "[[listener]]\nbind = \"localhost:1883\"",
        "listener.bind",
        2,
    ),
    (
        "bind address without a port",
        "[[listener]]\nbind = \"0.0.0.0\"",
        "listener.bind",
        2,
    ),
    (
        "unsupported protocol",
        "[[listener]]\nprotocol = \"quic\"",
        "listener.protocol",
        2,
    ),
    (
        "listener name with a space",
        "[[listener]]\nname = \"a\"\n[[listener]]\nname = \"my listener\"",
        "listener.name",
        4,
    ),
    ("empty listener list", "listener = []", "listener", 1),
    (
        "duplicate listener name",
        "[[listener]]\nname = \"a\"\nbind = \"127.0.0.1:1\"\n\n[[listener]]\nname = \"a\"\nbind = \"127.0.0.1:2\"",
        "listener.name",
        6,
    ),
    (
        "duplicate default listener name",
        "[[listener]]\nbind = \"127.0.0.1:1\"\n[[listener]]\nbind = \"127.0.0.1:2\"",
        "listener.name",
        3,
    ),
    (
        "same bind address twice",
        "[[listener]]\nname = \"a\"\nbind = \"127.0.0.1:1883\"\n[[listener]]\nname = \"b\"\nbind = \"127.0.0.1:1883\"",
        "listener.bind",
        6,
    ),
    (
        "specific address under a wildcard on the same port",
        "[[listener]]\nname = \"a\"\n[[listener]]\nname = \"b\"\nbind = \"127.0.0.1:1883\"",
        "listener.bind",
        5,
    ),
    (
        "dotted key out of range",
        "session.max_inflight = 0",
        "session.max_inflight",
        1,
    ),
    (
        "inline table value out of range",
        "\nsession = { max_queued_messages = 0 }",
        "session.max_queued_messages",
        2,
    ),
];

#[test]
fn bad_configs_name_key_and_line() {
    for (what, text, key, line) in BAD {
        let message = err(text);
        assert!(
            message.contains(&format!("line {line}:")) && message.contains(key),
            "{what}: expected key `{key}` and line {line} in: {message}"
        );
        assert!(
            !message.contains('\n'),
            "{what}: message spans several lines: {message}"
        );
    }
}

#[test]
fn range_error_reads_as_one_actionable_sentence() {
    assert_eq!(
        err("[limits]\nmax_connections = 10\n[session]\nmax_inflight = 0"),
        "config error at line 4: session.max_inflight = 0: must be between 1 and 65535"
    );
    assert_eq!(
        err("[session]\nmax_queued_messages = 0"),
        "config error at line 2: session.max_queued_messages = 0: must be at least 1"
    );
}

#[test]
fn type_errors_say_what_is_expected() {
    assert_eq!(
        err("[auth]\nallow_anonymous = \"yes\""),
        "config error at line 2: auth.allow_anonymous = \"yes\": must be a boolean, not a string"
    );
    assert_eq!(
        err("[session]\nmax_inflight = \"20\""),
        "config error at line 2: session.max_inflight = \"20\": \
         must be an integer between 1 and 65535, not a string"
    );
    assert_eq!(
        err("limits = 5"),
        "config error at line 1: limits = 5: must be a [limits] table, not an integer"
    );
}

#[test]
fn unknown_keys_list_the_valid_ones() {
    assert_eq!(
        err("[sessions]"),
        "config error at line 1: sessions: unknown section; expected one of: \
         listener, limits, session, retain, auth, log, engine, sys, cluster, groups"
    );
    assert_eq!(
        err("[auth]\nallow_anon = false"),
        "config error at line 2: auth.allow_anon: unknown key; expected one of: \
         allow_anonymous, password_file, acl_file, http"
    );
}

#[test]
fn enum_and_address_errors_list_the_choices() {
    assert!(err("[session]\nqueue_full_policy = \"drop_all\"")
        .ends_with("must be \"drop_new\" or \"drop_oldest\""));
    assert!(err("[[listener]]\nprotocol = \"quic\"")
        .ends_with("must be \"tcp\", \"tls\", \"ws\" or \"wss\""));
    assert!(err("[[listener]]\nbind = \"localhost:1883\"").contains("host names are not resolved"));
}

#[test]
fn cross_listener_errors_point_at_both_lines() {
    let message = err(
        "[[listener]]\nname = \"a\"\nbind = \"127.0.0.1:1\"\n[[listener]]\nname = \"a\"\nbind = \"127.0.0.1:2\"",
    );
    assert_eq!(
        message,
        "config error at line 5: listener.name = \"a\": duplicate listener name, already used \
         by the listener at line 2; give each listener a unique name"
    );
    let message =
        err("[[listener]]\nname = \"a\"\n[[listener]]\nname = \"b\"\nbind = \"0.0.0.0:1883\"");
    assert_eq!(
        message,
        "config error at line 5: listener.bind = \"0.0.0.0:1883\": conflicts with listener \"a\" \
         on 0.0.0.0:1883 (line 1); use a different port or address"
    );
}

#[test]
fn keep_alive_relation_names_max_key() {
    assert_eq!(
        err("[limits]\nmax_keep_alive = 30\nmin_keep_alive = 60"),
        "config error at line 2: limits.max_keep_alive = 30: \
         must be at least limits.min_keep_alive (60)"
    );
    let equal = Config::from_toml_str("[limits]\nmin_keep_alive = 60\nmax_keep_alive = 60");
    assert_eq!(equal.expect("equal bounds").limits.max_keep_alive, 60);
}

#[test]
fn syntax_errors_give_line_and_column() {
    let message = err("[session]\nmax_inflight = = 3");
    assert!(
        message.starts_with("config error at line 2, column 16: invalid TOML: "),
        "{message}"
    );
    assert!(!message.contains('\n'), "{message}");

    let message = err("[session]\nmax_inflight = 1\nmax_inflight = 2");
    assert!(message.contains("line 3"), "{message}");
    assert!(message.contains("max_inflight"), "{message}");

    let message = err("[session]\n[session]");
    assert!(message.contains("line 2"), "{message}");
}

#[test]
fn long_values_are_shortened_in_messages() {
    let long = "x".repeat(200);
    let message = err(&format!("[log]\nlevel = \"{long}\""));
    assert!(message.len() < 400, "{message}");
    assert!(message.contains("log.level = \"xxxx"), "{message}");
}

#[test]
fn load_names_the_missing_path() {
    let path = Path::new("/nonexistent/supermq/appserver.conf");
    let e = Config::load(path).expect_err("missing file");
    assert!(matches!(e, ConfigError::Read { .. }));
    let message = e.to_string();
    assert!(
        message.starts_with("cannot read config file /nonexistent/supermq/appserver.conf: "),
        "{message}"
    );
}

#[test]
fn durations_parse_all_units() {
    let cases = [
        ("500ms", Duration::from_millis(500)),
        ("10s", Duration::from_secs(10)),
        ("5m", Duration::from_secs(300)),
        ("2h", Duration::from_secs(7200)),
        ("1d", Duration::from_secs(86_400)),
        (" 0s ", Duration::ZERO),
    ];
    for (text, expected) in cases {
        assert_eq!(de::parse_duration(text), Ok(expected), "{text}");
    }
    for bad in ["", "s", "10", "1.5s", "-1s", "10 s", "10sec", "1h30m"] {
        assert!(
            de::parse_duration(bad).is_err(),
            "{bad:?} should be rejected"
        );
    }
}

#[test]
fn log_filters() {
    for good in [
        "error",
        "WARN",
        "trace",
        "off",
        "info,supermq=debug",
        "warn, supermq::broker=trace , tokio=off",
    ] {
        assert_eq!(de::validate_log_filter(good), Ok(()), "{good}");
    }
    for bad in [
        "",
        "  ",
        "loud",
        "info,",
        "=debug",
        "supermq=",
        "a b=info",
        "info;debug",
    ] {
        assert!(
            de::validate_log_filter(bad).is_err(),
            "{bad:?} should be rejected"
        );
    }
}

#[test]
fn bind_conflict_rules() {
    let conflict = |a: &str, b: &str| binds_conflict(addr(a), addr(b));
    assert!(conflict("127.0.0.1:1883", "127.0.0.1:1883"));
    assert!(conflict("0.0.0.0:1883", "10.0.0.1:1883"));
    assert!(conflict("[::1]:1883", "[::]:1883"));
    assert!(!conflict("127.0.0.1:1883", "127.0.0.1:1884"));
    assert!(!conflict("127.0.0.1:1883", "10.0.0.1:1883"));
    assert!(!conflict("0.0.0.0:1883", "[::]:1883"));
    assert!(!conflict("127.0.0.1:0", "127.0.0.1:0"));
}

#[test]
fn enums_display_as_config_names() {
    assert_eq!(QueueFullPolicy::DropOldest.to_string(), "drop_oldest");
    assert_eq!(QueueFullPolicy::default(), QueueFullPolicy::DropNew);
    assert_eq!(ListenerProtocol::Tcp.to_string(), "tcp");
}

// --- TLS, WebSocket and auth keys ---
