//! [`ConfigError`] and the translation of `toml`/`serde` errors into
//! messages that name the dotted key and line.

use std::path::PathBuf;

use super::source::Source;

/// Why a configuration could not be loaded.
///
/// Every variant displays as one sentence that says what to fix; value and
/// key errors read `config error at line N: section.key = value: reason`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read (missing, unreadable, not UTF-8).
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The text is not well-formed TOML.
    #[error("config error at line {line}, column {column}: invalid TOML: {message}")]
    Syntax {
        line: usize,
        column: usize,
        message: String,
    },
    /// A key is unknown or its value is unacceptable.
    #[error("config error at line {line}: {key}{}: {reason}", value_suffix(.value))]
    Invalid {
        /// 1-based line of the offending key or value.
        line: usize,
        /// Dotted key, e.g. `session.max_inflight`.
        key: String,
        /// The value as written in the file, when it fits on a line.
        value: Option<String>,
        /// What is wrong and what is accepted.
        reason: String,
    },
}

fn value_suffix(value: &Option<String>) -> String {
    value
        .as_ref()
        .map_or_else(String::new, |v| format!(" = {v}"))
}

impl ConfigError {
    /// Converts a syntax error from the structure-only parse.
    pub(super) fn syntax(text: &str, err: &toml::de::Error) -> Self {
        let offset = err.span().map_or(0, |span| span.start);
        let before = text.get(..offset.min(text.len())).unwrap_or(text);
        let line = before.matches('\n').count() + 1;
        let column = before
            .rsplit('\n')
            .next()
            .map_or(1, |l| l.chars().count() + 1);
        ConfigError::Syntax {
            line,
            column,
            message: one_line(err.message()),
        }
    }

    /// Converts an error from deserializing [`super::Config`], using the
    /// error's span to find the key it is about.
    pub(super) fn from_toml(source: &Source<'_>, err: &toml::de::Error) -> Self {
        let span = err.span().unwrap_or(0..0);
        let message = one_line(err.message());
        match source.locate(&span) {
            Some(loc) => {
                let value = if loc.on_key {
                    None
                } else {
                    source.snippet(span)
                };
                ConfigError::Invalid {
                    line: loc.line,
                    reason: reword(&message, loc.depth),
                    key: loc.key,
                    value,
                }
            }
            // Only errors about the document as a whole have no key.
            None => ConfigError::Invalid {
                line: source.line(span.start),
                key: "(document)".to_owned(),
                value: None,
                reason: message,
            },
        }
    }
}

/// Joins a multi-line message into one line.
fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// Turns serde's generic wording into advice for someone editing the file.
/// Messages from this module's own deserializers pass through unchanged.
fn reword(message: &str, depth: usize) -> String {
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let expected = rest
            .split_once(", expected ")
            .map(|(_, list)| list.trim_start_matches("one of ").replace('`', ""))
            .unwrap_or_default();
        let what = if depth <= 1 { "section" } else { "key" };
        return if expected.is_empty() {
            format!("unknown {what}; this table takes no keys")
        } else {
            format!("unknown {what}; expected one of: {expected}")
        };
    }
    if let Some(rest) = message.strip_prefix("invalid type: ") {
        if let Some((found, expected)) = rest.split_once(", expected ") {
            return format!("must be {expected}, not {}", kind_of(found));
        }
    }
    message.to_owned()
}

/// Maps serde's `Unexpected` rendering (`string "x"`, `integer `5``, ...)
/// to the TOML name of the type.
fn kind_of(found: &str) -> &'static str {
    match found.split([' ', '`']).next().unwrap_or_default() {
        "string" | "char" => "a string",
        "integer" => "an integer",
        "floating" => "a float",
        "boolean" => "a boolean",
        "map" => "a table",
        "sequence" => "an array",
        _ => "a value of another type",
    }
}
