//! vde clients of `uml_switch`'s control socket at the protocol level
//! (`docs/kernel7.md` §1.3 and §5, `docs/interop.md` §3.2): real vdeplug4
//! `vde_plug vde://DIR` processes (what a 7.x kernel runs for
//! `vecN:transport=vde`; here with stdin/stdout as their other end) and
//! fake vde clients that do what vdeplug4 does byte for byte (a data socket
//! bound at `DIR/.PPPPP-NNNNN`, a request of 122 bytes plus a description
//! tail, connect to the reply's address, unlink the path) — and hostile
//! ones: requests in pieces, oversized tails, bad types, vanished data
//! sockets, zero-length, runt and oversized frames, a client that stops
//! reading. On the same switch, daemon-protocol ports (abstract addresses,
//! as the kernel's daemon transport) keep the shared data socket, and bess
//! ports work alongside.
//!
//! Also the fd launcher, `uml_switch --launch BESS-PATH --fd N -- PROGRAM`:
//! here PROGRAM is `vde_plug seqpacket://N`, which uses descriptor N as
//! the kernel's `vecN:transport=fd,fd=N` does (one frame per message).
//!
//! vde service and `--launch` are new in the rewrite: against Debian's C
//! switch (`UML_SWITCH_UNDER_TEST`) these tests are skipped. Without
//! `vde_plug` (Debian package `vdeplug`) the tests that need it skip, and
//! fail under `CI=true`.

// Test code: a failed setup step should abort the test with its message.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::ffi::OsString;
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use uml_integration_tests::switch_client::{
    assert_delivered, check_backlog_delivery, connect_control, counter, counters, frame,
    learned_port, mac, marker_deliveries, new_temp_dir, numbered_broadcast,
    read_control_until_closed, vde_data_socket, vde_request_bytes, BessClient, FakeVde, FramePort,
    RunningSwitch, Stream, SwitchBinary, SwitchMode, VdeRequest as Request, BROADCAST, MAX_FRAME,
    VDE_PLAIN as PLAIN, WAIT,
};
use uml_integration_tests::{find_in_path, run_with_timeout, wait_until};

/// Returns from the test when the switch under test is the C reference.
macro_rules! require_ours {
    () => {
        if SwitchBinary::under_test().is_c_reference {
            let _ = writeln!(
                std::io::stderr(),
                "SKIP: vde clients and --launch are not served by the C switch"
            );
            return;
        }
    };
}

/// The `vde_plug` program, or returns from the test (fails under
/// `CI=true`, else skips loudly).
macro_rules! require_vde_plug {
    () => {
        match find_in_path("vde_plug") {
            Some(p) => p,
            None => {
                let reason = "`vde_plug` not found (apt-get install vdeplug)";
                if std::env::var("CI").as_deref() == Ok("true") {
                    panic!("{reason}; CI must provide it");
                }
                let _ = writeln!(std::io::stderr(), "SKIP: {reason}");
                return;
            }
        }
    };
}

static NEXT: AtomicU32 = AtomicU32::new(0);

// ---------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------

/// A process whose stdin/stdout carry frames in VDE's stream framing (a
/// 2-byte big-endian length, then the frame): `vde_plug URL` with one URL.
/// Killed (by its pid) when dropped.
struct Plug {
    child: Child,
    stdin: Mutex<ChildStdin>,
    frames: mpsc::Receiver<Vec<u8>>,
    stderr: PathBuf,
}

