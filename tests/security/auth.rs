//! Authentication and access control: password files (ours and mosquitto_passwd's), the
//! ACL, the HTTP hook, and reloading (library call and SIGHUP to the binary).

use std::path::Path;
use std::time::{Duration, Instant};

use supermq::codec::{Packet, QoS};
use supermq::config::HttpAuthConfig;
use tokio::net::TcpStream;

use crate::common::process::{signal, supermq_command, temp_dir, write};
use crate::common::{
    self, barrier, free_port, metric, start_with, until_barrier, Raw, TestBroker, WAIT,
};
use crate::hook::HookServer;
use crate::{assert_connacks, connack, connack_as, connect_as, run};
use supermq::codec::ConnectReturnCode::{Accepted, BadUsernameOrPassword, NotAuthorized};

// ---------------------------------------------------------------------------------------
// Password files
// ---------------------------------------------------------------------------------------

/// A broker that admits only the users of the password file `file`.
async fn with_password_file(file: &Path) -> TestBroker {
    let file = file.to_owned();
    start_with(|c| {
        c.auth.password_file = Some(file);
        c.auth.allow_anonymous = false;
    })
    .await
}

#[tokio::test]
async fn mosquitto_passwd_files_work_as_is() {
    let dir = temp_dir("mosq");
    let file = dir.join("passwd");
    run(std::process::Command::new("mosquitto_passwd")
        .args(["-b", "-c"])
        .arg(&file)
        .args(["alice", "s3cret"]));
    run(std::process::Command::new("mosquitto_passwd")
        .args(["-H", "sha512", "-b"])
        .arg(&file)
        .args(["old", "legacy"]));
    let b = with_password_file(&file).await;
    assert_connacks(
        &b,
        &[
            ("a", Some("alice"), Some("s3cret"), Accepted),
            ("o", Some("old"), Some("legacy"), Accepted),
            ("a", Some("alice"), Some("wrong"), BadUsernameOrPassword),
            ("a", Some("alice"), None, BadUsernameOrPassword),
            ("b", Some("bob"), Some("x"), NotAuthorized),
            ("n", None, None, NotAuthorized),
        ],
    )
    .await;
    assert_eq!(metric(&b, |m| &m.auth_failures), 4);
}

#[tokio::test]
async fn supermq_passwd_entries_work_here_and_in_mosquitto() {
    let dir = temp_dir("ours");
    let file = dir.join("passwd");
    run(supermq_command()
        .args(["passwd", "-c", "-b"])
        .arg(&file)
        .args(["carol", "pw-one"]));
    // Without -b the password is one line of standard input.
    let mut child = supermq_command()
        .arg("passwd")
        .arg(&file)
        .arg("dave")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"pw two\n")
        .expect("write");
    assert!(child.wait().expect("wait").success());
    // Updating a user replaces its line.
    run(supermq_command()
        .args(["passwd", "-b"])
        .arg(&file)
        .args(["carol", "pw-three"]));
    let text = std::fs::read_to_string(&file).expect("read");
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text.lines().all(|l| l.contains(":$7$101$")), "{text}");

    let b = with_password_file(&file).await;
    assert_connacks(
        &b,
        &[
            ("c", Some("carol"), Some("pw-three"), Accepted),
            ("c", Some("carol"), Some("pw-one"), BadUsernameOrPassword),
            ("d", Some("dave"), Some("pw two"), Accepted),
        ],
    )
    .await;

    // mosquitto itself reads the file and accepts the password.
    mosquitto_accepts(&dir, &file, "dave", "pw two").await;
}

/// Starts `program -c conf` with its output discarded; killed when dropped. `what` names
/// the failure to start.
fn spawn_quiet(program: &str, conf: &Path, what: &str) -> tokio::process::Child {
    tokio::process::Command::new(program)
        .arg("-c")
        .arg(conf)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect(what)
}

/// Starts a real mosquitto broker on `file` and checks that `user` / `pass` connects.
async fn mosquitto_accepts(dir: &Path, file: &Path, user: &str, pass: &str) {
    let port = free_port();
    let conf = write(
        dir,
        "mosquitto.conf",
        &format!(
            "user root\nlistener {port} 127.0.0.1\nallow_anonymous false\npassword_file {}\n",
            file.display()
        ),
    );
    let mut child = spawn_quiet(
        "mosquitto",
        &conf,
        "mosquitto (apt-get install -y mosquitto)",
    );
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let deadline = Instant::now() + WAIT;
    let stream = loop {
        match TcpStream::connect(addr).await {
            Ok(s) => break s,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(e) => panic!("mosquitto did not start: {e}"),
        }
    };
    let mut s = Raw::new(stream);
    let code = s
        .try_connack(connect_as("mosq-check", Some(user), Some(pass)))
        .await;
    let mut bad = Raw::new(TcpStream::connect(addr).await.expect("tcp"));
    let wrong = bad
        .try_connack(connect_as("mosq-bad", Some(user), Some("nope")))
        .await;
    let _ = child.kill().await;
    assert_eq!(code, Some(Accepted), "mosquitto accepts our hash");
    assert_ne!(wrong, Some(Accepted), "and checks it");
}

