//! Decoding what a request's URL carries: percent-encoded path segments (a client id or a
//! topic) and `application/x-www-form-urlencoded` query strings.

/// Why a path segment or query could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UrlError {
    #[error("bad percent-encoding")]
    Percent,
    #[error("not UTF-8 once decoded")]
    Utf8,
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes `%XX` escapes (and `+` as a space when `plus` is set, as in a query).
pub fn decode(s: &str, plus: bool) -> Result<String, UrlError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let (Some(h), Some(l)) = (
                    b.get(i + 1).copied().and_then(hex),
                    b.get(i + 2).copied().and_then(hex),
                ) else {
                    return Err(UrlError::Percent);
                };
                out.push(h << 4 | l);
                i += 3;
            }
            b'+' if plus => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| UrlError::Utf8)
}

/// The decoded `(name, value)` pairs of a query string, in order.
pub fn query(q: Option<&str>) -> Result<Vec<(String, String)>, UrlError> {
    let Some(q) = q else { return Ok(Vec::new()) };
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            Ok((decode(k, true)?, decode(v, true)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_escapes_and_plus() {
        assert_eq!(decode("a%2Fb%23", false).unwrap(), "a/b#");
        assert_eq!(decode("a+b", false).unwrap(), "a+b");
        assert_eq!(decode("a+b", true).unwrap(), "a b");
        assert_eq!(decode("%e2%82%ac", false).unwrap(), "€");
        assert_eq!(decode("%2", false), Err(UrlError::Percent));
        assert_eq!(decode("%zz", false), Err(UrlError::Percent));
        assert_eq!(decode("%ff", false), Err(UrlError::Utf8));
        assert_eq!(
            query(Some("page=2&clientid=a%20b&x")).unwrap(),
            vec![
                ("page".into(), "2".into()),
                ("clientid".into(), "a b".into()),
                ("x".into(), String::new())
            ]
        );
    }
}
