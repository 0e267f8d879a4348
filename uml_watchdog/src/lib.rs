//! `uml_watchdog`: the host half of UML's `harddog` watchdog, a drop-in
//! replacement for Debian's `/usr/bin/uml_watchdog` (`docs/helpers.md` §2).
//!
//! When a guest process opens `/dev/watchdog`, the UML kernel runs
//! `/usr/bin/uml_watchdog -pid <its host pid>` (or `-mconsole <notify
//! socket>` when booted with `mconsole=notify:<path>`), with stdin the read
//! end of a pipe it writes one byte to for every ping and stdout a pipe it
//! reads one "ready" byte from. The helper then:
//!
//! 1. writes the ready byte (its value is irrelevant; 0 here);
//! 2. waits for pings, each of which re-arms a 60-second timer; end of
//!    file (the guest closed the device) ends it with status 0;
//! 3. when the timer expires: with `-pid`, sends `SIGINT`, waits 1 s,
//!    `SIGINT` again, 1 s, then `SIGKILL`; with `-mconsole`, sends an
//!    `MCONSOLE_HANG` notification to the socket. Either way it exits 1.
//!
//! Argument errors exit 1 without a message, as in C. Differences from the
//! C helper: the HANG notification uses the kernel's 16-byte layout (the C
//! helper sends a 24-byte struct on 64-bit hosts); a pid must be a positive
//! `pid_t` (C accepted `0`, `-1` or `""`, which on expiry would have
//! signalled the helper's process group or every process); the signals go
//! through a pidfd, so a pid recycled after the UML died is never hit; and
//! descriptors other than 0–2 inherited from the kernel are closed.
//!
//! The timer and the pause between signals are parameters of [`run`] so
//! that the logic is unit-tested in milliseconds; the binary always uses
//! [`TIMEOUT`] and [`KILL_PAUSE`].

#![forbid(unsafe_code)]

#[cfg(feature = "clap-command")]
pub mod command;
mod error;
mod seccomp;

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use uml_common::cli::c_integer;
use uml_common::mconsole::{encode_notify, NotifyKind};
use uml_common::sys::process::{close_fds_from, PidFd};

pub use crate::error::Error;

/// How long the watchdog waits for a ping (fixed, as in the C helper and
/// the kernel's expectations).
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// The pause between the signals sent on expiry in `-pid` mode.
pub const KILL_PAUSE: Duration = Duration::from_secs(1);

/// The ready byte written to the kernel at start-up.
pub const READY_BYTE: u8 = 0;

/// Every option [`parse_args`] knows: the C helper's single-dash words,
/// each with its value in the next argument. [`parse_args`] looks the
/// first argument up here, so it accepts no option that is not listed;
/// packaging's tests check that this is the set of options in the
/// description (`command.rs`).
pub const OPTIONS: &[&str] = &["-pid", "-mconsole"];

/// What to do when the timer expires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// `-pid PID`: interrupt, then kill, that process.
    Pid(i32),
    /// `-mconsole SOCKET`: send a HANG notification there.
    Mconsole(PathBuf),
}

/// Parses the arguments after the program name. `None` means "exit 1
/// without a message" (fewer than two arguments, an unknown switch, or a
/// pid that is not a whole positive `pid_t`). Arguments after the second
/// are ignored, as in C. Whether the process exists is checked separately
/// ([`Target::open`]).
pub fn parse_args(args: &[OsString]) -> Option<Mode> {
    let (switch, value) = match args {
        [switch, value, ..] => (switch.as_bytes(), value),
        _ => return None,
    };
    let &option = OPTIONS.iter().find(|o| o.as_bytes() == switch)?;
    match option {
        "-pid" => {
            let pid = c_integer(value.as_bytes())?;
            // The kernel passes its own (positive) pid. 0 and negative
            // values would name process groups or every process.
            i32::try_from(pid).ok().filter(|&p| p > 0).map(Mode::Pid)
        }
        "-mconsole" => Some(Mode::Mconsole(PathBuf::from(value))),
        _ => None,
    }
}

