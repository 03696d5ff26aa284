//! Field-level deserializers that check a value's type and range while it is
//! being read.
//!
//! Checking here, rather than after the whole struct is built, is what lets
//! the TOML deserializer attach the offending value's span to the error, so
//! the user is told the exact line. Every message is phrased to complete
//! "`key = value`: ..." in [`super::ConfigError`].

use std::fmt;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::de::{self, Deserialize, Deserializer, SeqAccess, Visitor};

/// Upper bound for [`int`] meaning "as large as the field's type allows".
pub(super) const NO_MAX: u64 = u64::MAX;

/// Longest accepted duration. Anything longer is almost certainly a typo, and
/// capping it keeps `Instant + duration` arithmetic in the broker from
/// overflowing (which would panic).
const MAX_DURATION: Duration = Duration::from_secs(3650 * 24 * 60 * 60);

/// Reads an integer in `MIN..=MAX` into any unsigned integer type.
pub(super) fn int<'de, D, T, const MIN: u64, const MAX: u64>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: TryFrom<u64>,
{
    d.deserialize_i64(IntVisitor {
        min: MIN,
        max: MAX,
        target: PhantomData,
    })
}

struct IntVisitor<T> {
    min: u64,
    max: u64,
    target: PhantomData<T>,
}

impl<T> IntVisitor<T> {
    fn range(&self) -> String {
        if self.max == NO_MAX {
            format!("at least {}", self.min)
        } else {
            format!("between {} and {}", self.min, self.max)
        }
    }

    fn out_of_range<E: de::Error>(&self) -> E {
        E::custom(format!("must be {}", self.range()))
    }
}

impl<T: TryFrom<u64>> Visitor<'_> for IntVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.max == NO_MAX {
            write!(f, "an integer of at least {}", self.min)
        } else {
            write!(f, "an integer between {} and {}", self.min, self.max)
        }
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        match u64::try_from(v) {
            Ok(v) => self.visit_u64(v),
            Err(_) => Err(self.out_of_range()),
        }
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        if v < self.min || v > self.max {
            return Err(self.out_of_range());
        }
        // Only reachable with NO_MAX on a type narrower than u64.
        T::try_from(v).map_err(|_| E::custom("is too large for this platform"))
    }
}

/// Reads a duration that may be zero (zero usually means "disabled").
pub(super) fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    d.deserialize_any(DurationVisitor { allow_zero: true })
}

/// Reads a duration that must be greater than zero.
pub(super) fn positive_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    d.deserialize_any(DurationVisitor { allow_zero: false })
}

struct DurationVisitor {
    allow_zero: bool,
}

impl DurationVisitor {
    fn check<E: de::Error>(&self, value: Duration) -> Result<Duration, E> {
        if value.is_zero() && !self.allow_zero {
            Err(E::custom("must be greater than 0s"))
        } else if value > MAX_DURATION {
            Err(E::custom("must be at most 3650d (ten years)"))
        } else {
            Ok(value)
        }
    }
}

impl Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "a duration such as \"500ms\", \"10s\", \"5m\" or \"2h\", or a whole number of seconds",
        )
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
        match u64::try_from(v) {
            Ok(secs) => self.visit_u64(secs),
            Err(_) => Err(E::custom("must not be negative")),
        }
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
        self.check(Duration::from_secs(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
        self.check(parse_duration(v).map_err(E::custom)?)
    }
}

/// Parses `<whole number><unit>` with unit `ms`, `s`, `m`, `h` or `d`.
pub(super) fn parse_duration(text: &str) -> Result<Duration, String> {
    const SYNTAX: &str =
        "must be a whole number followed by a unit (ms, s, m, h or d), such as \"500ms\" or \"10s\"";
    let text = text.trim();
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits_end);
    if number.is_empty() || unit.is_empty() {
        return Err(SYNTAX.to_owned());
    }
    let too_large = || "is too large; the longest accepted duration is 3650d".to_owned();
    let number: u64 = number.parse().map_err(|_| too_large())?;
    let millis_per_unit: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return Err(SYNTAX.to_owned()),
    };
    let millis = number.checked_mul(millis_per_unit).ok_or_else(too_large)?;
    Ok(Duration::from_millis(millis))
}

/// Reads a duration that must be greater than zero into an optional field
/// (absent means "use the related default").
pub(super) fn opt_positive_duration<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Duration>, D::Error> {
    positive_duration(d).map(Some)
}

/// Reads a path (a directory or file), which must not be empty.
pub(super) fn path<'de, D: Deserializer<'de>>(d: D) -> Result<PathBuf, D::Error> {
    opt_path(d).map(|p| p.unwrap_or_default())
}

/// Reads a file path into an optional field (absent means "not configured").
/// Relative paths are taken from the broker's working directory, as Mosquitto does.
pub(super) fn opt_path<'de, D: Deserializer<'de>>(d: D) -> Result<Option<PathBuf>, D::Error> {
    d.deserialize_str(StrVisitor {
        expecting: "a file path string",
        parse: |s: &str| {
            if s.trim().is_empty() {
                Err("must not be empty; leave the key out instead".to_owned())
            } else {
                Ok(Some(PathBuf::from(s)))
            }
        },
    })
}

/// Reads the HTTP path of a WebSocket endpoint, such as "/mqtt".
pub(super) fn ws_path<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    d.deserialize_str(StrVisitor {
        expecting: "a path string such as \"/mqtt\"",
        parse: |s: &str| {
            let ok = s.starts_with('/')
                && s.len() <= 256
                && s.chars()
                    .all(|c| c.is_ascii_graphic() && c != '?' && c != '#');
            if ok {
                Ok(s.to_owned())
            } else {
                Err(
                    "must start with '/' and be at most 256 visible ASCII characters, \
                     without '?' or '#'"
                        .to_owned(),
                )
            }
        },
    })
}

