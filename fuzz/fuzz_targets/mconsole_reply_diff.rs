//! Differential: our mconsole reply encoding and assembly against the rules
//! of `docs/mconsole.md` as written there, re-implemented here from the
//! text alone:
//!
//! * §2.2: a packet is exactly `12 + len` bytes, `len <= 512`, `len` counts
//!   the NUL; a text is cut into chunks of at most 511 bytes, every chunk
//!   but the last has `more = 1`, the last the caller's `more`; `err` only
//!   in the first packet; an empty text is one packet with `len = 1`.
//! * §5.4/§5.6: packets are collected up to the first with `more == 0`,
//!   texts joined up to each NUL; `ERR` iff the last packet's `err` is
//!   non-zero; an incomplete reply is judged by the first packet's `err`;
//!   a datagram that is not `12 + len` bytes (or `len > 512`) is no packet;
//!   the status is `err` cut to 8 bits.
//!
//! Input: `err` (4 bytes), a flag byte, then either a reply text (flag bit
//! 0 clear) or a sequence of datagrams, each a 2-byte little-endian length
//! (modulo 1024) and its bytes (flag bit 0 set).
#![no_main]
use libfuzzer_sys::fuzz_target;
use uml_common::mconsole::{decode_reply, encode_reply, Reply};

fn le32(b: &[u8]) -> u32 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// §2.2: one packet, as the spec lays it out: `None` when it is not one.
fn spec_packet(d: &[u8]) -> Option<(u32, u32, Vec<u8>)> {
    if d.len() < 12 {
        return None;
    }
    let len = le32(&d[8..]) as usize;
    if len > 512 || d.len() != 12 + len {
        return None;
    }
    let data = &d[12..];
    let text = data.iter().take_while(|&&b| b != 0).copied().collect();
    Some((le32(d), le32(&d[4..]), text))
}

/// §5.4/§5.6: what the client prints and its status for these datagrams.
fn spec_assemble(datagrams: &[Vec<u8>]) -> (Vec<u8>, i32, bool) {
    let mut text = Vec::new();
    let mut errs = Vec::new();
    let mut complete = false;
    for d in datagrams {
        let Some((err, more, t)) = spec_packet(d) else {
            continue;
        };
        errs.push(err);
        text.extend_from_slice(&t);
        if more == 0 {
            complete = true;
            break;
        }
    }
    let err = if complete {
        errs.last().copied().unwrap_or(0)
    } else {
        errs.first().copied().unwrap_or(0)
    };
    let mut line = if err != 0 {
        b"ERR ".to_vec()
    } else {
        b"OK ".to_vec()
    };
    line.extend_from_slice(&text);
    line.push(b'\n');
    (line, (err & 0xff) as i32, complete)
}

fn ours(datagrams: &[Vec<u8>]) -> (Vec<u8>, i32, bool) {
    let mut r = Reply::default();
    for d in datagrams {
        if let Ok(p) = decode_reply(d) {
            if r.push(&p) {
                break;
            }
        }
    }
    (r.render(), r.status(), r.complete)
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 5 {
        return;
    }
    let err = le32(data);
    let flags = data[4];
    let rest = &data[5..];
    if flags & 1 == 0 {
        // Encoding: the text is a C string (the kernel's reply text).
        let text: Vec<u8> = rest.iter().take_while(|&&b| b != 0).copied().collect();
        let more = flags & 2 != 0;
        let packets = encode_reply(err, more, &text);
        let chunks: Vec<&[u8]> = if text.is_empty() {
            vec![&[][..]]
        } else {
            text.chunks(511).collect()
        };
        assert_eq!(packets.len(), chunks.len());
        for (i, (p, chunk)) in packets.iter().zip(&chunks).enumerate() {
            let last = i + 1 == chunks.len();
            assert_eq!(p.len(), 12 + chunk.len() + 1);
            assert_eq!(le32(p), if i == 0 { err } else { 0 });
            assert_eq!(le32(&p[4..]), if last { u32::from(more) } else { 1 });
            assert_eq!(le32(&p[8..]) as usize, chunk.len() + 1);
            assert_eq!(&p[12..12 + chunk.len()], *chunk);
            assert_eq!(p[12 + chunk.len()], 0);
            assert!(spec_packet(p).is_some());
        }
        let got = ours(&packets);
        assert_eq!(got, spec_assemble(&packets));
        if !more {
            // A complete reply carries the whole text.
            let mut line = got.0;
            line.pop();
            assert!(line.ends_with(&text));
        }
    } else {
        let mut datagrams = Vec::new();
        let mut rest = rest;
        while rest.len() >= 2 {
            let n = usize::from(u16::from_le_bytes([rest[0], rest[1]]) % 1024);
            let tail = &rest[2..];
            let n = n.min(tail.len());
            let (d, tail) = tail.split_at(n);
            datagrams.push(d.to_vec());
            rest = tail;
        }
        assert_eq!(ours(&datagrams), spec_assemble(&datagrams));
    }
});
