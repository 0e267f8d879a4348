//! `fake-mconsole [--max-seconds N] SOCKET`: a fake UML mconsole server.
//!
//! Binds a Unix datagram socket at SOCKET, prints `ready` on stdout, then
//! answers every request the way the kernel would for a machine that only
//! knows `version` (see `uml_bench::fake::answer`), replying to the
//! sender's address (clients bind abstract addresses). Exits on SIGTERM,
//! SIGINT or SIGHUP, or when `--max-seconds` (default 600) have passed, and
//! removes its socket on every exit path but SIGKILL.
#![forbid(unsafe_code)]

use std::fmt;
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use uml_bench::fake::answer;
use uml_common::mconsole::REQUEST_SIZE;

const USAGE: &str = "Usage: fake-mconsole [--max-seconds N] SOCKET";
/// How long one `recv_from` may block before the stop flag and the
/// deadline are checked again.
const POLL: Duration = Duration::from_millis(100);
/// Default (and only) bound on the server's lifetime.
const DEFAULT_MAX_SECONDS: u64 = 600;
/// Send errors reported one by one; later ones are only counted.
const MAX_REPORTED_SEND_ERRORS: u64 = 10;

#[derive(Debug)]
enum Error {
    Usage(String),
    Io(String, io::Error),
    NotASocket(PathBuf),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(msg) => write!(f, "{msg}\n{USAGE}"),
            Error::Io(what, e) => write!(f, "{what}: {e}"),
            Error::NotASocket(p) => {
                write!(
                    f,
                    "{} exists and is not a socket; not removing it",
                    p.display()
                )
            }
        }
    }
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
    let what = what.into();
    move |e| Error::Io(what, e)
}

#[derive(Debug)]
struct Options {
    socket: PathBuf,
    max_seconds: u64,
}

fn parse_args(mut args: impl Iterator<Item = std::ffi::OsString>) -> Result<Options, Error> {
    let mut socket = None;
    let mut max_seconds = DEFAULT_MAX_SECONDS;
    while let Some(arg) = args.next() {
        let text = arg.to_str();
        let value = match text {
            Some("-h" | "--help") => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            Some("--max-seconds") => Some(
                args.next()
                    .ok_or_else(|| Error::Usage("--max-seconds needs a value".into()))?,
            ),
            Some(t) if t.starts_with("--max-seconds=") => {
                t.strip_prefix("--max-seconds=").map(Into::into)
            }
            Some(t) if t.starts_with('-') && t.len() > 1 => {
                return Err(Error::Usage(format!("unknown option {t}")))
            }
            _ => {
                if socket.replace(PathBuf::from(arg)).is_some() {
                    return Err(Error::Usage("exactly one SOCKET expected".into()));
                }
                None
            }
        };
        if let Some(v) = value {
            max_seconds = v
                .to_str()
                .and_then(|s| s.parse::<u64>().ok())
                .filter(|&n| n > 0)
                .ok_or_else(|| Error::Usage("--max-seconds needs a positive integer".into()))?;
        }
    }
    let socket = socket.ok_or_else(|| Error::Usage("SOCKET missing".into()))?;
    Ok(Options {
        socket,
        max_seconds,
    })
}

/// Removes the socket file when dropped.
#[derive(Debug)]
struct SocketFile(PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        // The file may be gone already (someone else cleaned up); that is fine.
        let _ = fs::remove_file(&self.0);
    }
}

/// Removes a stale socket at `path`, as the kernel does; refuses to remove
/// anything else.
fn remove_stale_socket(path: &Path) -> Result<(), Error> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            fs::remove_file(path).map_err(io_err(format!("removing {}", path.display())))
        }
        Ok(_) => Err(Error::NotASocket(path.to_owned())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::Io(format!("checking {}", path.display()), e)),
    }
}

fn describe(addr: &SocketAddr) -> String {
    use std::os::linux::net::SocketAddrExt;
    if let Some(name) = addr.as_abstract_name() {
        let printable: String = name
            .iter()
            .take_while(|&&b| b != 0)
            .map(|&b| char::from(b))
            .collect();
        format!("abstract {printable:?}")
    } else if let Some(p) = addr.as_pathname() {
        p.display().to_string()
    } else {
        "an unbound socket".into()
    }
}

fn run(opts: &Options) -> Result<(), Error> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [SIGTERM, SIGINT, SIGHUP] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .map_err(io_err(format!("installing the handler of signal {sig}")))?;
    }
    let deadline = Instant::now() + Duration::from_secs(opts.max_seconds);

    remove_stale_socket(&opts.socket)?;
    let sock = UnixDatagram::bind(&opts.socket)
        .map_err(io_err(format!("binding {}", opts.socket.display())))?;
    let _socket_file = SocketFile(opts.socket.clone());
    sock.set_read_timeout(Some(POLL))
        .map_err(io_err("setting the receive timeout"))?;

    {
        let mut out = io::stdout().lock();
        writeln!(out, "ready")
            .and_then(|()| out.flush())
            .map_err(io_err("writing \"ready\" to stdout"))?;
    }

    let mut buf = [0u8; REQUEST_SIZE];
    let mut send_errors = 0u64;
    let mut requests = 0u64;
    let result = loop {
        if stop.load(Ordering::Relaxed) {
            break Ok(());
        }
        if Instant::now() >= deadline {
            eprintln!(
                "fake-mconsole: --max-seconds {} reached, exiting",
                opts.max_seconds
            );
            break Ok(());
        }
        // Datagrams longer than a request are cut to its size, as the
        // kernel reads only that much.
        let (n, addr) = match sock.recv_from(&mut buf) {
            Ok(got) => got,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) =>
            {
                continue
            }
            Err(e) => break Err(Error::Io("receiving a request".into(), e)),
        };
        requests += 1;
        let datagram = buf.get(..n).unwrap_or(&buf[..]);
        if addr.is_unnamed() {
            send_errors += 1;
            if send_errors <= MAX_REPORTED_SEND_ERRORS {
                eprintln!("fake-mconsole: request from an unbound socket: nowhere to reply");
            }
            continue;
        }
        for packet in answer(datagram) {
            if let Err(e) = sock.send_to_addr(&packet, &addr) {
                send_errors += 1;
                if send_errors <= MAX_REPORTED_SEND_ERRORS {
                    eprintln!("fake-mconsole: replying to {}: {e}", describe(&addr));
                }
                break;
            }
        }
    };
    if send_errors > MAX_REPORTED_SEND_ERRORS {
        eprintln!("fake-mconsole: {send_errors} of {requests} requests could not be answered");
    }
    result
}

fn main() -> ExitCode {
    let result = parse_args(std::env::args_os().skip(1)).and_then(|opts| run(&opts));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e @ Error::Usage(_)) => {
            eprintln!("fake-mconsole: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("fake-mconsole: {e}");
            ExitCode::FAILURE
        }
    }
}