impl Plug {
    /// Starts `program args`, its stderr in `dir`.
    fn spawn(dir: &Path, program: &Path, args: &[OsString]) -> Plug {
        let stderr = dir.join(format!("plug-{}.err", NEXT.fetch_add(1, Ordering::Relaxed)));
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(File::create(&stderr).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
        let stdin = child.stdin.take().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let (tx, frames) = mpsc::channel();
        std::thread::spawn(move || loop {
            let mut len = [0u8; 2];
            if stdout.read_exact(&mut len).is_err() {
                return;
            }
            let mut f = vec![0u8; usize::from(u16::from_be_bytes(len))];
            if stdout.read_exact(&mut f).is_err() || tx.send(f).is_err() {
                return;
            }
        });
        Plug {
            child,
            stdin: Mutex::new(stdin),
            frames,
            stderr,
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl FramePort for Plug {
    fn send_frame(&self, frame: &[u8]) {
        let mut msg = (frame.len() as u16).to_be_bytes().to_vec();
        msg.extend_from_slice(frame);
        let mut stdin = self.stdin.lock().unwrap();
        stdin.write_all(&msg).expect("write to vde_plug");
        stdin.flush().expect("flush to vde_plug");
    }

    fn recv_frame(&self, timeout: Duration) -> Option<Vec<u8>> {
        self.frames.recv_timeout(timeout).ok()
    }
}

impl Drop for Plug {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `vde_plug --descr DESCR URL` on switch `sw`, once the switch printed
/// its `New vde port` line.
fn vde_plug(sw: &mut RunningSwitch, program: &Path, descr: &str, url: &str) -> Plug {
    let before = sw
        .lines_starting_with(Stream::Stdout, "New vde port ")
        .len();
    let plug = Plug::spawn(
        sw.dir(),
        program,
        &["--descr".into(), descr.into(), url.into()],
    );
    sw.wait_until(WAIT, |s| {
        s.lines_starting_with(Stream::Stdout, "New vde port ").len() > before
    })
    .unwrap_or_else(|e| panic!("vde_plug {url} not served: {e}\n{}", plug.stderr()));
    plug
}

/// A fake vde client of `sw`, registered.
fn fake(sw: &mut RunningSwitch, req: &Request<'_>) -> FakeVde {
    let before = sw
        .lines_starting_with(Stream::Stdout, "New vde port ")
        .len();
    let c =
        FakeVde::register(sw.ctl(), req).unwrap_or_else(|e| panic!("{e}\n{}", sw.output_report()));
    sw.wait_until(WAIT, |s| {
        s.lines_starting_with(Stream::Stdout, "New vde port ").len() > before
    })
    .unwrap_or_else(|e| panic!("vde client not announced: {e}"));
    c
}

// ---------------------------------------------------------------------------
// Helpers shared with the bess tests' style
// ---------------------------------------------------------------------------

fn start_with_bess() -> (RunningSwitch, PathBuf) {
    let dir = new_temp_dir();
    let bess = dir.path().join("bess");
    let args: Vec<OsString> = vec!["--bess".into(), bess.clone().into()];
    let sw = RunningSwitch::start_in_with_args(dir, SwitchMode::default(), &args)
        .unwrap_or_else(|e| panic!("{e}"));
    (sw, bess)
}

/// The per-port data socket files (`ctl.N`) in the switch's directory.
fn port_files(sw: &RunningSwitch) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(sw.dir())
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_socket()))
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("ctl."))
        .collect();
    v.sort();
    v
}

// ---------------------------------------------------------------------------
// Start-up and help
// ---------------------------------------------------------------------------

/// After the `attached` line the switch prints the daemon argument and
/// the vde one; `--help` documents the vde service and `--launch`.
#[test]
fn startup_lines_name_the_daemon_and_vde_arguments() {
    require_ours!();
    let sw = RunningSwitch::start();
    let lines: Vec<String> = sw.stdout().lines().map(str::to_string).collect();
    let ctl = sw.ctl().display().to_string();
    let dir = sw.dir().display().to_string();
    assert_eq!(lines.first(), Some(&sw.attached_line()), "{lines:?}");
    assert_eq!(
        lines.get(1).map(String::as_str),
        Some(
            format!(
                "control socket '{ctl}': kernels before 6.16 join with eth0=daemon,,unix,{ctl}"
            )
            .as_str()
        ),
        "{lines:?}"
    );
    assert_eq!(
        lines.get(2).map(String::as_str),
        Some(
            format!(
                "control socket '{ctl}': kernels from 6.16 join through vde_plug with \
                 vec0:transport=vde,vnl=vde://{dir}"
            )
            .as_str()
        ),
        "{lines:?}"
    );
    let help = run_with_timeout(&mut SwitchBinary::under_test().command(["--help"]), WAIT);
    assert!(help.success(), "{help}");
    let text = help.stdout_str();
    for needle in [
        "vec0:transport=vde,vnl=vde://DIR",
        "--launch BESS-PATH [--fd N]",
        "vec0:transport=fd,fd=N",
    ] {
        assert!(text.contains(needle), "{needle:?} missing:\n{text}");
    }
}

// ---------------------------------------------------------------------------
// Real vde_plug clients
// ---------------------------------------------------------------------------

/// Two real `vde_plug vde://DIR` clients, two daemon ports and a bess
/// port on one switch: learning, flooding and unicast between all kinds;
/// each vde port has its own data socket `ctl.N` (gone with the port),
/// the daemon ports keep the one shared abstract data socket.
#[test]
fn vde_plug_clients_share_a_segment_with_daemon_and_bess_ports() {
    require_ours!();
    let program = require_vde_plug!();
    let (mut sw, bess) = start_with_bess();
    let url = format!("vde://{}", sw.dir().display());
    let mut v1 = vde_plug(&mut sw, &program, "first", &url);
    let v2 = vde_plug(&mut sw, &program, "second", &url);
    let d1 = sw.port();
    let d2 = sw.port();
    let b = BessClient::connect(&bess).unwrap();

    // The log names each vde_plug, its pid and its description.
    let uid = nix::unistd::getuid().as_raw();
    let lines = sw.lines_starting_with(Stream::Stdout, "New vde port ");
    for (line, (plug, descr)) in lines.iter().zip([(&v1, "first"), (&v2, "second")]) {
        let want = format!(" (pid {p}, uid {uid}): {descr} user=", p = plug.pid());
        assert!(line.contains(&want), "{line:?} lacks {want:?}");
    }
    assert_eq!(port_files(&sw).len(), 2, "{:?}", port_files(&sw));
    // Daemon clients are answered with the shared abstract data socket.
    assert_eq!(d1.reply, d2.reply);
    assert_eq!(d1.reply.as_ref().unwrap()[2], 0, "not an abstract address");

    let all: [&dyn FramePort; 5] = [&v1, &v2, &d1, &d2, &b];
    let names = ["vde 1", "vde 2", "daemon 1", "daemon 2", "bess"];
    // Broadcasts from each kind reach every other port.
    for (i, from) in all.iter().enumerate() {
        let bc = frame(
            BROADCAST,
            mac(i as u8 + 1),
            format!("bc from {}", names[i]).as_bytes(),
        );
        from.send_frame(&bc);
        for (j, to) in all.iter().enumerate() {
            if j != i {
                assert_eq!(
                    to.recv_frame(WAIT).as_deref(),
                    Some(&bc[..]),
                    "{} -> {}\n{}",
                    names[i],
                    names[j],
                    sw.output_report()
                );
            }
        }
    }
    for i in 0..5u8 {
        learned_port(&mut sw, mac(i + 1));
    }
    // Unicast between every pair reaches only the addressee.
    for (i, from) in all.iter().enumerate() {
        for (j, to) in all.iter().enumerate() {
            if i == j {
                continue;
            }
            let uc = frame(mac(j as u8 + 1), mac(i as u8 + 1), b"unicast");
            from.send_frame(&uc);
            assert_eq!(
                to.recv_frame(WAIT).as_deref(),
                Some(&uc[..]),
                "{} -> {}\n{}",
                names[i],
                names[j],
                sw.output_report()
            );
        }
    }
    for (k, p) in all.iter().enumerate() {
        assert_eq!(
            p.recv_frame(Duration::from_millis(50)),
            None,
            "{} got a frame for someone else",
            names[k]
        );
    }

    // vde_plug ends: its port, its MAC and its data socket go.
    let _ = v1.child.kill();
    let _ = v1.child.wait();
    sw.wait_line(Stream::Stdout, "Disconnect", 1, WAIT)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        wait_until(WAIT, || port_files(&sw).len() == 1),
        "{:?}",
        port_files(&sw)
    );
    let uc = frame(mac(1), mac(3), b"to a gone vde port: flooded");
    d1.send(&uc);
    let got = marker_deliveries(&sw, &[&d1, &v2, &d2, &b]);
    for k in 1..4 {
        assert_delivered(&sw, &got, k, &[&uc], "unicast to a purged MAC");
    }
}