// ---------------------------------------------------------------------------------------
// ACL
// ---------------------------------------------------------------------------------------

const ACL: &str = "\
# anonymous clients
topic read public/#

user alice
topic readwrite alice/#
topic read public/#
topic write public/alice

pattern readwrite devices/%c/#
pattern read inbox/%u
";

#[tokio::test]
async fn acl_controls_subscribe_publish_and_will() {
    let dir = temp_dir("acl");
    let acl = write(&dir, "acl", ACL);
    let b = start_with(|c| c.auth.acl_file = Some(acl)).await;

    let (mut alice, _) =
        Raw::connect_with(b.addr, connect_as("c-alice", Some("alice"), None)).await;
    let codes = alice
        .subscribe_many(&[
            ("alice/#", QoS::AtLeastOnce),
            ("public/+", QoS::AtLeastOnce),
            ("inbox/alice", QoS::AtLeastOnce),
            ("inbox/bob", QoS::AtLeastOnce),
            ("#", QoS::AtLeastOnce),
            ("devices/c-alice/#", QoS::AtLeastOnce),
        ])
        .await;
    assert_eq!(codes, vec![1, 1, 1, 0x80, 0x80, 1]);
    assert_eq!(metric(&b, |m| &m.acl_denied_subscribe), 2);

    let (mut anon, _) = Raw::connect_with(b.addr, connect_as("dev9", None, None)).await;
    assert_eq!(anon.subscribe("alice/#", QoS::AtMostOnce).await, 0x80);
    assert_eq!(anon.subscribe("devices/dev9/cmd", QoS::AtMostOnce).await, 0);

    // Denied publishes are dropped, QoS 1 still acknowledged (Raw::publish waits for PUBACK).
    anon.publish("public/news", b"denied", QoS::AtLeastOnce, false)
        .await;
    anon.publish("alice/x", b"denied too", QoS::AtMostOnce, false)
        .await;
    alice
        .publish("public/alice", b"allowed", QoS::AtLeastOnce, false)
        .await;
    alice
        .publish(
            "devices/dev9/cmd",
            b"not alice's device",
            QoS::AtMostOnce,
            false,
        )
        .await;
    barrier(&mut alice, "alice/barrier").await;
    let got = until_barrier(&mut alice, "alice/barrier").await;
    let payloads: Vec<_> = got.iter().map(|p| p.payload.to_vec()).collect();
    assert_eq!(payloads, vec![b"allowed".to_vec()]);
    assert_eq!(metric(&b, |m| &m.acl_denied_publish), 3);

    // A device publishes on its own topics (pattern %c).
    anon.publish("devices/dev9/cmd", b"self", QoS::AtLeastOnce, false)
        .await;
    assert_eq!(&anon.recv_publish().await.payload[..], b"self");

    // A will the client may not publish refuses the CONNECT.
    let mut c = connect_as("dev9w", None, None);
    c.will = Some(common::will("alice/will", "x", QoS::AtMostOnce, false));
    assert_eq!(connack(&b, c).await, NotAuthorized);
    let mut c = connect_as("dev9w", None, None);
    c.will = Some(common::will(
        "devices/dev9w/status",
        "gone",
        QoS::AtMostOnce,
        false,
    ));
    assert_eq!(connack(&b, c).await, Accepted);
}

// ---------------------------------------------------------------------------------------
// HTTP authentication hook
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn http_hook_allows_denies_times_out_and_caches() {
    let hook = HookServer::start().await;
    let mut cfg = HttpAuthConfig::new(hook.url());
    cfg.timeout = Duration::from_millis(300);
    let b = start_with(|c| {
        c.auth.http = Some(cfg);
        c.auth.allow_anonymous = false;
    })
    .await;

    assert_eq!(
        connack_as(&b, "h1", Some("good"), Some("pw")).await,
        Accepted
    );
    assert_eq!(hook.requests(), 1);
    let body = hook.bodies.lock()[0].clone();
    assert_eq!(body["clientid"], "h1");
    assert_eq!(body["username"], "good");
    assert_eq!(body["password"], "pw");
    assert!(body["peer"]
        .as_str()
        .expect("peer")
        .starts_with("127.0.0.1:"));

    // Same credentials again: answered from the cache.
    assert_eq!(
        connack_as(&b, "h1", Some("good"), Some("pw")).await,
        Accepted
    );
    assert_eq!(hook.requests(), 1, "cached");

    assert_eq!(
        connack_as(&b, "h2", Some("bad"), Some("pw")).await,
        BadUsernameOrPassword
    );
    assert_eq!(hook.requests(), 2);

    let started = Instant::now();
    assert_eq!(
        connack_as(&b, "h3", Some("slow"), Some("pw")).await,
        NotAuthorized
    );
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(3),
        "denied after the timeout: {took:?}"
    );
    // Anonymous clients are not sent to the hook.
    assert_eq!(connack_as(&b, "h4", None, None).await, NotAuthorized);
    assert_eq!(hook.requests(), 3);
    assert_eq!(metric(&b, |m| &m.auth_failures), 3);
}

