//! vde clients of the control socket: vdeplug4's `vde_plug vde://DIR` —
//! which Linux ≥ 6.16 runs for `vecN:transport=vde,vnl=vde://DIR` — and
//! other libvdeplug clients (`docs/kernel7.md` §1.3 and §5,
//! `docs/interop.md` §3.2). They speak the daemon protocol on `DIR/ctl` (the
//! daemon port kind, `daemon.rs`, accepts them; `control.rs` decides per
//! request) with three differences this module serves:
//!
//! * the request is 122 bytes plus a description tail (`UML user=root
//!   pid=N`), and its `type` may carry a requested port number (`N << 8`),
//!   tolerated — both handled by `control.rs`;
//! * the client binds its data socket at a file-system path
//!   (`DIR/.PPPPP-NNNNN`), `connect()`s it to the address the reply names
//!   and then unlinks its path: the switch can no longer reach it by name,
//!   and it accepts datagrams only from the address it connected to. So
//!   each such port gets a data socket of its own ([`PortSocket`]), bound
//!   at `CTL.N` next to the control socket (N: the port number, i.e. the
//!   control connection's descriptor) and **connected to the client before
//!   the reply names it** — vde_switch's scheme;
//! * that socket carries the port's frames both ways (one Ethernet frame
//!   per datagram, as on the shared data socket), received in `recvmmsg`
//!   batches ([`recv`]) and sent in the daemon ports' `sendmmsg` batches.
//!
//! Clients of the kernel's daemon transport (abstract addresses) keep the
//! shared data socket: for them nothing changes (README: a data socket per
//! port was slower for them). A client that stops reading fills only its
//! own socket's send buffer.

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::{Path, PathBuf};

use uml_common::cli::strerror;
use uml_common::switch::{SockAddrUn, SUN_PATH_LEN};
use uml_common::sys::fd::move_high;

use super::{Inbox, Ready, Received, Stats, HIGH_FD};
use crate::control::VdeRequest;
use crate::core::PortId;

/// The data socket of one vde port.
#[derive(Debug)]
pub struct PortSocket {
    /// Bound, connected to the client, non-blocking, above
    /// [`HIGH_FD`].
    pub fd: OwnedFd,
    /// Its file.
    pub file: PortFile,
    /// Its address, the reply to the client.
    pub reply: SockAddrUn,
}

/// What a vde port keeps besides its socket: its number and its socket
/// file.
#[derive(Debug)]
pub struct PortFile {
    /// The port number (its control connection's descriptor).
    pub label: i32,
    /// The socket file (removed with the port); `None` for an abstract
    /// address.
    pub path: Option<PathBuf>,
}

impl PortFile {
    /// Removes the socket's file, if it has one.
    pub fn unlink(&mut self) {
        if let Some(p) = self.path.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Where the data socket of port `label` of the control socket `ctl`
/// lives: `CTL.LABEL` (e.g. `DIR/ctl.5`), unique per control socket and
/// port, absolute (the client resolves the reply in its own directory).
/// `None` when that does not fit in `sun_path`.
pub fn socket_path(ctl: &Path, label: i32) -> Option<PathBuf> {
    let mut name = absolute(ctl).into_os_string();
    name.push(format!(".{label}"));
    (name.as_bytes().len() < SUN_PATH_LEN).then(|| PathBuf::from(name))
}

/// The abstract name used when [`socket_path`] is too long: all 107 bytes
/// after the leading NUL are significant (the client connects with a
/// 110-byte address).
fn abstract_name(label: i32) -> [u8; SUN_PATH_LEN - 1] {
    let mut name = [0u8; SUN_PATH_LEN - 1];
    let text = format!("uml_switch-vde-{}-{label}", std::process::id());
    name[..text.len()].copy_from_slice(text.as_bytes());
    name
}

/// Binds a datagram socket at `path`; a leftover socket file there (of an
/// earlier switch on the same control socket, which this one now owns) is
/// replaced, anything else is not.
fn bind_path(path: &Path) -> io::Result<UnixDatagram> {
    match UnixDatagram::bind(path) {
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
            let is_socket =
                std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_socket());
            if !is_socket {
                return Err(e);
            }
            std::fs::remove_file(path)?;
            UnixDatagram::bind(path)
        }
        r => r,
    }
}