/// A control socket not named `ctl` is reached with vde_plug's port group
/// syntax `vde://DIR[NAME]`, which the switch prints; given as a relative
/// path, the printed argument and the data socket in the reply are
/// absolute (vde_plug runs elsewhere).
#[test]
fn vde_plug_reaches_a_control_socket_of_another_name() {
    require_ours!();
    let program = require_vde_plug!();
    let dir = new_temp_dir();
    let out = dir.path().join("out");
    let mut child = SwitchBinary::under_test()
        .command(["-unix", "uml.ctl"])
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .stdout(File::create(&out).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let text = || std::fs::read_to_string(&out).unwrap_or_default();
    let announced = wait_until(WAIT, || text().contains("through vde_plug with "));
    let arg = text()
        .lines()
        .find_map(|l| l.split("through vde_plug with ").nth(1).map(str::to_string));
    let plug = arg.clone().map(|a| {
        let vnl = a.split("vnl=").nth(1).unwrap().to_string();
        Plug::spawn(dir.path(), &program, &[vnl.into()])
    });
    let served = wait_until(WAIT, || text().contains("New vde port "));
    let _ = child.kill();
    let _ = child.wait();
    drop(plug);
    assert!(announced, "{}", text());
    assert_eq!(
        arg.as_deref(),
        Some(
            format!(
                "vec0:transport=vde,vnl=vde://{}[uml.ctl]",
                dir.path().display()
            )
            .as_str()
        )
    );
    assert!(served, "{}", text());
}

// ---------------------------------------------------------------------------
// Fake and hostile vde clients
// ---------------------------------------------------------------------------

/// A request in pieces (also split inside the address, and with its
/// description after the registration) is one port; a requested port
/// number in `type` is tolerated and reported.
#[test]
fn vde_requests_in_pieces_and_with_port_bits() {
    require_ours!();
    let mut sw = RunningSwitch::start();
    let d = sw.port();
    let mut clients = Vec::new();
    for splits in [&[1, 12, 60][..], &[121], &[122], &[130]] {
        clients.push(fake(&mut sw, &Request { splits, ..PLAIN }));
    }
    clients.push(fake(
        &mut sw,
        &Request {
            kind: 4 << 8,
            ..PLAIN
        },
    ));
    let lines = sw.lines_starting_with(Stream::Stdout, "New vde port ");
    assert!(
        lines[4].ends_with("[asked for port 4; ports are not chosen by clients]"),
        "{lines:?}"
    );
    for c in &clients {
        let p = c.reply_path().expect("a path reply");
        assert!(
            p.to_string_lossy()
                .starts_with(&format!("{}.", sw.ctl().display())),
            "{p:?}"
        );
    }
    // Every client's frames reach the daemon port and the others.
    for (i, c) in clients.iter().enumerate() {
        let bc = frame(BROADCAST, mac(i as u8 + 1), b"from a split request");
        c.send(&bc);
        assert_eq!(
            d.recv(WAIT).as_deref(),
            Some(&bc[..]),
            "{}",
            sw.output_report()
        );
        for (j, o) in clients.iter().enumerate() {
            if j != i {
                assert_eq!(o.recv(WAIT).as_deref(), Some(&bc[..]), "client {j}");
            }
        }
    }
    assert_eq!(sw.count_lines(Stream::Stdout, "Bad request"), 0);
}

/// Hostile requests end only their own connection, each with one message
/// and no file left behind; the switch and its other ports go on.
#[test]
fn hostile_vde_requests_end_only_their_connection() {
    require_ours!();
    let mut sw = RunningSwitch::start();
    let a = fake(&mut sw, &PLAIN);
    let d = sw.port();
    let dir = sw.dir().to_path_buf();

    // (request bytes, splits, what the switch prints)
    let (_keep, alive) = vde_data_socket(&dir).unwrap();
    let gone = dir.join(".gone-00000");
    let regular = dir.join("regular-file");
    std::fs::write(&regular, b"x").unwrap();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        // A description longer than vdeplug4's 128 bytes.
        (
            vde_request_bytes(
                &alive,
                &Request {
                    description: &[b'd'; 300],
                    ..PLAIN
                },
            ),
            "Bad request",
        ),
        // Type 1 (vde's REQ_NEW_PORT0, netkit's REQ_NEW_DUMP): refused.
        (
            vde_request_bytes(&alive, &Request { kind: 1, ..PLAIN }),
            "Bad request type : 1",
        ),
        (
            vde_request_bytes(
                &alive,
                &Request {
                    kind: 7 | 3 << 8,
                    ..PLAIN
                },
            ),
            "Bad request type : 775",
        ),
        // Its data socket is gone (or never was a socket).
        (
            vde_request_bytes(&gone, &PLAIN),
            "connecting to the client's data socket",
        ),
        (
            vde_request_bytes(&regular, &PLAIN),
            "connecting to the client's data socket",
        ),
    ];
    for (bytes, message) in cases {
        let before = sw.count_containing(Stream::Stdout, message)
            + sw.count_containing(Stream::Stderr, message);
        let mut c = connect_control(sw.ctl(), WAIT).unwrap();
        // Written whole: the reply (if any) is read below.
        let _ = c.write_all(&bytes);
        let (data, end) = read_control_until_closed(&mut c, WAIT);
        assert!(end.closed(), "{message}: {end:?}\n{}", sw.output_report());
        sw.wait_until(WAIT, |s| {
            s.count_containing(Stream::Stdout, message)
                + s.count_containing(Stream::Stderr, message)
                > before
        })
        .unwrap_or_else(|e| panic!("{message:?} not printed: {e}"));
        if message == "Bad request" {
            // Registered (and answered) first, then dropped.
            assert_eq!(data.len(), 110, "{message}");
        } else {
            assert!(data.is_empty(), "{message}: {data:?}");
        }
    }
    assert_eq!(std::fs::read(&regular).unwrap(), b"x");
    // Only a's data socket is left.
    assert!(
        wait_until(WAIT, || port_files(&sw).len() == 1),
        "{:?}",
        port_files(&sw)
    );
    // A description with control characters stays on one line.
    let _b = fake(
        &mut sw,
        &Request {
            description: b"evil\nBad request type : 0\0\x1b[2J",
            ..PLAIN
        },
    );
    let line = sw
        .lines_starting_with(Stream::Stdout, "New vde port ")
        .pop()
        .unwrap();
    assert!(
        line.ends_with(": evil?Bad request type : 0?[2J"),
        "{line:?}"
    );
    assert_eq!(sw.count_lines(Stream::Stdout, "Bad request type : 0"), 0);
    // The others never noticed.
    let bc = frame(BROADCAST, mac(1), b"still here");
    a.send(&bc);
    assert_eq!(
        d.recv(WAIT).as_deref(),
        Some(&bc[..]),
        "{}",
        sw.output_report()
    );
    assert!(sw.is_running(), "{}", sw.output_report());
}

