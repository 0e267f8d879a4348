//! Writing the reply on fd 1 in the framing the kernel expects.

use std::fs::File;
use std::io::{IoSlice, Write};
use std::os::fd::{AsFd, AsRawFd};

use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
use uml_common::umlnet::{length_prefixed, tuntap_reply, Framing, IfName, Transport};

use crate::Error;

/// Accumulated text for the kernel's console: one readable line per
/// action or error.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Output {
    text: String,
}

impl Output {
    /// Appends a `* action` line.
    pub fn action(&mut self, what: &str) {
        self.text.push_str("* ");
        self.text.push_str(what);
        self.text.push('\n');
    }

    /// Appends a line (newline added if missing).
    pub fn line(&mut self, line: &str) {
        self.text.push_str(line);
        if !line.ends_with('\n') {
            self.text.push('\n');
        }
    }

    /// Appends the error's line(s), if it has any.
    pub fn error(&mut self, error: &Error) {
        let text = error.to_string();
        if !text.is_empty() {
            self.line(&text);
        }
    }

    /// The text.
    pub fn text(&self) -> &str {
        &self.text
    }
}

/// Writes `buf` on fd 1 with as few `write` calls as possible — one for
/// anything up to a pipe buffer. Not through `std::io::stdout()`: its line
/// buffering would split the text from its final NUL, and the kernel reads
/// the data with a single `read` (then reports `read only N of N+1 bytes`).
fn write_fd1(buf: &[u8]) -> Result<(), Error> {
    let stdout = std::io::stdout();
    let fd = stdout.as_fd();
    let mut rest = buf;
    while !rest.is_empty() {
        match nix::unistd::write(fd, rest) {
            Ok(0) => return Err(Error::ShortReply),
            Ok(n) => rest = &rest[n..],
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(Error::WriteReply(e)),
        }
    }
    Ok(())
}

/// Writes a length-prefixed text on fd 1 (`docs/uml_net.md` §3).
pub fn write_length_prefixed(text: &str) -> Result<(), Error> {
    write_fd1(&length_prefixed(text))
}

/// Writes the ethertap status byte and the length-prefixed text.
pub fn write_status_then_text(ok: bool, text: &str) -> Result<(), Error> {
    let mut buf = vec![u8::from(ok)];
    buf.extend_from_slice(&length_prefixed(text));
    write_fd1(&buf)
}

/// Sends the `tuntap up` reply datagram on `fd`: on success the interface
/// name, the text and the tap descriptor; on failure only the text.
pub fn send_tuntap(fd: i32, success: Option<(&IfName, &File)>, text: &str) -> Result<(), Error> {
    let data = tuntap_reply(success.map(|(n, _)| n), text);
    let iov = [IoSlice::new(&data)];
    let raw = if fd == 1 {
        std::io::stdout().as_fd().as_raw_fd()
    } else {
        fd
    };
    let result = match success {
        Some((_, tap)) => {
            let fds = [tap.as_raw_fd()];
            let cmsg = [ControlMessage::ScmRights(&fds)];
            sendmsg::<()>(raw, &iov, &cmsg, MsgFlags::empty(), None)
        }
        None => sendmsg::<()>(raw, &iov, &[], MsgFlags::empty(), None),
    };
    result.map(|_| ()).map_err(Error::SendReply)
}

/// Reports a refusal in the transport's framing.
pub fn refuse(transport: Transport, reply_fd: i32, text: &str) -> Result<(), Error> {
    match transport.framing() {
        Framing::TuntapDatagram => send_tuntap(reply_fd, None, text),
        Framing::LengthPrefixed => write_length_prefixed(text),
        Framing::StatusThenLength => write_status_then_text(false, text),
    }
}

/// Reports on stderr that the reply could not be delivered (the channel
/// to the kernel is gone, so stderr is all that is left). Returns whether
/// it was delivered.
pub fn delivered(result: Result<(), Error>) -> bool {
    match result {
        Ok(()) => true,
        Err(e) => {
            let text = e.to_string();
            if !text.is_empty() {
                let _ = writeln!(std::io::stderr(), "{text}");
            }
            false
        }
    }
}
