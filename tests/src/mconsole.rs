//! A raw mconsole client and a notification socket, built on `uml_common`.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use uml_common::mconsole::{decode_reply, encode_request, Reply, MAX_REPLY_SIZE};

/// Sends `command` to the mconsole socket at `socket` and collects the reply
/// packets until one has `more == 0` or `timeout` passes.
///
/// The reply socket is bound to a **filesystem path** in a fresh private
/// temporary directory, not to an abstract name: the kernel answers with
/// `sendto` to the request's source address, and a path address (unlike an
/// abstract one) reaches us even when the UML runs in another network
/// namespace. That socket lives in the caller's namespace, so its receive
/// queue is bounded by that namespace's `net.unix.max_dgram_qlen` (10 by
/// default); we read as fast as the packets come, which suffices for the
/// short replies a harness needs. Use the client under test to study long
/// replies.
///
/// Returns `Ok` with the reply when at least one packet arrived; a reply
/// cut short by the timeout has `complete == false`. Returns `Err` when the
/// request could not be sent, nothing arrived in time, or a datagram was
/// not a reply packet.
pub fn mconsole_request(socket: &Path, command: &str, timeout: Duration) -> Result<Reply, String> {
    let deadline = Instant::now() + timeout;
    let dir = tempfile::Builder::new()
        .prefix("umlt-mc-")
        .tempdir()
        .map_err(|e| format!("cannot create a directory for the reply socket: {e}"))?;
    let reply_path = dir.path().join("r");
    let sock = UnixDatagram::bind(&reply_path)
        .map_err(|e| format!("cannot bind {}: {e}", reply_path.display()))?;
    sock.send_to(&encode_request(command.as_bytes()), socket)
        .map_err(|e| format!("cannot send {command:?} to {}: {e}", socket.display()))?;
    let mut reply = Reply::default();
    let mut buf = [0u8; MAX_REPLY_SIZE + 64];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        sock.set_read_timeout(Some(left))
            .map_err(|e| format!("cannot set a read timeout: {e}"))?;
        let n = match sock.recv(&mut buf) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                break
            }
            Err(e) => return Err(format!("receiving the reply to {command:?}: {e}")),
        };
        let packet = decode_reply(&buf[..n]).map_err(|e| {
            format!(
                "bad reply packet to {command:?} ({e}): {:?}",
                String::from_utf8_lossy(&buf[..n])
            )
        })?;
        if reply.push(&packet) {
            return Ok(reply);
        }
    }
    if reply.packets == 0 {
        Err(format!(
            "no reply to {command:?} from {} within {timeout:?}",
            socket.display()
        ))
    } else {
        Ok(reply)
    }
}

/// A datagram socket bound at a path, for `mconsole=notify:<path>`
/// notifications (and the watchdog's HANG datagram). The socket file is
/// removed on drop.
#[derive(Debug)]
pub struct NotifyListener {
    sock: UnixDatagram,
    path: PathBuf,
}

impl NotifyListener {
    /// Binds a datagram socket at `path` (removing a stale socket file
    /// first).
    pub fn bind(path: impl AsRef<Path>) -> Result<NotifyListener, String> {
        let path = path.as_ref().to_path_buf();
        if path.symlink_metadata().is_ok_and(|m| {
            use std::os::unix::fs::FileTypeExt;
            m.file_type().is_socket()
        }) {
            let _ = std::fs::remove_file(&path);
        }
        let sock = UnixDatagram::bind(&path)
            .map_err(|e| format!("cannot bind {}: {e}", path.display()))?;
        Ok(NotifyListener { sock, path })
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The next datagram, waiting at most `timeout`.
    pub fn recv(&self, timeout: Duration) -> Option<Vec<u8>> {
        let timeout = timeout.max(Duration::from_millis(1));
        self.sock.set_read_timeout(Some(timeout)).ok()?;
        let mut buf = vec![0u8; 65536];
        let n = self.sock.recv(&mut buf).ok()?;
        buf.truncate(n);
        Some(buf)
    }
}

impl Drop for NotifyListener {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use uml_common::mconsole::{decode_request, encode_reply, Request};

    /// A fake kernel: answers one request with `packets`.
    fn fake_kernel(dir: &Path, packets: Vec<Vec<u8>>) -> (PathBuf, std::thread::JoinHandle<()>) {
        let path = dir.join("mconsole");
        let sock = UnixDatagram::bind(&path).unwrap();
        let h = std::thread::spawn(move || {
            let mut buf = [0u8; 1024];
            sock.set_read_timeout(Some(Duration::from_secs(10)))
                .unwrap();
            let (n, from) = sock.recv_from(&mut buf).unwrap();
            assert!(matches!(
                decode_request(&buf[..n]),
                Request::Command {
                    command: b"version",
                    ..
                }
            ));
            let to = from.as_pathname().unwrap().to_path_buf();
            for p in packets {
                sock.send_to(&p, &to).unwrap();
            }
        });
        (path, h)
    }

    #[test]
    fn multi_packet_reply_is_assembled() {
        let dir = tempfile::tempdir().unwrap();
        let text = vec![b'x'; 1200];
        let (path, h) = fake_kernel(dir.path(), encode_reply(0, false, &text));
        let reply = mconsole_request(&path, "version", Duration::from_secs(10)).unwrap();
        h.join().unwrap();
        assert!(reply.complete);
        assert_eq!(reply.packets, 3);
        assert_eq!(reply.text, text);
    }

    #[test]
    fn incomplete_reply_and_silence() {
        let dir = tempfile::tempdir().unwrap();
        let (path, h) = fake_kernel(dir.path(), encode_reply(0, true, b"partial"));
        let reply = mconsole_request(&path, "version", Duration::from_millis(300)).unwrap();
        h.join().unwrap();
        assert!(!reply.complete);
        assert_eq!(reply.text, b"partial");

        let dir = tempfile::tempdir().unwrap();
        let (path, h) = fake_kernel(dir.path(), vec![]);
        let err = mconsole_request(&path, "version", Duration::from_millis(300)).unwrap_err();
        h.join().unwrap();
        assert!(err.contains("no reply"), "{err}");
    }

    #[test]
    fn send_to_missing_socket_fails() {
        let dir = tempfile::tempdir().unwrap();
        let err = mconsole_request(&dir.path().join("nope"), "version", Duration::from_secs(1))
            .unwrap_err();
        assert!(err.contains("cannot send"), "{err}");
    }

    #[test]
    fn notify_listener_receives_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let l = NotifyListener::bind(&path).unwrap();
        assert!(l.recv(Duration::from_millis(50)).is_none());
        UnixDatagram::unbound()
            .unwrap()
            .send_to(b"hello", &path)
            .unwrap();
        assert_eq!(l.recv(Duration::from_secs(5)).unwrap(), b"hello");
        drop(l);
        assert!(!path.exists());
    }
}
