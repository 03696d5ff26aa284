//! Configuration tests for listener transports, authentication and clustering keys.

use std::path::Path;
use std::time::Duration;

use super::tests::err;
use super::*;

#[test]
fn transport_and_auth_keys_round_trip() {
    let text = r#"
[[listener]]
name = "mqtts"
protocol = "tls"
bind = "0.0.0.0:8883"
cert_file = "certs/server.crt"
key_file = "certs/server.key"
ca_file = "certs/ca.crt"
require_client_cert = true
use_cn_as_username = true
tls_handshake_timeout = "3s"

[[listener]]
name = "ws"
protocol = "ws"
bind = "0.0.0.0:8080"
ws_path = "/broker"

[[listener]]
name = "wss"
protocol = "wss"
bind = "0.0.0.0:8081"
cert_file = "s.crt"
key_file = "s.key"

[auth]
allow_anonymous = false
password_file = "/etc/supermq/passwd"
acl_file = "acl"

[auth.http]
url = "http://127.0.0.1:8080/auth"
cache_ttl = "0s"
"#;
    let c = Config::from_toml_str(text).expect("valid");
    let tls = &c.listeners[0];
    assert_eq!(tls.protocol, ListenerProtocol::Tls);
    assert_eq!(
        tls.cert_file.as_deref(),
        Some(Path::new("certs/server.crt"))
    );
    assert_eq!(tls.key_file.as_deref(), Some(Path::new("certs/server.key")));
    assert_eq!(tls.ca_file.as_deref(), Some(Path::new("certs/ca.crt")));
    assert!(tls.require_client_cert && tls.use_cn_as_username);
    assert_eq!(tls.tls_handshake_timeout, Some(Duration::from_secs(3)));
    assert_eq!(c.listeners[1].protocol, ListenerProtocol::Ws);
    assert_eq!(c.listeners[1].ws_path, "/broker");
    assert_eq!(c.listeners[2].protocol, ListenerProtocol::Wss);
    assert_eq!(c.listeners[2].ws_path, "/mqtt");
    assert_eq!(c.listeners[2].tls_handshake_timeout, None);
    assert_eq!(
        c.auth,
        AuthConfig {
            allow_anonymous: false,
            password_file: Some("/etc/supermq/passwd".into()),
            acl_file: Some("acl".into()),
            http: Some(HttpAuthConfig {
                url: "http://127.0.0.1:8080/auth".to_owned(),
                timeout: Duration::from_secs(2),
                cache_ttl: Duration::ZERO,
                cache_size: 10_000,
            }),
            methods: None,
        }
    );
}

