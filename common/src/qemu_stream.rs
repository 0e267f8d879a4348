//! The QEMU stream framing (`docs/vector.md` §12): Ethernet frames over a
//! byte stream (a unix `SOCK_STREAM` socket), each preceded by its length
//! as a 4-byte big-endian number. QEMU's `-netdev stream`, passt (its
//! `-s` socket and `--fd`) and gvproxy's `-listen-qemu` speak it. Pure: no
//! I/O.
//!
//! Reading: [`Decoder`] takes the bytes as they arrive, in pieces of any
//! size (a length prefix may be split across reads), and gives back whole
//! frames. A frame longer than the reader takes but not longer than any
//! Ethernet frame can be ([`CEILING`]) is skipped without being stored
//! ([`Decoded::Skipped`]); a length beyond that means the stream is not
//! this framing (or lost its place) and is an error after which the
//! decoder takes nothing more. Nothing is allocated beyond the reader's
//! limit.
//!
//! Writing: [`OutQueue`] holds encoded frames until the socket takes them,
//! keeps a frame that was written in part, and refuses whole frames beyond
//! its byte budget, so that a stalled peer costs the budget and no frame
//! is ever cut.

/// Length of the prefix.
pub const HEADER_LEN: usize = 4;
/// The longest frame any peer may send: an Ethernet header and the
/// largest MTU (`ETH_MAX_MTU`, 65535). A longer length is an error.
pub const CEILING: usize = 65_535 + 14;

/// The prefix of a frame of `len` bytes (`None` beyond [`CEILING`]).
pub fn header(len: usize) -> Option<[u8; HEADER_LEN]> {
    (len <= CEILING).then(|| (len as u32).to_be_bytes())
}

/// Why a stream cannot be read on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    /// A length no Ethernet frame has: the peer speaks something else.
    #[error("frame length {0} is longer than any Ethernet frame (the peer does not speak the 4-byte length framing)")]
    BadLength(u32),
}

/// What [`Decoder::next`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// A whole frame.
    Frame(&'a [u8]),
    /// A frame longer than the decoder's limit was read past (its length).
    Skipped(usize),
    /// The input is used up in the middle of a frame or prefix (or at a
    /// frame boundary): give more.
    NeedMore,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the prefix (`have` bytes of it so far).
    Header,
    /// Reading a frame of this length into the buffer.
    Body(usize),
    /// Reading past this many more bytes of an oversized frame.
    Skip(usize),
    /// After an error: nothing more is taken.
    Failed(u32),
}

/// Puts frames back together from stream bytes.
#[derive(Debug)]
pub struct Decoder {
    limit: usize,
    head: [u8; HEADER_LEN],
    have: usize,
    buf: Vec<u8>,
    state: State,
}

impl Decoder {
    /// A decoder that hands out frames of at most `limit` bytes (at most
    /// [`CEILING`]; longer frames are skipped).
    pub fn new(limit: usize) -> Decoder {
        let limit = limit.min(CEILING);
        Decoder {
            limit,
            head: [0; HEADER_LEN],
            have: 0,
            buf: Vec::with_capacity(limit),
            state: State::Header,
        }
    }

    /// Whether the decoder stands between frames (nothing of a frame read
    /// yet): an end of file elsewhere cuts a frame.
    pub fn at_boundary(&self) -> bool {
        self.state == State::Header && self.have == 0
    }

    /// Takes bytes from the front of `input` (advancing it) until a frame
    /// is complete, an oversized one has been read past, or the input is
    /// used up. A frame that arrived whole in `input` is returned in
    /// place; one that arrived in pieces from the decoder's buffer.
    pub fn next<'c, 'a: 'c, 'b: 'c>(
        &'a mut self,
        input: &mut &'b [u8],
    ) -> Result<Decoded<'c>, StreamError> {
        if let State::Failed(len) = self.state {
            return Err(StreamError::BadLength(len));
        }
        if self.state == State::Header {
            let take = (HEADER_LEN - self.have).min(input.len());
            self.head[self.have..self.have + take].copy_from_slice(&input[..take]);
            self.have += take;
            *input = &input[take..];
            if self.have < HEADER_LEN {
                return Ok(Decoded::NeedMore);
            }
            self.have = 0;
            let len = u32::from_be_bytes(self.head);
            let n = len as usize;
            if n > CEILING {
                self.state = State::Failed(len);
                return Err(StreamError::BadLength(len));
            }
            self.buf.clear();
            self.state = if n > self.limit {
                State::Skip(n)
            } else {
                State::Body(n)
            };
        }
        match self.state {
            State::Skip(left) => {
                let take = left.min(input.len());
                *input = &input[take..];
                if take < left {
                    self.state = State::Skip(left - take);
                    return Ok(Decoded::NeedMore);
                }
                self.state = State::Header;
                // The length was read before the skipping began; report
                // the skip once it is over.
                Ok(Decoded::Skipped(u32::from_be_bytes(self.head) as usize))
            }
            State::Body(len) => {
                if self.buf.is_empty() && input.len() >= len {
                    let (frame, rest) = input.split_at(len);
                    *input = rest;
                    self.state = State::Header;
                    return Ok(Decoded::Frame(frame));
                }
                let take = (len - self.buf.len()).min(input.len());
                self.buf.extend_from_slice(&input[..take]);
                *input = &input[take..];
                if self.buf.len() < len {
                    return Ok(Decoded::NeedMore);
                }
                self.state = State::Header;
                Ok(Decoded::Frame(&self.buf))
            }
            // Header: not reached (handled above); Failed: returned above.
            State::Header => Ok(Decoded::NeedMore),
            State::Failed(len) => Err(StreamError::BadLength(len)),
        }
    }
}

