//! The subscription trie: topic filters → subscribers, matched level by level.
//!
//! One node per filter level; `+` and `#` have dedicated slots so matching a topic visits at
//! most one literal child, one `+` child and one `#` set per level instead of scanning every
//! filter. Not internally locked: the router shards it and wraps each shard in a lock.

use std::hash::Hash;

use smallvec::SmallVec;

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

    /// Whether the node holds nothing but one child (the one on a path being pruned).
    fn only_one_child(&self) -> bool {
        self.hash.is_empty()
            && self.exact.is_empty()
            && self.literal.len() + usize::from(self.plus.is_some()) == 1
    }

    fn child_mut(&mut self, level: &str) -> Option<&mut Node<K, V>> {
        if level == "+" {
            self.plus.as_deref_mut()
        } else {
            self.literal.get_mut(level)
        }
    }

    fn remove_child(&mut self, level: &str) -> Option<Node<K, V>> {
        if level == "+" {
            self.plus.take().map(|b| *b)
        } else {
            self.literal.remove(level)
        }
    }
}

/// Dropped with an explicit stack: a chain of nodes is as deep as the deepest filter a
/// client sent, and the default recursive drop would overflow the thread's stack on it.
impl<K, V> Drop for Node<K, V> {
    fn drop(&mut self) {
        if self.literal.is_empty() && self.plus.is_none() {
            return;
        }
        let mut stack: Vec<Node<K, V>> = self.literal.drain().map(|(_, n)| n).collect();
        stack.extend(self.plus.take().map(|b| *b));
        while let Some(mut n) = stack.pop() {
            stack.extend(n.literal.drain().map(|(_, c)| c));
            stack.extend(n.plus.take().map(|b| *b));
            // `n` now has no children, so its own drop ends here.
        }
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

    /// Whether any key held at exactly `filter` satisfies `pred` (e.g. "is there still a
    /// local subscriber to this filter": the trie reports interest changes this way).
    pub fn any_key_at(&self, filter: &str, pred: impl Fn(&K) -> bool) -> bool {
        let mut node = &self.root;
        let mut it = filter.split('/').peekable();
        while let Some(level) = it.next() {
            if level == "#" && it.peek().is_none() {
                return node.hash.keys().any(&pred);
            }
            node = match if level == "+" {
                node.plus.as_deref()
            } else {
                node.literal.get(level)
            } {
                Some(n) => n,
                None => return false,
            };
        }
        node.exact.keys().any(pred)
    }

    /// Removes `key`'s entry for `filter`, pruning emptied nodes.
    ///
    /// Iterative (a filter may be as deep as `limits.max_topic_levels` allows): one walk down
    /// to remove the entry and find what stays, one to unlink the emptied branch.
    pub fn remove(&mut self, filter: &str, key: &K) -> Option<V> {
        let levels: Vec<&str> = filter.split('/').collect();
        let (path, multi) = match levels.split_last() {
            Some((&"#", path)) => (path, true),
            _ => (&levels[..], false),
        };
        // One walk down: the deepest node that stays (it holds more than the path below it)
        // is noted on the way; the path is cut just under it. The root always stays.
        let mut keep = 0;
        let mut node = &mut self.root;
        for (depth, level) in path.iter().enumerate() {
            node = node.child_mut(level)?;
            if depth + 1 < path.len() && !node.only_one_child() {
                keep = depth + 1;
            }
        }
        let old = if multi {
            node.hash.remove(key)
        } else {
            node.exact.remove(key)
        }?;
        if !node.is_empty() {
            keep = path.len();
        }
        self.entries -= 1;
        if keep < path.len() {
            let mut node = &mut self.root;
            for level in &path[..keep] {
                node = node.child_mut(level)?;
            }
            // Dropped here, iteratively (see `Drop for Node`).
            drop(node.remove_child(path[keep]));
        }
        Some(old)
    }

    /// Calls `f` for every entry whose filter matches `topic` (a valid topic name).
    ///
    /// A key subscribed through several overlapping filters is reported once per filter;
    /// the caller merges them [MQTT-3.3.5-1]. Root-level wildcards skip `$` topics
    /// [MQTT-4.7.2-1].
    pub fn for_each_match<'a>(&'a self, topic: &str, mut f: impl FnMut(&'a K, &'a V)) {
        let dollar = topic.starts_with('$');
        // On the stack for topics up to 16 levels deep: no allocation per publish.
        let levels: SmallVec<[&str; 16]> = topic.split('/').collect();
        // (node, levels consumed): an explicit stack, never recursion, since a topic may be as
        // deep as `limits.max_topic_levels`. Each step pushes at most two nodes one level
        // deeper, so the stack holds at most one entry per level plus one.
        let mut stack: SmallVec<[(&'a Node<K, V>, usize); 16]> = SmallVec::new();
        let root = &self.root;
        if !dollar {
            root.hash.iter().for_each(|(k, v)| f(k, v));
            if let Some(plus) = &root.plus {
                stack.push((plus, 1));
            }
        }
        if let Some(child) = root.literal.get(levels[0]) {
            stack.push((child, 1));
        }
        while let Some((node, depth)) = stack.pop() {
            // `a/#` matches `a` itself as well as everything below it (spec §4.7.1.2).
            node.hash.iter().for_each(|(k, v)| f(k, v));
            match levels.get(depth) {
                None => node.exact.iter().for_each(|(k, v)| f(k, v)),
                Some(level) => {
                    if let Some(plus) = &node.plus {
                        stack.push((plus, depth + 1));
                    }
                    if let Some(child) = node.literal.get(*level) {
                        stack.push((child, depth + 1));
                    }
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

#[cfg(test)]
mod deep {
    use super::*;

    /// Far deeper than any thread stack could recurse: insert, match, remove and drop must
    /// all be iterative.
    #[test]
    fn a_filter_of_65535_levels_is_handled_without_recursion() {
        let deep_filter = "/".repeat(65_534);
        let deep_plus = "+/".repeat(40_000) + "#";
        let topic = "/".repeat(65_534);
        // A small stack makes any recursion fail loudly here rather than in production.
        std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || {
                let mut t = SubscriptionTrie::default();
                t.insert(&deep_filter, 1u32, "deep");
                t.insert(&deep_plus, 2u32, "plus");
                t.insert("#", 3u32, "all");
                let mut got = Vec::new();
                t.for_each_match(&topic, |_, v| got.push(*v));
                got.sort_unstable();
                assert_eq!(got, vec!["all", "deep", "plus"]);
                assert_eq!(t.remove(&deep_filter, &1), Some("deep"));
                assert_eq!(t.len(), 2);
                let mut got = Vec::new();
                t.for_each_match(&topic, |_, v| got.push(*v));
                got.sort_unstable();
                assert_eq!(got, vec!["all", "plus"]);
                // Dropped with the 40,000-level `+` chain still in it.
                drop(t);
                let mut t = SubscriptionTrie::default();
                t.insert(&deep_filter, 1u32, "deep");
                t.insert("a", 1u32, "a");
                assert_eq!(t.remove(&deep_filter, &1), Some("deep"));
                assert_eq!(t.len(), 1);
                assert_eq!(t.root.literal.len(), 1, "only `a` is left after pruning");
            })
            .expect("spawn")
            .join()
            .expect("no stack overflow");
    }

    #[test]
    fn pruning_keeps_shared_prefixes() {
        let mut t = SubscriptionTrie::default();
        t.insert("a/b/c/d", 1u32, "abcd");
        t.insert("a/b", 2u32, "ab");
        t.insert("a/+/x", 3u32, "a+x");
        t.insert("a/b/#", 4u32, "ab#");
        assert_eq!(t.remove("a/b/c/d", &1), Some("abcd"));
        assert!(t.root.literal["a"].literal["b"].literal.is_empty());
        assert_eq!(t.remove("a/b/#", &4), Some("ab#"));
        assert_eq!(t.remove("a/b", &2), Some("ab"));
        assert!(!t.root.literal["a"].literal.contains_key("b"));
        assert!(t.root.literal["a"].plus.is_some());
        assert_eq!(t.remove("a/+/x", &3), Some("a+x"));
        assert!(t.root.is_empty());
        assert_eq!(t.remove("a/+/x", &3), None);
        assert_eq!(t.remove("#", &3), None);
        t.insert("#", 9, "root#");
        assert_eq!(t.remove("#", &9), Some("root#"));
        assert!(t.root.is_empty() && t.is_empty());
    }
}
