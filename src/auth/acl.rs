//! Access control lists in Mosquitto's `acl_file` format.
//!
//! ```text
//! # comment
//! topic read public/#          <- before any `user` line: anonymous clients
//! user alice                   <- starts alice's block
//! topic readwrite alice/#
//! topic deny alice/secret
//! pattern write devices/%c/#   <- every client, %c = client id, %u = username
//! ```
//! Access is `read`, `write`, `readwrite` (the default when omitted) or `deny`. Anything not
//! granted is denied, and a matching `deny` wins over any grant.
//!
//! Subscriptions follow Mosquitto: a filter is granted when a read grant covers all of it,
//! and refused by a `deny` only when the deny covers all of it; a filter that merely overlaps
//! a denied area is granted, and each message is then checked on delivery ([`Op::Receive`],
//! see `ReadGate`), so a monitoring client on `#` keeps working beside a `deny` line.
//!
//! Owns parsing and the pure decision; counting and logging are the caller's.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::topic::{levels, matches, validate_filter};

/// An ACL file that could not be read or parsed.
#[derive(Debug, Error)]
pub enum AclError {
    #[error("acl file {}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("acl file {}: line {line}: {reason}", path.display())]
    Line {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

/// What an entry allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
    ReadWrite,
    Deny,
}

impl Access {
    fn from_word(w: &str) -> Option<Access> {
        Some(match w {
            "read" => Access::Read,
            "write" => Access::Write,
            "readwrite" => Access::ReadWrite,
            "deny" => Access::Deny,
            _ => return None,
        })
    }

