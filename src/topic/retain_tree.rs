//! The retained-message tree: one slot per topic name, searched by filter (spec §3.3.1.3).
//!
//! Keyed by topic levels so a SUBSCRIBE walks only the branches its filter can reach.

use std::collections::HashMap;

#[derive(Debug)]
struct Node<V> {
    children: HashMap<Box<str>, Node<V>>,
    value: Option<V>,
}

impl<V> Default for Node<V> {
    fn default() -> Self {
        Node {
            children: HashMap::new(),
            value: None,
        }
    }
}

/// Topic name → value, with wildcard look-up.
#[derive(Debug)]
pub struct RetainTree<V> {
    root: Node<V>,
    len: usize,
}

impl<V> Default for RetainTree<V> {
    fn default() -> Self {
        RetainTree {
            root: Node::default(),
            len: 0,
        }
    }
}

impl<V> RetainTree<V> {
    /// Number of stored topics.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The value stored for exactly `topic`.
    pub fn get(&self, topic: &str) -> Option<&V> {
        let mut node = &self.root;
        for level in topic.split('/') {
            node = node.children.get(level)?;
        }
        node.value.as_ref()
    }

    /// Stores `value` for `topic`; returns the value it replaced.
    pub fn insert(&mut self, topic: &str, value: V) -> Option<V> {
        let mut node = &mut self.root;
        for level in topic.split('/') {
            node = node.children.entry(level.into()).or_default();
        }
        let old = node.value.replace(value);
        self.len += usize::from(old.is_none());
        old
    }

    /// Removes `topic`, pruning emptied branches.
    pub fn remove(&mut self, topic: &str) -> Option<V> {
        let levels: Vec<&str> = topic.split('/').collect();
        let old = Self::remove_at(&mut self.root, &levels);
        self.len -= usize::from(old.is_some());
        old
    }

    fn remove_at(node: &mut Node<V>, levels: &[&str]) -> Option<V> {
        let Some((first, rest)) = levels.split_first() else {
            return node.value.take();
        };
        let child = node.children.get_mut(*first)?;
        let old = Self::remove_at(child, rest);
        if child.value.is_none() && child.children.is_empty() {
            node.children.remove(*first);
        }
        old
    }

    /// Calls `f` for every stored topic matching the valid `filter`; root-level wildcards
    /// skip `$` topics [MQTT-4.7.2-1].
    pub fn for_each_match(&self, filter: &str, mut f: impl FnMut(&V)) {
        let levels: Vec<&str> = filter.split('/').collect();
        Self::walk(&self.root, &levels, true, &mut f);
    }

    fn walk(node: &Node<V>, levels: &[&str], root: bool, f: &mut impl FnMut(&V)) {
        let Some((first, rest)) = levels.split_first() else {
            if let Some(v) = &node.value {
                f(v);
            }
            return;
        };
        match *first {
            "#" => {
                // `a/#` includes `a` itself (spec §4.7.1.2); the root has no value.
                if let Some(v) = &node.value {
                    f(v);
                }
                for (name, child) in &node.children {
                    if !(root && name.starts_with('$')) {
                        Self::walk_all(child, f);
                    }
                }
            }
            "+" => {
                for (name, child) in &node.children {
                    if !(root && name.starts_with('$')) {
                        Self::walk(child, rest, false, f);
                    }
                }
            }
            literal => {
                if let Some(child) = node.children.get(literal) {
                    Self::walk(child, rest, false, f);
                }
            }
        }
    }

    /// Calls `f` for every stored topic that starts with `$` (which `#` does not match).
    pub fn for_each_dollar(&self, mut f: impl FnMut(&V)) {
        for (name, child) in &self.root.children {
            if name.starts_with('$') {
                Self::walk_all(child, &mut f);
            }
        }
    }

    fn walk_all(node: &Node<V>, f: &mut impl FnMut(&V)) {
        if let Some(v) = &node.value {
            f(v);
        }
        for child in node.children.values() {
            Self::walk_all(child, f);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topic::matches;

    #[test]
    fn lookups_agree_with_the_reference_matcher() {
        let topics = ["a", "a/b", "a/b/c", "/", "/x", "$SYS/x", "a//b", "b", "a/"];
        let mut t = RetainTree::default();
        for topic in topics {
            t.insert(topic, topic);
        }
        for filter in [
            "#", "+", "a/#", "a/+", "+/b", "/+", "$SYS/#", "+/+/+", "a//b", "a/b", "x/#",
        ] {
            let mut got = Vec::new();
            t.for_each_match(filter, |v| got.push(*v));
            got.sort_unstable();
            let mut expect: Vec<&str> = topics
                .iter()
                .copied()
                .filter(|x| matches(filter, x))
                .collect();
            expect.sort_unstable();
            assert_eq!(got, expect, "filter {filter}");
        }
    }

    #[test]
    fn remove_prunes() {
        let mut t = RetainTree::default();
        t.insert("a/b/c", 1);
        assert_eq!(t.insert("a/b/c", 2), Some(1));
        assert_eq!(t.len(), 1);
        assert_eq!(t.get("a/b/c"), Some(&2));
        assert_eq!(t.remove("a/b/c"), Some(2));
        assert!(t.is_empty() && t.root.children.is_empty());
    }
}