/// Gives the data socket file the control socket's permission bits and
/// group, so that whoever may connect to the control socket may connect
/// to the data socket too (best effort: the owner cannot always change the
/// group).
fn copy_access(ctl: &Path, path: &Path) {
    let Ok(meta) = std::fs::metadata(ctl) else {
        return;
    };
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(meta.mode() & 0o777));
    let _ = std::os::unix::fs::chown(path, None, Some(meta.gid()));
}

/// Makes the data socket of a new vde port — control connection `label`
/// of the control socket `ctl` — and connects it to the client's data
/// socket. The error is the line to print.
pub fn open_port(ctl: &Path, label: i32, request: &VdeRequest) -> Result<PortSocket, String> {
    let client = request.addr.socket_addr().ok_or_else(|| {
        format!("vde port {label}: the client's data socket address is not a usable path")
    })?;
    let shown = client
        .as_pathname()
        .map_or_else(String::new, |p| format!(" '{}'", p.display()));
    let (sock, path, reply) = match socket_path(ctl, label) {
        Some(path) => {
            let sock = bind_path(&path).map_err(|e| {
                format!(
                    "vde port {label}: binding its data socket '{}': {}",
                    path.display(),
                    strerror(&e)
                )
            })?;
            copy_access(ctl, &path);
            let reply = SockAddrUn::path(path.as_os_str().as_bytes());
            (sock, Some(path), reply)
        }
        None => {
            let name = abstract_name(label);
            let sock = SocketAddr::from_abstract_name(name)
                .and_then(|a| UnixDatagram::bind_addr(&a))
                .map_err(|e| {
                    format!(
                        "vde port {label}: binding its data socket: {}",
                        strerror(&e)
                    )
                })?;
            (sock, None, SockAddrUn::abstract_name(&name))
        }
    };
    let remove = |path: &Option<PathBuf>| {
        if let Some(p) = path {
            let _ = std::fs::remove_file(p);
        }
    };
    if let Err(e) = sock
        .connect_addr(&client)
        .and_then(|()| sock.set_nonblocking(true))
    {
        remove(&path);
        return Err(format!(
            "vde port {label}: connecting to the client's data socket{shown}: {}",
            strerror(&e)
        ));
    }
    let fd = move_high(OwnedFd::from(sock), HIGH_FD).map_err(|e| {
        remove(&path);
        format!("vde port {label}: {}", strerror(&e))
    })?;
    Ok(PortSocket {
        fd,
        file: PortFile { label, path },
        reply,
    })
}

/// The line printed after `New connection` for a vde port.
pub fn describe(label: i32, cred: Option<(i32, u32)>, request: &VdeRequest) -> String {
    let mut line = format!("New vde port {label}");
    if let Some((pid, uid)) = cred {
        line.push_str(&format!(" (pid {pid}, uid {uid})"));
    }
    if !request.description.is_empty() {
        line.push_str(&format!(": {}", request.description));
    }
    if let Some(p) = request.requested_port {
        line.push_str(&format!(
            " [asked for port {p}; ports are not chosen by clients]"
        ));
    }
    line.push('\n');
    line
}

/// Receives one batch of frames of vde port `port` from its data socket
/// `fd` into `inbox`. An error (other than "would block") is returned: the
/// port is then broken.
pub fn recv(
    fd: BorrowedFd<'_>,
    port: PortId,
    inbox: &mut Inbox,
    stats: &mut Stats,
) -> io::Result<Ready> {
    let n = inbox.rx.recv(fd)?;
    for i in 0..n {
        stats.frames_in += 1;
        if inbox.rx.truncated(i) {
            stats.truncated += 1;
        }
        let len = inbox.rx.frame(i).len();
        inbox.frames.push(Received { port, slot: i, len });
    }
    Ok(if n == inbox.rx.capacity() {
        Ready::More
    } else {
        Ready::Done
    })
}

/// The kernel argument that joins the daemon transport of control socket
/// `ctl` (kernels before 6.16), made absolute against the current
/// directory; `None` when the path cannot be written in it.
pub fn daemon_guest_argument(ctl: &Path) -> Option<String> {
    let abs = absolute(ctl);
    let s = abs.to_str()?;
    nameable(s).then(|| format!("eth0=daemon,,unix,{s}"))
}

