//! Topic filter syntax and matching (spec §4.7.1–4.7.3).

use thiserror::Error;

/// Why a topic filter was refused; the router answers SUBACK 0x80 for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum FilterError {
    #[error("topic filter is empty [MQTT-4.7.3-1]")]
    Empty,
    #[error("'#' must be the last level and occupy it entirely [MQTT-4.7.1-2]")]
    BadMultiLevelWildcard,
    #[error("'+' must occupy an entire level [MQTT-4.7.1-3]")]
    BadSingleLevelWildcard,
    #[error("topic filter contains U+0000 [MQTT-1.5.3-2]")]
    NullCharacter,
    #[error("consumer group name is empty or contains a wildcard")]
    BadShareName,
    #[error("consumer group subscription has no topic filter")]
    MissingShareFilter,
}

/// Splits a topic or filter into its levels; empty levels are legal ("a//b", "/a").
pub fn levels(s: &str) -> std::str::Split<'_, char> {
    s.split('/')
}

/// Checks wildcard placement in a subscription filter.
pub fn validate_filter(filter: &str) -> Result<(), FilterError> {
    if filter.is_empty() {
        return Err(FilterError::Empty);
    }
    if filter.contains('\0') {
        return Err(FilterError::NullCharacter);
    }
    let mut it = levels(filter).peekable();
    while let Some(level) = it.next() {
        if level.contains('#') && (level != "#" || it.peek().is_some()) {
            return Err(FilterError::BadMultiLevelWildcard);
        }
        if level.contains('+') && level != "+" {
            return Err(FilterError::BadSingleLevelWildcard);
        }
    }
    Ok(())
}

/// Whether a valid `filter` matches a valid topic name.
///
/// Filters starting with a wildcard do not match topics starting with `$` [MQTT-4.7.2-1];
/// `a/#` also matches `a` (spec §4.7.1.2).
pub fn matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let mut f = levels(filter);
    let mut t = levels(topic);
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(fl), Some(tl)) if fl == tl => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_follows_section_4_7_1() {
        for ok in [
            "#",
            "+",
            "a/#",
            "a/+/b",
            "+/+",
            "/",
            "//",
            "a//b",
            "$SYS/#",
            "+/tennis/#",
        ] {
            assert_eq!(validate_filter(ok), Ok(()), "{ok}");
        }
        let bad = [
            ("", FilterError::Empty),
            ("a/#/b", FilterError::BadMultiLevelWildcard),
            ("a#", FilterError::BadMultiLevelWildcard),
            ("a/b#", FilterError::BadMultiLevelWildcard),
            ("a+", FilterError::BadSingleLevelWildcard),
            ("a/+b/c", FilterError::BadSingleLevelWildcard),
            ("a\0b", FilterError::NullCharacter),
        ];
        for (f, e) in bad {
            assert_eq!(validate_filter(f), Err(e), "{f}");
        }
    }

    #[test]
    fn matching_follows_the_spec_examples() {
        let yes = [
            ("sport/tennis/player1/#", "sport/tennis/player1"),
            ("sport/tennis/player1/#", "sport/tennis/player1/ranking"),
            (
                "sport/tennis/player1/#",
                "sport/tennis/player1/score/wimbledon",
            ),
            ("sport/#", "sport"),
            ("sport/tennis/+", "sport/tennis/player1"),
            ("sport/+", "sport/"),
            ("+/+", "/finance"),
            ("/+", "/finance"),
            ("#", "a/b/c"),
            ("$SYS/#", "$SYS/broker"),
            ("$SYS/+", "$SYS/x"),
        ];
        for (f, t) in yes {
            assert!(matches(f, t), "{f} should match {t}");
        }
        let no = [
            ("sport/tennis/+", "sport/tennis/player1/ranking"),
            ("sport/+", "sport"),
            ("+", "/finance"),
            ("#", "$SYS/broker"),
            ("+/broker", "$SYS/broker"),
            ("a/b", "a/b/c"),
            ("a/b/c", "a/b"),
        ];
        for (f, t) in no {
            assert!(!matches(f, t), "{f} should not match {t}");
        }
    }
}
