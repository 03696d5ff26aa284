//! Putting what a durable store kept back into a fresh broker, before it accepts clients.
//!
//! Owns the order of recovery: retained messages first, then the sessions with their
//! subscriptions (each read under the ACL identity of the client that made it), their
//! journals turned on only after (what they are rebuilt from is already on disk), and last
//! the wills that fell due while the broker was down [MQTT-3.1.3-9].

use std::time::{Instant, SystemTime};

use crate::context::Context;
use crate::store::Recovered;

/// What recovery found, for the start-up log line.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub sessions: usize,
    pub expired: usize,
    pub queued: usize,
    pub retained: usize,
    pub wills: usize,
}

/// What a store kept, half put back: the retained messages are in, the sessions wait for
/// [`sessions`] (after the cluster has started, so that their subscriptions are announced
/// to the peers like any other).
#[derive(Debug)]
pub struct Staged {
    restored: crate::store::Restored,
    now: Instant,
}

/// Puts the retained messages of `recovered` back (before the cluster starts: a peer that
/// links up is sent them with the rest of the retained set), and stages the sessions.
pub fn retained(ctx: &Context, recovered: Recovered) -> Staged {
    let (now, wall) = (Instant::now(), SystemTime::now());
    let restored = ctx.sessions.restore(recovered, now, wall);
    for (msg, stamp) in &restored.retained {
        ctx.router.retained().restore(msg, stamp.clone());
    }
    Staged { restored, now }
}

/// Rebuilds the staged sessions with their subscriptions, and publishes the wills that fell
/// due. Called once the cluster (when on) is started and before any client is accepted: the
/// subscriptions are then counted in the interest the peers are told of.
pub fn sessions(ctx: &Context, staged: Staged) -> Summary {
    let Staged { restored, now } = staged;
    let mut summary = Summary {
        sessions: restored.sessions.len(),
        expired: restored.expired,
        // Tombstones (kept clears) are not messages.
        retained: restored
            .retained
            .iter()
            .filter(|(m, _)| !m.payload.is_empty())
            .count(),
        wills: restored.wills_due.len(),
        ..Summary::default()
    };
    for r in restored.sessions {
        summary.queued += r.session.lock().queued();
        let read = ctx
            .auth
            .read_gate(&r.session.client_id, r.username.as_ref());
        for (filter, grant) in r.subscriptions {
            // The retained messages a subscription would get are not sent again: the
            // session's queue already holds what it was owed.
            if let Err(e) = ctx
                .router
                .subscribe(&r.session, &filter, grant, read.as_ref())
            {
                tracing::warn!(client_id = %r.session.client_id, filter, "stored subscription not restored: {e}");
            }
        }
        ctx.sessions.journal_on(&r.session);
    }
    for will in restored.wills_due {
        crate::sys::publish_will(ctx, will, now);
    }
    summary
}