// ---------------------------------------------------------------------------------------
// Reload (SIGHUP)
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn reload_swaps_passwords_without_dropping_connections() {
    let dir = temp_dir("reload");
    let file = dir.join("passwd");
    supermq::auth::passwd::set_password(&file, "alice", "one", true).expect("passwd");
    let b = with_password_file(&file).await;
    let (mut kept, _) =
        Raw::connect_with(b.addr, connect_as("kept", Some("alice"), Some("one"))).await;

    supermq::auth::passwd::set_password(&file, "alice", "two", false).expect("passwd");
    b.broker.reload_auth().expect("reload");
    assert_connacks(
        &b,
        &[
            ("n", Some("alice"), Some("two"), Accepted),
            ("o", Some("alice"), Some("one"), BadUsernameOrPassword),
        ],
    )
    .await;
    kept.ping().await;

    // A broken file is refused and the loaded one stays.
    std::fs::write(&file, "alice\n").expect("write");
    let e = b.broker.reload_auth().expect_err("bad file");
    assert!(e.to_string().contains("line 1"), "{e}");
    assert_eq!(
        connack_as(&b, "n2", Some("alice"), Some("two")).await,
        Accepted
    );
    kept.ping().await;
}

#[tokio::test]
async fn sighup_reloads_the_running_binary() {
    let dir = temp_dir("hup");
    let file = dir.join("passwd");
    supermq::auth::passwd::set_password(&file, "alice", "one", true).expect("passwd");
    let port = free_port();
    let conf = write(
        &dir,
        "supermq.toml",
        &format!(
            "[[listener]]\nbind = \"127.0.0.1:{port}\"\n[auth]\nallow_anonymous = false\n\
             password_file = \"{}\"\n[sys]\ninterval = \"0s\"\n[persistence]\ndir = \"{}\"\n[http]\nenabled = false\n",
            file.display(),
            dir.join("data").display()
        ),
    );
    let mut child = spawn_quiet(env!("CARGO_BIN_EXE_supermq"), &conf, "spawn supermq");
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let try_connect = |pass: &'static str| async move {
        let mut s = Raw::new(TcpStream::connect(addr).await.ok()?);
        s.try_connack(connect_as("hup", Some("alice"), Some(pass)))
            .await
    };
    let deadline = Instant::now() + WAIT;
    while try_connect("one").await != Some(Accepted) {
        assert!(Instant::now() < deadline, "supermq did not start");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut kept = Raw::new(TcpStream::connect(addr).await.expect("tcp"));
    let c = connect_as("kept", Some("alice"), Some("one"));
    assert_eq!(kept.try_connack(c).await, Some(Accepted));

    supermq::auth::passwd::set_password(&file, "alice", "two", false).expect("passwd");
    let pid = child.id().expect("pid");
    signal(pid, "-HUP");
    let deadline = Instant::now() + WAIT;
    while try_connect("two").await != Some(Accepted) {
        assert!(
            Instant::now() < deadline,
            "SIGHUP did not reload the password file"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    kept.send(&Packet::PingReq).await;
    assert_eq!(kept.recv().await, Packet::PingResp, "connection kept");
    assert!(child.try_wait().expect("status").is_none(), "still running");
    signal(pid, "-TERM");
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .expect("exits")
        .expect("status");
    assert!(status.success(), "{status:?}");
}

/// A Mosquitto ACL with a deny line: `#` is granted and the denied topic withheld per message
/// (retained copies too); a filter wholly inside the denied area is refused; `$share/` filters
/// are judged by the filter they share; a reload changes what is delivered at once.
#[tokio::test]
async fn deny_lines_withhold_messages_without_breaking_wildcard_subscribers() {
    let dir = temp_dir("acl-deny");
    let acl = write(
        &dir,
        "acl",
        "topic readwrite #\ntopic deny test/nosubscribe\nuser writer\ntopic write #\n",
    );
    let b = start_with(|c| c.auth.acl_file = Some(acl.clone())).await;
    // The publisher may write everywhere; the anonymous monitor may not read the denied topic.
    let (mut p, _) = Raw::connect_with(b.addr, connect_as("pub", Some("writer"), None)).await;
    p.publish(
        "test/nosubscribe",
        b"retained secret",
        QoS::AtLeastOnce,
        true,
    )
    .await;
    p.publish("test/open", b"retained open", QoS::AtLeastOnce, true)
        .await;

    let mut mon = Raw::connect(b.addr, "monitor").await;
    let codes = mon
        .subscribe_many(&[
            ("#", QoS::AtLeastOnce),
            ("test/nosubscribe", QoS::AtLeastOnce),
            ("$share/g/test/nosubscribe", QoS::AtLeastOnce),
            ("$share/g/jobs/+", QoS::AtLeastOnce),
        ])
        .await;
    assert_eq!(codes, vec![1, 0x80, 0x80, 1]);
    let retained = mon.recv_publish().await;
    assert_eq!(&retained.payload[..], b"retained open");
    mon.ping().await;

    p.publish("test/nosubscribe", b"secret", QoS::AtLeastOnce, false)
        .await;
    p.publish("test/other", b"open", QoS::AtLeastOnce, false)
        .await;
    p.publish("jobs/1", b"job", QoS::AtLeastOnce, false).await;
    barrier(&mut p, "barrier").await;
    let got: Vec<_> = until_barrier(&mut mon, "barrier")
        .await
        .iter()
        .map(|m| (m.topic.clone(), m.payload.to_vec()))
        .collect();
    // `jobs/1` twice: once through `#`, once as the only member of the group.
    assert_eq!(
        got,
        vec![
            ("test/other".to_owned(), b"open".to_vec()),
            ("jobs/1".to_owned(), b"job".to_vec()),
            ("jobs/1".to_owned(), b"job".to_vec()),
        ]
    );
    // The retained copy and the live message on the denied topic.
    assert_eq!(metric(&b, |m| &m.acl_denied_read), 2);

    // A reload that denies more is applied to the next message.
    let wider = "topic readwrite #\ntopic deny test/#\nuser writer\ntopic write #\n";
    std::fs::write(&acl, wider).expect("write acl");
    b.broker.reload_auth().expect("reload");
    p.publish("test/other", b"now denied", QoS::AtLeastOnce, false)
        .await;
    barrier(&mut p, "barrier").await;
    assert!(until_barrier(&mut mon, "barrier").await.is_empty());
    assert_eq!(metric(&b, |m| &m.acl_denied_read), 3);
}

/// A consumer-group member the ACL does not let read a topic is left out of the choice for
/// that topic: with a deterministic strategy, every message still reaches a member that may
/// read it, none is dropped (round robin would otherwise give alice every other one).
#[tokio::test]
async fn group_members_that_may_not_read_a_topic_are_not_chosen_for_it() {
    let dir = temp_dir("acl-group");
    let acl = write(
        &dir,
        "acl",
        "user alice\ntopic read #\ntopic deny a/secret\nuser bob\ntopic read #\nuser pub\ntopic write #\n",
    );
    let b = start_with(|c| {
        c.auth.acl_file = Some(acl);
        c.groups.strategy = supermq::config::GroupStrategy::RoundRobin;
    })
    .await;
    let mut members = Vec::new();
    for user in ["alice", "bob"] {
        let (mut m, _) = Raw::connect_with(b.addr, connect_as(user, Some(user), None)).await;
        assert_eq!(m.subscribe("$share/g/a/+", QoS::AtLeastOnce).await, 1);
        assert_eq!(
            m.subscribe(&format!("ctl/{user}"), QoS::AtLeastOnce).await,
            1
        );
        members.push(m);
    }
    let (mut p, _) = Raw::connect_with(b.addr, connect_as("pub", Some("pub"), None)).await;
    for i in 0..20u8 {
        p.publish("a/secret", &[i], QoS::AtLeastOnce, false).await;
        p.publish("a/open", &[i], QoS::AtLeastOnce, false).await;
    }
    let mut per_topic = std::collections::BTreeMap::<(String, String), usize>::new();
    for (user, m) in ["alice", "bob"].into_iter().zip(members.iter_mut()) {
        let ctl = format!("ctl/{user}");
        barrier(&mut p, &ctl).await;
        for msg in until_barrier(m, &ctl).await {
            *per_topic.entry((user.to_owned(), msg.topic)).or_default() += 1;
        }
    }
    assert_eq!(per_topic.get(&("alice".into(), "a/secret".into())), None);
    assert_eq!(per_topic.get(&("bob".into(), "a/secret".into())), Some(&20));
    assert_eq!(per_topic.values().sum::<usize>(), 40, "{per_topic:?}");
    assert_eq!(metric(&b, |m| &m.group_dropped), 0);
}
