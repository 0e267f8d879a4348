//! The QEMU stream framing of `--qemu-connect` ports (passt, gvproxy,
//! QEMU `-netdev stream`; `docs/vector.md` §12): stream bytes from a peer,
//! cut into reads at the places the input chooses, through the decoder;
//! every frame it hands out is within its limit, a frame it is given
//! whole survives the send queue and a second decoding unchanged.
//!
//! Input: a limit byte, a cut byte (read sizes), then the stream.
#![no_main]
use libfuzzer_sys::fuzz_target;
use uml_common::qemu_stream::{Decoded, Decoder, OutQueue, CEILING};

fuzz_target!(|data: &[u8]| {
    let [limit, cut, stream @ ..] = data else {
        return;
    };
    let limit = usize::from(*limit) * 8;
    let step = usize::from(*cut).max(1);
    let mut d = Decoder::new(limit);
    let mut frames: Vec<Vec<u8>> = Vec::new();
    'reads: for chunk in stream.chunks(step) {
        let mut input = chunk;
        loop {
            match d.next(&mut input) {
                Ok(Decoded::Frame(f)) => {
                    assert!(f.len() <= limit);
                    frames.push(f.to_vec());
                }
                Ok(Decoded::Skipped(n)) => assert!(n > limit && n <= CEILING),
                Ok(Decoded::NeedMore) => {
                    assert!(input.is_empty());
                    break;
                }
                Err(_) => break 'reads,
            }
        }
    }
    let mut q = OutQueue::new(1 << 20);
    for f in &frames {
        assert!(q.push(f));
    }
    let mut again = Decoder::new(limit);
    let mut input = q.pending();
    for f in &frames {
        match again.next(&mut input) {
            Ok(Decoded::Frame(g)) => assert_eq!(g, &f[..]),
            other => panic!("re-encoded frame decoded as {other:?}"),
        }
    }
    assert!(input.is_empty());
});
