//! `--notify SOCKET`: receive the kernel's notifications (boot option
//! `mconsole=notify:SOCKET`) and print one line per notification.

use std::io::{self, Write};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use uml_common::mconsole::{decode_notify, Notification, MAX_NOTIFY_SIZE};

use crate::Error;

/// Formats a notification as one line: `KIND` or `KIND text`. The text ends
/// at its NUL; one trailing newline is dropped; backslashes and control
/// bytes are escaped (`\\`, `\n`, `\t`, `\xHH`) so that a line is always
/// exactly one notification.
pub fn format_line(n: &Notification<'_>) -> Vec<u8> {
    let mut line = n.kind.name().into_bytes();
    let text = n.text();
    let text = text.strip_suffix(b"\n").unwrap_or(text);
    if !text.is_empty() {
        line.push(b' ');
        for &b in text {
            match b {
                b'\\' => line.extend_from_slice(b"\\\\"),
                b'\n' => line.extend_from_slice(b"\\n"),
                b'\t' => line.extend_from_slice(b"\\t"),
                0..=0x1f | 0x7f => line.extend_from_slice(format!("\\x{b:02x}").as_bytes()),
                _ => line.push(b),
            }
        }
    }
    line.push(b'\n');
    line
}

/// Binds `path` and prints notifications until SIGINT or SIGTERM; removes
/// the socket file on the way out.
pub fn run(path: &Path) -> Result<(), Error> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop)).map_err(|e| Error::Signal(sig, e))?;
    }
    let sock = UnixDatagram::bind(path).map_err(|source| Error::NotifyBind {
        path: path.to_path_buf(),
        source,
    })?;
    let result = serve(&sock, &stop);
    let _ = std::fs::remove_file(path);
    result
}

fn serve(sock: &UnixDatagram, stop: &AtomicBool) -> Result<(), Error> {
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .map_err(Error::NotifySetup)?;
    let stdout = io::stdout();
    let mut buf = [0u8; MAX_NOTIFY_SIZE + 64];
    while !stop.load(Ordering::Relaxed) {
        let n = match sock.recv(&mut buf) {
            Ok(n) => n,
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
            Err(e) => return Err(Error::NotifyReceive(e)),
        };
        match decode_notify(&buf[..n]) {
            Ok(notification) => {
                let mut out = stdout.lock();
                out.write_all(&format_line(&notification))
                    .and_then(|()| out.flush())
                    .map_err(Error::Output)?;
            }
            // A warning: the listener goes on.
            Err(e) => eprintln!(
                "uml_mconsole: ignoring a {n}-byte datagram that is not a notification: {e}"
            ),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use uml_common::mconsole::{encode_notify, NotifyKind};

    fn line(kind: NotifyKind, data: &[u8]) -> String {
        let buf = encode_notify(kind, data);
        String::from_utf8(format_line(&decode_notify(&buf).unwrap())).unwrap()
    }

    #[test]
    fn lines() {
        assert_eq!(
            line(NotifyKind::Socket, b"/w/uml/t1/mconsole\0"),
            "SOCKET /w/uml/t1/mconsole\n"
        );
        assert_eq!(line(NotifyKind::Hang, b""), "HANG\n");
        assert_eq!(
            line(NotifyKind::UserNotify, b"hello\n"),
            "USER_NOTIFY hello\n"
        );
        assert_eq!(
            line(NotifyKind::UserNotify, b"a\nb\\c\x01"),
            "USER_NOTIFY a\\nb\\\\c\\x01\n"
        );
        assert_eq!(
            line(NotifyKind::Panic, b"sysrq triggered crash\0"),
            "PANIC sysrq triggered crash\n"
        );
        assert_eq!(line(NotifyKind::Unknown(9), b"x"), "UNKNOWN(9) x\n");
    }
}
