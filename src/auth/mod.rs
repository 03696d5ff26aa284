//! Authentication (who may connect, as which user) and access control (which topics a
//! client may publish to and subscribe to).
//!
//! Owns the password file ([`passwd`]), the ACL file ([`acl`]) and the HTTP hook
//! (`http`), and the order they are asked in at CONNECT:
//! 1. a client certificate's CN, on listeners with `use_cn_as_username` (already verified
//!    by the TLS layer): accepted as that user;
//! 2. a username listed in the password file: its password decides (CONNACK 4 if wrong);
//! 3. otherwise, with `[auth.http]` configured and a username given: the hook decides
//!    (non-2xx → CONNACK 4; no answer → CONNACK 5);
//! 4. otherwise the anonymous rule: accepted only with `allow_anonymous` (CONNACK 5). When a
//!    password file or hook exists, a username neither of them vouched for is not trusted:
//!    such a client is admitted as anonymous. With no credential source at all, the
//!    username is taken as given (as Mosquitto does).
//!
//! The loaded files sit behind an [`ArcSwap`], so SIGHUP ([`Auth::reload`]) swaps them
//! without blocking or dropping connections, and the per-PUBLISH ACL check is one atomic
//! load when no ACL is configured. Knows nothing about sockets.

pub mod acl;
pub mod enhanced;
mod http;
pub mod passwd;
mod read_gate;
pub mod scram;
#[doc(hidden)]
pub mod scram_client;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use thiserror::Error;

use crate::codec::{Connect, ConnectReturnCode};
use crate::config::{AuthConfig, AuthMethodName};
use crate::metrics::{self, Metrics};
pub use acl::{Acl, AclError, Op};
pub use enhanced::{AuthExchange, AuthMethod, EnhancedAuth, Step};
pub use passwd::{PasswdError, PasswordFile, PasswordHash};
pub use read_gate::ReadGate;

