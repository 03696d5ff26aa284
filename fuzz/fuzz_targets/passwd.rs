//! `passwd`: the Mosquitto-format password file parser, `PasswordFile::parse`, and the hash
//! parser under it, `PasswordHash::parse`, on arbitrary text.
//!
//! Checked, besides "never panics":
//! - an error names a line of the text;
//! - every line that parsed is retrievable: each `user:hash` line's user is listed, its hash
//!   prints back (`Display`, the form `mosquitto_passwd` writes) to text that parses to the
//!   same hash;
//! - `verify` of a password taken from the input never panics and agrees with itself, for
//!   entries cheap enough to check (a file may ask for billions of PBKDF2 rounds; the broker
//!   verifies those off its async threads, the fuzzer skips them).
#![no_main]

use libfuzzer_sys::fuzz_target;
use supermq::auth::passwd::{PasswordFile, PasswordHash};

/// Entries above this many PBKDF2 rounds are parsed but not verified here.
const MAX_VERIFY_COST: u32 = 2_000;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    // A single hash as well as a whole file: the hash forms get explored directly.
    if let Ok(h) = PasswordHash::parse(text.trim_end()) {
        check_hash(&h, data);
    }
    match PasswordFile::parse(&text) {
        Ok(file) => {
            let mut users = 0;
            for l in text.lines() {
                let l = l.trim_end_matches('\r');
                if l.trim().is_empty() || l.starts_with('#') {
                    continue;
                }
                let (user, _) = l.split_once(':').expect("a parsed line has a ':'");
                let h = file.get(user).expect("a parsed user is listed");
                check_hash(h, user.as_bytes());
                users += 1;
            }
            assert_eq!(file.len(), users, "one entry per line");
            assert_eq!(file.is_empty(), users == 0);
        }
        Err((line, reason)) => {
            assert!(
                (1..=text.lines().count()).contains(&line),
                "line {line}: {reason}"
            );
        }
    }
});

fn check_hash(h: &PasswordHash, password: &[u8]) {
    let printed = h.to_string();
    let back = PasswordHash::parse(&printed).expect("a printed hash parses");
    assert!(back == *h, "{printed:?} parses to another hash");
    if h.cost() <= MAX_VERIFY_COST {
        assert_eq!(h.verify(password), back.verify(password));
    }
}