/// The process watched in `-pid` mode.
#[derive(Debug)]
pub struct Target {
    pid: i32,
    /// `None` on kernels without pidfds: then plain `kill(2)`.
    pidfd: Option<PidFd>,
}

impl Target {
    /// Checks that `pid` exists (`kill(pid, 0)`, as the C helper does) and
    /// opens a pidfd for it when the kernel has them.
    pub fn open(pid: i32) -> Option<Target> {
        kill(Pid::from_raw(pid), None).ok()?;
        Some(Target {
            pid,
            pidfd: PidFd::open(pid).ok(),
        })
    }

    /// Sends `sig`; errors (the process is gone) are ignored, as in C.
    pub fn signal(&self, sig: Signal) {
        match &self.pidfd {
            Some(fd) => {
                let _ = fd.send_signal(sig as i32);
            }
            None => {
                let _ = kill(Pid::from_raw(self.pid), sig);
            }
        }
    }

    /// The expiry sequence: `SIGINT`, pause, `SIGINT`, pause, `SIGKILL`.
    pub fn interrupt_then_kill(&self, pause: Duration) {
        self.signal(Signal::SIGINT);
        std::thread::sleep(pause);
        self.signal(Signal::SIGINT);
        std::thread::sleep(pause);
        self.signal(Signal::SIGKILL);
    }
}

/// How the wait for pings ended.
#[derive(Debug)]
pub enum Outcome {
    /// End of file: the guest closed `/dev/watchdog`.
    Eof,
    /// No ping within the timeout.
    Expired,
    /// Reading failed.
    Failed(io::Error),
}

/// Reads pings from `input` until end of file, an error, or `timeout`
/// without a byte. Every byte (however many arrive at once) re-arms the
/// timer.
pub fn watch<R: Read + AsFd>(input: &mut R, timeout: Duration) -> Outcome {
    let mut deadline = Instant::now() + timeout;
    let mut buf = [0u8; 64];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Outcome::Expired;
        }
        match wait_readable(input.as_fd(), left) {
            Ok(false) => continue, // re-check the clock
            Ok(true) => {}
            Err(Errno::EINTR) => continue,
            Err(e) => return Outcome::Failed(e.into()),
        }
        match input.read(&mut buf) {
            Ok(0) => return Outcome::Eof,
            Ok(_) => deadline = Instant::now() + timeout,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Outcome::Failed(e),
        }
    }
}

/// Waits at most `left` (rounded up to whole milliseconds) for `fd` to be
/// readable or hung up. `Ok(false)` when the time passed.
fn wait_readable(fd: BorrowedFd<'_>, left: Duration) -> Result<bool, Errno> {
    let ms = left.as_micros().div_ceil(1000);
    let timeout = PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX);
    let mut fds = [PollFd::new(fd, PollFlags::POLLIN)];
    Ok(nix::poll::poll(&mut fds, timeout)? > 0)
}

/// Sends the HANG notification (kernel layout, 16 bytes) to `socket` from
/// a fresh unbound datagram socket. The error names the failed call, as
/// the C helper's `perror`.
pub fn send_hang(socket: &Path) -> Result<(), Error> {
    let sock = UnixDatagram::unbound().map_err(|e| Error::Hang("socket", e))?;
    sock.send_to(&encode_notify(NotifyKind::Hang, b""), socket)
        .map_err(|e| Error::Hang("sendto", e))?;
    Ok(())
}

/// The whole helper after argument parsing: ready byte on `output`, pings
/// from `input`, expiry action. `Ok` when the guest closed the device;
/// an expired timer is [`Error::Expired`] (or [`Error::Hang`] when the
/// notification could not be sent).
pub fn run<R: Read + AsFd>(
    mode: &Mode,
    input: &mut R,
    output: &mut dyn Write,
    timeout: Duration,
    pause: Duration,
) -> Result<(), Error> {
    let target = match mode {
        Mode::Pid(pid) => Some(Target::open(*pid).ok_or(Error::NoProcess(*pid))?),
        Mode::Mconsole(_) => None,
    };
    output
        .write_all(&[READY_BYTE])
        .and_then(|()| output.flush())
        .map_err(Error::Ready)?;
    match watch(input, timeout) {
        Outcome::Eof => Ok(()),
        Outcome::Failed(e) => Err(Error::Pings(e)),
        Outcome::Expired => {
            match (mode, target) {
                (Mode::Pid(_), Some(target)) => target.interrupt_then_kill(pause),
                (Mode::Mconsole(socket), _) => send_hang(socket)?,
                (Mode::Pid(_), None) => {}
            }
            Err(Error::Expired)
        }
    }
}