/// The kernel argument that joins control socket `ctl` through vdeplug4
/// (`vecN:transport=vde`, kernels from 6.16): `vde://DIR` when the socket
/// is `DIR/ctl` (where vde_plug looks), else `vde://DIR[NAME]` (vde_plug's
/// port group syntax names the socket `DIR/NAME`). `None` when no VNL can
/// name it.
pub fn vde_guest_argument(ctl: &Path) -> Option<String> {
    let abs = absolute(ctl);
    let dir = abs.parent()?.to_str()?;
    let name = abs.file_name()?.to_str()?;
    // vdeplug4 unquotes ' " \ % in the VNL and splits [ ]; the kernel
    // splits its options on , and =.
    let plain = |s: &str| nameable(s) && !s.contains(['\'', '"', '\\', '%', '[', ']']);
    if !plain(dir) || !plain(name) {
        return None;
    }
    let vnl = if name == "ctl" {
        format!("vde://{dir}")
    } else if name.bytes().all(|b| b.is_ascii_digit()) {
        // A number in brackets asks for that port of DIR/ctl instead.
        return None;
    } else {
        format!("vde://{dir}[{name}]")
    };
    Some(format!("vec0:transport=vde,vnl={vnl}"))
}

/// Whether `s` can be part of a kernel network argument: no `,` or `=`
/// (option separators), no white space (the kernel command line).
fn nameable(s: &str) -> bool {
    !s.is_empty() && !s.contains([',', '=']) && !s.chars().any(char::is_whitespace)
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir().map_or_else(|_| p.to_path_buf(), |d| d.join(p))
    }
}

/// The start-up lines for control socket `ctl`: how guests of both
/// kernel generations join it.
pub fn announce(ctl: &Path) -> String {
    let shown = ctl.display();
    let mut text = String::new();
    if let Some(arg) = daemon_guest_argument(ctl) {
        text.push_str(&format!(
            "control socket '{shown}': kernels before 6.16 join with {arg}\n"
        ));
    }
    match vde_guest_argument(ctl) {
        Some(arg) => text.push_str(&format!(
            "control socket '{shown}': kernels from 6.16 join through vde_plug with {arg}\n"
        )),
        None => text.push_str(&format!(
            "control socket '{shown}': vde_plug cannot name it (use -unix DIR/ctl)\n"
        )),
    }
    text
}

