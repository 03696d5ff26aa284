//! Topic names, topic filters and the two trees built on them (spec §4.7).
//!
//! Owns: filter validation and matching rules (`+`, `#`, `$`-topics), the subscription trie
//! that maps filters to subscribers, and the retained-message tree. Everything here is pure,
//! synchronous data structures: callers (the router, the store) do the locking, ACL and delivery.

mod filter;
mod retain_tree;
mod share;
mod trie;

pub use filter::{levels, matches, validate_filter, FilterError};
pub use retain_tree::RetainTree;
pub use share::{parse_subscription, GroupKey, Subscription, QUEUE_GROUP};
pub use trie::SubscriptionTrie;