/// Zero-length, runt, oversized and garbage frames from a vde client:
/// runts are dropped and counted, oversized frames truncated to 1514
/// bytes and counted, and the client keeps its port.
#[test]
fn hostile_vde_frames_affect_only_their_sender() {
    require_ours!();
    let mut sw = RunningSwitch::start();
    let a = fake(&mut sw, &PLAIN);
    let d = sw.port();
    let h = fake(&mut sw, &PLAIN);
    let before = counters(&mut sw);
    for _ in 0..200 {
        h.send(&[]);
    }
    h.send(&[0xff; 5]);
    h.send(&frame(BROADCAST, mac(9), b"")[..13]);
    let big = frame(BROADCAST, mac(9), &[0x5a; 3000]);
    h.send(&big);
    let jumbo = frame(BROADCAST, mac(9), &[0xa5; 9000]);
    h.send(&jumbo);
    let got = marker_deliveries(&sw, &[&h, &a, &d]);
    let want: [&[u8]; 2] = [&big[..MAX_FRAME], &jumbo[..MAX_FRAME]];
    assert_delivered(&sw, &got, 1, &want, "vde port a");
    assert_delivered(&sw, &got, 2, &want, "daemon port d");
    let mut seed = 0x9e37_79b9_u32;
    for _ in 0..10 {
        let mut garbage = Vec::new();
        for _ in 0..5 {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let len = 14 + (seed as usize % 1500);
            let mut g: Vec<u8> = (0..len)
                .map(|k| (seed >> (k % 24)) as u8 ^ k as u8)
                .collect();
            g[0] |= 1;
            g[6] |= 1;
            h.send(&g);
            garbage.push(g);
        }
        let want: Vec<&[u8]> = garbage.iter().map(Vec::as_slice).collect();
        let got = marker_deliveries(&sw, &[&h, &a, &d]);
        assert_delivered(&sw, &got, 1, &want, "vde port a, garbage");
        assert_delivered(&sw, &got, 2, &want, "daemon port d, garbage");
    }
    let after = counters(&mut sw);
    assert_eq!(counter(&after, "short") - counter(&before, "short"), 202);
    assert_eq!(
        counter(&after, "truncated") - counter(&before, "truncated"),
        2
    );
    let bc = frame(BROADCAST, mac(3), b"h still has its port");
    h.send(&bc);
    assert_eq!(a.recv(WAIT).as_deref(), Some(&bc[..]));
    assert_eq!(d.recv(WAIT).as_deref(), Some(&bc[..]));
    assert_eq!(sw.count_lines(Stream::Stdout, "Disconnect"), 0);
}

