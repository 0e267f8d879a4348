//! Reply datagrams as `uml_mconsole` receives them: a sequence of
//! datagrams (length-prefixed in the input) decoded and assembled into one
//! reply, then rendered as the client prints it.
#![no_main]
use libfuzzer_sys::fuzz_target;
use uml_common::mconsole::{decode_reply, Reply, MAX_DATA, REPLY_HEADER_SIZE};

fuzz_target!(|data: &[u8]| {
    let mut reply = Reply::default();
    let mut rest = data;
    while rest.len() >= 2 {
        // Each datagram: a 2-byte length (modulo 1024), then its bytes.
        let n = usize::from(u16::from_le_bytes([rest[0], rest[1]]) % 1024);
        let tail = &rest[2..];
        let n = n.min(tail.len());
        let (dgram, tail) = tail.split_at(n);
        rest = tail;
        if let Ok(p) = decode_reply(dgram) {
            assert!(dgram.len() >= REPLY_HEADER_SIZE);
            assert!(p.text.len() <= MAX_DATA);
            reply.push(&p);
        }
    }
    let line = reply.render();
    assert!(line.ends_with(b"\n"));
    let _ = reply.status();
});