/// Reads the URL of the HTTP authentication hook. Only plain `http://` is
/// accepted: the hook client has no TLS, so it is meant for a local or
/// otherwise trusted endpoint.
pub(super) fn http_url<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    d.deserialize_str(StrVisitor {
        expecting: "a URL string such as \"http://127.0.0.1:8080/mqtt/auth\"",
        parse: |s: &str| {
            if s.starts_with("https://") {
                return Err(
                    "https is not supported by the hook client; use an http:// URL \
                            on a trusted network (e.g. a local sidecar)"
                        .to_owned(),
                );
            }
            match s.parse::<hyper::Uri>() {
                Ok(u) if u.scheme_str() == Some("http") && u.authority().is_some() => {
                    Ok(s.to_owned())
                }
                _ => Err("must be an http:// URL with a host, such as \
                          \"http://127.0.0.1:8080/mqtt/auth\""
                    .to_owned()),
            }
        },
    })
}

/// Reads a string that must be one of a fixed set of keywords.
pub(super) fn keyword<'de, D, T>(
    d: D,
    choices: &'static [(&'static str, T)],
    expecting: &'static str,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Copy,
{
    d.deserialize_str(StrVisitor {
        expecting,
        parse: |s: &str| {
            choices
                .iter()
                .find(|(name, _)| *name == s)
                .map(|(_, value)| *value)
                .ok_or_else(|| format!("must be {expecting}"))
        },
    })
}

/// A string visitor whose validation is a closure returning the message
/// part of the error.
struct StrVisitor<F> {
    expecting: &'static str,
    parse: F,
}

impl<T, F: FnOnce(&str) -> Result<T, String>> Visitor<'_> for StrVisitor<F> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        (self.parse)(v).map_err(E::custom)
    }
}

/// Reads a listen address. Host names are refused on purpose: binding must
/// not depend on DNS being up when the broker starts.
pub(super) fn socket_addr<'de, D: Deserializer<'de>>(d: D) -> Result<SocketAddr, D::Error> {
    d.deserialize_str(StrVisitor {
        expecting: "an address string such as \"0.0.0.0:1883\" or \"[::]:1883\"",
        parse: |s: &str| {
            s.parse().map_err(|_| {
                "must be an IP address and port such as \"0.0.0.0:1883\" or \"[::]:1883\" \
                 (host names are not resolved)"
                    .to_owned()
            })
        },
    })
}

/// Reads a listener name. Names show up in logs and `$SYS` topics, so they
/// are kept to characters that need no quoting in either.
pub(super) fn listener_name<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    d.deserialize_str(StrVisitor {
        expecting: "a name string such as \"tcp\"",
        parse: |s: &str| {
            let valid_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
            if (1..=64).contains(&s.len()) && s.chars().all(valid_char) {
                Ok(s.to_owned())
            } else {
                Err("must be 1 to 64 characters, each a letter, digit, '-', '_' or '.'".to_owned())
            }
        },
    })
}

/// Reads a log filter: a level, or a comma-separated list of `LEVEL` and
/// `target=LEVEL` items as understood by `tracing_subscriber::EnvFilter`.
pub(super) fn log_filter<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    d.deserialize_str(StrVisitor {
        expecting: "a log level such as \"info\" or a filter such as \"info,supermq=debug\"",
        parse: |s: &str| validate_log_filter(s).map(|()| s.to_owned()),
    })
}

pub(super) fn validate_log_filter(filter: &str) -> Result<(), String> {
    const LEVELS: [&str; 6] = ["error", "warn", "info", "debug", "trace", "off"];
    let is_level = |s: &str| LEVELS.iter().any(|level| level.eq_ignore_ascii_case(s));
    let is_target = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | ':' | '.'))
    };
    if filter.trim().is_empty() {
        return Err("must not be empty; use a level such as \"info\"".to_owned());
    }
    const ACCEPTED: &str = "a level (error, warn, info, debug, trace or off) or a comma-separated \
                            list of LEVEL and target=LEVEL items";
    let items: Vec<&str> = filter.split(',').map(str::trim).collect();
    for item in &items {
        let valid = match item.split_once('=') {
            None => is_level(item),
            Some((target, level)) => is_target(target.trim()) && is_level(level.trim()),
        };
        if valid {
            continue;
        }
        // With a single item the value quoted in the error already shows it.
        return Err(if items.len() == 1 {
            format!("must be {ACCEPTED}")
        } else if item.is_empty() {
            format!("has an empty item (a stray comma); it must be {ACCEPTED}")
        } else {
            let shown: String = item.chars().take(40).collect();
            format!("has the invalid item `{shown}`; it must be {ACCEPTED}")
        });
    }
    Ok(())
}

/// Reads a `[[listener]]` array, which must not be empty: a broker that
/// listens nowhere is a configuration mistake, not a useful mode.
pub(super) fn non_empty_vec<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    d.deserialize_seq(NonEmptyVisitor(PhantomData))
}

struct NonEmptyVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for NonEmptyVisitor<T> {
    type Value = Vec<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of [[listener]] tables")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        if items.is_empty() {
            return Err(de::Error::custom(
                "at least one listener is required; remove the key to get the default tcp \
                 listener on 0.0.0.0:1883",
            ));
        }
        Ok(items)
    }
}