    fn grants(self, op: Op<'_>) -> bool {
        match op {
            Op::Publish(_) => matches!(self, Access::Write | Access::ReadWrite),
            Op::Subscribe(_) | Op::Receive(_) => matches!(self, Access::Read | Access::ReadWrite),
        }
    }
}

/// What a client asks to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op<'a> {
    /// Publish to a topic name (also the will at CONNECT).
    Publish(&'a str),
    /// Subscribe with a topic filter.
    Subscribe(&'a str),
    /// Receive a message published on a topic name (checked at delivery).
    Receive(&'a str),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    access: Access,
    topic: String,
}

/// A loaded ACL.
#[derive(Debug, Default)]
pub struct Acl {
    /// `topic` lines before the first `user` line.
    anonymous: Vec<Rule>,
    users: HashMap<String, Vec<Rule>>,
    /// `pattern` lines, wherever they appear.
    patterns: Vec<Rule>,
}

impl Acl {
    /// Reads and parses the file at `path`.
    pub fn load(path: &Path) -> Result<Acl, AclError> {
        let text = std::fs::read_to_string(path).map_err(|source| AclError::Read {
            path: path.to_owned(),
            source,
        })?;
        Acl::parse(&text).map_err(|(line, reason)| AclError::Line {
            path: path.to_owned(),
            line,
            reason,
        })
    }

    /// Parses file text; an error is `(line, reason)`.
    pub fn parse(text: &str) -> Result<Acl, (usize, String)> {
        let mut acl = Acl::default();
        let mut user: Option<String> = None;
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let l = raw.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            let (keyword, rest) = l.split_once([' ', '\t']).unwrap_or((l, ""));
            let rest = rest.trim_start();
            match keyword {
                "user" => {
                    if rest.is_empty() {
                        return Err((line, "`user` needs a username".to_owned()));
                    }
                    acl.users.entry(rest.to_owned()).or_default();
                    user = Some(rest.to_owned());
                }
                "topic" | "pattern" => {
                    let rule = parse_rule(rest).map_err(|r| (line, r))?;
                    if keyword == "pattern" {
                        acl.patterns.push(rule);
                    } else if let Some(u) = &user {
                        acl.users.entry(u.clone()).or_default().push(rule);
                    } else {
                        acl.anonymous.push(rule);
                    }
                }
                other => {
                    return Err((
                        line,
                        format!("unknown keyword {other:?}; expected topic, user or pattern"),
                    ))
                }
            }
        }
        Ok(acl)
    }

    /// Number of entries (for logs).
    pub fn len(&self) -> usize {
        self.anonymous.len()
            + self.patterns.len()
            + self.users.values().map(Vec::len).sum::<usize>()
    }

    /// Whether the file has no entry at all (everything is denied).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether the client may do `op`. `username` is `None` for anonymous clients, whose
    /// `topic` rules are those before the first `user` line.
    pub fn allows(&self, client_id: &str, username: Option<&str>, op: Op<'_>) -> bool {
        let own: &[Rule] = match username {
            None => &self.anonymous,
            Some(u) => self.users.get(u).map_or(&[], Vec::as_slice),
        };
        let patterns = || {
            self.patterns
                .iter()
                .map(|r| (r.access, substitute(&r.topic, client_id, username)))
        };
        // A deny anywhere wins.
        let denied = own
            .iter()
            .filter(|r| r.access == Access::Deny)
            .any(|r| hits(&r.topic, op))
            || patterns()
                .filter(|(a, _)| *a == Access::Deny)
                .any(|(_, t)| match t {
                    Subst::Topic(t) => hits(&t, op),
                    // A name with wildcards could make the pattern cover anything: deny.
                    Subst::Unsafe => true,
                    Subst::NoUsername => false,
                });
        if denied {
            return false;
        }
        own.iter()
            .any(|r| r.access.grants(op) && grants(&r.topic, op))
            || patterns().any(|(a, t)| match t {
                Subst::Topic(t) => a.grants(op) && grants(&t, op),
                Subst::Unsafe | Subst::NoUsername => false,
            })
    }
}

/// `[access] topic`; the topic is the rest of the line (it may hold spaces).
fn parse_rule(rest: &str) -> Result<Rule, String> {
    let (first, after) = rest.split_once([' ', '\t']).unwrap_or((rest, ""));
    let (access, topic) = match Access::from_word(first) {
        Some(a) => (a, after.trim_start()),
        None => (Access::ReadWrite, rest),
    };
    if topic.is_empty() {
        return Err("missing topic".to_owned());
    }
    validate_filter(topic).map_err(|e| format!("invalid topic {topic:?}: {e}"))?;
    Ok(Rule {
        access,
        topic: topic.to_owned(),
    })
}

enum Subst {
    Topic(String),
    /// The client id or username holds `+` or `#`, which would turn into wildcards.
    Unsafe,
    /// `%u` for a client without a username: the pattern does not apply.
    NoUsername,
}

fn substitute(pattern: &str, client_id: &str, username: Option<&str>) -> Subst {
    let wild = |s: &str| s.contains(['+', '#']);
    let mut t = pattern.to_owned();
    if t.contains("%c") {
        if wild(client_id) {
            return Subst::Unsafe;
        }
        t = t.replace("%c", client_id);
    }
    if pattern.contains("%u") {
        match username {
            None => return Subst::NoUsername,
            Some(u) if wild(u) => return Subst::Unsafe,
            Some(u) => t = t.replace("%u", u),
        }
    }
    Subst::Topic(t)
}

/// Whether a `deny` entry refuses `op`: it matches the topic, or covers the whole filter (a
/// filter only partly denied is granted and filtered per message, as Mosquitto does).
fn hits(entry: &str, op: Op<'_>) -> bool {
    match op {
        Op::Publish(topic) | Op::Receive(topic) => matches(entry, topic),
        Op::Subscribe(filter) => covers(entry, filter),
    }
}

/// Whether a grant entry allows `op`: it matches the topic, or covers the whole filter.
fn grants(entry: &str, op: Op<'_>) -> bool {
    match op {
        Op::Publish(topic) | Op::Receive(topic) => matches(entry, topic),
        Op::Subscribe(filter) => covers(entry, filter),
    }
}

/// Whether every topic `filter` matches is matched by `entry`: `a/#` covers `a/b/+` and `a`;
/// `+` covers a literal level or `+`, never `#`. Wildcards at the start do not reach
/// `$`-topics [MQTT-4.7.2-1], as in matching.
pub(super) fn covers(entry: &str, filter: &str) -> bool {
    if filter.starts_with('$') && entry.starts_with(['+', '#']) {
        return false;
    }
    let mut e = levels(entry);
    let mut f = levels(filter);
    loop {
        match (e.next(), f.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(fl)) if fl != "#" => {}
            (Some(el), Some(fl)) if el == fl => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "\
# anonymous clients
topic read public/#
topic public/chat

user alice
topic readwrite alice/#
topic deny alice/secret/#
topic write shared/in

user bob smith
topic read shared/#

pattern readwrite devices/%c/#
pattern read users/%u/inbox
pattern deny %u/private
";

    fn acl() -> Acl {
        Acl::parse(FILE).expect("parse")
    }

    #[test]
    fn anonymous_rules_come_before_any_user_line() {
        let a = acl();
        assert!(a.allows("c", None, Op::Subscribe("public/news")));
        assert!(!a.allows("c", None, Op::Publish("public/news")));
        assert!(
            a.allows("c", None, Op::Publish("public/chat")),
            "default readwrite"
        );
        assert!(!a.allows("c", Some("alice"), Op::Subscribe("public/news")));
        assert!(!a.allows("c", Some("nobody"), Op::Subscribe("public/news")));
    }

    #[test]
    fn user_blocks_and_deny() {
        let a = acl();
        assert!(a.allows("c", Some("alice"), Op::Publish("alice/x")));
        assert!(a.allows("c", Some("alice"), Op::Subscribe("alice/x/+")));
        assert!(!a.allows("c", Some("alice"), Op::Publish("alice/secret/k")));
        assert!(
            a.allows("c", Some("alice"), Op::Subscribe("alice/#")),
            "a filter that only overlaps a denied area is granted (as Mosquitto)"
        );
        assert!(a.allows("c", Some("alice"), Op::Receive("alice/x")));
        assert!(
            !a.allows("c", Some("alice"), Op::Receive("alice/secret/k")),
            "the denied topics are withheld per message"
        );
        assert!(
            !a.allows("c", Some("alice"), Op::Subscribe("alice/secret/+")),
            "a filter wholly inside a denied area is refused"
        );
        assert!(!a.allows("c", Some("alice"), Op::Receive("shared/in")));
        assert!(a.allows("c", Some("alice"), Op::Publish("shared/in")));
        assert!(!a.allows("c", Some("alice"), Op::Subscribe("shared/in")));
        assert!(a.allows("c", Some("bob smith"), Op::Subscribe("shared/#")));
        assert!(!a.allows("c", Some("bob smith"), Op::Publish("shared/in")));
    }

    /// A monitoring client on `#` keeps working beside a deny line (Mosquitto's behaviour);
    /// the denied topic is withheld at delivery.
    #[test]
    fn deny_lines_do_not_break_wildcard_subscribers() {
        let a = Acl::parse("topic readwrite #\ntopic deny test/nosubscribe\n").expect("parse");
        for f in ["#", "test/#", "+/nosubscribe", "test/+"] {
            assert!(a.allows("c", None, Op::Subscribe(f)), "{f}");
        }
        assert!(!a.allows("c", None, Op::Subscribe("test/nosubscribe")));
        assert!(a.allows("c", None, Op::Receive("test/other")));
        assert!(!a.allows("c", None, Op::Receive("test/nosubscribe")));
        // A filter no grant covers is refused, as in Mosquitto.
        let b = Acl::parse("topic read a/#\n").expect("parse");
        assert!(!b.allows("c", None, Op::Subscribe("#")));
        assert!(b.allows("c", None, Op::Subscribe("a/+/x")));
        assert!(!b.allows("c", None, Op::Receive("b/x")));
    }

    #[test]
    fn patterns_substitute_client_id_and_username() {
        let a = acl();
        assert!(a.allows("dev1", None, Op::Publish("devices/dev1/t")));
        assert!(!a.allows("dev1", None, Op::Publish("devices/dev2/t")));
        assert!(a.allows("dev1", Some("alice"), Op::Subscribe("users/alice/inbox")));
        assert!(!a.allows("dev1", Some("alice"), Op::Subscribe("users/bob/inbox")));
        assert!(!a.allows("dev1", None, Op::Subscribe("users//inbox")));
        // `pattern deny %u/private` binds per user.
        assert!(!a.allows("c", Some("alice"), Op::Publish("alice/private")));
        assert!(a.allows("c", Some("alice"), Op::Publish("alice/public")));
    }

    #[test]
    fn wildcards_in_names_never_widen_a_pattern() {
        let a = acl();
        assert!(!a.allows("+", None, Op::Publish("devices/x/t")));
        assert!(!a.allows("#", None, Op::Subscribe("devices/#")));
        // A deny pattern with an unsafe name denies everything.
        assert!(!a.allows("c", Some("a+"), Op::Publish("anything")));
    }

    #[test]
    fn empty_acl_denies_everything() {
        let a = Acl::parse("# nothing\n").expect("parse");
        assert!(a.is_empty());
        assert!(!a.allows("c", None, Op::Publish("a")));
        assert!(!a.allows("c", Some("u"), Op::Subscribe("a")));
    }

    #[test]
    fn coverage_of_filters() {
        let yes = [
            ("a/#", "a/b/+"),
            ("a/#", "a"),
            ("a/#", "a/#"),
            ("#", "x/y/#"),
            ("+/b", "x/b"),
            ("+/b", "+/b"),
            ("a/+/c", "a/b/c"),
            ("$SYS/#", "$SYS/broker/+"),
        ];
        for (e, f) in yes {
            assert!(covers(e, f), "{e} should cover {f}");
        }
        let no = [
            ("a/+", "a/#"),
            ("a/b", "a/+"),
            ("a/+", "a/b/c"),
            ("a/b", "a/b/c"),
            ("#", "$SYS/#"),
            ("+/broker", "$SYS/broker"),
        ];
        for (e, f) in no {
            assert!(!covers(e, f), "{e} should not cover {f}");
        }
    }

    #[test]
    fn parse_errors_name_the_line() {
        let cases = [
            ("user\n", 1, "needs a username"),
            ("# x\ntopic read\n", 2, "missing topic"),
            ("topic a/#/b\n", 1, "invalid topic"),
            ("\n\nallow a\n", 3, "unknown keyword"),
            ("pattern deny\n", 1, "missing topic"),
        ];
        for (text, line, reason) in cases {
            let (l, r) = Acl::parse(text).expect_err(text);
            assert_eq!(l, line, "{text}");
            assert!(r.contains(reason), "{text}: {r}");
        }
    }

    #[test]
    fn topics_may_hold_spaces_and_tabs_separate() {
        let a = Acl::parse("topic\tread  my topic/x\n").expect("parse");
        assert!(a.allows("c", None, Op::Subscribe("my topic/x")));
    }
}