impl AsFd for PortSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    /// A fresh directory, removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            let p = std::env::temp_dir().join(format!("vde-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir(&p).unwrap();
            TempDir(p)
        }

        fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn request(addr: SockAddrUn) -> VdeRequest {
        VdeRequest {
            addr,
            description: "UML user=root pid=7".into(),
            requested_port: None,
        }
    }

    #[test]
    fn guest_arguments() {
        let p = Path::new;
        assert_eq!(
            vde_guest_argument(p("/run/sw/ctl")).as_deref(),
            Some("vec0:transport=vde,vnl=vde:///run/sw")
        );
        assert_eq!(
            vde_guest_argument(p("/tmp/uml.ctl")).as_deref(),
            Some("vec0:transport=vde,vnl=vde:///tmp[uml.ctl]")
        );
        assert_eq!(vde_guest_argument(p("/tmp/5")), None);
        assert_eq!(vde_guest_argument(p("/tmp/a,b/ctl")), None);
        assert_eq!(vde_guest_argument(p("/tmp/a b/ctl")), None);
        assert_eq!(vde_guest_argument(p("/tmp/x[1]")), None);
        assert_eq!(
            daemon_guest_argument(p("/tmp/uml.ctl")).as_deref(),
            Some("eth0=daemon,,unix,/tmp/uml.ctl")
        );
        assert_eq!(daemon_guest_argument(p("/tmp/a=b")), None);
        let rel = vde_guest_argument(p("ctl")).unwrap();
        assert!(rel.starts_with("vec0:transport=vde,vnl=vde:///"), "{rel}");
        assert!(announce(p("/tmp/5")).contains("vde_plug cannot name it"));
        let description = describe(
            5,
            Some((10, 0)),
            &VdeRequest {
                requested_port: Some(3),
                ..request(SockAddrUn::path(b"/x"))
            },
        );
        assert_eq!(
            description,
            "New vde port 5 (pid 10, uid 0): UML user=root pid=7 [asked for port 3; ports are not chosen by clients]\n"
        );
    }

    #[test]
    fn a_port_socket_is_connected_to_the_client_before_it_is_named() {
        let dir = TempDir::new("a");
        let ctl = dir.path().join("ctl");
        let client_path = dir.path().join(".00001-00000");
        let client = UnixDatagram::bind(&client_path).unwrap();
        let addr = SockAddrUn::path(client_path.as_os_str().as_bytes());
        let mut port = open_port(&ctl, 5, &request(addr)).unwrap();
        assert!(port.fd.as_raw_fd() >= HIGH_FD);
        let path = dir.path().join("ctl.5");
        assert_eq!(port.file.path.as_deref(), Some(path.as_path()));
        assert_eq!(port.reply, SockAddrUn::path(path.as_os_str().as_bytes()));
        // What vde_plug does next: connect to the reply, unlink its path.
        client.connect(&path).unwrap();
        std::fs::remove_file(&client_path).unwrap();
        client.send(b"to the switch").unwrap();
        let mut inbox = Inbox::new(4, 1514);
        let mut stats = Stats::default();
        assert_eq!(
            recv(port.fd.as_fd(), 9, &mut inbox, &mut stats).unwrap(),
            Ready::Done
        );
        assert_eq!(
            inbox.frames,
            vec![Received {
                port: 9,
                slot: 0,
                len: 13
            }]
        );
        let sock = UnixDatagram::from(port.fd.try_clone().unwrap());
        sock.send(b"to the client").unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(client.recv(&mut buf).unwrap(), 13);
        // Nothing else may send on the port's socket.
        let other = UnixDatagram::unbound().unwrap();
        assert!(other.send_to(b"x", &path).is_err());
        port.file.unlink();
        assert!(!path.exists());
        // A leftover socket file is replaced; another file is not.
        drop(UnixDatagram::bind(&path).unwrap());
        let _client2 = UnixDatagram::bind(&client_path).unwrap();
        let mut again = open_port(&ctl, 5, &request(addr)).unwrap();
        again.file.unlink();
        std::fs::write(&path, b"not a socket").unwrap();
        let e = open_port(&ctl, 5, &request(addr)).unwrap_err();
        assert!(e.contains("Address already in use"), "{e}");
        assert_eq!(std::fs::read(&path).unwrap(), b"not a socket");
    }

    #[test]
    fn a_vanished_client_or_a_long_directory() {
        let dir = TempDir::new("b");
        let ctl = dir.path().join("ctl");
        let gone = SockAddrUn::path(dir.path().join(".gone").as_os_str().as_bytes());
        let e = open_port(&ctl, 6, &request(gone)).unwrap_err();
        assert!(
            e.starts_with("vde port 6: connecting to the client's data socket"),
            "{e}"
        );
        assert!(!dir.path().join("ctl.6").exists(), "left behind");
        // A relative control socket: the reply names an absolute path.
        let cwd = std::env::current_dir().unwrap();
        if let Some(rel) = socket_path(Path::new("ctl"), 5) {
            assert_eq!(rel, cwd.join("ctl.5"));
        }
        // A control socket path too long for CTL.N: an abstract name.
        // CTL itself fits (107 bytes), CTL.7 does not.
        let Some(fill) = 102usize.checked_sub(dir.path().as_os_str().len()) else {
            return; // TMPDIR too long to build such a path
        };
        let long = dir.path().join("d".repeat(fill.max(1)));
        std::fs::create_dir(&long).unwrap();
        let ctl = long.join("ctl");
        assert!(socket_path(&ctl, 7).is_none());
        let client_path = dir.path().join(".c");
        let client = UnixDatagram::bind(&client_path).unwrap();
        let addr = SockAddrUn::path(client_path.as_os_str().as_bytes());
        let port = open_port(&ctl, 7, &request(addr)).unwrap();
        assert!(port.file.path.is_none() && port.reply.is_abstract());
        client
            .connect_addr(&port.reply.socket_addr().unwrap())
            .unwrap();
        client.send(b"x").unwrap();
    }
}
