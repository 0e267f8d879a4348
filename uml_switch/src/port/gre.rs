//! The gre port kind (`--gre OPTIONS`; `docs/vector.md` §5): one
//! statically configured port per option, for a guest on
//! `vecN:transport=gre,OPTIONS` — the same OPTIONS (the switch binds the
//! guest's `dst`, sends to its `src`, expects its `tx_key` and sends its
//! `rx_key`). The switch's socket is a raw IP socket of protocol 47
//! (`CAP_NET_RAW`); its IPv4 packets arrive with their IPv4 header in
//! front. Each GRE port needs its own pair of addresses (e.g.
//! 127.0.0.2/127.0.0.1 on loopback).
//!
//! Wire format (`uml_common::tunnel`): flags (`0x2000` with keys,
//! `|0x1000` with `sequence=1`, never the checksum bit), protocol
//! `0x6558`, key, sequence number, Ethernet frame. As in the guest, a
//! received header must start with exactly the flags and protocol the
//! guest sends, and carry its key; anything else is dropped and counted.
//! Sequence numbers are sent 1, 2, 3, … (0 with `pin_sequence=1`) and not
//! checked.
//!
//! A host with the `ip_gre` module may process these packets as well; in a
//! network namespace without GRE devices that does not interfere.

use uml_common::tunnel::{decode_gre, encode_gre, GreHeader};
use uml_common::tunnel_opts::{Encap, GreParams, TunnelConfig};

use super::tunnel::{Codec, Reject, Tunnel};
use super::OpenFailed;

/// The command-line option of this kind.
pub const OPTION: &str = "--gre";

/// A GRE tunnel's headers.
#[derive(Debug, Clone)]
pub struct GreCodec {
    p: GreParams,
    /// The flags and protocol word the guest sends (and expects).
    first_word: u32,
    sequence: u32,
}

impl GreCodec {
    /// The codec of `p`.
    pub fn new(p: GreParams) -> GreCodec {
        let model = GreHeader::ethernet(p.keys.map(|(e, _)| e), p.sequence.then_some(0));
        GreCodec {
            p,
            first_word: model.first_word(),
            sequence: 0,
        }
    }
}

impl Codec for GreCodec {
    fn encode(&mut self, out: &mut [u8]) -> usize {
        let sequence = self.p.sequence.then(|| {
            if self.p.pin_sequence {
                0
            } else {
                self.sequence = self.sequence.wrapping_add(1);
                self.sequence
            }
        });
        let h = GreHeader::ethernet(self.p.keys.map(|(_, send)| send), sequence);
        encode_gre(&h, out).unwrap_or(0)
    }

    fn check(&self, packet: &[u8]) -> Result<usize, Reject> {
        let p = decode_gre(packet).map_err(|_| Reject::Malformed)?;
        if p.first_word() != self.first_word {
            return Err(Reject::Header(p.first_word()));
        }
        if let Some((expect, _)) = self.p.keys {
            let key = p.header.key.unwrap_or(!expect);
            if key != expect {
                return Err(Reject::Key(key));
            }
        }
        Ok(p.payload_offset)
    }

    fn explain(&self, r: Reject) -> String {
        match r {
            Reject::Header(w) => format!(
                "GRE flags and protocol {w:#010x}, but the guest sends {:#010x} (its key and \
                 sequence options must be the switch's)",
                self.first_word
            ),
            Reject::Key(k) => format!(
                "key {k:#x} ({}), but the guest's tx_key is {:#x} ({})",
                k as i32,
                self.p.keys.map_or(0, |(e, _)| e),
                self.p.keys.map_or(0, |(e, _)| e as i32)
            ),
            _ => "not a GRE packet of version 0 (or not an IPv4 packet)".to_string(),
        }
    }
}

/// Opens the port of `config` (a gre configuration).
pub fn open(prog: &str, config: &TunnelConfig) -> Result<Tunnel<GreCodec>, OpenFailed> {
    let Encap::Gre(p) = config.encap else {
        return Err(OpenFailed);
    };
    Tunnel::open(prog, OPTION, config, GreCodec::new(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_and_sequenced() {
        let mut c = GreCodec::new(GreParams {
            keys: Some((0x1122_3344, 0x5566_7788)),
            sequence: true,
            pin_sequence: false,
        });
        let mut buf = [0u8; 20];
        for n in 1..=2u8 {
            assert_eq!(c.encode(&mut buf), 12);
            assert_eq!(
                buf[..12],
                [0x30, 0, 0x65, 0x58, 0x55, 0x66, 0x77, 0x88, 0, 0, 0, n]
            );
        }
        let from_guest = [
            0x30, 0, 0x65, 0x58, 0x11, 0x22, 0x33, 0x44, 0, 0, 0, 9, 0xff,
        ];
        assert_eq!(c.check(&from_guest), Ok(12));
        let mut wrong_key = from_guest;
        wrong_key[7] = 0x45;
        assert_eq!(c.check(&wrong_key), Err(Reject::Key(0x1122_3345)));
        // Without the sequence bit the header disagrees, as in the guest.
        let no_seq = [0x20, 0, 0x65, 0x58, 0x11, 0x22, 0x33, 0x44, 0xff];
        assert_eq!(c.check(&no_seq), Err(Reject::Header(0x2000_6558)));
        assert!(c
            .explain(Reject::Header(0x2000_6558))
            .contains("0x30006558"));
        assert_eq!(c.check(&[0x30, 0]), Err(Reject::Malformed));
    }

    #[test]
    fn plain_and_pinned() {
        let mut plain = GreCodec::new(GreParams {
            keys: None,
            sequence: false,
            pin_sequence: false,
        });
        let mut buf = [0u8; 20];
        assert_eq!(plain.encode(&mut buf), 4);
        assert_eq!(buf[..4], [0, 0, 0x65, 0x58]);
        assert_eq!(plain.check(&[0, 0, 0x65, 0x58, 1]), Ok(4));
        // A checksum bit is a disagreement.
        assert_eq!(
            plain.check(&[0x80, 0, 0x65, 0x58, 0, 0, 0, 0, 1]),
            Err(Reject::Header(0x8000_6558))
        );
        let mut pinned = GreCodec::new(GreParams {
            keys: None,
            sequence: true,
            pin_sequence: true,
        });
        pinned.encode(&mut buf);
        assert_eq!(pinned.encode(&mut buf), 8);
        assert_eq!(buf[..8], [0x10, 0, 0x65, 0x58, 0, 0, 0, 0]);
    }
}
