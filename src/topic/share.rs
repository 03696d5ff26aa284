//! Consumer-group subscriptions: `$share/<group>/<filter>` (the standard shared-subscription
//! syntax, as EMQX, Mosquitto and HiveMQ accept it under 3.1.1), `$g/<group>/<filter>` (this
//! broker's original syntax) and `$queue/<filter>` (one implicit group).

use std::sync::Arc;

use super::filter::{validate_filter, FilterError};

/// The group named by `$queue/` subscriptions.
pub const QUEUE_GROUP: &str = "$queue";

/// Identifies one consumer group: a group name and the filter its members share. The same
/// name with another filter is another group.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupKey {
    pub group: Arc<str>,
    pub filter: Arc<str>,
}

/// What a SUBSCRIBE topic filter asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subscription<'a> {
    /// An ordinary subscription.
    Plain(&'a str),
    /// Membership of a consumer group.
    Shared { group: &'a str, filter: &'a str },
}

/// Parses and validates a subscription string.
pub fn parse_subscription(s: &str) -> Result<Subscription<'_>, FilterError> {
    if let Some(rest) = s.strip_prefix("$share/").or_else(|| s.strip_prefix("$g/")) {
        return shared_parts(rest);
    }
    if let Some(filter) = s.strip_prefix("$queue/") {
        validate_filter(filter)?;
        return Ok(Subscription::Shared {
            group: QUEUE_GROUP,
            filter,
        });
    }
    validate_filter(s)?;
    Ok(Subscription::Plain(s))
}

fn shared_parts(rest: &str) -> Result<Subscription<'_>, FilterError> {
    let (group, filter) = rest
        .split_once('/')
        .ok_or(FilterError::MissingShareFilter)?;
    if group.is_empty() || group.contains(['+', '#']) {
        return Err(FilterError::BadShareName);
    }
    validate_filter(filter)?;
    Ok(Subscription::Shared { group, filter })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_syntaxes() {
        let ok = [
            (
                "$share/g/a/+",
                Subscription::Shared {
                    group: "g",
                    filter: "a/+",
                },
            ),
            (
                "$g/workers/jobs/#",
                Subscription::Shared {
                    group: "workers",
                    filter: "jobs/#",
                },
            ),
            (
                "$queue/q/x",
                Subscription::Shared {
                    group: QUEUE_GROUP,
                    filter: "q/x",
                },
            ),
            (
                "$share/g/#",
                Subscription::Shared {
                    group: "g",
                    filter: "#",
                },
            ),
            ("a/b", Subscription::Plain("a/b")),
            ("$SYS/#", Subscription::Plain("$SYS/#")),
        ];
        for (s, want) in ok {
            assert_eq!(parse_subscription(s), Ok(want), "{s}");
        }
        let bad = [
            ("$share//a", FilterError::BadShareName),
            ("$share/g+/a", FilterError::BadShareName),
            ("$share/#/a", FilterError::BadShareName),
            ("$share/g", FilterError::MissingShareFilter),
            ("$share/g/", FilterError::Empty),
            ("$g/g/a/#/b", FilterError::BadMultiLevelWildcard),
            ("$queue/", FilterError::Empty),
        ];
        for (s, want) in bad {
            assert_eq!(parse_subscription(s), Err(want), "{s}");
        }
    }
}
