//! The management-console (mconsole) datagram protocol: requests, reply
//! packets, reply assembly and notifications (`docs/mconsole.md` §2–§4).
//!
//! All integers are host byte order (little-endian on the platforms UML
//! runs on). Decoders never read past the datagram or past a `len` field and
//! never rely on a NUL terminator being present.

use thiserror::Error;

/// `MCONSOLE_MAGIC`.
pub const MAGIC: u32 = 0xcafe_babe;
/// `MCONSOLE_VERSION`: the only protocol version the kernel serves.
pub const VERSION: u32 = 2;
/// `MCONSOLE_MAX_DATA`: size of the data field of requests and replies.
pub const MAX_DATA: usize = 512;
/// Size of a whole `struct mconsole_request` (what `uml_mconsole` sends).
pub const REQUEST_SIZE: usize = 12 + MAX_DATA;
/// Size of the reply header (`err`, `more`, `len`).
pub const REPLY_HEADER_SIZE: usize = 12;
/// Largest reply datagram the kernel sends.
pub const MAX_REPLY_SIZE: usize = REPLY_HEADER_SIZE + MAX_DATA;
/// Size of the notification header (`magic`, `version`, `type`, `len`).
pub const NOTIFY_HEADER_SIZE: usize = 16;
/// Largest notification datagram.
pub const MAX_NOTIFY_SIZE: usize = NOTIFY_HEADER_SIZE + MAX_DATA;
/// Longest command the client sends (`len` must stay below `MAX_DATA`).
pub const MAX_COMMAND_LEN: usize = MAX_DATA - 1;
/// The header-less answer of the kernel to a request without the magic.
pub const UNVERSIONED_ANSWER: &[u8] =
    b"ERR Version 0 mconsole clients are not supported by this driver";

fn u32_at(buf: &[u8], off: usize) -> Option<u32> {
    let bytes = buf.get(off..off.checked_add(4)?)?;
    Some(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
}

/// The bytes of `data` up to (not including) the first NUL, or all of it.
pub fn until_nul(data: &[u8]) -> &[u8] {
    match data.iter().position(|&b| b == 0) {
        Some(n) => &data[..n],
        None => data,
    }
}

// ---------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------

/// Encodes a request exactly as `uml_mconsole` does: the full 524-byte
/// struct, `len = min(strlen(cmd), 511)`, the command, then zeros.
///
/// The command ends at its first NUL byte (it is a C string on the wire).
pub fn encode_request(command: &[u8]) -> [u8; REQUEST_SIZE] {
    encode_request_version(VERSION, command)
}

/// Like [`encode_request`] with an arbitrary version field (for tests of the
/// kernel's version handling).
pub fn encode_request_version(version: u32, command: &[u8]) -> [u8; REQUEST_SIZE] {
    let cmd = until_nul(command);
    let len = cmd.len().min(MAX_COMMAND_LEN);
    let mut buf = [0u8; REQUEST_SIZE];
    buf[0..4].copy_from_slice(&MAGIC.to_le_bytes());
    buf[4..8].copy_from_slice(&version.to_le_bytes());
    buf[8..12].copy_from_slice(&(len as u32).to_le_bytes());
    buf[12..12 + len].copy_from_slice(&cmd[..len]);
    buf
}

/// A request as the kernel understands it (`docs/mconsole.md` §3, processing
/// order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request<'a> {
    /// First four bytes are not the magic: the kernel answers with the raw
    /// [`UNVERSIONED_ANSWER`] text and does nothing else.
    Unversioned,
    /// `len >= 512`: answered with err=1 `Request too large`.
    TooLarge(u32),
    /// A command. `version` is what the client claimed; anything but
    /// [`VERSION`] makes the kernel send an extra error reply first.
    Command {
        /// The version field of the request.
        version: u32,
        /// The command bytes: at most `len` bytes, never past the datagram,
        /// cut at the first NUL.
        command: &'a [u8],
    },
}

/// Decodes a request datagram the way the kernel does, but without ever
/// reading stale or absent bytes: a short datagram yields only the bytes
/// that arrived. Missing header fields read as zero, as in the kernel's
/// zero-initialised first use.
pub fn decode_request(buf: &[u8]) -> Request<'_> {
    if u32_at(buf, 0) != Some(MAGIC) {
        return Request::Unversioned;
    }
    let version = u32_at(buf, 4).unwrap_or(0);
    let len = u32_at(buf, 8).unwrap_or(0);
    if len as usize >= MAX_DATA {
        return Request::TooLarge(len);
    }
    let data = buf.get(12..).unwrap_or(&[]);
    let data = &data[..data.len().min(len as usize)];
    Request::Command {
        version,
        command: until_nul(data),
    }
}

