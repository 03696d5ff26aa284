//! Config error tests: every bad value, type, key and syntax names its key and line.

use super::tests::{addr, err};
use super::*;

/// Each case: (what is wrong, config text, dotted key, 1-based line).
const BAD: &[(&str, &str, &str, usize)] = &[
    (
        "http bind not an address",
        "[http]\nbind = \"localhost\"",
        "http.bind",
        2,
    ),
    ("unknown http key", "[http]\nport = 80", "http.port", 2),
    (
        "http cert without key",
        "[http]\n\ncert_file = \"/c.pem\"",
        "http.cert_file",
        3,
    ),
    (
        "http key without cert",
        "[http]\nkey_file = \"/k.pem\"",
        "http.key_file",
        2,
    ),
    (
        "api key with a colon",
        "[http]\n[[http.api_key]]\nkey = \"a:b\"\nsecret = \"0123456789\"",
        "http.api_key.key",
        3,
    ),
    (
        "api key secret too short",
        "[[http.api_key]]\nkey = \"ops\"\nsecret = \"short\"",
        "http.api_key.secret",
        3,
    ),
    (
        "duplicate api key",
        "[[http.api_key]]\nkey = \"ops\"\nsecret = \"0123456789\"\n\
         [[http.api_key]]\nkey = \"ops\"\nsecret = \"9876543210\"",
        "http.api_key.key",
        5,
    ),
    (
        "api key without secret",
        "[[http.api_key]]\nkey = \"ops\"",
        "http.api_key",
        1,
    ),
    (
        "ready_min_links negative",
        "[http]\nready_min_links = -1",
        "http.ready_min_links",
        2,
    ),
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
         listener, limits, session, retain, auth, log, engine, sys, cluster, groups, persistence, \
         http, webhook, events, agents"
    );
    assert_eq!(
        err("[auth]\nallow_anon = false"),
        "config error at line 2: auth.allow_anon: unknown key; expected one of: \
         allow_anonymous, password_file, acl_file, http, methods"
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

#[test]
fn auth_methods_default_to_scram_with_a_password_file() {
    let none = Config::from_toml_str("").expect("empty");
    assert!(none.auth.enhanced_methods().is_empty());
    let pw = Config::from_toml_str("[auth]\npassword_file = \"pw\"").expect("pw");
    assert_eq!(pw.auth.enhanced_methods(), [AuthMethodName::ScramSha512]);
    let off = Config::from_toml_str("[auth]\npassword_file = \"pw\"\nmethods = []").expect("off");
    assert!(off.auth.enhanced_methods().is_empty());
    let on = Config::from_toml_str("[auth]\npassword_file = \"pw\"\nmethods = [\"SCRAM-SHA-512\"]")
        .expect("on");
    assert_eq!(on.auth.enhanced_methods(), [AuthMethodName::ScramSha512]);
}

#[test]
fn auth_methods_errors_name_key_and_line() {
    let e = err("[auth]\npassword_file = \"pw\"\nmethods = [\"PLAIN\"]");
    assert!(e.starts_with("config error at line 3: auth.methods"), "{e}");
    assert!(e.contains("SCRAM-SHA-512"), "{e}");
    let e = err("[auth]\n\nmethods = [\"SCRAM-SHA-512\"]");
    assert!(
        e.starts_with(
            "config error at line 3: auth.methods: \"SCRAM-SHA-512\" needs auth.password_file"
        ),
        "{e}"
    );
}
