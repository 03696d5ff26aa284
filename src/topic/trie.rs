//! The subscription trie: topic filters → subscribers, matched level by level.
//!
//! One node per filter level; `+` and `#` have dedicated slots so matching a topic visits at
//! most one literal child, one `+` child and one `#` set per level instead of scanning every
//! filter. Not internally locked: the router shards it and wraps each shard in a lock.

use std::hash::Hash;

// foldhash rather than the std SipHash: matching hashes every level of every published
// topic, and SipHash was a visible share of the publish path. Its seed is random per
// process, so client-chosen levels cannot be crafted to collide.
use foldhash::{HashMap, HashMapExt};

#[derive(Debug)]
struct Node<K, V> {
    literal: HashMap<Box<str>, Node<K, V>>,
    plus: Option<Box<Node<K, V>>>,
    /// Subscribers of `<path to here>/#`.
    hash: HashMap<K, V>,
    /// Subscribers whose filter ends exactly at this node.
    exact: HashMap<K, V>,
}

impl<K, V> Default for Node<K, V> {
    fn default() -> Self {
        Node {
            literal: HashMap::new(),
            plus: None,
            hash: HashMap::new(),
            exact: HashMap::new(),
        }
    }
}

impl<K, V> Node<K, V> {
    fn is_empty(&self) -> bool {
        self.literal.is_empty()
            && self.plus.is_none()
            && self.hash.is_empty()
            && self.exact.is_empty()
    }
}

/// Maps validated topic filters to subscriber entries `K → V` (one entry per key per filter).
#[derive(Debug)]
pub struct SubscriptionTrie<K, V> {
    root: Node<K, V>,
    entries: usize,
}

impl<K, V> Default for SubscriptionTrie<K, V> {
    fn default() -> Self {
        SubscriptionTrie {
            root: Node::default(),
            entries: 0,
        }
    }
}

impl<K: Hash + Eq + Clone, V> SubscriptionTrie<K, V> {
    /// Number of (filter, key) entries.
    pub fn len(&self) -> usize {
        self.entries
    }

    /// True when no filter is stored.
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// Adds or replaces `key`'s entry for `filter`; returns the previous value.
    pub fn insert(&mut self, filter: &str, key: K, value: V) -> Option<V> {
        let mut node = &mut self.root;
        let mut it = filter.split('/').peekable();
        while let Some(level) = it.next() {
            if level == "#" && it.peek().is_none() {
                let old = node.hash.insert(key, value);
                self.entries += usize::from(old.is_none());
                return old;
            }
            node = if level == "+" {
                node.plus.get_or_insert_with(Box::default)
            } else {
                node.literal.entry(level.into()).or_default()
            };
        }
        let old = node.exact.insert(key, value);
        self.entries += usize::from(old.is_none());
        old
    }

    /// `key`'s entry for exactly `filter`.
    pub fn get(&self, filter: &str, key: &K) -> Option<&V> {
        let mut node = &self.root;
        let mut it = filter.split('/').peekable();
        while let Some(level) = it.next() {
            if level == "#" && it.peek().is_none() {
                return node.hash.get(key);
            }
            node = if level == "+" {
                node.plus.as_deref()?
            } else {
                node.literal.get(level)?
            };
        }
        node.exact.get(key)
    }

    /// Removes `key`'s entry for `filter`, pruning emptied nodes.
    pub fn remove(&mut self, filter: &str, key: &K) -> Option<V> {
        let levels: Vec<&str> = filter.split('/').collect();
        let old = Self::remove_at(&mut self.root, &levels, key);
        self.entries -= usize::from(old.is_some());
        old
    }

    fn remove_at(node: &mut Node<K, V>, levels: &[&str], key: &K) -> Option<V> {
        match levels {
            [] => node.exact.remove(key),
            ["#"] => node.hash.remove(key),
            [first, rest @ ..] => {
                if *first == "+" {
                    let child = node.plus.as_mut()?;
                    let old = Self::remove_at(child, rest, key);
                    if child.is_empty() {
                        node.plus = None;
                    }
                    old
                } else {
                    let child = node.literal.get_mut(*first)?;
                    let old = Self::remove_at(child, rest, key);
                    if child.is_empty() {
                        node.literal.remove(*first);
                    }
                    old
                }
            }
        }
    }

