//! `[[webhook]]`, `[events]` and `[agents]`: parsed values, defaults, and every bad value
//! named with its key and line.

use super::tests::err;
use super::*;

#[test]
fn a_webhook_is_read_with_its_defaults() {
    let c = Config::from_toml_str(
        "[[webhook]]\nurl = \"http://127.0.0.1:9000/hook\"\n\
         events = [\"client.connected\", \"message.publish\"]\ntopics = [\"t/#\"]\n\
         timeout = \"250ms\"\nbatch_max = 7\nqueue_size = 50\nretries = 0\n\
         [[webhook]]\nurl = \"http://h:1/\"\n[events]\nenabled = true\n\
         [agents]\nenabled = false\ntopic_prefix = \"devices/agents/\"",
    )
    .expect("valid");
    let w = &c.webhooks[0];
    assert_eq!(w.url, "http://127.0.0.1:9000/hook");
    assert_eq!(
        w.events,
        [HookEvent::ClientConnected, HookEvent::MessagePublish]
    );
    assert_eq!(w.topics, ["t/#"]);
    assert_eq!(w.timeout, Duration::from_millis(250));
    assert_eq!((w.batch_max, w.queue_size, w.retries), (7, 50, 0));
    let d = &c.webhooks[1];
    assert_eq!(d.timeout, Duration::from_secs(5));
    assert_eq!((d.batch_max, d.queue_size, d.retries), (100, 10_000, 3));
    assert!(d.events.iter().all(|e| !e.is_message()));
    assert!(d.events.contains(&HookEvent::AgentDisconnected));
    assert!(c.events.enabled);
    assert!(!c.agents.enabled);
    assert_eq!(c.agents.topic_prefix, "devices/agents/");
}

#[test]
fn defaults_are_no_webhook_no_events_and_agents_on() {
    let c = Config::default();
    assert!(c.webhooks.is_empty());
    assert!(!c.events.enabled);
    assert!(c.agents.enabled);
    assert_eq!(c.agents.topic_prefix, "agents/");
}

#[test]
fn every_event_name_round_trips() {
    for (name, e) in HookEvent::ALL {
        assert_eq!(e.name(), *name);
    }
}

const BAD: &[(&str, &str, &str, usize)] = &[
    (
        "no url",
        "\n[[webhook]]\ntimeout = \"1s\"",
        "webhook.url",
        2,
    ),
    (
        "https url",
        "[[webhook]]\nurl = \"https://h/x\"",
        "webhook.url",
        2,
    ),
    ("not a url", "[[webhook]]\nurl = \"h:80\"", "webhook.url", 2),
    (
        "unknown event",
        "[[webhook]]\nurl = \"http://h/\"\nevents = [\"client.connect\"]",
        "webhook.events",
        3,
    ),
    (
        "no events",
        "[[webhook]]\nurl = \"http://h/\"\nevents = []",
        "webhook.events",
        3,
    ),
    (
        "bad filter",
        "[[webhook]]\nurl = \"http://h/\"\ntopics = [\"a/#/b\"]",
        "webhook.topics",
        3,
    ),
    (
        "no filters",
        "[[webhook]]\nurl = \"http://h/\"\ntopics = []",
        "webhook.topics",
        3,
    ),
    (
        "zero timeout",
        "[[webhook]]\nurl = \"http://h/\"\ntimeout = \"0s\"",
        "webhook.timeout",
        3,
    ),
    (
        "bad duration",
        "[[webhook]]\nurl = \"http://h/\"\ntimeout = \"soon\"",
        "webhook.timeout",
        3,
    ),
    (
        "zero batch",
        "[[webhook]]\nurl = \"http://h/\"\nbatch_max = 0",
        "webhook.batch_max",
        3,
    ),
    (
        "zero queue",
        "[[webhook]]\nurl = \"http://h/\"\nqueue_size = 0",
        "webhook.queue_size",
        3,
    ),
    (
        "negative retries",
        "[[webhook]]\nurl = \"http://h/\"\nretries = -1",
        "webhook.retries",
        3,
    ),
    (
        "unknown webhook key",
        "[[webhook]]\nurl = \"http://h/\"\nheaders = 1",
        "webhook.headers",
        3,
    ),
    (
        "events not a bool",
        "[events]\nenabled = 1",
        "events.enabled",
        2,
    ),
    (
        "wildcard prefix",
        "[agents]\ntopic_prefix = \"a/+/\"",
        "agents.topic_prefix",
        2,
    ),
    (
        "dollar prefix",
        "[agents]\ntopic_prefix = \"$SYS/\"",
        "agents.topic_prefix",
        2,
    ),
    (
        "empty prefix",
        "[agents]\ntopic_prefix = \"\"",
        "agents.topic_prefix",
        2,
    ),
];

#[test]
fn bad_values_name_key_and_line() {
    for (what, text, key, line) in BAD {
        let message = err(text);
        assert!(
            message.contains(&format!("line {line}:")) && message.contains(key),
            "{what}: expected key `{key}` and line {line} in: {message}"
        );
    }
}