// ---------------------------------------------------------------------------
// Replies
// ---------------------------------------------------------------------------

/// One reply datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyPacket<'a> {
    /// 0 for success; an error code (1 or a negative errno) otherwise.
    pub err: u32,
    /// More packets of this reply follow.
    pub more: bool,
    /// The text of this packet: the data field up to its NUL.
    pub text: &'a [u8],
}

/// Why a datagram is not a version-2 reply packet.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReplyError {
    /// Shorter than the 12-byte header.
    #[error("datagram of {0} bytes is shorter than a reply header")]
    TooShort(usize),
    /// `len` larger than the data field can be.
    #[error("reply length {0} exceeds the maximum of {MAX_DATA}")]
    TooLong(u32),
    /// The datagram size is not `12 + len`.
    #[error("datagram of {size} bytes does not match its length field {len}")]
    LengthMismatch {
        /// The `len` field.
        len: u32,
        /// The datagram size.
        size: usize,
    },
}

/// Decodes one reply datagram strictly: it must be exactly `12 + len` bytes
/// with `len <= 512` (`docs/mconsole.md` §5.6 item 4). Anything else, such as
/// the kernel's header-less version-0 answer, is rejected.
pub fn decode_reply(buf: &[u8]) -> Result<ReplyPacket<'_>, ReplyError> {
    let (Some(err), Some(more), Some(len)) = (u32_at(buf, 0), u32_at(buf, 4), u32_at(buf, 8))
    else {
        return Err(ReplyError::TooShort(buf.len()));
    };
    if len as usize > MAX_DATA {
        return Err(ReplyError::TooLong(len));
    }
    if buf.len() != REPLY_HEADER_SIZE + len as usize {
        return Err(ReplyError::LengthMismatch {
            len,
            size: buf.len(),
        });
    }
    Ok(ReplyPacket {
        err,
        more: more != 0,
        text: until_nul(&buf[REPLY_HEADER_SIZE..]),
    })
}

/// Encodes one reply packet as the kernel does: header, text, one NUL;
/// `len` counts the NUL. The text must be at most 511 bytes (longer text is
/// cut; use [`encode_reply`] to split it into packets).
pub fn encode_reply_packet(err: u32, more: bool, text: &[u8]) -> Vec<u8> {
    let text = &text[..text.len().min(MAX_DATA - 1)];
    let len = text.len() + 1;
    let mut buf = Vec::with_capacity(REPLY_HEADER_SIZE + len);
    buf.extend_from_slice(&err.to_le_bytes());
    buf.extend_from_slice(&u32::from(more).to_le_bytes());
    buf.extend_from_slice(&(len as u32).to_le_bytes());
    buf.extend_from_slice(text);
    buf.push(0);
    buf
}

/// Splits a reply string into packets the way the kernel's
/// `mconsole_reply_len` does: chunks of at most 511 bytes, every chunk but
/// the last with `more = 1`, the last with the caller's `more`; `err` is set
/// on the first packet only. An empty string is one packet with `len = 1`.
pub fn encode_reply(err: u32, more: bool, text: &[u8]) -> Vec<Vec<u8>> {
    let mut packets = Vec::new();
    let mut rest = text;
    let mut first = true;
    loop {
        let n = rest.len().min(MAX_DATA - 1);
        let (chunk, tail) = rest.split_at(n);
        let last = tail.is_empty();
        let e = if first { err } else { 0 };
        packets.push(encode_reply_packet(
            e,
            if last { more } else { true },
            chunk,
        ));
        first = false;
        rest = tail;
        if last {
            return packets;
        }
    }
}

/// Collects the packets of one reply (`docs/mconsole.md` §2.2, §5.4).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reply {
    /// Concatenated packet texts.
    pub text: Vec<u8>,
    /// Number of packets received.
    pub packets: usize,
    /// `err` of the first packet.
    pub first_err: u32,
    /// `err` of the last packet received.
    pub last_err: u32,
    /// Whether the final (`more == 0`) packet arrived.
    pub complete: bool,
}

