//! SCRAM server tests: the RFC 7677 vector, SHA-512 against `$7$` entries, and every
//! failure path (which must fail with 0x87, never panic).

use super::*;
use crate::auth::passwd::{PasswordFile, PasswordHash};
use crate::auth::scram_client::ScramClient;

/// A store over plain passwords for SHA-256 (the RFC vector's salt and iterations).
#[derive(Debug)]
struct Plain {
    hash: ScramHash,
    user: &'static str,
    password: &'static [u8],
    salt: Vec<u8>,
    iterations: u32,
}

impl CredentialStore for Plain {
    fn credential(&self, user: &str) -> Credential {
        if user != self.user {
            return Credential::Unknown;
        }
        let iterations = NonZeroU32::new(self.iterations).expect("iterations");
        Credential::Salted {
            salted_password: self
                .hash
                .salted_password(self.password, &self.salt, iterations),
            salt: self.salt.clone(),
            iterations,
        }
    }
}

/// The password file as a store, the way `auth::Auth` builds it.
#[derive(Debug)]
struct File(PasswordFile);

impl CredentialStore for File {
    fn credential(&self, user: &str) -> Credential {
        match self.0.get(user) {
            Some(PasswordHash::Pbkdf2 {
                iterations,
                salt,
                hash,
            }) => Credential::Salted {
                salt: salt.clone(),
                iterations: *iterations,
                salted_password: hash.to_vec(),
            },
            Some(PasswordHash::Sha512 { .. }) => Credential::Unsupported,
            None => Credential::Unknown,
        }
    }
}

const CAROL_6: &str = "carol:$6$8OM4bxdtbcd9S4cy$tkWEibgFHfI/tnhpKq5Td7VcxdVS7ifSredSo9QcOoH57QEpMglzYuSWKcoji9SJ4HRhEWG7156nhF8DVfbuWA==";

fn sha512_server() -> Scram {
    let alice = PasswordHash::new(b"wonderland");
    let text = format!("alice:{alice}\n{CAROL_6}\n");
    let file = PasswordFile::parse(&text).expect("file");
    Scram::new(SHA512, Arc::new(File(file)))
}

fn rfc7677() -> Scram {
    let store = Plain {
        hash: SHA256,
        user: "user",
        password: b"pencil",
        salt: B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").expect("salt"),
        iterations: 4096,
    };
    Scram::new(SHA256, Arc::new(store)).with_fixed_nonce("%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0")
}

fn cont(step: Step) -> (Bytes, Box<dyn AuthExchange>) {
    match step {
        Step::Continue { data, state } => (data, state),
        other => panic!("continue expected, got {other:?}"),
    }
}

fn refused(step: Step) {
    assert!(
        matches!(step, Step::Failure(ReasonCode::NotAuthorized)),
        "{step:?}"
    );
}

/// Runs a whole exchange with the client; the server's final step.
fn exchange(server: &Scram, user: &str, password: &[u8]) -> (Step, ScramClient) {
    let mut client = ScramClient::new(server.hash, user, password);
    let (first, state) = cont(server.start("c1", Some(client.first().as_bytes())));
    let fin = client.finish(&first).expect("client final");
    (state.next(Some(fin.as_bytes())), client)
}

#[test]
fn rfc7677_sha256_vector() {
    let server = rfc7677();
    let c_first = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
    let s_first = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                   s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
    let c_final = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                   p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    let s_final = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";
    let (data, state) = cont(server.start("c1", Some(c_first.as_bytes())));
    assert_eq!(&data[..], s_first.as_bytes());
    match state.next(Some(c_final.as_bytes())) {
        Step::Success { data, username } => {
            assert_eq!(data.as_deref(), Some(s_final.as_bytes()));
            assert_eq!(&*username, "user");
        }
        other => panic!("{other:?}"),
    }
    // The client side reproduces the vector too.
    let mut client = ScramClient::with_nonce(SHA256, "user", b"pencil", "rOprNGfwEbeRWgbNEkqO");
    assert_eq!(client.first(), c_first);
    assert_eq!(client.finish(s_first.as_bytes()).expect("final"), c_final);
    client.verify(s_final.as_bytes()).expect("server verified");
}

