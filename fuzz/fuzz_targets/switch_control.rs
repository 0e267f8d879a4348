//! One control connection of `uml_switch` (`uml_switch::control`): the
//! bytes of a request (any version, any tail) arriving in arbitrary
//! pieces, end of file and clock ticks, as the daemon port feeds them.
//!
//! Input: a sequence of records, each a control byte and its piece: the
//! low 7 bits are the piece's length; the top bit set means "a second
//! passes" before it. A record of length 0 is an end of file.
#![no_main]
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use uml_switch::control::{Action, ControlConn};
use uml_switch::port::vde::describe;

fuzz_target!(|data: &[u8]| {
    let start = Instant::now();
    let mut now = start;
    let mut conn = ControlConn::new(now);
    let mut rest = data;
    let mut closed = false;
    while let Some((&c, tail)) = rest.split_first() {
        if c & 0x80 != 0 {
            now += Duration::from_secs(1);
            let acts = conn.on_tick(now, "uml_switch", 5);
            closed |= acts.contains(&Action::Close);
        }
        let n = usize::from(c & 0x7f).min(tail.len());
        let (piece, tail) = tail.split_at(n);
        rest = tail;
        let acts = if piece.is_empty() {
            conn.on_eof()
        } else {
            let _ = conn.read_size();
            conn.on_bytes(piece, now)
        };
        if closed {
            assert!(acts.is_empty(), "actions after close: {acts:?}");
        }
        for a in &acts {
            if let Action::RegisterVde(req) = a {
                let line = describe(5, Some((1, 2)), req);
                assert_eq!(line.matches('\n').count(), 1, "{line:?}");
            }
        }
        if let Some(i) = acts.iter().position(|a| *a == Action::Close) {
            assert_eq!(i + 1, acts.len());
            closed = true;
        }
    }
});
