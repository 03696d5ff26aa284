//! The documented default of every setting (config/appserver.conf lists the same values).

use super::*;

impl Default for Config {
    fn default() -> Self {
        Config {
            listeners: vec![ListenerConfig::default()],
            limits: Limits::default(),
            session: SessionConfig::default(),
            retain: RetainConfig::default(),
            auth: AuthConfig::default(),
            log: LogConfig::default(),
            engine: EngineConfig::default(),
            sys: SysConfig::default(),
            cluster: ClusterConfig::default(),
            groups: GroupsConfig::default(),
            persistence: PersistenceConfig::default(),
            http: HttpConfig::default(),
            webhooks: Vec::new(),
            events: EventsConfig::default(),
            agents: AgentsConfig::default(),
        }
    }
}

impl Default for ListenerConfig {
    fn default() -> Self {
        ListenerConfig {
            name: "tcp".to_owned(),
            protocol: ListenerProtocol::Tcp,
            bind: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 1883),
            cert_file: None,
            key_file: None,
            ca_file: None,
            require_client_cert: false,
            use_cn_as_username: false,
            ws_path: "/mqtt".to_owned(),
            tls_handshake_timeout: None,
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 100_000,
            max_packet_size: 1_048_576,
            connect_timeout: Duration::from_secs(10),
            min_keep_alive: 0,
            max_keep_alive: 65535,
            max_client_id_len: 65535,
            allow_zero_keep_alive: true,
            // Mosquitto's fixed limit, so its users' topics keep working.
            max_topic_levels: 200,
            max_topic_length: 65535,
            receive_maximum: 20,
            topic_alias_maximum: 10,
            max_qos: 2,
        }
    }
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            max_inflight: 20,
            max_queued_messages: 1000,
            max_queued_bytes: 64 * 1024 * 1024,
            queue_full_policy: QueueFullPolicy::DropNew,
            queue_qos0_offline: false,
            slow_consumer_timeout: Duration::from_secs(30),
            stall_timeout: Duration::from_secs(2),
            persistent_session_expiry: Duration::ZERO,
            max_sessions: 1_000_000,
            max_subscriptions: 10_000,
        }
    }
}

impl Default for RetainConfig {
    fn default() -> Self {
        RetainConfig {
            enabled: true,
            max_messages: 1_000_000,
            max_payload_size: 1_048_576,
            // Without a byte bound, max_messages x max_payload_size (1 TB) is what any client
            // could make the broker hold with retained messages on new topics.
            max_bytes: 1 << 30,
            send_to_shared_subscribers: false,
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            allow_anonymous: true,
            password_file: None,
            acl_file: None,
            http: None,
            methods: None,
        }
    }
}

impl HttpAuthConfig {
    pub(super) fn default_timeout() -> Duration {
        Duration::from_secs(2)
    }

    pub(super) fn default_cache_ttl() -> Duration {
        Duration::from_secs(60)
    }

    pub(super) fn default_cache_size() -> usize {
        10_000
    }

    /// A hook on `url` with every other setting at its default.
    pub fn new(url: impl Into<String>) -> Self {
        HttpAuthConfig {
            url: url.into(),
            timeout: Self::default_timeout(),
            cache_ttl: Self::default_cache_ttl(),
            cache_size: Self::default_cache_size(),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".to_owned(),
        }
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            worker_threads: 0,
            write_buffer_size: 262144,
            read_buffer_size: 8192,
            transparent_huge_pages: false,
        }
    }
}

impl Default for SysConfig {
    fn default() -> Self {
        SysConfig {
            interval: Duration::from_secs(10),
        }
    }
}
