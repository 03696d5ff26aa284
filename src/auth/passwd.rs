//! Password files in Mosquitto's format, so a file made by `mosquitto_passwd` works as is.
//!
//! One `username:hash` per line; `#` starts a comment line. Two hash forms are read:
//! - `$7$<iterations>$<base64 salt>$<base64 hash>`: PBKDF2-HMAC-SHA512 with a 64-byte output
//!   (Mosquitto 2.x, and what `supermq passwd` writes: 101 iterations, 12-byte salt);
//! - `$6$<base64 salt>$<base64 hash>`: SHA-512 over the password then the salt (Mosquitto 1.x).
//!
//! Owns parsing, verification (constant-time comparison) and the in-place update used by
//! `supermq passwd`. Passwords never appear in errors or logs.

use std::collections::HashMap;
use std::fmt;
use std::io::Write;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use rand::RngCore;
use subtle::ConstantTimeEq;
use thiserror::Error;

/// PBKDF2 iterations of new entries; Mosquitto's default, so its tools read ours alike.
pub const ITERATIONS: u32 = 101;
const SALT_LEN: usize = 12;
const HASH_LEN: usize = 64;
/// Iteration counts above this are verified off the async worker threads.
pub(super) const INLINE_ITERATIONS: u32 = 1_000;

/// A password file that could not be read, parsed or written.
#[derive(Debug, Error)]
pub enum PasswdError {
    #[error("password file {}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("password file {}: line {line}: {reason}", path.display())]
    Line {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("password file {}: cannot write: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid username {0:?}: it must be non-empty and contain no ':' or line break")]
    BadUsername(String),
    #[error("the password must not be empty or longer than 65535 bytes")]
    BadPassword,
}

/// One stored password hash.
#[derive(Clone, PartialEq, Eq)]
pub enum PasswordHash {
    /// `$7$`: PBKDF2-HMAC-SHA512.
    Pbkdf2 {
        iterations: NonZeroU32,
        salt: Vec<u8>,
        hash: [u8; HASH_LEN],
    },
    /// `$6$`: SHA-512(password ‖ salt).
    Sha512 { salt: Vec<u8>, hash: [u8; HASH_LEN] },
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The hash is a secret too (it allows offline guessing).
        match self {
            PasswordHash::Pbkdf2 { iterations, .. } => write!(f, "Pbkdf2({iterations} rounds)"),
            PasswordHash::Sha512 { .. } => f.write_str("Sha512"),
        }
    }
}

impl PasswordHash {
    /// Hashes `password` the way `supermq passwd` stores it: `$7$`, 101 iterations, a fresh
    /// random 12-byte salt.
    pub fn new(password: &[u8]) -> PasswordHash {
        let mut salt = vec![0u8; SALT_LEN];
        rand::rngs::OsRng.fill_bytes(&mut salt);
        let iterations = NonZeroU32::new(ITERATIONS).unwrap_or(NonZeroU32::MIN);
        let hash = pbkdf2(iterations, &salt, password);
        PasswordHash::Pbkdf2 {
            iterations,
            salt,
            hash,
        }
    }

    /// Parses the part after `username:`.
    pub fn parse(s: &str) -> Result<PasswordHash, String> {
        let fields: Vec<&str> = s.split('$').collect();
        let decode = |what: &str, b: &str| {
            B64.decode(b)
                .map_err(|e| format!("the {what} is not valid base64 ({e})"))
        };
        let hash64 = |b: &str| -> Result<[u8; HASH_LEN], String> {
            decode("hash", b)?
                .try_into()
                .map_err(|_| format!("the hash must be {HASH_LEN} bytes (SHA-512)"))
        };
        match fields.as_slice() {
            ["", "7", iterations, salt, hash] => {
                let iterations = iterations
                    .parse::<u32>()
                    .ok()
                    .and_then(NonZeroU32::new)
                    .ok_or_else(|| "the iteration count must be a positive integer".to_owned())?;
                Ok(PasswordHash::Pbkdf2 {
                    iterations,
                    salt: non_empty_salt(decode("salt", salt)?)?,
                    hash: hash64(hash)?,
                })
            }
            ["", "6", salt, hash] => Ok(PasswordHash::Sha512 {
                salt: non_empty_salt(decode("salt", salt)?)?,
                hash: hash64(hash)?,
            }),
            _ => Err(
                "not a password hash: expected $7$<iterations>$<salt>$<hash> or \
                      $6$<salt>$<hash> (make entries with `supermq passwd` or mosquitto_passwd; \
                      `mosquitto_passwd -U` converts a plain-text file)"
                    .to_owned(),
            ),
        }
    }

    /// Whether `password` hashes to this entry; the comparison takes the same time wherever
    /// the first differing byte is.
    pub fn verify(&self, password: &[u8]) -> bool {
        let (computed, stored) = match self {
            PasswordHash::Pbkdf2 {
                iterations,
                salt,
                hash,
            } => (pbkdf2(*iterations, salt, password), hash),
            PasswordHash::Sha512 { salt, hash } => {
                let mut ctx = ring::digest::Context::new(&ring::digest::SHA512);
                ctx.update(password);
                ctx.update(salt);
                let mut out = [0u8; HASH_LEN];
                out.copy_from_slice(ctx.finish().as_ref());
                (out, hash)
            }
        };
        computed.ct_eq(stored).into()
    }

