//! The l2tpv3 port kind (`--l2tpv3 OPTIONS`; `docs/vector.md` §4): one
//! statically configured port per option, for a guest on
//! `vecN:transport=l2tpv3,OPTIONS` — the same OPTIONS, so that values can
//! be copied from one side to the other (the switch binds the guest's
//! `dst[:dstport]`, sends to its `src[:srcport]`, expects its
//! `tx_session`/`tx_cookie` and sends its `rx_session`/`rx_cookie`).
//! With `udp=1` the switch's socket is a UDP socket (no privileges); else
//! a raw IP socket of protocol 115 (`CAP_NET_RAW`), whose IPv4 packets
//! arrive with their IPv4 header in front.
//!
//! Wire format (`uml_common::tunnel`): `[00 03 00 00]` (UDP only),
//! session, cookie (0, 4 or 8 bytes), counter (0 or 4 bytes), Ethernet
//! frame. A received packet whose cookie or session is not the guest's is
//! dropped and counted (as the guest drops the switch's); the UDP word and
//! the counter are not checked, as the guest does not check them. Sent
//! counters run 1, 2, 3, … (0 with `pin_counter=1`).
//!
//! Option checks (`uml_common::tunnel_opts`) run before anything is
//! opened; the socket, batching and counters are `tunnel.rs`'s.

use uml_common::tunnel::{decode_l2tpv3, encode_l2tpv3, CookieLen, L2tpv3Fields};
use uml_common::tunnel_opts::{Encap, L2tpv3Params, TunnelConfig};

use super::tunnel::{Codec, Reject, Tunnel};
use super::OpenFailed;

/// The command-line option of this kind.
pub const OPTION: &str = "--l2tpv3";

/// An L2TPv3 session's headers.
#[derive(Debug, Clone)]
pub struct L2tpv3Codec {
    p: L2tpv3Params,
    counter: u32,
}

impl L2tpv3Codec {
    /// The codec of `p`.
    pub fn new(p: L2tpv3Params) -> L2tpv3Codec {
        L2tpv3Codec { p, counter: 0 }
    }
}

fn cookie_hex(len: CookieLen, c: u64) -> String {
    match len {
        CookieLen::Eight => format!("{c:#018x}"),
        _ => format!("{c:#010x}"),
    }
}

impl Codec for L2tpv3Codec {
    fn encode(&mut self, out: &mut [u8]) -> usize {
        let counter = if self.p.pin_counter {
            0
        } else {
            self.counter = self.counter.wrapping_add(1);
            self.counter
        };
        let fields = L2tpv3Fields {
            session: self.p.send_session,
            cookie: self.p.send_cookie,
            counter,
        };
        encode_l2tpv3(&self.p.layout, &fields, out).unwrap_or(0)
    }

    fn check(&self, packet: &[u8]) -> Result<usize, Reject> {
        let h = decode_l2tpv3(&self.p.layout, packet).map_err(|_| Reject::Malformed)?;
        // The guest checks the cookie first, then the session.
        if let Some(c) = h.cookie {
            if c != self.p.expect_cookie {
                return Err(Reject::Cookie(c));
            }
        }
        if h.session != self.p.expect_session {
            return Err(Reject::Session(h.session));
        }
        Ok(h.payload_offset)
    }

    fn explain(&self, r: Reject) -> String {
        let len = self.p.layout.cookie;
        match r {
            Reject::Session(s) => format!(
                "session {s:#x} ({}), but the guest's tx_session is {:#x} ({})",
                s as i32, self.p.expect_session, self.p.expect_session as i32
            ),
            Reject::Cookie(c) => format!(
                "cookie {}, but the guest's tx_cookie is {}",
                cookie_hex(len, c),
                cookie_hex(len, self.p.expect_cookie)
            ),
            _ => format!(
                "shorter than its {}-byte L2TPv3 header (or not an IPv4 packet)",
                self.p.layout.header_len()
            ),
        }
    }
}

/// Opens the port of `config` (an l2tpv3 configuration).
pub fn open(prog: &str, config: &TunnelConfig) -> Result<Tunnel<L2tpv3Codec>, OpenFailed> {
    let Encap::L2tpv3(p) = config.encap else {
        return Err(OpenFailed);
    };
    Tunnel::open(prog, OPTION, config, L2tpv3Codec::new(p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use uml_common::tunnel::L2tpv3Layout;

    fn codec(layout: L2tpv3Layout, pin: bool) -> L2tpv3Codec {
        L2tpv3Codec::new(L2tpv3Params {
            layout,
            expect_session: 0x5678,
            send_session: 0x1234,
            expect_cookie: 0x1122_3344_5566_7788,
            send_cookie: 0xcafe,
            pin_counter: pin,
        })
    }

    #[test]
    fn sends_the_guests_rx_values_with_a_running_counter() {
        let layout = L2tpv3Layout {
            udp: true,
            cookie: CookieLen::Eight,
            counter: true,
        };
        let mut c = codec(layout, false);
        let mut buf = [0u8; 20];
        for n in 1..=3u8 {
            assert_eq!(c.encode(&mut buf), 20);
            assert_eq!(
                buf,
                [0, 3, 0, 0, 0, 0, 0x12, 0x34, 0, 0, 0, 0, 0, 0, 0xca, 0xfe, 0, 0, 0, n]
            );
        }
        let mut pinned = codec(layout, true);
        pinned.encode(&mut buf);
        pinned.encode(&mut buf);
        assert_eq!(buf[16..], [0, 0, 0, 0]);
    }

    #[test]
    fn checks_cookie_then_session() {
        let layout = L2tpv3Layout {
            udp: false,
            cookie: CookieLen::Eight,
            counter: false,
        };
        let c = codec(layout, false);
        let good = [
            0, 0, 0x56, 0x78, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0xff,
        ];
        assert_eq!(c.check(&good), Ok(12));
        let mut bad_session = good;
        bad_session[3] = 0x79;
        assert_eq!(c.check(&bad_session), Err(Reject::Session(0x5679)));
        assert!(c.explain(Reject::Session(0x5679)).contains("0x5678"));
        let mut both = bad_session;
        both[11] = 0;
        assert_eq!(c.check(&both), Err(Reject::Cookie(0x1122_3344_5566_7700)));
        assert!(c.explain(Reject::Cookie(1)).contains("0x1122334455667788"));
        assert_eq!(c.check(&good[..11]), Err(Reject::Malformed));
    }
}