/// Fd 0, read without buffering (every byte counts as a ping as it comes).
struct KernelPipe(io::Stdin);

impl Read for KernelPipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Ok(nix::unistd::read(self.0.as_fd().as_raw_fd(), buf)?)
    }
}

impl AsFd for KernelPipe {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

/// Fd 1, written without buffering and with every error reported (std's
/// stdout treats a closed fd 1 as a sink).
struct ReadyPipe(io::Stdout);

impl Write for ReadyPipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(nix::unistd::write(self.0.as_fd(), buf)?)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The program: closes inherited descriptors, parses `argv` (including the
/// program name) and runs with the real timings on stdin and stdout.
pub fn uumain(argv: impl IntoIterator<Item = OsString>) -> i32 {
    // Keep only stdin, stdout and stderr: the kernel sets no close-on-exec
    // flags, and a watchdog must not hold the UML's sockets or files.
    let _ = close_fds_from(3, &[]);
    let args: Vec<OsString> = argv.into_iter().skip(1).collect();
    let result = parse_args(&args).ok_or(Error::Usage).and_then(|mode| {
        // Set up: from here on, only the allow-list of seccomp.rs.
        if let Some(status) = seccomp::confine(&mode)? {
            return Err(Error::SelfTest(status));
        }
        let mut input = KernelPipe(io::stdin());
        let mut output = ReadyPipe(io::stdout());
        run(&mode, &mut input, &mut output, TIMEOUT, KILL_PAUSE)
    });
    match result {
        Ok(()) => 0,
        Err(e) => {
            let message = e.to_string();
            if !message.is_empty() {
                let _ = writeln!(io::stderr(), "{message}");
            }
            e.exit_code()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;
    use std::os::unix::process::ExitStatusExt;
    use std::process::{Command, Stdio};
    use uml_common::mconsole::{decode_notify, NOTIFY_HEADER_SIZE};

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn argument_rules() {
        assert_eq!(parse_args(&args(&["-pid", "42"])), Some(Mode::Pid(42)));
        assert_eq!(parse_args(&args(&["-pid", "0x10"])), Some(Mode::Pid(16)));
        assert_eq!(parse_args(&args(&["-pid", " 010"])), Some(Mode::Pid(8)));
        assert_eq!(
            parse_args(&args(&["-pid", "42", "extra"])),
            Some(Mode::Pid(42))
        );
        assert_eq!(
            parse_args(&args(&["-mconsole", "/tmp/n.sock"])),
            Some(Mode::Mconsole("/tmp/n.sock".into()))
        );
        for bad in [
            &[][..],
            &["-pid"],
            &["-mconsole"],
            &["-foo", "x"],
            &["-pid", "abc"],
            &["-pid", "1x"],
            &["-pid", ""],
            &["-pid", "0"],
            &["-pid", "-1"],
            &["-pid", "4294967297"],
            &["-pid", "2147483648"],
            &["pid", "1"],
        ] {
            assert_eq!(parse_args(&args(bad)), None, "{bad:?}");
        }
    }

    #[test]
    fn missing_process_is_refused() {
        // Beyond the default pid_max (4194304).
        assert!(Target::open(999_999_999).is_none());
        assert!(Target::open(i32::try_from(std::process::id()).unwrap()).is_some());
    }

    #[test]
    fn every_byte_rearms_the_timer_and_eof_ends() {
        let (mut kernel, mut helper) = UnixStream::pair().unwrap();
        let pinger = std::thread::spawn(move || {
            // 16 pings 100 ms apart outlast a 1 s timeout only if each
            // one re-arms it; a ping may come 900 ms late on a loaded
            // machine before the timer expires.
            for _ in 0..16 {
                std::thread::sleep(Duration::from_millis(100));
                kernel.write_all(b"\n").unwrap();
            }
        });
        let start = Instant::now();
        let outcome = watch(&mut helper, Duration::from_secs(1));
        pinger.join().unwrap();
        assert!(matches!(outcome, Outcome::Eof), "{outcome:?}");
        assert!(start.elapsed() >= Duration::from_millis(1600));
    }

    #[test]
    fn silence_expires() {
        let (kernel, mut helper) = UnixStream::pair().unwrap();
        let start = Instant::now();
        let outcome = watch(&mut helper, Duration::from_millis(200));
        let took = start.elapsed();
        assert!(matches!(outcome, Outcome::Expired), "{outcome:?}");
        assert!(took >= Duration::from_millis(200) && took < Duration::from_secs(5));
        drop(kernel);
    }

    #[test]
    fn expiry_sends_the_kernel_layout_hang() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let listener = UnixDatagram::bind(&path).unwrap();
        listener
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let (kernel, mut helper) = UnixStream::pair().unwrap();
        let mut out = Vec::new();
        let result = run(
            &Mode::Mconsole(path.clone()),
            &mut helper,
            &mut out,
            Duration::from_millis(100),
            Duration::ZERO,
        );
        assert!(matches!(result, Err(Error::Expired)), "{result:?}");
        let e = result.unwrap_err();
        assert_eq!((e.exit_code(), e.to_string().as_str()), (1, ""));
        assert_eq!(out, [0u8]);
        let mut buf = [0u8; 64];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(
            &buf[..n],
            &[0xbe, 0xba, 0xfe, 0xca, 2, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(n, NOTIFY_HEADER_SIZE);
        assert_eq!(decode_notify(&buf[..n]).unwrap().kind, NotifyKind::Hang);
        drop(kernel);
    }

    #[test]
    fn hang_to_nobody_reports_sendto() {
        let dir = tempfile::tempdir().unwrap();
        let e = send_hang(&dir.path().join("nobody")).unwrap_err();
        assert_eq!(e.to_string(), "sendto: No such file or directory");
        assert_eq!(e.exit_code(), 1);
    }

    #[test]
    fn eof_after_ready_byte_exits_0() {
        let (kernel, mut helper) = UnixStream::pair().unwrap();
        drop(kernel);
        let mut out = Vec::new();
        let result = run(
            &Mode::Mconsole("/nonexistent".into()),
            &mut helper,
            &mut out,
            Duration::from_secs(10),
            Duration::ZERO,
        );
        assert!(result.is_ok(), "{result:?}");
        assert_eq!(out, vec![READY_BYTE]);
    }

    #[test]
    fn pid_mode_interrupts_twice_then_kills() {
        // A shell that reports each SIGINT and survives it.
        let mut child = Command::new("sh")
            .args([
                "-c",
                "trap 'echo INT' INT; echo up; while :; do sleep 0.02; done",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let mut up = [0u8; 3];
        stdout.read_exact(&mut up).unwrap();
        let pid = i32::try_from(child.id()).unwrap();

        let (kernel, mut helper) = UnixStream::pair().unwrap();
        let start = Instant::now();
        let result = run(
            &Mode::Pid(pid),
            &mut helper,
            &mut Vec::new(),
            Duration::from_millis(100),
            // Long enough for the shell to run its trap (after its current
            // `sleep 0.02`) even on a loaded machine.
            Duration::from_secs(1),
        );
        assert!(matches!(result, Err(Error::Expired)), "{result:?}");
        assert!(start.elapsed() >= Duration::from_millis(2100));
        let exit = child.wait().unwrap();
        assert_eq!(exit.signal(), Some(libc::SIGKILL));
        let mut text = String::new();
        stdout.read_to_string(&mut text).unwrap();
        assert_eq!(text, "INT\nINT\n");
        drop(kernel);
    }
}
