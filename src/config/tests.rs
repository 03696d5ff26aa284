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
receive_maximum = 100
topic_alias_maximum = 0
max_qos = 1

[session]
max_inflight = 65535
max_queued_messages = 10
max_queued_bytes = 1024
queue_full_policy = "drop_oldest"
queue_qos0_offline = true
slow_consumer_timeout = "0s"
stall_timeout = "500ms"
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

[persistence]
enabled = false
dir = "/var/lib/supermq"
sync = "periodic"
sync_interval = "250ms"
memory_window = 16
max_memory = 33554432
max_disk = 10737418240
min_free_disk = 0

[http]
enabled = true
bind = "0.0.0.0:18084"
anonymous_read = true
ready_min_links = 2

[[http.api_key]]
key = "ops"
secret = "0123456789"

[[http.api_key]]
key = "ci"
secret = "abcdefghij"
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
            receive_maximum: 100,
            topic_alias_maximum: 0,
            max_qos: 1,
        },
        session: SessionConfig {
            max_inflight: 65535,
            max_queued_messages: 10,
            max_queued_bytes: 1024,
            queue_full_policy: QueueFullPolicy::DropOldest,
            queue_qos0_offline: true,
            slow_consumer_timeout: Duration::ZERO,
            stall_timeout: Duration::from_millis(500),
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
        persistence: PersistenceConfig {
            enabled: false,
            dir: "/var/lib/supermq".into(),
            sync: SyncMode::Periodic,
            sync_interval: Duration::from_millis(250),
            memory_window: 16,
            max_memory: 32 << 20,
            max_disk: 10 << 30,
            min_free_disk: 0,
        },
        http: HttpConfig {
            enabled: true,
            bind: addr("0.0.0.0:18084"),
            cert_file: None,
            key_file: None,
            anonymous_read: true,
            ready_min_links: 2,
            api_keys: vec![
                ApiKey {
                    key: "ops".into(),
                    secret: "0123456789".into(),
                },
                ApiKey {
                    key: "ci".into(),
                    secret: "abcdefghij".into(),
                },
            ],
        },
        webhooks: Vec::new(),
        events: EventsConfig::default(),
        agents: AgentsConfig::default(),
        groups: GroupsConfig {
            enabled: true,
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
