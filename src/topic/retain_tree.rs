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

/// Dropped with an explicit stack: a branch is as deep as the deepest topic a client
/// retained, and the default recursive drop would overflow the thread's stack on it.
impl<V> Drop for Node<V> {
    fn drop(&mut self) {
        if self.children.is_empty() {
            return;
        }
        let mut stack: Vec<Node<V>> = self.children.drain().map(|(_, n)| n).collect();
        while let Some(mut n) = stack.pop() {
            stack.extend(n.children.drain().map(|(_, c)| c));
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
    ///
    /// Iterative (a topic may be as deep as `limits.max_topic_levels` allows): one walk down
    /// to take the value and find what stays, one to unlink the emptied branch.
    pub fn remove(&mut self, topic: &str) -> Option<V> {
        let path: Vec<&str> = topic.split('/').collect();
        // One walk down: the deepest node that stays (a value, or more than the path below
        // it) is noted on the way; the path is cut just under it. The root always stays.
        let mut keep = 0;
        let mut node = &mut self.root;
        for (depth, level) in path.iter().enumerate() {
            node = node.children.get_mut(*level)?;
            if depth + 1 < path.len() && (node.value.is_some() || node.children.len() > 1) {
                keep = depth + 1;
            }
        }
        let old = node.value.take()?;
        if !node.children.is_empty() {
            keep = path.len();
        }
        self.len -= 1;
        if keep < path.len() {
            let mut node = &mut self.root;
            for level in &path[..keep] {
                node = node.children.get_mut(*level)?;
            }
            // Dropped here, iteratively (see `Drop for Node`).
            drop(node.children.remove(path[keep]));
        }
        Some(old)
    }

    /// Calls `f` for every stored topic matching the valid `filter`; root-level wildcards
    /// skip `$` topics [MQTT-4.7.2-1].
    pub fn for_each_match(&self, filter: &str, mut f: impl FnMut(&V)) {
        let levels: Vec<&str> = filter.split('/').collect();
        // (node, levels consumed): explicit stacks, never recursion over topic depth.
        let mut stack: Vec<(&Node<V>, usize)> = vec![(&self.root, 0)];
        // Nodes whose whole subtree matches (reached by a `#`).
        let mut whole: Vec<&Node<V>> = Vec::new();
        while let Some((node, depth)) = stack.pop() {
            // Only the root is at depth 0, and only there do wildcards skip `$` names.
            let skip = |name: &str| depth == 0 && name.starts_with('$');
            match levels.get(depth).copied() {
                None => {
                    if let Some(v) = &node.value {
                        f(v);
                    }
                }
                Some("#") => {
                    // `a/#` includes `a` itself (spec §4.7.1.2); the root has no value.
                    if let Some(v) = &node.value {
                        f(v);
                    }
                    whole.extend(
                        node.children
                            .iter()
                            .filter(|(name, _)| !skip(name))
                            .map(|(_, c)| c),
                    );
                }
                Some("+") => stack.extend(
                    node.children
                        .iter()
                        .filter(|(name, _)| !skip(name))
                        .map(|(_, c)| (c, depth + 1)),
                ),
                Some(literal) => {
                    if let Some(child) = node.children.get(literal) {
                        stack.push((child, depth + 1));
                    }
                }
            }
        }
        Self::walk_all(whole, &mut f);
    }

    /// Calls `f` for every stored topic that starts with `$` (which `#` does not match).
    pub fn for_each_dollar(&self, mut f: impl FnMut(&V)) {
        let dollar = self
            .root
            .children
            .iter()
            .filter(|(name, _)| name.starts_with('$'))
            .map(|(_, c)| c)
            .collect();
        Self::walk_all(dollar, &mut f);
    }

    /// Calls `f` for every value in the subtrees of `stack`, depth first, without recursion.
    fn walk_all(mut stack: Vec<&Node<V>>, f: &mut impl FnMut(&V)) {
        while let Some(node) = stack.pop() {
            if let Some(v) = &node.value {
                f(v);
            }
            stack.extend(node.children.values());
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

#[cfg(test)]
mod deep {
    use super::*;

    /// Far deeper than any thread stack could recurse: insert, match, remove and drop must
    /// all be iterative.
    #[test]
    fn a_topic_of_65535_levels_is_handled_without_recursion() {
        std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(|| {
                let deep = "/".repeat(65_534);
                let other = "a/".repeat(30_000) + "z";
                let mut t = RetainTree::default();
                t.insert(&deep, 1);
                t.insert(&other, 2);
                t.insert("a", 3);
                let mut got = Vec::new();
                t.for_each_match("#", |v| got.push(*v));
                got.sort_unstable();
                assert_eq!(got, vec![1, 2, 3]);
                let mut got = Vec::new();
                t.for_each_match(&deep, |v| got.push(*v));
                assert_eq!(got, vec![1]);
                let plus = "+/".repeat(30_000) + "+";
                let mut got = Vec::new();
                t.for_each_match(&plus, |v| got.push(*v));
                assert_eq!(got, vec![2]);
                assert_eq!(t.remove(&deep), Some(1));
                assert_eq!(t.len(), 2);
                assert_eq!(t.root.children.len(), 1, "the empty-level branch is pruned");
                // Dropped with the 30,000-level branch still in it.
                drop(t);
            })
            .expect("spawn")
            .join()
            .expect("no stack overflow");
    }

    #[test]
    fn remove_keeps_shared_prefixes() {
        let mut t = RetainTree::default();
        t.insert("a/b/c", 1);
        t.insert("a", 2);
        t.insert("a/x", 3);
        assert_eq!(t.remove("a/b/c"), Some(1));
        assert!(!t.root.children["a"].children.contains_key("b"));
        assert_eq!(t.get("a"), Some(&2));
        assert_eq!(t.remove("a"), Some(2));
        assert_eq!(t.get("a/x"), Some(&3));
        assert_eq!(t.remove("a/x"), Some(3));
        assert!(t.root.children.is_empty() && t.is_empty());
        assert_eq!(t.remove("a/x"), None);
    }
}
