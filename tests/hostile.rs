//! Hostile clients against the real `supermq` binary over TCP.
//!
//! Every test starts the binary on 127.0.0.1:0 with a config file of its own (the bound
//! address is read from the broker's "listening" log line), connects a *bystander* client
//! before any attack, and after each hostile action asserts that the broker process is still
//! alive and that the bystander still gets its own QoS 1 message back. Each test ends with
//! SIGTERM and asserts exit status 0 within a bound (a crash on shutdown is a crash) and that
//! no task panicked along the way.
//!
//! The attacks are built with the raw encoder of `common::wire`, so that packets the codec's own
//! encoder would refuse (bad UTF-8, over-long topics, absurd lengths) can be sent.
//!
//! - topics and filters far deeper than `limits.max_topic_levels` (200): the connection is
//!   closed (SUBSCRIBE may instead get SUBACK 0x80 with nothing subscribed); and the same
//!   deep topics with the limit raised to 100,000, so that the subscription trie and the
//!   retained tree really hold 65,535-level entries and must neither recurse nor overflow
//!   a stack when matching, removing or dropping them;
//! - the configured `max_topic_levels` / `max_topic_length` boundaries;
//! - a 256 MB remaining length trickled byte by byte (refused from the fixed header, memory
//!   flat);
//! - 20,000 filters in one SUBSCRIBE against `session.max_subscriptions` (10,000);
//! - 65,535-byte client ids, user names, passwords and topics;
//! - 200 connections that never send CONNECT, half-sent and trickled CONNECTs against a 1 s
//!   `limits.connect_timeout`;
//! - invalid UTF-8 and U+0000 in every string field [MQTT-1.5.3-1, MQTT-1.5.3-2].

mod common;
#[path = "hostile/resources.rs"]
mod resources;
#[path = "hostile/support.rs"]
mod support;
#[path = "hostile/topics.rs"]
mod topics;