/// Why the authentication setup could not be loaded.
#[derive(Debug, Error)]
pub enum AuthError {
    #[error(transparent)]
    Passwd(#[from] PasswdError),
    #[error(transparent)]
    Acl(#[from] AclError),
    #[error("auth.http.url: {0}")]
    HookUrl(String),
}

/// The files loaded together; replaced as a whole on reload.
#[derive(Debug, Default)]
struct Files {
    passwords: Option<PasswordFile>,
    acl: Option<Acl>,
}

impl Files {
    fn load(passwords: Option<&Path>, acl: Option<&Path>) -> Result<Files, AuthError> {
        Ok(Files {
            passwords: passwords.map(PasswordFile::load).transpose()?,
            acl: acl.map(Acl::load).transpose()?,
        })
    }
}

/// The broker's authentication and access control.
#[derive(Debug)]
pub struct Auth {
    allow_anonymous: bool,
    password_path: Option<PathBuf>,
    acl_path: Option<PathBuf>,
    /// Shared with the SCRAM method's credential store, so it sees reloads.
    files: Arc<ArcSwap<Files>>,
    /// MQTT 5 enhanced authentication methods (§4.12), from `auth.methods`.
    enhanced: EnhancedAuth,
    /// Bumped by every reload, so cached read verdicts ([`ReadGate`]) start over.
    generation: AtomicU64,
    hook: Option<http::HttpHook>,
    metrics: Arc<Metrics>,
}

impl Auth {
    /// Loads the configured files and sets up the hook.
    pub fn load(cfg: &AuthConfig, metrics: Arc<Metrics>) -> Result<Auth, AuthError> {
        let files = Files::load(cfg.password_file.as_deref(), cfg.acl_file.as_deref())?;
        let hook = cfg
            .http
            .as_ref()
            .map(http::HttpHook::new)
            .transpose()
            .map_err(AuthError::HookUrl)?;
        log_loaded(&files);
        let files = Arc::new(ArcSwap::from_pointee(files));
        let enhanced = EnhancedAuth::new(cfg.enhanced_methods().iter().map(|m| match m {
            AuthMethodName::ScramSha512 => Arc::new(scram::Scram::new(
                scram::SHA512,
                Arc::new(PasswdStore(files.clone())),
            )) as Arc<dyn AuthMethod>,
        }));
        Ok(Auth {
            allow_anonymous: cfg.allow_anonymous,
            password_path: cfg.password_file.clone(),
            acl_path: cfg.acl_file.clone(),
            files,
            enhanced,
            generation: AtomicU64::new(0),
            hook,
            metrics,
        })
    }

    /// Re-reads the password and ACL files; on any error the previous ones stay in force.
    /// Connected clients keep their session; later checks use the new files.
    pub fn reload(&self) -> Result<(), AuthError> {
        let files = Files::load(self.password_path.as_deref(), self.acl_path.as_deref())?;
        log_loaded(&files);
        self.files.store(Arc::new(files));
        self.generation.fetch_add(1, Ordering::Release);
        Ok(())
    }

    /// The MQTT 5 enhanced authentication methods served (MQTT 5.0 §4.12); see
    /// [`enhanced`] for how the connection layer drives an exchange.
    pub fn enhanced(&self) -> &EnhancedAuth {
        &self.enhanced
    }

    /// The reload generation of the files in force.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The per-delivery read check for one client, or `None` when no ACL file is configured
    /// (then everything a subscription matches is delivered, at no cost).
    pub fn read_gate(
        self: &Arc<Self>,
        client_id: &Arc<str>,
        username: Option<&Arc<str>>,
    ) -> Option<Arc<ReadGate>> {
        self.acl_path.as_ref()?;
        Some(Arc::new(ReadGate::new(
            self.clone(),
            client_id.clone(),
            username.cloned(),
        )))
    }

    /// Decides a CONNECT that passed the protocol checks: authenticates the client, then
    /// checks that it may publish its will. Returns the username the ACL should know the
    /// client by (`None`: anonymous). Refusals are counted in `auth_failures` (or
    /// `acl_denied_publish` for the will).
    pub async fn admit(
        &self,
        c: &Connect,
        client_id: &str,
        peer: SocketAddr,
        cert_cn: Option<&str>,
    ) -> Result<Option<Arc<str>>, ConnectReturnCode> {
        let username = match self.authenticate(c, client_id, peer, cert_cn).await {
            Ok(u) => u,
            Err(code) => {
                metrics::inc(&self.metrics.auth_failures);
                // The password is never logged.
                tracing::debug!(%peer, client_id, username = ?c.username, ?code, "authentication failed");
                return Err(code);
            }
        };
        if !self.will_allowed(c, client_id, username.as_deref()) {
            return Err(ConnectReturnCode::NotAuthorized);
        }
        Ok(username)
    }

    /// Whether the CONNECT's will (if any) may be published by this client: a will it may
    /// not publish is refused up front (CONNACK 5 / 0x87) rather than dropped at disconnect,
    /// when nobody could be told. A refusal is counted in `acl_denied_publish`. [`admit`]
    /// calls it; after an enhanced authentication exchange (§4.12) the connection layer
    /// calls it with the exchange's username.
    ///
    /// [`admit`]: Auth::admit
    pub fn will_allowed(&self, c: &Connect, client_id: &str, username: Option<&str>) -> bool {
        let Some(w) = &c.will else { return true };
        let ok = self.allows(client_id, username, Op::Publish(&w.topic));
        if !ok {
            metrics::inc(&self.metrics.acl_denied_publish);
            tracing::debug!(client_id, topic = %w.topic, "will refused by the ACL");
        }
        ok
    }

    /// Counts (in `auth_failures`) and logs at debug an enhanced authentication exchange
    /// that ended in [`Step::Failure`], or named a method not served (0x8C).
    pub fn enhanced_failed(&self, peer: SocketAddr, client_id: &str, method: &str) {
        metrics::inc(&self.metrics.auth_failures);
        tracing::debug!(%peer, client_id, method, "enhanced authentication failed");
    }

    async fn authenticate(
        &self,
        c: &Connect,
        client_id: &str,
        peer: SocketAddr,
        cert_cn: Option<&str>,
    ) -> Result<Option<Arc<str>>, ConnectReturnCode> {
        if let Some(cn) = cert_cn {
            return Ok(Some(cn.into()));
        }
        let files = self.files.load_full();
        let Some(user) = c.username.as_deref() else {
            return self.anonymous();
        };
        if let Some(hash) = files.passwords.as_ref().and_then(|p| p.get(user)) {
            let password = c.password.clone().unwrap_or_default();
            let ok = if hash.cost() <= passwd::INLINE_ITERATIONS {
                hash.verify(&password)
            } else {
                // Expensive hashes must not stall the connections sharing this worker.
                let hash = hash.clone();
                tokio::task::spawn_blocking(move || hash.verify(&password))
                    .await
                    .unwrap_or(false)
            };
            return if ok {
                Ok(Some(user.into()))
            } else {
                Err(ConnectReturnCode::BadUsernameOrPassword)
            };
        }
        if let Some(hook) = &self.hook {
            return match hook
                .check(client_id, user, c.password.as_deref(), peer)
                .await
            {
                http::Verdict::Allow => Ok(Some(user.into())),
                http::Verdict::Deny => Err(ConnectReturnCode::BadUsernameOrPassword),
                http::Verdict::Unavailable => Err(ConnectReturnCode::NotAuthorized),
            };
        }
        if files.passwords.is_some() {
            // Nobody vouched for this username: it may only come in as anonymous.
            return self.anonymous();
        }
        Ok(Some(user.into()))
    }

    fn anonymous(&self) -> Result<Option<Arc<str>>, ConnectReturnCode> {
        if self.allow_anonymous {
            Ok(None)
        } else {
            Err(ConnectReturnCode::NotAuthorized)
        }
    }

    /// Whether the ACL (if any) allows `op`; no ACL file means everything is allowed.
    pub fn allows(&self, client_id: &str, username: Option<&str>, op: Op<'_>) -> bool {
        if self.acl_path.is_none() {
            // No ACL file is configured, so no reload can bring one: every PUBLISH is
            // allowed without loading the shared snapshot (1 % of a fan-in's CPU in perf).
            return true;
        }
        match &self.files.load().acl {
            None => true,
            Some(acl) => acl.allows(client_id, username, op),
        }
    }

    /// The PUBLISH check: `false` means drop the message (counted, logged at debug).
    pub fn check_publish(&self, client_id: &str, username: Option<&str>, topic: &str) -> bool {
        let ok = self.allows(client_id, username, Op::Publish(topic));
        if !ok {
            metrics::inc(&self.metrics.acl_denied_publish);
            tracing::debug!(client_id, ?username, topic, "publish refused by the ACL");
        }
        ok
    }

    /// The SUBSCRIBE check for one filter: `false` means answer 0x80 (counted, logged).
    pub fn check_subscribe(&self, client_id: &str, username: Option<&str>, filter: &str) -> bool {
        let ok = self.allows(client_id, username, Op::Subscribe(filter));
        if !ok {
            metrics::inc(&self.metrics.acl_denied_subscribe);
            tracing::debug!(
                client_id,
                ?username,
                filter,
                "subscription refused by the ACL"
            );
        }
        ok
    }
}

/// The password file in force as SCRAM-SHA-512's credentials: a `$7$` entry's hash is the
/// SaltedPassword (RFC 5802 §3); a `$6$` entry cannot be used.
#[derive(Debug)]
struct PasswdStore(Arc<ArcSwap<Files>>);

impl scram::CredentialStore for PasswdStore {
    fn credential(&self, user: &str) -> scram::Credential {
        let files = self.0.load();
        match files.passwords.as_ref().and_then(|p| p.get(user)) {
            Some(PasswordHash::Pbkdf2 {
                iterations,
                salt,
                hash,
            }) => scram::Credential::Salted {
                salt: salt.clone(),
                iterations: *iterations,
                salted_password: hash.to_vec(),
            },
            Some(PasswordHash::Sha512 { .. }) => scram::Credential::Unsupported,
            None => scram::Credential::Unknown,
        }
    }
}

fn log_loaded(files: &Files) {
    if let Some(p) = &files.passwords {
        tracing::info!(users = p.len(), "password file loaded");
    }
    if let Some(a) = &files.acl {
        tracing::info!(entries = a.len(), "acl file loaded");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{LastWill, Properties, ProtocolLevel, QoS};
    use bytes::Bytes;

    const ALICE: &str = "alice:$6$8OM4bxdtbcd9S4cy$tkWEibgFHfI/tnhpKq5Td7VcxdVS7ifSredSo9QcOoH57QEpMglzYuSWKcoji9SJ4HRhEWG7156nhF8DVfbuWA==\n";

    fn temp(name: &str, text: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("supermq-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let p = dir.join(name);
        std::fs::write(&p, text).expect("write");
        p
    }

    fn connect(user: Option<&str>, pass: Option<&str>) -> Connect {
        Connect {
            level: ProtocolLevel::V311,
            clean_session: true,
            keep_alive: 60,
            client_id: "c1".into(),
            will: None,
            username: user.map(Into::into),
            password: pass.map(|p| Bytes::copy_from_slice(p.as_bytes())),
            properties: Properties::new(),
        }
    }

    fn peer() -> SocketAddr {
        "127.0.0.1:1".parse().expect("addr")
    }

    fn auth(cfg: AuthConfig) -> Auth {
        Auth::load(&cfg, Arc::default()).expect("load")
    }

    type Admitted = Result<Option<Arc<str>>, ConnectReturnCode>;

    async fn admit(a: &Auth, user: Option<&str>, pass: Option<&str>, cn: Option<&str>) -> Admitted {
        a.admit(&connect(user, pass), "c1", peer(), cn).await
    }

    fn get(c: &std::sync::atomic::AtomicU64) -> u64 {
        metrics::get(c)
    }

    #[tokio::test]
    async fn no_sources_trusts_the_given_username() {
        let a = auth(AuthConfig::default());
        assert_eq!(admit(&a, Some("u"), None, None).await, Ok(Some("u".into())));
        assert_eq!(admit(&a, None, None, None).await, Ok(None));
        let strict = auth(AuthConfig {
            allow_anonymous: false,
            ..AuthConfig::default()
        });
        assert_eq!(
            admit(&strict, None, None, None).await,
            Err(ConnectReturnCode::NotAuthorized)
        );
        assert_eq!(get(&strict.metrics.auth_failures), 1);
    }

    #[tokio::test]
    async fn password_file_decides_for_listed_users() {
        let a = auth(AuthConfig {
            allow_anonymous: true,
            password_file: Some(temp("pw1", ALICE)),
            ..AuthConfig::default()
        });
        let ok = admit(&a, Some("alice"), Some("hunter2"), None).await;
        assert_eq!(ok, Ok(Some("alice".into())));
        let bad = admit(&a, Some("alice"), Some("nope"), None).await;
        assert_eq!(bad, Err(ConnectReturnCode::BadUsernameOrPassword));
        let none = admit(&a, Some("alice"), None, None).await;
        assert_eq!(none, Err(ConnectReturnCode::BadUsernameOrPassword));
        // Unlisted user: admitted only as anonymous.
        assert_eq!(admit(&a, Some("eve"), Some("x"), None).await, Ok(None));
        // A verified certificate CN wins over CONNECT's username.
        let cn = admit(&a, Some("alice"), Some("nope"), Some("dev7")).await;
        assert_eq!(cn, Ok(Some("dev7".into())));
    }

    #[tokio::test]
    async fn unlisted_user_without_anonymous_is_not_authorized() {
        let a = auth(AuthConfig {
            allow_anonymous: false,
            password_file: Some(temp("pw2", ALICE)),
            ..AuthConfig::default()
        });
        let r = admit(&a, Some("eve"), Some("x"), None).await;
        assert_eq!(r, Err(ConnectReturnCode::NotAuthorized));
    }

    #[tokio::test]
    async fn will_is_checked_against_the_acl() {
        let cfg = AuthConfig {
            acl_file: Some(temp("acl1", "topic write wills/ok\n")),
            ..AuthConfig::default()
        };
        let a = auth(cfg);
        let mut c = connect(None, None);
        c.will = Some(LastWill {
            topic: "wills/ok".into(),
            payload: Bytes::new(),
            qos: QoS::AtMostOnce,
            retain: false,
            properties: Properties::new(),
        });
        assert_eq!(a.admit(&c, "c1", peer(), None).await, Ok(None));
        if let Some(w) = &mut c.will {
            w.topic = "wills/other".into();
        }
        assert_eq!(
            a.admit(&c, "c1", peer(), None).await,
            Err(ConnectReturnCode::NotAuthorized)
        );
        assert_eq!(get(&a.metrics.acl_denied_publish), 1);
        assert!(!a.check_subscribe("c1", None, "wills/ok"));
        assert_eq!(get(&a.metrics.acl_denied_subscribe), 1);
    }

    #[tokio::test]
    async fn reload_swaps_files_and_keeps_old_ones_on_error() {
        let acl = temp("acl2", "topic write a\n");
        let a = auth(AuthConfig {
            acl_file: Some(acl.clone()),
            ..AuthConfig::default()
        });
        assert!(a.check_publish("c", None, "a"));
        std::fs::write(&acl, "topic write b\n").expect("write");
        a.reload().expect("reload");
        assert!(!a.check_publish("c", None, "a"));
        assert!(a.check_publish("c", None, "b"));
        std::fs::write(&acl, "bogus line\n").expect("write");
        let e = a.reload().expect_err("bad file");
        assert!(e.to_string().contains("line 1"), "{e}");
        assert!(a.check_publish("c", None, "b"), "old ACL kept");
    }

    #[test]
    fn scram_is_served_over_the_password_file_and_sees_reloads() {
        use crate::auth::scram_client::ScramClient;
        let pw = temp("pw3", "");
        passwd::set_password(&pw, "alice", "one", true).expect("create");
        let a = auth(AuthConfig {
            password_file: Some(pw.clone()),
            ..AuthConfig::default()
        });
        assert_eq!(a.enhanced().names().collect::<Vec<_>>(), ["SCRAM-SHA-512"]);
        let login = |password: &[u8]| {
            let m = a.enhanced().method("SCRAM-SHA-512").expect("served");
            let mut c = ScramClient::new(scram::SHA512, "alice", password);
            let Step::Continue { data, state } = m.start("c1", Some(c.first().as_bytes())) else {
                panic!("continue expected")
            };
            let fin = c.finish(&data).expect("final");
            matches!(state.next(Some(fin.as_bytes())), Step::Success { .. })
        };
        assert!(login(b"one"));
        passwd::set_password(&pw, "alice", "two", false).expect("update");
        a.reload().expect("reload");
        assert!(!login(b"one"), "the old password no longer works");
        assert!(login(b"two"));
        a.enhanced_failed(peer(), "c1", "SCRAM-SHA-512");
        assert_eq!(get(&a.metrics.auth_failures), 1);
        let off = auth(AuthConfig {
            password_file: Some(pw),
            methods: Some(Vec::new()),
            ..AuthConfig::default()
        });
        assert!(off.enhanced().is_empty());
        assert!(auth(AuthConfig::default())
            .enhanced()
            .method("SCRAM-SHA-512")
            .is_none());
    }

    #[test]
    fn load_errors_name_the_path() {
        let missing = PathBuf::from("/nonexistent/supermq-pw");
        let e = Auth::load(
            &AuthConfig {
                password_file: Some(missing),
                ..AuthConfig::default()
            },
            Arc::default(),
        )
        .expect_err("missing");
        assert!(e.to_string().contains("/nonexistent/supermq-pw"), "{e}");
    }
}
