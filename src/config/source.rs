//! Where things sit in the TOML source: byte offsets to line numbers, and
//! byte offsets to the dotted key they belong to.
//!
//! The `toml` crate reports a byte span with each error but not, publicly,
//! the key path, so the document is read a second time into a tree that
//! keeps every key's span. An error's key is then the last key that starts
//! at or before the error: TOML always writes a value after its key, and any
//! key starting in between would be inside that value (an inline table) and
//! therefore the more precise answer.

use std::fmt;
use std::ops::Range;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use toml::Spanned;

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Seg {
    Key(String),
    Index(usize),
}

/// A key, or an element of an array, found in the document.
#[derive(Debug)]
struct Entry {
    span: Range<usize>,
    path: Vec<Seg>,
    /// False for array elements, whose span is the whole element.
    is_key: bool,
}

/// What an error span resolved to.
#[derive(Debug)]
pub(super) struct Location {
    pub line: usize,
    /// The dotted key (array indices omitted: the line tells which element).
    pub key: String,
    /// True when the span covers the key itself rather than its value.
    pub on_key: bool,
    /// Path depth of the key; 1 for top-level keys and sections.
    pub depth: usize,
}

/// Index of a parsed document's keys and lines.
#[derive(Debug)]
pub(super) struct Source<'a> {
    text: &'a str,
    line_starts: Vec<usize>,
    entries: Vec<Entry>,
}

impl<'a> Source<'a> {
    /// Parses `text` for its structure only. Any error here is a TOML syntax
    /// error, since the tree accepts every well-formed document.
    pub fn parse(text: &'a str) -> Result<Self, toml::de::Error> {
        let tree: Node = toml::from_str(text)?;
        let mut entries = Vec::new();
        tree.collect(&mut Vec::new(), &mut entries);
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        Ok(Source {
            text,
            line_starts,
            entries,
        })
    }

    /// 1-based line of a byte offset.
    pub fn line(&self, offset: usize) -> usize {
        self.line_starts.partition_point(|&start| start <= offset)
    }

    /// The source text of `span` if it is a short, single-line value worth
    /// quoting back to the user.
    pub fn snippet(&self, span: Range<usize>) -> Option<String> {
        const MAX_CHARS: usize = 60;
        let text = self.text.get(span)?.trim();
        if text.is_empty() || text.contains('\n') {
            return None;
        }
        if text.chars().count() > MAX_CHARS {
            let cut: String = text.chars().take(MAX_CHARS).collect();
            return Some(format!("{cut}..."));
        }
        Some(text.to_owned())
    }

    /// Resolves an error span to the key it concerns.
    pub fn locate(&self, span: &Range<usize>) -> Option<Location> {
        let offset = span.start;
        let entry = self
            .entries
            .iter()
            .filter(|e| e.span.start <= offset)
            .max_by_key(|e| (e.span.start, e.path.len()))?;
        Some(Location {
            line: self.line(offset),
            key: dotted(&entry.path),
            on_key: entry.is_key && offset < entry.span.end,
            depth: entry
                .path
                .iter()
                .filter(|s| matches!(s, Seg::Key(_)))
                .count(),
        })
    }

    /// 1-based line where the key or array element at `path` starts.
    pub fn line_of(&self, path: &[Seg]) -> Option<usize> {
        self.entries
            .iter()
            .find(|e| e.path == path)
            .map(|e| self.line(e.span.start))
    }
}

/// Joins the keys of a path with dots, leaving out array indices. A key that is not a bare
/// TOML key (empty, or with a character other than a letter, digit, `-` or `_`) is shown
/// quoted and escaped, so the message names it unambiguously and stays on one line.
pub(super) fn dotted(path: &[Seg]) -> String {
    let bare = |k: &str| {
        !k.is_empty()
            && k.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    let keys: Vec<String> = path
        .iter()
        .filter_map(|s| match s {
            Seg::Key(k) if bare(k) => Some(k.clone()),
            Seg::Key(k) => Some(format!("{k:?}")),
            Seg::Index(_) => None,
        })
        .collect();
    keys.join(".")
}

/// The shape of a TOML document with the span of every key.
enum Node {
    Table(Vec<(Spanned<String>, Node)>),
    Array(Vec<Spanned<Node>>),
    Leaf,
}

impl Node {
    fn collect(self, path: &mut Vec<Seg>, out: &mut Vec<Entry>) {
        match self {
            Node::Leaf => {}
            Node::Table(entries) => {
                for (key, value) in entries {
                    let span = key.span();
                    path.push(Seg::Key(key.into_inner()));
                    out.push(Entry {
                        span,
                        path: path.clone(),
                        is_key: true,
                    });
                    value.collect(path, out);
                    path.pop();
                }
            }
            Node::Array(items) => {
                for (i, item) in items.into_iter().enumerate() {
                    let span = item.span();
                    path.push(Seg::Index(i));
                    out.push(Entry {
                        span,
                        path: path.clone(),
                        is_key: false,
                    });
                    item.into_inner().collect(path, out);
                    path.pop();
                }
            }
        }
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any TOML value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Node, E> {
        Ok(Node::Leaf)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Node, E> {
        Ok(Node::Leaf)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Node, E> {
        Ok(Node::Leaf)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Node, E> {
        Ok(Node::Leaf)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Node, E> {
        Ok(Node::Leaf)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        loop {
            // TOML date-times reach serde as a one-entry map whose key has
            // no span, so the spanned key fails to read; that map is a leaf.
            let key = match map.next_key::<Spanned<String>>() {
                Ok(Some(key)) => key,
                Ok(None) => break,
                Err(_) if entries.is_empty() => return Ok(Node::Leaf),
                Err(e) => return Err(e),
            };
            entries.push((key, map.next_value()?));
        }
        Ok(Node::Table(entries))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Array(items))
    }
}