/// A vde client that stops reading fills only its own data socket and
/// backlog: the others get every frame, its drops are counted, it gets
/// the oldest frames in order once it reads, and then fresh ones.
#[test]
fn a_vde_client_that_stops_reading_hurts_only_itself() {
    require_ours!();
    let (mut sw, bess) = start_with_bess();
    let a = fake(&mut sw, &PLAIN);
    let v = fake(&mut sw, &PLAIN);
    let stalled = fake(&mut sw, &PLAIN);
    let d = sw.port();
    let b = BessClient::connect(&bess).unwrap();
    let n = 3000;
    let t = Instant::now();
    for i in 0..n {
        let f = numbered_broadcast(mac(1), i);
        a.send(&f);
        for (name, p) in [
            ("vde v", &v as &dyn FramePort),
            ("daemon d", &d),
            ("bess b", &b),
        ] {
            assert_eq!(
                p.recv_frame(WAIT).as_deref(),
                Some(&f[..]),
                "frame {i} of {n} to {name} past a stalled vde client\n{}",
                sw.output_report()
            );
        }
    }
    let took = t.elapsed();
    let c = counters(&mut sw);
    assert!(counter(&c, "queue full") > 0, "{c:?}");
    assert!(sw.stderr().lines().count() < 10, "{}", sw.output_report());
    eprintln!("{n} broadcasts past a stalled vde client in {took:?}; {c:?}");
    let queued = stalled.drain(Duration::from_millis(300));
    check_backlog_delivery(&queued, mac(1), n, counter(&c, "queue full"));
    let deadline = Instant::now() + WAIT;
    loop {
        let f = frame(BROADCAST, mac(1), b"again");
        a.send(&f);
        assert_eq!(v.recv(WAIT).as_deref(), Some(&f[..]));
        if stalled.recv(Duration::from_millis(100)).as_deref() == Some(&f[..]) {
            break;
        }
        assert!(Instant::now() < deadline, "{}", sw.output_report());
    }
}