    /// PBKDF2 iterations (1 for `$6$`): how expensive a check is.
    pub fn cost(&self) -> u32 {
        match self {
            PasswordHash::Pbkdf2 { iterations, .. } => iterations.get(),
            PasswordHash::Sha512 { .. } => 1,
        }
    }
}

impl fmt::Display for PasswordHash {
    /// The file form, as `mosquitto_passwd` writes it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PasswordHash::Pbkdf2 {
                iterations,
                salt,
                hash,
            } => write!(
                f,
                "$7${iterations}${}${}",
                B64.encode(salt),
                B64.encode(hash)
            ),
            PasswordHash::Sha512 { salt, hash } => {
                write!(f, "$6${}${}", B64.encode(salt), B64.encode(hash))
            }
        }
    }
}

fn non_empty_salt(salt: Vec<u8>) -> Result<Vec<u8>, String> {
    if salt.is_empty() {
        Err("the salt is empty".to_owned())
    } else {
        Ok(salt)
    }
}

fn pbkdf2(iterations: NonZeroU32, salt: &[u8], password: &[u8]) -> [u8; HASH_LEN] {
    let mut out = [0u8; HASH_LEN];
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA512,
        iterations,
        salt,
        password,
        &mut out,
    );
    out
}

/// A loaded password file: username → hash.
#[derive(Debug, Default)]
pub struct PasswordFile {
    users: HashMap<String, PasswordHash>,
}

impl PasswordFile {
    /// Reads and parses the file at `path`.
    pub fn load(path: &Path) -> Result<PasswordFile, PasswdError> {
        let text = std::fs::read_to_string(path).map_err(|source| PasswdError::Read {
            path: path.to_owned(),
            source,
        })?;
        PasswordFile::parse(&text).map_err(|(line, reason)| PasswdError::Line {
            path: path.to_owned(),
            line,
            reason,
        })
    }

    /// Parses file text; an error is `(line, reason)`.
    pub fn parse(text: &str) -> Result<PasswordFile, (usize, String)> {
        let mut users = HashMap::new();
        let mut lines_of: HashMap<String, usize> = HashMap::new();
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let l = raw.trim_end_matches('\r');
            if l.trim().is_empty() || l.starts_with('#') {
                continue;
            }
            let Some((user, hash)) = l.split_once(':') else {
                return Err((line, "expected username:hash".to_owned()));
            };
            if user.is_empty() {
                return Err((line, "empty username".to_owned()));
            }
            let hash = PasswordHash::parse(hash.trim_end()).map_err(|r| (line, r))?;
            if let Some(first) = lines_of.insert(user.to_owned(), line) {
                return Err((
                    line,
                    format!("user {user:?} is already listed at line {first}"),
                ));
            }
            users.insert(user.to_owned(), hash);
        }
        Ok(PasswordFile { users })
    }

    /// The hash stored for `user`.
    pub fn get(&self, user: &str) -> Option<&PasswordHash> {
        self.users.get(user)
    }

    /// Number of users.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether the file lists no user.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

/// Sets `user`'s password in the file at `path` (the `supermq passwd` command): an existing
/// entry is replaced on its line, a new one appended; other lines are kept as they are.
/// With `create` the file is started afresh (overwriting one that exists).
///
/// The file is written to a temporary file beside it (mode 0600) and renamed over it, so
/// a broker reloading it never sees half a file.
pub fn set_password(
    path: &Path,
    user: &str,
    password: &str,
    create: bool,
) -> Result<(), PasswdError> {
    if user.is_empty() || user.contains([':', '\n', '\r']) {
        return Err(PasswdError::BadUsername(user.to_owned()));
    }
    if password.is_empty() || password.len() > 65535 {
        return Err(PasswdError::BadPassword);
    }
    let old = if create {
        String::new()
    } else {
        std::fs::read_to_string(path).map_err(|source| PasswdError::Read {
            path: path.to_owned(),
            source,
        })?
    };
    let entry = format!("{user}:{}", PasswordHash::new(password.as_bytes()));
    let mut out = String::with_capacity(old.len() + entry.len() + 1);
    let mut replaced = false;
    for l in old.lines() {
        let is_user = !l.starts_with('#') && l.split_once(':').is_some_and(|(u, _)| u == user);
        if is_user && !replaced {
            out.push_str(&entry);
            replaced = true;
        } else if !is_user {
            out.push_str(l);
        } else {
            continue;
        }
        out.push('\n');
    }
    if !replaced {
        out.push_str(&entry);
        out.push('\n');
    }
    write_atomically(path, out.as_bytes()).map_err(|source| PasswdError::Write {
        path: path.to_owned(),
        source,
    })
}

fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    // Made with mosquitto_passwd 2.x (`-b -c`) and `-H sha512` (Mosquitto 1.x format).
    const ALICE_7: &str = "$7$101$o0qtvj2KPGo9VV9T$SCpErKN/L05OO/c9mRf6Fmbyg/zzygmCNM+ziYzrM2zYLvdYMRzfjz8mVA8Qq72panaUs4z+hiwv38nvKwKU6Q==";
    const BOB_7: &str = "$7$101$nHMQR/WR+syCoZjN$qOCkEBX8fpJEWvo+FrZG7TnhKhXyTINnAJxCHvFSp8KAztFe68M62eGpJlA6WkUFsJFy7D4yOu0l5EGX51H7WA==";
    const CAROL_6: &str = "$6$8OM4bxdtbcd9S4cy$tkWEibgFHfI/tnhpKq5Td7VcxdVS7ifSredSo9QcOoH57QEpMglzYuSWKcoji9SJ4HRhEWG7156nhF8DVfbuWA==";

    #[test]
    fn mosquitto_hashes_verify() {
        let alice = PasswordHash::parse(ALICE_7).expect("$7$");
        assert!(alice.verify(b"secret1"));
        assert!(!alice.verify(b"secret2"));
        assert!(!alice.verify(b""));
        let bob = PasswordHash::parse(BOB_7).expect("$7$ utf-8");
        assert!(bob.verify("pä ss".as_bytes()));
        let carol = PasswordHash::parse(CAROL_6).expect("$6$");
        assert!(carol.verify(b"hunter2"));
        assert!(!carol.verify(b"hunter3"));
        assert_eq!(alice.cost(), 101);
        assert_eq!(carol.cost(), 1);
    }

    #[test]
    fn display_round_trips_the_file_form() {
        for h in [ALICE_7, CAROL_6] {
            assert_eq!(PasswordHash::parse(h).expect("parse").to_string(), h);
        }
    }

    #[test]
    fn new_hashes_are_salted_pbkdf2() {
        let a = PasswordHash::new(b"pw");
        let b = PasswordHash::new(b"pw");
        assert_ne!(a, b, "fresh salt per entry");
        assert!(a.verify(b"pw") && b.verify(b"pw"));
        let text = a.to_string();
        assert!(text.starts_with("$7$101$"), "{text}");
        let PasswordHash::Pbkdf2 { salt, .. } = PasswordHash::parse(&text).expect("own form")
        else {
            panic!("not pbkdf2")
        };
        assert_eq!(salt.len(), SALT_LEN);
        assert_eq!(format!("{a:?}"), "Pbkdf2(101 rounds)");
    }

    #[test]
    fn file_parsing() {
        let text = format!("# users\n\nalice:{ALICE_7}\r\ncarol:{CAROL_6}\n");
        let f = PasswordFile::parse(&text).expect("parse");
        assert_eq!(f.len(), 2);
        assert!(f.get("alice").expect("alice").verify(b"secret1"));
        assert!(f.get("bob").is_none());
    }

    #[test]
    fn file_errors_name_the_line() {
        let cases = [
            ("alice\n", 1, "username:hash"),
            ("# c\nalice:plain\n", 2, "not a password hash"),
            (":$6$YQ==$YQ==\n", 1, "empty username"),
            ("a:$6$YQ==$YQ==\n", 1, "64 bytes"),
            ("a:$7$0$YQ==$YQ==\n", 1, "iteration count"),
            ("a:$6$!!$YQ==\n", 1, "base64"),
        ];
        for (text, line, reason) in cases {
            let (l, r) = PasswordFile::parse(text).expect_err(text);
            assert_eq!(l, line, "{text}");
            assert!(r.contains(reason), "{text}: {r}");
        }
        let dup = format!("alice:{ALICE_7}\nalice:{ALICE_7}\n");
        let (l, r) = PasswordFile::parse(&dup).expect_err("duplicate");
        assert_eq!(l, 2);
        assert!(r.contains("line 1"), "{r}");
    }

    #[test]
    fn set_password_creates_updates_and_keeps_other_lines() {
        let dir = std::env::temp_dir().join(format!("supermq-passwd-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("pw");
        assert!(matches!(
            set_password(&dir.join("missing"), "a", "b", false),
            Err(PasswdError::Read { .. })
        ));
        set_password(&path, "alice", "one", true).expect("create");
        std::fs::write(
            &path,
            format!(
                "# keep me\n{}carol:{CAROL_6}\n",
                std::fs::read_to_string(&path).expect("read")
            ),
        )
        .expect("write");
        set_password(&path, "alice", "two", false).expect("update");
        set_password(&path, "dave", "three", false).expect("append");
        let text = std::fs::read_to_string(&path).expect("read");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert_eq!(lines[0], "# keep me");
        assert!(lines[1].starts_with("alice:$7$101$"));
        assert_eq!(lines[2], format!("carol:{CAROL_6}"));
        assert!(lines[3].starts_with("dave:$7$101$"));
        let f = PasswordFile::load(&path).expect("load");
        assert!(f.get("alice").expect("alice").verify(b"two"));
        assert!(f.get("dave").expect("dave").verify(b"three"));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(matches!(
            set_password(&path, "a:b", "x", false),
            Err(PasswdError::BadUsername(_))
        ));
        assert!(matches!(
            set_password(&path, "a", "", false),
            Err(PasswdError::BadPassword)
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
