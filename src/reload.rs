//! Reloading what may change under a running broker (SIGHUP): the password and ACL files, and
//! the TLS certificate, key and CA files of every `tls`/`wss` listener and of the routes.
//!
//! Each part is reloaded on its own: one whose files are bad keeps what it had and is
//! reported (the error names the file), the others still take effect. Connections and route
//! links already up are never touched; new handshakes use the new certificates.

use std::sync::Arc;

use thiserror::Error;

use crate::auth::AuthError;
use crate::cluster::{ClusterError, RouteTls};
use crate::context::Context;
use crate::listener::{ListenerError, TlsSetup};

/// One part that could not be reloaded (its previous state stays in force).
#[derive(Debug, Error)]
pub enum ReloadError {
    #[error("password/ACL files: {0}")]
    Auth(#[from] AuthError),
    #[error("{0}")]
    Listener(#[from] ListenerError),
    #[error("route TLS: {0}")]
    Route(#[from] ClusterError),
}

/// Every part that could not be reloaded (never empty).
#[derive(Debug, Error)]
#[error("{}", join(.0))]
pub struct ReloadErrors(pub Vec<ReloadError>);

fn join(errors: &[ReloadError]) -> String {
    let parts: Vec<String> = errors.iter().map(ToString::to_string).collect();
    parts.join("; ")
}

/// A handle on everything a reload re-reads; cheap to clone (what the SIGHUP task holds).
#[derive(Debug, Clone)]
pub struct Reloader {
    ctx: Arc<Context>,
    listeners: Vec<TlsSetup>,
    routes: Option<RouteTls>,
}

impl Reloader {
    pub(crate) fn new(
        ctx: Arc<Context>,
        listeners: Vec<TlsSetup>,
        routes: Option<RouteTls>,
    ) -> Reloader {
        Reloader {
            ctx,
            listeners,
            routes,
        }
    }

    /// Reloads every part; `Err` lists those that kept their previous state.
    pub fn reload(&self) -> Result<(), ReloadErrors> {
        let mut errors = Vec::new();
        if let Err(e) = self.ctx.reload_auth() {
            errors.push(e.into());
        }
        for l in &self.listeners {
            if let Err(e) = l.reload() {
                errors.push(e.into());
            }
        }
        if let Some(r) = &self.routes {
            if let Err(e) = r.reload() {
                errors.push(e.into());
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(ReloadErrors(errors))
        }
    }

    /// What a reload covers, for the log: e.g. "password/ACL files, TLS of listeners
    /// tls, wss, route TLS".
    pub fn describe(&self) -> String {
        let mut s = String::from("password/ACL files");
        if !self.listeners.is_empty() {
            let names: Vec<&str> = self.listeners.iter().map(TlsSetup::listener).collect();
            s.push_str(&format!(", TLS of listener(s) {}", names.join(", ")));
        }
        if self.routes.is_some() {
            s.push_str(", route TLS");
        }
        s
    }
}