/// Encoded frames waiting for a stream socket to take them.
#[derive(Debug)]
pub struct OutQueue {
    data: Vec<u8>,
    /// `data[head..]` is still to be written.
    head: usize,
    budget: usize,
}

impl OutQueue {
    /// An empty queue holding at most `budget` bytes (prefixes included).
    pub fn new(budget: usize) -> OutQueue {
        OutQueue {
            data: Vec::new(),
            head: 0,
            budget,
        }
    }

    /// Appends `frame` with its prefix; false (nothing queued) when it
    /// does not fit in the budget or is longer than [`CEILING`].
    pub fn push(&mut self, frame: &[u8]) -> bool {
        let Some(h) = header(frame.len()) else {
            return false;
        };
        let need = HEADER_LEN + frame.len();
        if self.pending().len() + need > self.budget {
            return false;
        }
        if self.head > 0 && self.data.len() + need > self.budget {
            self.data.drain(..self.head);
            self.head = 0;
        }
        self.data.extend_from_slice(&h);
        self.data.extend_from_slice(frame);
        true
    }

    /// The bytes still to be written, in order.
    pub fn pending(&self) -> &[u8] {
        &self.data[self.head..]
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.head == self.data.len()
    }

    /// `n` bytes of [`OutQueue::pending`] were written.
    pub fn consume(&mut self, n: usize) {
        self.head = (self.head + n).min(self.data.len());
        if self.head == self.data.len() {
            self.data.clear();
            self.head = 0;
        }
    }

