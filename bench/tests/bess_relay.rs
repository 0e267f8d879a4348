//! The benchmark's minimal bess relay (`bench/src/bin/bess-relay.rs`) must
//! really relay: its throughput bounds what any bess switch reaches in
//! `scripts/bench-guests` only if it delivers every message of one guest to
//! the other, unchanged, in order, both ways, at every size a guest sends
//! (up to `mtu=65535` frames), and stops when a guest goes.

// Test code: a failed setup step should abort the test with its message.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use uml_integration_tests::switch_client::{new_temp_dir, BessClient, BessRecv, WAIT};
use uml_integration_tests::workspace_bin;

/// Kills and reaps the relay (by PID) however the test ends.
struct Relay(Child);

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the relay on `path`; returns it and its stdout lines.
fn start(path: &Path) -> (Relay, mpsc::Receiver<String>) {
    let child = Command::new(workspace_bin("bess-relay"))
        .arg(path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("starting bess-relay");
    let mut relay = Relay(child);
    let stdout = relay.0.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = rx.recv_timeout(WAIT).expect("bess-relay did not start");
    assert_eq!(
        first,
        format!("bess-relay listening on '{}'", path.display())
    );
    (relay, rx)
}

/// A frame of `len` bytes (at least a header) whose bytes tell `tag` and
/// `len` apart.
fn frame(tag: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| tag.wrapping_add((i % 251) as u8))
        .collect()
}

fn recv(c: &BessClient) -> Vec<u8> {
    match c.recv_event(WAIT) {
        BessRecv::Frame(f) => f,
        other => panic!("expected a frame, got {other:?}"),
    }
}

#[test]
fn relays_every_message_both_ways_and_ends_with_a_guest() {
    let dir = new_temp_dir();
    let path = dir.path().join("relay.bess");
    let (mut relay, lines) = start(&path);
    let a = BessClient::connect(&path).expect("guest a");
    let b = BessClient::connect(&path).expect("guest b");
    for n in 1..=2 {
        assert_eq!(
            lines.recv_timeout(WAIT).as_deref(),
            Ok(format!("bess-relay: connection {n}").as_str())
        );
    }

    // Every size a guest sends, both ways: runts and empty messages too
    // (a relay does not judge), 1514 and jumbo frames, the largest.
    for (i, len) in [60usize, 14, 1, 1514, 9014, 65000].into_iter().enumerate() {
        let f = frame(i as u8, len);
        a.send(&f);
        assert_eq!(recv(&b), f, "{len} bytes a -> b");
        let g = frame(100 + i as u8, len);
        b.send(&g);
        assert_eq!(recv(&a), g, "{len} bytes b -> a");
    }
    // A burst sent before the receiver reads (it fits the relay's send
    // buffer): all of it, in order.
    let burst: Vec<Vec<u8>> = (0..40u8).map(|i| frame(i, 64 + usize::from(i))).collect();
    for f in &burst {
        a.send(f);
    }
    for f in &burst {
        assert_eq!(&recv(&b), f);
    }
    let quiet = Duration::from_millis(200);
    assert_eq!(a.recv_event(quiet), BessRecv::Quiet, "a got its own frames");
    assert_eq!(b.recv_event(quiet), BessRecv::Quiet, "b got a frame twice");

    // Accepting stopped at two: the socket is gone.
    assert!(!path.exists(), "the relay still offers its socket");

    // A guest that goes ends the relay, which closes the other.
    drop(a);
    assert_eq!(
        lines.recv_timeout(WAIT).as_deref(),
        Ok("bess-relay: connection 1 closed; 0 frames dropped")
    );
    assert_eq!(b.recv_event(WAIT), BessRecv::Closed);
    let deadline = std::time::Instant::now() + WAIT;
    let status = loop {
        if let Some(s) = relay.0.try_wait().expect("try_wait") {
            break s;
        }
        assert!(std::time::Instant::now() < deadline, "relay did not end");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
}