#[test]
fn sha512_against_a_passwd_entry() {
    let server = sha512_server();
    assert_eq!(server.name(), "SCRAM-SHA-512");
    let (step, client) = exchange(&server, "alice", b"wonderland");
    match step {
        Step::Success { data, username } => {
            assert_eq!(&*username, "alice");
            client.verify(&data.expect("v=")).expect("server signature");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn wrong_password_unknown_user_and_6_entries_fail_alike() {
    let server = sha512_server();
    refused(exchange(&server, "alice", b"rabbit").0);
    refused(exchange(&server, "carol", b"hunter2").0);
    refused(exchange(&server, "mallory", b"x").0);
    // The unknown user's server-first looks like a real one, and is the same each time.
    let first = |user: &str| {
        let c = ScramClient::with_nonce(SHA512, user, b"x", "abc");
        let (data, _) = cont(server.start("c1", Some(c.first().as_bytes())));
        String::from_utf8(data.to_vec()).expect("utf-8")
    };
    let salt_of = |s: &str| s.split(',').nth(1).expect("s=").to_owned();
    let (a, m1, m2) = (first("alice"), first("mallory"), first("mallory"));
    assert_eq!(salt_of(&m1), salt_of(&m2));
    assert_ne!(salt_of(&m1), salt_of(&first("trudy")));
    assert_eq!(salt_of(&a).len(), salt_of(&m1).len());
    assert!(m1.ends_with(",i=101") && a.ends_with(",i=101"), "{m1} {a}");
}

#[test]
fn tampered_nonce_or_binding_fails() {
    let server = sha512_server();
    let mut client = ScramClient::new(SHA512, "alice", b"wonderland");
    let first = client.first();
    let (s_first, state) = cont(server.start("c1", Some(first.as_bytes())));
    let fin = client.finish(&s_first).expect("final");
    let tampered = fin.replacen(",r=", ",r=X", 1);
    refused(state.next(Some(tampered.as_bytes())));
    let (_, state) = cont(server.start("c1", Some(first.as_bytes())));
    // A new server nonce: the old final does not fit it.
    refused(state.next(Some(fin.as_bytes())));
    let (s_first, state) = cont(server.start("c1", Some(first.as_bytes())));
    let fin = client.finish(&s_first).expect("final");
    refused(state.next(Some(fin.replacen("c=biws", "c=eSws", 1).as_bytes())));
}

#[test]
fn malformed_first_messages_fail() {
    let server = sha512_server();
    let long_nonce = format!("n,,n=alice,r={}", "a".repeat(MAX_NONCE + 1));
    let oversize = format!("n,,n=alice,r=abc,{}", "x".repeat(MAX_MESSAGE));
    let cases: Vec<(&[u8], ScramError)> = vec![
        (b"", ScramError::Malformed("GS2 header \"n,,\" expected")),
        (b"n,,", ScramError::Malformed("username (n=) expected")),
        (b"p=tls-unique,,n=a,r=b", ScramError::ChannelBinding),
        (b"y,,n=a,r=b", ScramError::ChannelBinding),
        (b"n,a=bob,n=a,r=b", ScramError::Authzid),
        (b"n,,m=ext,n=a,r=b", ScramError::Extension),
        (b"n,,n=a", ScramError::Malformed("nonce (r=) expected")),
        (b"n,,n=a,r=", ScramError::BadNonce),
        (b"n,,n=a,r=b c", ScramError::BadNonce),
        (b"n,,n=,r=b", ScramError::Malformed("empty username")),
        (
            b"n,,n=a=2,r=b",
            ScramError::Malformed("invalid '=' escape in username"),
        ),
        (b"n,,n=\xff,r=b", ScramError::NotUtf8),
        (long_nonce.as_bytes(), ScramError::BadNonce),
        (oversize.as_bytes(), ScramError::TooLong),
    ];
    for (msg, err) in cases {
        assert_eq!(server.first(Some(msg)).err(), Some(err), "{msg:?}");
        refused(server.start("c1", Some(msg)));
    }
    assert_eq!(server.first(None).err(), Some(ScramError::NoData));
    refused(server.start("c1", None));
}

#[test]
fn escaped_usernames_are_decoded() {
    let server = sha512_server();
    let (data, _) = cont(server.start("c1", Some(b"n,,n=a=2Cb=3Dc,r=xyz")));
    assert!(data.starts_with(b"r=xyz"));
    assert_eq!(unescape_name("a=2Cb=3Dc").expect("name"), "a,b=c");
}

#[test]
fn malformed_final_messages_fail() {
    let server = sha512_server();
    let mut client = ScramClient::new(SHA512, "alice", b"wonderland");
    let first = client.first();
    let (s_first, _) = cont(server.start("c1", Some(first.as_bytes())));
    let good = client.finish(&s_first).expect("final");
    let (head, _) = good.rsplit_once(",p=").expect("p=");
    let cases = [
        String::new(),
        head.to_owned(),
        format!("{head},p=!!!"),
        format!("{head},p=AAAA"),
        format!("c=biws,p={}", "A".repeat(88)),
        format!("{good}{}", "A".repeat(MAX_MESSAGE)),
        "\u{0}\u{1},p=".to_owned(),
    ];
    for bad in cases {
        let (_, state) = cont(server.start("c1", Some(first.as_bytes())));
        refused(state.next(Some(bad.as_bytes())));
    }
    let (_, state) = cont(server.start("c1", Some(first.as_bytes())));
    refused(state.next(None));
}

#[test]
fn client_refuses_hostile_server_messages() {
    let mut c = ScramClient::with_nonce(SHA512, "u", b"p", "abc");
    assert!(c.finish(b"r=abc,s=AAAA,i=1").is_err(), "nonce not extended");
    assert!(c.finish(b"r=zzzz,s=AAAA,i=1").is_err());
    assert!(c.finish(b"r=abcd,s=AAAA,i=4000000000").is_err());
    assert!(c.finish(b"r=abcd,s=!!,i=1").is_err());
    assert!(c.verify(b"v=AAAA").is_err(), "no final sent yet");
    c.finish(b"r=abcd,s=AAAA,i=1").expect("final");
    assert_eq!(c.verify(b"v=AAAA"), Err(ClientError::Signature));
}

use crate::auth::scram_client::ClientError;