/// Closing a vde client's control connection ends its port (`Disconnect`)
/// and removes its data socket; SIGTERM removes the remaining ones with the
/// control socket.
#[test]
fn vde_data_sockets_go_with_their_port_and_the_switch() {
    require_ours!();
    let mut sw = RunningSwitch::start();
    let a = fake(&mut sw, &PLAIN);
    let b = fake(&mut sw, &PLAIN);
    let pa = a.reply_path().expect("a path reply");
    let pb = b.reply_path().expect("a path reply");
    assert!(pa.exists() && pb.exists() && pa != pb);
    drop(a.control);
    sw.wait_line(Stream::Stdout, "Disconnect", 1, WAIT)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(wait_until(WAIT, || !pa.exists()), "{pa:?} left behind");
    assert!(pb.exists());
    sw.signal(Signal::SIGTERM);
    assert!(sw.wait_exit(WAIT).is_some(), "{}", sw.output_report());
    assert!(!pb.exists(), "{pb:?} left behind after SIGTERM");
    assert!(!sw.ctl().exists());
    drop(b);
}

// ---------------------------------------------------------------------------
// The fd launcher
// ---------------------------------------------------------------------------

/// `uml_switch --launch BESS --fd 5 -- vde_plug seqpacket://5`: the
/// program gets a bess connection on descriptor 5 (the switch logs the
/// program's pid: the launcher execs it) and exchanges frames through it
/// with a bess client, a daemon port and a vde_plug client; its end
/// removes the port.
#[test]
fn launch_gives_the_program_a_port_on_its_descriptor() {
    require_ours!();
    let program = require_vde_plug!();
    let (mut sw, bess) = start_with_bess();
    let switch = SwitchBinary::under_test().path;
    let launched = Plug::spawn(
        sw.dir(),
        &switch,
        &[
            "--launch".into(),
            bess.clone().into(),
            "--fd".into(),
            "5".into(),
            "--".into(),
            program.clone().into(),
            "seqpacket://5".into(),
        ],
    );
    let line = sw
        .wait_line_starting(Stream::Stdout, "New bess connection: ", WAIT)
        .unwrap_or_else(|e| panic!("{e}\n{}", launched.stderr()));
    assert!(
        line.contains(&format!("(pid {},", launched.pid())),
        "{line:?}: not the launched program's pid {}",
        launched.pid()
    );
    let b = BessClient::connect(&bess).unwrap();
    let d = sw.port();
    let url = format!("vde://{}", sw.dir().display());
    let v = vde_plug(&mut sw, &program, "v", &url);
    let all: [&dyn FramePort; 4] = [&launched, &b, &d, &v];
    for (i, from) in all.iter().enumerate() {
        let bc = frame(BROADCAST, mac(i as u8 + 1), b"over an fd port");
        from.send_frame(&bc);
        for (j, to) in all.iter().enumerate() {
            if j != i {
                assert_eq!(
                    to.recv_frame(WAIT).as_deref(),
                    Some(&bc[..]),
                    "{i} -> {j}\n{}\n{}",
                    sw.output_report(),
                    launched.stderr()
                );
            }
        }
    }
    let uc = frame(mac(1), mac(3), b"daemon to the fd port");
    d.send(&uc);
    assert_eq!(launched.recv_frame(WAIT).as_deref(), Some(&uc[..]));
    drop(launched);
    sw.wait_line_starting(Stream::Stdout, "Bess port ", WAIT)
        .unwrap_or_else(|e| panic!("the fd port did not go: {e}"));
}