    /// Calls `f` for every entry whose filter matches `topic` (a valid topic name).
    ///
    /// A key subscribed through several overlapping filters is reported once per filter;
    /// the caller merges them [MQTT-3.3.5-1]. Root-level wildcards skip `$` topics
    /// [MQTT-4.7.2-1].
    pub fn for_each_match<'a>(&'a self, topic: &str, mut f: impl FnMut(&'a K, &'a V)) {
        let dollar = topic.starts_with('$');
        let mut levels = topic.split('/');
        let Some(first) = levels.next() else { return };
        // On the stack for topics up to 16 levels deep: no allocation per publish.
        let rest: smallvec::SmallVec<[&str; 16]> = levels.collect();
        let root = &self.root;
        if !dollar {
            root.hash.iter().for_each(|(k, v)| f(k, v));
            if let Some(plus) = &root.plus {
                Self::walk(plus, &rest, &mut f);
            }
        }
        if let Some(child) = root.literal.get(first) {
            Self::walk(child, &rest, &mut f);
        }
    }

    fn walk<'a>(node: &'a Node<K, V>, levels: &[&str], f: &mut impl FnMut(&'a K, &'a V)) {
        // `a/#` matches `a` itself as well as everything below it (spec §4.7.1.2).
        node.hash.iter().for_each(|(k, v)| f(k, v));
        match levels.split_first() {
            None => node.exact.iter().for_each(|(k, v)| f(k, v)),
            Some((level, rest)) => {
                if let Some(plus) = &node.plus {
                    Self::walk(plus, rest, f);
                }
                if let Some(child) = node.literal.get(*level) {
                    Self::walk(child, rest, f);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topic::matches;

    fn matched(t: &SubscriptionTrie<u32, &'static str>, topic: &str) -> Vec<&'static str> {
        let mut v = Vec::new();
        t.for_each_match(topic, |_, f| v.push(*f));
        v.sort_unstable();
        v
    }

    const FILTERS: [&str; 14] = [
        "#", "+", "a", "a/b", "a/+", "a/#", "+/b", "+/+/c", "a/b/#", "/", "/+", "$SYS/#", "$SYS/+",
        "a//b",
    ];
    const TOPICS: [&str; 12] = [
        "a", "a/b", "a/b/c", "x/b", "/", "/x", "$SYS/x", "$SYS/x/y", "a//b", "b", "a/", "$x",
    ];

    #[test]
    fn trie_agrees_with_the_reference_matcher() {
        let mut t = SubscriptionTrie::default();
        for (i, f) in FILTERS.iter().enumerate() {
            t.insert(f, i as u32, *f);
        }
        assert_eq!(t.len(), FILTERS.len());
        for topic in TOPICS {
            let mut expect: Vec<&str> = FILTERS
                .iter()
                .copied()
                .filter(|f| matches(f, topic))
                .collect();
            expect.sort_unstable();
            assert_eq!(matched(&t, topic), expect, "topic {topic}");
        }
    }

    #[test]
    fn remove_prunes_and_replace_keeps_one_entry() {
        let mut t = SubscriptionTrie::default();
        assert!(t.insert("a/+/c", 1, "x").is_none());
        assert_eq!(t.insert("a/+/c", 1, "y"), Some("x"));
        assert_eq!(t.len(), 1);
        assert_eq!(matched(&t, "a/b/c"), vec!["y"]);
        assert_eq!(t.remove("a/+/c", &1), Some("y"));
        assert_eq!(t.remove("a/+/c", &1), None);
        assert!(t.is_empty());
        assert!(t.root.is_empty(), "emptied nodes are pruned");
    }
}