impl Reply {
    /// Adds one packet. Returns `true` when the reply is complete; packets
    /// pushed after completion are ignored.
    pub fn push(&mut self, packet: &ReplyPacket<'_>) -> bool {
        if self.complete {
            return true;
        }
        if self.packets == 0 {
            self.first_err = packet.err;
        }
        self.packets += 1;
        self.last_err = packet.err;
        self.text.extend_from_slice(packet.text);
        self.complete = !packet.more;
        self.complete
    }

    /// The `err` that decides `OK`/`ERR` and the exit status: the last
    /// packet's for a complete reply (as the C client does), the first
    /// packet's for an incomplete one (the only packet the kernel sets it on).
    pub fn err(&self) -> u32 {
        if self.complete {
            self.last_err
        } else {
            self.first_err
        }
    }

    /// Whether the reply reports an error.
    pub fn is_error(&self) -> bool {
        self.err() != 0
    }

    /// The line the client prints: `OK <text>\n` or `ERR <text>\n`.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.text.len() + 5);
        out.extend_from_slice(if self.is_error() { b"ERR " } else { b"OK " });
        out.extend_from_slice(&self.text);
        out.push(b'\n');
        out
    }

    /// Exit status of a one-shot command: the low 8 bits of `err`.
    pub fn status(&self) -> i32 {
        (self.err() & 0xff) as i32
    }
}

// ---------------------------------------------------------------------------
// Notifications
// ---------------------------------------------------------------------------

/// Notification types (`enum mconsole_notify_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyKind {
    /// The mconsole socket path, sent at boot.
    Socket,
    /// A kernel panic message.
    Panic,
    /// The watchdog helper saw no ping for 60 s.
    Hang,
    /// A guest process wrote to `/proc/mconsole`.
    UserNotify,
    /// A value this client does not know.
    Unknown(u32),
}

impl NotifyKind {
    /// The wire value.
    pub fn code(self) -> u32 {
        match self {
            NotifyKind::Socket => 0,
            NotifyKind::Panic => 1,
            NotifyKind::Hang => 2,
            NotifyKind::UserNotify => 3,
            NotifyKind::Unknown(n) => n,
        }
    }

    /// From the wire value.
    pub fn from_code(code: u32) -> Self {
        match code {
            0 => NotifyKind::Socket,
            1 => NotifyKind::Panic,
            2 => NotifyKind::Hang,
            3 => NotifyKind::UserNotify,
            n => NotifyKind::Unknown(n),
        }
    }

    /// The upper-case name printed by `uml_mconsole --notify`.
    pub fn name(self) -> String {
        match self {
            NotifyKind::Socket => "SOCKET".into(),
            NotifyKind::Panic => "PANIC".into(),
            NotifyKind::Hang => "HANG".into(),
            NotifyKind::UserNotify => "USER_NOTIFY".into(),
            NotifyKind::Unknown(n) => format!("UNKNOWN({n})"),
        }
    }
}

/// A decoded notification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification<'a> {
    /// Its type.
    pub kind: NotifyKind,
    /// Its data, exactly `len` bytes (a trailing NUL, if the kernel sent
    /// one, is kept; see [`Notification::text`]).
    pub data: &'a [u8],
}

impl Notification<'_> {
    /// The data as text: up to the first NUL.
    pub fn text(&self) -> &[u8] {
        until_nul(self.data)
    }
}

/// Why a datagram is not a notification.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NotifyError {
    /// Shorter than a header.
    #[error("datagram of {0} bytes is shorter than a notification header")]
    TooShort(usize),
    /// Wrong magic.
    #[error("bad magic {0:#010x}")]
    BadMagic(u32),
    /// A version this client does not speak.
    #[error("unsupported notification version {0}")]
    BadVersion(u32),
    /// `len` larger than the datagram or than 512.
    #[error("notification length {len} does not fit a datagram of {size} bytes")]
    BadLength {
        /// The `len` field.
        len: u32,
        /// The datagram size.
        size: usize,
    },
}