    /// Forgets everything (the peer is gone).
    pub fn clear(&mut self) {
        self.data.clear();
        self.head = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every frame (or skip) the decoder finds in `chunks`, fed one by one.
    fn decode(limit: usize, chunks: &[&[u8]]) -> (Vec<Result<Vec<u8>, usize>>, Decoder) {
        let mut d = Decoder::new(limit);
        let mut out = Vec::new();
        for chunk in chunks {
            let mut input: &[u8] = chunk;
            loop {
                match d.next(&mut input).unwrap() {
                    Decoded::Frame(f) => out.push(Ok(f.to_vec())),
                    Decoded::Skipped(n) => out.push(Err(n)),
                    Decoded::NeedMore => break,
                }
            }
            assert!(input.is_empty());
        }
        (out, d)
    }

    #[test]
    fn header_is_big_endian() {
        assert_eq!(header(0), Some([0, 0, 0, 0]));
        assert_eq!(header(1514), Some([0, 0, 0x05, 0xea]));
        assert_eq!(header(CEILING), Some([0, 1, 0, 0x0d]));
        assert_eq!(header(CEILING + 1), None);
    }

    #[test]
    fn frames_whole_and_back_to_back() {
        let bytes = [0, 0, 0, 3, 1, 2, 3, 0, 0, 0, 2, 9, 8];
        let (frames, d) = decode(1514, &[&bytes]);
        assert_eq!(frames, [Ok(vec![1, 2, 3]), Ok(vec![9, 8])]);
        assert!(d.at_boundary());
    }

    #[test]
    fn a_prefix_and_a_frame_split_at_every_byte() {
        let bytes = [0, 0, 0, 5, 10, 11, 12, 13, 14, 0, 0, 0, 1, 7];
        for cut in 0..=bytes.len() {
            let (frames, d) = decode(1514, &[&bytes[..cut], &bytes[cut..]]);
            assert_eq!(frames, [Ok(vec![10, 11, 12, 13, 14]), Ok(vec![7])], "{cut}");
            assert!(d.at_boundary());
        }
        // One byte at a time.
        let chunks: Vec<&[u8]> = bytes.chunks(1).collect();
        let (frames, _) = decode(1514, &chunks);
        assert_eq!(frames.len(), 2);
        // Cut in the middle of a prefix: not at a boundary.
        let (frames, d) = decode(1514, &[&bytes[..2]]);
        assert!(frames.is_empty() && !d.at_boundary());
        let (_, d) = decode(1514, &[&bytes[..6]]);
        assert!(!d.at_boundary());
    }

    #[test]
    fn empty_frames_are_frames() {
        let (frames, _) = decode(1514, &[&[0, 0, 0, 0, 0, 0, 0, 1, 5]]);
        assert_eq!(frames, [Ok(vec![]), Ok(vec![5])]);
    }

    #[test]
    fn longer_than_the_limit_is_skipped_in_pieces() {
        let mut bytes = vec![0, 0, 0, 6, 1, 2, 3, 4, 5, 6];
        bytes.extend([0, 0, 0, 2, 7, 8]);
        for cut in 0..=bytes.len() {
            let (frames, d) = decode(4, &[&bytes[..cut], &bytes[cut..]]);
            assert_eq!(frames, [Err(6), Ok(vec![7, 8])], "{cut}");
            assert!(d.at_boundary());
        }
        // The limit itself is taken.
        let (frames, _) = decode(2, &[&bytes[10..]]);
        assert_eq!(frames, [Ok(vec![7, 8])]);
    }

    #[test]
    fn a_length_beyond_any_frame_is_an_error_for_good() {
        let mut d = Decoder::new(1514);
        let mut input: &[u8] = &[0, 1, 0, 0x0e, 1, 2, 3];
        assert_eq!(d.next(&mut input), Err(StreamError::BadLength(65_550)));
        let mut input: &[u8] = &[0, 0, 0, 1, 1];
        assert_eq!(d.next(&mut input), Err(StreamError::BadLength(65_550)));
        let mut input: &[u8] = &[0xff, 0xff, 0xff, 0xff];
        let mut d = Decoder::new(usize::MAX);
        assert_eq!(d.next(&mut input), Err(StreamError::BadLength(u32::MAX)));
        // The ceiling itself is a frame (skipped when over the limit).
        let mut d = Decoder::new(1514);
        let mut input: &[u8] = &[0, 1, 0, 0x0d];
        assert_eq!(d.next(&mut input), Ok(Decoded::NeedMore));
        let big = vec![0u8; CEILING];
        let mut input: &[u8] = &big;
        assert_eq!(d.next(&mut input), Ok(Decoded::Skipped(CEILING)));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut rng = crate::testrng::SplitMix64::new(15);
        for _ in 0..2000 {
            let len = rng.below(64) as usize;
            let bytes: Vec<u8> = (0..len).map(|_| rng.below(4) as u8).collect();
            let mut d = Decoder::new(rng.below(8) as usize);
            let mut input: &[u8] = &bytes;
            while let Ok(got) = d.next(&mut input) {
                if got == Decoded::NeedMore {
                    break;
                }
            }
        }
    }

    #[test]
    fn the_out_queue_keeps_a_partly_written_frame_and_its_budget() {
        let mut q = OutQueue::new(20);
        assert!(q.is_empty());
        assert!(q.push(&[1, 2, 3]));
        assert!(q.push(&[4; 8]));
        assert_eq!(q.pending().len(), 19);
        assert_eq!(&q.pending()[..7], [0, 0, 0, 3, 1, 2, 3]);
        // A whole frame that does not fit is refused, never cut.
        assert!(!q.push(&[5]));
        q.consume(5);
        assert_eq!(&q.pending()[..4], [2, 3, 0, 0]);
        assert!(q.push(&[6]), "room again after a partial write");
        assert_eq!(q.pending().len(), 19);
        assert_eq!(&q.pending()[14..], [0, 0, 0, 1, 6]);
        q.consume(19);
        assert!(q.is_empty());
        assert!(!q.push(&vec![0; CEILING + 1]));
        assert!(q.push(&[0; 16]));
        q.clear();
        assert!(q.is_empty());
    }

    #[test]
    fn encoded_frames_decode_again() {
        let mut q = OutQueue::new(1 << 16);
        let frames: Vec<Vec<u8>> = (0..20).map(|i| vec![i as u8; i * 37]).collect();
        for f in &frames {
            assert!(q.push(f));
        }
        let bytes = q.pending().to_vec();
        let chunks: Vec<&[u8]> = bytes.chunks(7).collect();
        let (got, _) = decode(1514, &chunks);
        let want: Vec<Result<Vec<u8>, usize>> = frames.into_iter().map(Ok).collect();
        assert_eq!(got, want);
    }
}