/// The launcher's refusals: no socket, not a bess socket, bad `--fd`, no
/// program, a program that cannot run — each with one line and the usual
/// exit status, and nothing run.
#[test]
fn launch_refusals() {
    require_ours!();
    let (sw, bess) = start_with_bess();
    let run = |args: &[OsString]| {
        let mut cmd = SwitchBinary::under_test().command(args);
        run_with_timeout(&mut cmd, WAIT)
    };
    let os = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
    let b = bess.to_str().unwrap();
    let ctl = sw.ctl().to_str().unwrap().to_string();
    let none = sw.dir().join("none");
    let cases: [(Vec<OsString>, i32, &str); 6] = [
        (
            os(&["--launch", none.to_str().unwrap(), "true"]),
            1,
            "No such file or directory",
        ),
        (os(&["--launch", &ctl, "true"]), 1, "not a --bess socket"),
        (os(&["--launch", b, "--fd", "1", "true"]), 1, "from 3 to"),
        (os(&["--launch", b]), 1, "missing PROGRAM"),
        (os(&["--launch"]), 1, "missing BESS-PATH"),
        (
            os(&["--launch", b, "--", "/nonexistent/program"]),
            127,
            "cannot run '/nonexistent/program'",
        ),
    ];
    for (args, code, message) in cases {
        let out = run(&args);
        assert_eq!(out.code, Some(code), "{args:?}: {out}");
        assert!(out.stderr_str().contains(message), "{args:?}: {out}");
        assert!(out.stdout.is_empty(), "{args:?}: {out}");
    }
}