/// Decodes a notification. Besides the kernel's 16-byte-header layout it
/// accepts the 24-byte HANG datagram of Debian's 64-bit `uml_watchdog`,
/// whose `magic` field is 8 bytes wide (`docs/helpers.md` §2.2).
pub fn decode_notify(buf: &[u8]) -> Result<Notification<'_>, NotifyError> {
    let (Some(magic), Some(version), Some(kind), Some(len)) = (
        u32_at(buf, 0),
        u32_at(buf, 4),
        u32_at(buf, 8),
        u32_at(buf, 12),
    ) else {
        return Err(NotifyError::TooShort(buf.len()));
    };
    if magic != MAGIC {
        return Err(NotifyError::BadMagic(magic));
    }
    if version == 0 && buf.len() == 24 && kind == VERSION {
        // 64-bit C uml_watchdog: magic (8 bytes), version, type, len, padding.
        let kind = u32_at(buf, 12).unwrap_or(0);
        let len = u32_at(buf, 16).unwrap_or(0);
        if len == 0 {
            return Ok(Notification {
                kind: NotifyKind::from_code(kind),
                data: &[],
            });
        }
    }
    if version != VERSION {
        return Err(NotifyError::BadVersion(version));
    }
    let size = buf.len();
    let end = NOTIFY_HEADER_SIZE + len as usize;
    if len as usize > MAX_DATA || end > size {
        return Err(NotifyError::BadLength { len, size });
    }
    Ok(Notification {
        kind: NotifyKind::from_code(kind),
        data: &buf[NOTIFY_HEADER_SIZE..end],
    })
}

/// Encodes a notification in the kernel's layout: 16-byte header, then
/// `data` (at most 512 bytes; `len` = its length, no NUL added).
pub fn encode_notify(kind: NotifyKind, data: &[u8]) -> Vec<u8> {
    let data = &data[..data.len().min(MAX_DATA)];
    let mut buf = Vec::with_capacity(NOTIFY_HEADER_SIZE + data.len());
    buf.extend_from_slice(&MAGIC.to_le_bytes());
    buf.extend_from_slice(&VERSION.to_le_bytes());
    buf.extend_from_slice(&kind.code().to_le_bytes());
    buf.extend_from_slice(&(data.len() as u32).to_le_bytes());
    buf.extend_from_slice(data);
    buf
}

// ---------------------------------------------------------------------------
// Client address
// ---------------------------------------------------------------------------

/// Length of an abstract name bound with `addrlen = sizeof(sockaddr_un)`:
/// the 108-byte `sun_path` minus its leading NUL.
pub const ABSTRACT_NAME_LEN: usize = 107;