#[test]
fn transport_and_auth_errors_name_key_and_line() {
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "[[listener]]\nname = \"s\"\nprotocol = \"tls\"\nkey_file = \"k\"",
            "line 1: listener.cert_file",
            "needs cert_file and key_file",
            "tls without cert",
        ),
        (
            "[[listener]]\nprotocol = \"wss\"\ncert_file = \"c\"",
            "line 1: listener.key_file",
            "needs cert_file and key_file",
            "wss without key",
        ),
        (
            "[[listener]]\nprotocol = \"tls\"\ncert_file = \"c\"\nkey_file = \"k\"\nrequire_client_cert = true",
            "line 5: listener.require_client_cert",
            "needs ca_file",
            "mutual TLS without a CA",
        ),
        (
            "[[listener]]\nprotocol = \"tls\"\ncert_file = \"c\"\nkey_file = \"k\"\nca_file = \"a\"\nuse_cn_as_username = true",
            "line 6: listener.use_cn_as_username",
            "needs require_client_cert = true",
            "CN without mandatory certificates",
        ),
        (
            "[[listener]]\nbind = \"127.0.0.1:1\"\ncert_file = \"c\"",
            "line 3: listener.cert_file",
            "only applies to protocol \"tls\" or \"wss\", not \"tcp\"",
            "cert on tcp",
        ),
        (
            "[[listener]]\nprotocol = \"ws\"\ntls_handshake_timeout = \"1s\"",
            "line 3: listener.tls_handshake_timeout",
            "not \"ws\"",
            "handshake timeout on ws",
        ),
        (
            "[[listener]]\nprotocol = \"tcp\"\nws_path = \"/mqtt\"",
            "line 3: listener.ws_path",
            "only applies to protocol \"ws\" or \"wss\"",
            "ws_path on tcp",
        ),
        (
            "[[listener]]\nprotocol = \"ws\"\nws_path = \"mqtt\"",
            "line 3: listener.ws_path = \"mqtt\"",
            "must start with '/'",
            "relative ws_path",
        ),
        (
            "[[listener]]\nprotocol = \"tls\"\ncert_file = \"\"",
            "line 3: listener.cert_file",
            "must not be empty",
            "empty path",
        ),
        (
            "[[listener]]\nprotocol = \"tls\"\ncert_file = \"c\"\nkey_file = \"k\"\ntls_handshake_timeout = \"0s\"",
            "line 5: listener.tls_handshake_timeout",
            "greater than 0s",
            "zero handshake timeout",
        ),
        (
            "[auth]\npassword_file = 5",
            "line 2: auth.password_file",
            "file path string",
            "path of the wrong type",
        ),
        (
            "[auth.http]\nurl = \"https://auth.example/x\"",
            "line 2: auth.http.url",
            "https is not supported",
            "https hook",
        ),
        (
            "[auth.http]\nurl = \"localhost:8080\"",
            "line 2: auth.http.url",
            "must be an http:// URL",
            "hook URL without scheme",
        ),
        (
            "[auth.http]\nurl = \"http://h/\"\ncache_size = 0",
            "line 3: auth.http.cache_size",
            "at least 1",
            "zero cache",
        ),
        (
            "[auth.http]\nurl = \"http://h/\"\nretries = 3",
            "line 3: auth.http.retries",
            "unknown key",
            "unknown hook key",
        ),
        (
            "[auth]\n[auth.http]\ntimeout = \"1s\"",
            "line 2: auth.http.url",
            "is required",
            "hook without url",
        ),
    ];
    for (text, at, reason, what) in cases {
        let e = err(text);
        assert!(e.contains(at), "{what}: {e}");
        assert!(e.contains(reason), "{what}: {e}");
    }
}

#[test]
fn protocol_helpers() {
    assert!(ListenerProtocol::Tls.is_tls() && ListenerProtocol::Wss.is_tls());
    assert!(!ListenerProtocol::Ws.is_tls() && !ListenerProtocol::Tcp.is_tls());
    assert!(ListenerProtocol::Ws.is_ws() && ListenerProtocol::Wss.is_ws());
    assert!(!ListenerProtocol::Tls.is_ws());
    assert_eq!(ListenerProtocol::Wss.to_string(), "wss");
}

#[test]
fn cluster_cross_checks_name_the_key_and_line() {
    let cases = [
        ("[cluster]\nenabled = true\nlisten = \"127.0.0.1:7883\"\n", "cluster.node_id", "line 2"),
        ("[cluster]\nenabled = true\nnode_id = \"a\"\n", "cluster.advertise", "line 2"),
        (
            "[cluster]\nenabled = true\nnode_id = \"a\"\nlisten = \"127.0.0.1:1\"\nseeds = [\"nohost\"]\n",
            "cluster.seeds",
            "line 5",
        ),
        (
            "[cluster]\nenabled = true\nnode_id = \"a b\"\nlisten = \"127.0.0.1:1\"\n",
            "cluster.node_id",
            "line 3",
        ),
        (
            "[cluster]\nenabled = true\nnode_id = \"a\"\nlisten = \"127.0.0.1:1\"\nreconnect_min = \"9s\"\nreconnect_max = \"1s\"\n",
            "cluster.reconnect_max",
            "line 6",
        ),
        ("[cluster]\nroute_queue = 1\n", "cluster.route_queue", "line 2"),
        (
            "[cluster]\nenabled = true\nnode_id = \"a\"\nlisten = \"127.0.0.1:1\"\ntls_cert_file = \"c.pem\"\n",
            "cluster.tls_key_file",
            "line 2",
        ),
        ("[cluster]\nbogus = 1\n", "bogus", "line 2"),
        ("[groups]\nstrategy = \"fastest\"\n", "groups.strategy", "line 2"),
    ];
    for (text, key, line) in cases {
        let err = Config::from_toml_str(text).expect_err(text).to_string();
        assert!(
            err.contains(key) && err.contains(line),
            "{text:?} gave: {err}"
        );
    }
}
