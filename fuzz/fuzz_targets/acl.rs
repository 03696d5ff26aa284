//! `acl`: the Mosquitto-format ACL parser, `Acl::parse`, and the decision `Acl::allows`.
//!
//! Input: ACL file text, then optionally a NUL byte and query lines: client id, username,
//! then candidate topic names and filters. More candidates are derived from the rules' own
//! topics (wildcard levels made concrete), so the queries land near what the file grants.
//!
//! Checked, besides "never panics":
//! - a parse error names a line of the text;
//! - for a topic name, receiving it and subscribing to exactly it are the same decision;
//! - a granted subscription is sound: if `allows(Subscribe(f))` then every topic `f` matches
//!   is receivable once the file's `deny` lines are taken out (a grant covers all of `f`;
//!   only a deny may still withhold a message, at delivery);
//! - grants are monotonic: taking out the `deny` lines, or adding `topic readwrite #` before
//!   the first line, never takes access away (and the latter changes nothing for named
//!   users, whose rules are their own);
//! - deny wins: appending `pattern deny #` refuses every query outside `$`-topics, and
//!   changes nothing for `$`-topics (which a leading `#` does not match).
#![no_main]

use libfuzzer_sys::fuzz_target;
use supermq::auth::{Acl, Op};
use supermq::topic::{matches, validate_filter};

/// A topic name a client may publish to: not empty [MQTT-4.7.3-1], no wildcard
/// [MQTT-3.3.2-2], no U+0000 [MQTT-1.5.3-2].
fn is_valid_topic_name(s: &str) -> bool {
    !s.is_empty() && !s.contains(['+', '#', '\0'])
}

/// Candidates evaluated per input, to keep an execution cheap.
const MAX_CANDIDATES: usize = 8;

fuzz_target!(|data: &[u8]| {
    let (file, query) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let text = String::from_utf8_lossy(file);
    let acl = match Acl::parse(&text) {
        Ok(acl) => acl,
        Err((line, reason)) => {
            let lines = text.lines().count();
            assert!(
                (1..=lines).contains(&line),
                "line {line} of {lines}: {reason}"
            );
            return;
        }
    };
    let query = String::from_utf8_lossy(query);
    let mut q = query.split('\n');
    let client_id = q.next().filter(|s| !s.is_empty()).unwrap_or("client");
    let username = q.next().filter(|s| !s.is_empty()).unwrap_or("user");

    // Candidate strings: the rest of the query, then each rule's topic.
    let mut raw: Vec<String> = q.map(str::to_owned).collect();
    for l in text.lines() {
        let mut words = l.split_whitespace();
        if matches!(words.next(), Some("topic" | "pattern")) {
            if let Some(topic) = words.last() {
                raw.push(
                    topic
                        .replace("%c", client_id)
                        .replace("%u", username)
                        .to_owned(),
                );
            }
        }
    }
    let mut filters = Vec::new();
    let mut topics = Vec::new();
    for s in raw {
        if filters.len() + topics.len() >= MAX_CANDIDATES {
            break;
        }
        if validate_filter(&s).is_ok() {
            let concrete = s
                .split('/')
                .map(|l| match l {
                    "+" => "x",
                    "#" => "y/z",
                    l => l,
                })
                .collect::<Vec<_>>()
                .join("/");
            if is_valid_topic_name(&concrete) {
                topics.push(concrete);
            }
            if let Some(parent) = s.strip_suffix("/#") {
                // `a/#` also matches `a`.
                if is_valid_topic_name(parent) {
                    topics.push(parent.to_owned());
                }
            }
            filters.push(s);
        } else if is_valid_topic_name(&s) {
            topics.push(s);
        }
    }

    let granting = Acl::parse(&format!("topic readwrite #\n{text}")).expect("still parses");
    let denying = Acl::parse(&format!("{text}\npattern deny #")).expect("still parses");
    let lenient = Acl::parse(&without_deny_lines(&text)).expect("still parses");
    let users = [None, Some(username)];
    let ops = filters
        .iter()
        .map(|f| Op::Subscribe(f))
        .chain(topics.iter().map(|t| Op::Subscribe(t)))
        .chain(topics.iter().map(|t| Op::Publish(t)))
        .chain(topics.iter().map(|t| Op::Receive(t)));
    for op in ops {
        let s = match op {
            Op::Subscribe(s) | Op::Publish(s) | Op::Receive(s) => s,
        };
        for user in users {
            let allowed = acl.allows(client_id, user, op);
            let with_grant = granting.allows(client_id, user, op);
            if user.is_some() {
                assert_eq!(
                    allowed, with_grant,
                    "anonymous grant changed {user:?} {op:?}"
                );
            } else {
                assert!(!allowed || with_grant, "a grant took access away: {op:?}");
            }
            assert!(
                !allowed || lenient.allows(client_id, user, op),
                "taking out the deny lines took {user:?} {op:?} away"
            );
            let with_deny = denying.allows(client_id, user, op);
            if s.starts_with('$') {
                assert_eq!(
                    allowed, with_deny,
                    "`pattern deny #` changed {user:?} {op:?}"
                );
            } else {
                assert!(!with_deny, "`pattern deny #` let {user:?} {op:?} through");
            }
        }
    }

    for user in users {
        for t in &topics {
            assert_eq!(
                acl.allows(client_id, user, Op::Receive(t)),
                acl.allows(client_id, user, Op::Subscribe(t)),
                "{user:?}: receiving {t:?} and subscribing to it differ"
            );
        }
        for f in &filters {
            if !acl.allows(client_id, user, Op::Subscribe(f)) {
                continue;
            }
            for t in topics.iter().filter(|t| matches(f, t)) {
                assert!(
                    lenient.allows(client_id, user, Op::Receive(t)),
                    "{user:?} may subscribe to {f:?}, but no grant covers {t:?}, which it matches"
                );
            }
        }
    }
});

/// `text` without its `topic deny` and `pattern deny` lines, split as `Acl::parse` splits.
fn without_deny_lines(text: &str) -> String {
    let mut out = String::new();
    for raw in text.lines() {
        let l = raw.trim();
        let (keyword, rest) = l.split_once([' ', '\t']).unwrap_or((l, ""));
        let rest = rest.trim_start();
        let access = rest.split_once([' ', '\t']).map_or(rest, |(a, _)| a);
        if !(matches!(keyword, "topic" | "pattern") && access == "deny") {
            out.push_str(raw);
        }
        out.push('\n');
    }
    out
}