/// The abstract name `uml_mconsole` (and `port-helper`) bind to: `sun_path`
/// is NUL, then `printf("%5d", pid)`, then zeros up to 108 bytes. Returned
/// without the leading NUL (107 bytes, the whole rest of `sun_path`), ready
/// for `SocketAddr::from_abstract_name`.
pub fn client_abstract_name(pid: u32) -> [u8; ABSTRACT_NAME_LEN] {
    let digits = format!("{pid:5}");
    let mut name = [0u8; ABSTRACT_NAME_LEN];
    let n = digits.len().min(ABSTRACT_NAME_LEN);
    name[..n].copy_from_slice(&digits.as_bytes()[..n]);
    name
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        s.split_whitespace()
            .map(|b| u8::from_str_radix(b, 16).unwrap())
            .collect()
    }

    const VERSION_TEXT: &[u8] = b"Linux (none) 6.1.176 #1 Sat Jul  4 15:38:16 UTC 2026 x86_64";

    #[test]
    fn v1_version_request() {
        let req = encode_request(b"version");
        assert_eq!(req.len(), 524);
        assert_eq!(
            &req[..20],
            &hex("be ba fe ca 02 00 00 00 07 00 00 00 76 65 72 73 69 6f 6e 00")[..]
        );
        assert!(req[20..].iter().all(|&b| b == 0));
    }

    #[test]
    fn request_is_cut_to_511_and_at_nul() {
        let long = vec![b'a'; 600];
        let req = encode_request(&long);
        assert_eq!(u32::from_le_bytes([req[8], req[9], req[10], req[11]]), 511);
        assert_eq!(req[12 + 510], b'a');
        assert_eq!(req[12 + 511], 0);
        let req = encode_request(b"ver\0sion");
        assert_eq!(&req[8..16], &hex("03 00 00 00 76 65 72 00")[..]);
    }

    #[test]
    fn v2_version_reply() {
        let mut buf = hex("00 00 00 00 00 00 00 00 3c 00 00 00");
        buf.extend_from_slice(VERSION_TEXT);
        buf.push(0);
        assert_eq!(buf.len(), 72);
        let p = decode_reply(&buf).unwrap();
        assert_eq!(p.err, 0);
        assert!(!p.more);
        assert_eq!(p.text, VERSION_TEXT);
        assert_eq!(encode_reply_packet(0, false, VERSION_TEXT), buf);
        let mut r = Reply::default();
        assert!(r.push(&p));
        let mut line = b"OK ".to_vec();
        line.extend_from_slice(VERSION_TEXT);
        line.push(b'\n');
        assert_eq!(r.render(), line);
        assert_eq!(r.status(), 0);
    }

    #[test]
    fn v3_not_stopped() {
        let buf = hex("01 00 00 00 00 00 00 00 0c 00 00 00 4e 6f 74 20 73 74 6f 70 70 65 64 00");
        let p = decode_reply(&buf).unwrap();
        assert_eq!((p.err, p.more, p.text), (1, false, &b"Not stopped"[..]));
        assert_eq!(encode_reply_packet(1, false, b"Not stopped"), buf);
        let mut r = Reply::default();
        r.push(&p);
        assert_eq!(r.render(), b"ERR Not stopped\n");
        assert_eq!(r.status(), 1);
    }

    #[test]
    fn v4_empty_success() {
        let buf = hex("00 00 00 00 00 00 00 00 01 00 00 00 00");
        assert_eq!(encode_reply(0, false, b""), vec![buf.clone()]);
        let mut r = Reply::default();
        r.push(&decode_reply(&buf).unwrap());
        assert_eq!(r.render(), b"OK \n");
    }

    #[test]
    fn v5_request_too_large() {
        let mut req = encode_request(b"version");
        req[8..12].copy_from_slice(&512u32.to_le_bytes());
        assert_eq!(decode_request(&req), Request::TooLarge(512));
        req[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode_request(&req), Request::TooLarge(u32::MAX));
        let mut reply = hex("01 00 00 00 00 00 00 00 12 00 00 00");
        reply.extend_from_slice(b"Request too large\0");
        assert_eq!(reply.len(), 30);
        assert_eq!(encode_reply_packet(1, false, b"Request too large"), reply);
    }

    #[test]
    fn v6_wrong_version() {
        let req = encode_request_version(1, b"version");
        assert_eq!(
            decode_request(&req),
            Request::Command {
                version: 1,
                command: b"version"
            }
        );
        let mut first = hex("01 00 00 00 00 00 00 00 2c 00 00 00");
        first.extend_from_slice(b"This driver only supports version 2 clients\0");
        assert_eq!(first.len(), 56);
        let p = decode_reply(&first).unwrap();
        assert_eq!(p.text, b"This driver only supports version 2 clients");
        assert!(!p.more);
    }

    #[test]
    fn v7_unversioned() {
        assert_eq!(
            decode_request(&hex("76 65 72 73 69 6f 6e 00")),
            Request::Unversioned
        );
        assert_eq!(decode_request(b"ver"), Request::Unversioned);
        assert_eq!(UNVERSIONED_ANSWER.len(), 63);
        // The header-less answer is never mistaken for a reply packet.
        assert!(decode_reply(UNVERSIONED_ANSWER).is_err());
    }

    #[test]
    fn v8_multi_part_help() {
        let text = vec![b'x'; 511 + 211];
        let packets = encode_reply(0, false, &text);
        assert_eq!(packets.len(), 2);
        assert_eq!(packets[0].len(), 524);
        assert_eq!(
            &packets[0][..12],
            &hex("00 00 00 00 01 00 00 00 00 02 00 00")[..]
        );
        assert_eq!(packets[1].len(), 224);
        assert_eq!(
            &packets[1][..12],
            &hex("00 00 00 00 00 00 00 00 d4 00 00 00")[..]
        );
        let mut r = Reply::default();
        assert!(!r.push(&decode_reply(&packets[0]).unwrap()));
        assert!(r.push(&decode_reply(&packets[1]).unwrap()));
        assert_eq!(r.text, text);
        assert_eq!(r.packets, 2);
    }

    #[test]
    fn v9_remove_missing_device() {
        let mut buf = hex("ed ff ff ff 00 00 00 00 15 00 00 00");
        buf.extend_from_slice(b"Device doesn't exist\0");
        let mut r = Reply::default();
        r.push(&decode_reply(&buf).unwrap());
        assert_eq!(r.render(), b"ERR Device doesn't exist\n");
        assert_eq!(r.status(), 237);
        assert_eq!(
            encode_reply_packet((-19i32) as u32, false, b"Device doesn't exist"),
            buf
        );
    }

    #[test]
    fn v10_socket_notification() {
        let buf = hex("be ba fe ca 02 00 00 00 00 00 00 00 1f 00 00 00 \
             2f 74 6d 70 2f 75 6d 6c 74 65 73 74 2f 73 70 65 \
             63 74 65 73 74 2f 6d 63 6f 6e 73 6f 6c 65 00");
        assert_eq!(buf.len(), 47);
        let n = decode_notify(&buf).unwrap();
        assert_eq!(n.kind, NotifyKind::Socket);
        assert_eq!(n.text(), b"/tmp/umltest/spectest/mconsole");
        assert_eq!(n.data.len(), 31);
        assert_eq!(
            encode_notify(NotifyKind::Socket, b"/tmp/umltest/spectest/mconsole\0"),
            buf
        );
    }

    #[test]
    fn v11_client_bind_name() {
        let name = client_abstract_name(4242);
        let mut sun_path = vec![0u8];
        sun_path.extend_from_slice(&name);
        assert_eq!(sun_path.len(), 108);
        assert_eq!(&sun_path[..6], &hex("00 20 34 32 34 32")[..]);
        assert!(sun_path[6..].iter().all(|&b| b == 0));
        // More digits than the field width are kept whole.
        assert_eq!(&client_abstract_name(4_194_304)[..8], b"4194304\0");
    }

    #[test]
    fn v12_config_ubd0() {
        let buf = hex("00 00 00 00 00 00 00 00 08 00 00 00 72 6f 6f 74 5f 66 73 00");
        let mut r = Reply::default();
        r.push(&decode_reply(&buf).unwrap());
        assert_eq!(r.render(), b"OK root_fs\n");
    }

    #[test]
    fn v13_user_notify() {
        let mut buf = hex("be ba fe ca 02 00 00 00 03 00 00 00 11 00 00 00");
        buf.extend_from_slice(b"hello-user-notify");
        assert_eq!(buf.len(), 33);
        let n = decode_notify(&buf).unwrap();
        assert_eq!(n.kind, NotifyKind::UserNotify);
        assert_eq!(n.data, b"hello-user-notify");
        assert_eq!(
            encode_notify(NotifyKind::UserNotify, b"hello-user-notify"),
            buf
        );
    }

    #[test]
    fn v14_panic_notify() {
        let mut buf = hex("be ba fe ca 02 00 00 00 01 00 00 00 16 00 00 00");
        buf.extend_from_slice(b"sysrq triggered crash\0");
        assert_eq!(buf.len(), 38);
        let n = decode_notify(&buf).unwrap();
        assert_eq!(n.kind, NotifyKind::Panic);
        assert_eq!(n.text(), b"sysrq triggered crash");
    }

    #[test]
    fn hang_notify_both_layouts() {
        let kernel = hex("be ba fe ca 02 00 00 00 02 00 00 00 00 00 00 00");
        assert_eq!(encode_notify(NotifyKind::Hang, b""), kernel);
        assert_eq!(decode_notify(&kernel).unwrap().kind, NotifyKind::Hang);
        let c64 = hex("be ba fe ca 00 00 00 00 02 00 00 00 02 00 00 00 00 00 00 00 fe 7f 00 00");
        let n = decode_notify(&c64).unwrap();
        assert_eq!(n.kind, NotifyKind::Hang);
        assert!(n.data.is_empty());
    }

    #[test]
    fn v15_proc_meminfo_sequence() {
        let sizes = [14usize, 524, 524, 84, 13];
        let mut r = Reply::default();
        let mut text = Vec::new();
        for (i, &size) in sizes.iter().enumerate() {
            let last = i == sizes.len() - 1;
            let chunk: Vec<u8> = if i == 0 {
                b"\n".to_vec()
            } else {
                vec![b'm'; size - 13]
            };
            let pkt = encode_reply_packet(0, !last, &chunk);
            assert_eq!(pkt.len(), size);
            text.extend_from_slice(&chunk);
            assert_eq!(r.push(&decode_reply(&pkt).unwrap()), last);
        }
        assert_eq!(r.text, text);
        assert!(r.complete);
        assert_eq!(r.packets, 5);
    }

    #[test]
    fn incomplete_reply_uses_first_err() {
        let mut r = Reply::default();
        r.push(&decode_reply(&encode_reply_packet(1, true, b"part")).unwrap());
        r.push(&decode_reply(&encode_reply_packet(0, true, b"more")).unwrap());
        assert!(!r.complete);
        assert!(r.is_error());
        assert_eq!(r.render(), b"ERR partmore\n");
        // Complete: the last packet decides, as the C client does.
        r.push(&decode_reply(&encode_reply_packet(0, false, b"")).unwrap());
        assert!(r.complete);
        assert!(!r.is_error());
    }

    #[test]
    fn reply_decoder_is_strict() {
        assert_eq!(decode_reply(&[0; 11]), Err(ReplyError::TooShort(11)));
        let mut pkt = encode_reply_packet(0, false, b"abc");
        pkt.push(0);
        assert!(matches!(
            decode_reply(&pkt),
            Err(ReplyError::LengthMismatch { .. })
        ));
        let mut big = vec![0u8; 12 + 600];
        big[8..12].copy_from_slice(&600u32.to_le_bytes());
        assert_eq!(decode_reply(&big), Err(ReplyError::TooLong(600)));
        // No NUL in the data: the text is the whole data, never beyond it.
        let mut nonul = hex("00 00 00 00 00 00 00 00 03 00 00 00");
        nonul.extend_from_slice(b"abc");
        assert_eq!(decode_reply(&nonul).unwrap().text, b"abc");
        // Data after the NUL is not part of the text.
        let mut garbage = hex("00 00 00 00 00 00 00 00 04 00 00 00");
        garbage.extend_from_slice(b"a\0bc");
        assert_eq!(decode_reply(&garbage).unwrap().text, b"a");
    }

    #[test]
    fn request_decoder_never_reads_past_the_datagram() {
        // Only 8 bytes: no len field, reads as an empty command.
        let req = encode_request(b"version");
        assert_eq!(
            decode_request(&req[..8]),
            Request::Command {
                version: 2,
                command: b""
            }
        );
        // len longer than what arrived.
        assert_eq!(
            decode_request(&req[..15]),
            Request::Command {
                version: 2,
                command: b"ver"
            }
        );
        // len shorter than the text.
        let mut short = req;
        short[8..12].copy_from_slice(&4u32.to_le_bytes());
        assert_eq!(
            decode_request(&short),
            Request::Command {
                version: 2,
                command: b"vers"
            }
        );
    }

    #[test]
    fn notify_decoder_is_strict() {
        assert_eq!(decode_notify(&[0; 15]), Err(NotifyError::TooShort(15)));
        let mut bad = encode_notify(NotifyKind::Panic, b"x");
        bad[0] = 0;
        assert!(matches!(decode_notify(&bad), Err(NotifyError::BadMagic(_))));
        let mut long = encode_notify(NotifyKind::Panic, b"abc");
        long[12..16].copy_from_slice(&100u32.to_le_bytes());
        assert!(matches!(
            decode_notify(&long),
            Err(NotifyError::BadLength { .. })
        ));
        let mut v3 = encode_notify(NotifyKind::Panic, b"abc");
        v3[4] = 3;
        assert_eq!(decode_notify(&v3), Err(NotifyError::BadVersion(3)));
    }

    #[test]
    fn decoders_never_panic_on_arbitrary_bytes() {
        // A small deterministic fuzz: every length up to 600 with a varying
        // byte pattern, plus patterns that hit the magic.
        let mut seed = 0x1234_5678u32;
        for len in 0..600usize {
            let mut buf: Vec<u8> = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                    (seed >> 16) as u8
                })
                .collect();
            let _ = decode_reply(&buf);
            let _ = decode_notify(&buf);
            let _ = decode_request(&buf);
            if len >= 16 {
                buf[..4].copy_from_slice(&MAGIC.to_le_bytes());
                buf[4..8].copy_from_slice(&VERSION.to_le_bytes());
                let _ = decode_notify(&buf);
                let _ = decode_request(&buf);
            }
        }
    }
}
