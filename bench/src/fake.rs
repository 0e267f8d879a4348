//! The answers of the fake mconsole server (`docs/mconsole.md` §3).

use uml_common::mconsole::{decode_request, encode_reply, Request, UNVERSIONED_ANSWER, VERSION};

/// What `version` answers: the text the real 6.1.176 UML kernel sends.
pub const VERSION_TEXT: &str = "Linux (none) 6.1.176 #1 Sat Jul  4 15:38:16 UTC 2026 x86_64";

/// Exactly what `uml_mconsole SOCKET version` must print for [`VERSION_TEXT`].
pub fn expected_version_output() -> Vec<u8> {
    format!("OK {VERSION_TEXT}\n").into_bytes()
}

/// The datagrams the kernel sends in answer to one request datagram, in the
/// kernel's processing order: a request without the magic gets the raw
/// header-less [`UNVERSIONED_ANSWER`]; `len >= 512` gets err=1
/// `Request too large`; a wrong version gets an extra err=1 packet first and
/// is then processed anyway; a command starting with `version` (prefix
/// match, as in the kernel) gets the version text, anything else err=1
/// `Unknown command`.
pub fn answer(datagram: &[u8]) -> Vec<Vec<u8>> {
    match decode_request(datagram) {
        Request::Unversioned => vec![UNVERSIONED_ANSWER.to_vec()],
        Request::TooLarge(_) => encode_reply(1, false, b"Request too large"),
        Request::Command { version, command } => {
            let mut packets = Vec::with_capacity(2);
            if version != VERSION {
                packets.extend(encode_reply(
                    1,
                    false,
                    b"This driver only supports version 2 clients",
                ));
            }
            if command.starts_with(b"version") {
                packets.extend(encode_reply(0, false, VERSION_TEXT.as_bytes()));
            } else {
                packets.extend(encode_reply(1, false, b"Unknown command"));
            }
            packets
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uml_common::mconsole::{decode_reply, encode_request, encode_request_version};

    #[test]
    fn version_is_one_packet() {
        let packets = answer(&encode_request(b"version"));
        assert_eq!(packets.len(), 1);
        let p = decode_reply(&packets[0]).unwrap();
        assert_eq!((p.err, p.more), (0, false));
        assert_eq!(p.text, VERSION_TEXT.as_bytes());
        assert_eq!(packets[0].len(), 72);
        // Prefix match, as the kernel does.
        assert_eq!(answer(&encode_request(b"versionXYZ")), packets);
    }

    #[test]
    fn unknown_command() {
        for cmd in [&b"VERSION"[..], b"  version", b"", b"frobnicate"] {
            let packets = answer(&encode_request(cmd));
            assert_eq!(packets.len(), 1);
            let p = decode_reply(&packets[0]).unwrap();
            assert_eq!((p.err, p.more, p.text), (1, false, &b"Unknown command"[..]));
        }
    }

    #[test]
    fn unversioned_and_too_large() {
        assert_eq!(answer(b"version\0"), vec![UNVERSIONED_ANSWER.to_vec()]);
        assert_eq!(answer(b""), vec![UNVERSIONED_ANSWER.to_vec()]);
        let mut req = encode_request(b"version");
        req[8..12].copy_from_slice(&512u32.to_le_bytes());
        let packets = answer(&req);
        assert_eq!(packets.len(), 1);
        assert_eq!(
            decode_reply(&packets[0]).unwrap().text,
            b"Request too large"
        );
    }

    #[test]
    fn wrong_version_gets_two_replies() {
        let packets = answer(&encode_request_version(1, b"version"));
        assert_eq!(packets.len(), 2);
        let first = decode_reply(&packets[0]).unwrap();
        assert_eq!(first.err, 1);
        assert_eq!(first.text, b"This driver only supports version 2 clients");
        assert_eq!(
            decode_reply(&packets[1]).unwrap().text,
            VERSION_TEXT.as_bytes()
        );
    }

    #[test]
    fn expected_output() {
        assert_eq!(
            expected_version_output(),
            b"OK Linux (none) 6.1.176 #1 Sat Jul  4 15:38:16 UTC 2026 x86_64\n"
        );
    }
}
