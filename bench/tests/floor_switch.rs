//! The benchmark's floor switch (`bench/src/bin/floor-switch.rs`) must
//! really switch: its frames/s bound what any switch reaches in
//! `bench-switch` only if it delivers learned unicast to the right port
//! alone and floods the rest, as a switch does. (A test of the bench,
//! run by `cargo test --workspace` like every other.)

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use uml_integration_tests::switch_client::{frame, new_temp_dir, FakePort, Version, WAIT};

/// Kills and reaps the floor switch (by PID) however the test ends.
struct Floor(Child);

impl Drop for Floor {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn floor_switch_learns_forwards_and_floods() {
    let dir = new_temp_dir();
    let ctl = dir.path().join("ctl");
    let child = Command::new(env!("CARGO_BIN_EXE_floor-switch"))
        .arg("-unix")
        .arg(&ctl)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()
        .expect("starting floor-switch");
    let mut floor = Floor(child);
    // Ready once it says so (read in a thread: bounded wait).
    let stdout = floor.0.stdout.take().expect("piped stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(WAIT).expect("floor-switch did not start");
    assert_eq!(
        line,
        format!("floor-switch attached to unix socket '{}'\n", ctl.display())
    );
    let a = FakePort::register(&ctl, Version::V3).expect("port a");
    let b = FakePort::register(&ctl, Version::V3).expect("port b");
    let c = FakePort::register(&ctl, Version::V3).expect("port c");
    let (ma, mb) = ([2, 0, 0, 0, 0, 0xa], [2, 0, 0, 0, 0, 0xb]);

    // A broadcast reaches the others, not the sender.
    let bc = frame([0xff; 6], ma, b"broadcast from a");
    a.send(&bc);
    assert_eq!(b.recv(WAIT), Some(bc.clone()), "broadcast at b");
    assert_eq!(c.recv(WAIT), Some(bc.clone()), "broadcast at c");
    // Unicast to a's learned MAC reaches a only; b is learned by it.
    let to_a = frame(ma, mb, b"b to a");
    b.send(&to_a);
    assert_eq!(a.recv(WAIT), Some(to_a), "unicast at a");
    // Unicast to b's learned MAC reaches b only.
    let to_b = frame(mb, ma, b"a to b");
    a.send(&to_b);
    assert_eq!(b.recv(WAIT), Some(to_b), "unicast at b");
    let quiet = Duration::from_millis(200);
    assert_eq!(a.recv(quiet), None, "a got a frame not meant for it");
    assert_eq!(c.recv(quiet), None, "c got learned unicast");
    assert_eq!(b.recv(quiet), None, "b got a frame twice");
}
