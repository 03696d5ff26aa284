//! A stored session's subscriptions are read under its user's ACL rules after a restart too:
//! the store keeps the username of the connection that last served it, so a message
//! published while the broker is back but before the client reconnects is queued for it,
//! not withheld as if the session were anonymous (the real binary, `kill -9`).

mod common;

use std::path::{Path, PathBuf};

use common::process::{temp_dir, write};
use common::stored::{free_port, kill9, start};
use common::*;
use supermq::codec::{Connect, QoS};

fn config(dir: &Path, port: u16) -> PathBuf {
    let acl = write(
        dir,
        "acl",
        "user alice\ntopic read a/#\nuser bob\ntopic write a/#\n",
    );
    let text = format!(
        "[[listener]]\nbind = \"127.0.0.1:{port}\"\n\n[log]\nlevel = \"warn\"\n\n[sys]\n\
         interval = \"0s\"\n\n[auth]\nacl_file = \"{}\"\n\n[persistence]\ndir = \"{}\"\n\n\
         [http]\nenabled = false\n",
        acl.display(),
        dir.join("data").display()
    );
    write(dir, &format!("acl{port}.conf"), &text)
}

fn as_user(id: &str, user: &str, clean: bool) -> Connect {
    Connect {
        username: Some(user.into()),
        ..connect_packet(id, clean)
    }
}

#[tokio::test]
async fn a_restored_session_reads_under_its_users_acl() {
    let dir = temp_dir("durable-acl");
    let port = free_port();
    let conf = config(&dir, port);
    let mut proc = start(&conf, port).await;
    let (mut alice, _) = Raw::connect_with(proc.addr, as_user("alice-dev", "alice", false)).await;
    assert_eq!(alice.subscribe("a/#", QoS::AtLeastOnce).await, 1);
    alice.disconnect().await;
    kill9(&mut proc);

    let proc = start(&conf, port).await;
    let (mut bob, _) = Raw::connect_with(proc.addr, as_user("bob-dev", "bob", true)).await;
    bob.publish("a/1", b"for alice", QoS::AtLeastOnce, false)
        .await;
    let (mut alice, present) =
        Raw::connect_with(proc.addr, as_user("alice-dev", "alice", false)).await;
    assert!(present, "alice's session is back");
    assert_eq!(&alice.recv_publish().await.payload[..], b"for alice");
    drop(proc);
    let _ = std::fs::remove_dir_all(&dir);
}
