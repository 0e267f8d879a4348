//! Batched datagram I/O on unix sockets: `recvmmsg` into preallocated frame
//! buffers with the senders' raw addresses, and `sendmmsg` of frames to raw
//! 110-byte `sockaddr_un` addresses or on per-destination connected
//! sockets, one call per destination. No allocation after warm-up.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};

use crate::switch::{SockAddrUn, SOCKADDR_UN_LEN};

/// A set of preallocated receive buffers.
pub struct RecvBatch {
    buf_len: usize,
    bufs: Vec<u8>,
    addrs: Vec<libc::sockaddr_un>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
    filled: usize,
}

impl std::fmt::Debug for RecvBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "RecvBatch({} x {} bytes, {} filled)",
            self.hdrs.len(),
            self.buf_len,
            self.filled
        )
    }
}

fn zeroed_sockaddr_un() -> libc::sockaddr_un {
    // SAFETY: sockaddr_un is a plain C struct of integers and byte arrays,
    // for which all-zero bytes are a valid value.
    unsafe { std::mem::zeroed() }
}

fn zeroed_mmsghdr() -> libc::mmsghdr {
    // SAFETY: mmsghdr is a plain C struct (integers and raw pointers); all
    // zeros (null pointers, zero lengths) is a valid value.
    unsafe { std::mem::zeroed() }
}

impl RecvBatch {
    /// `count` buffers of `buf_len` bytes each.
    pub fn new(count: usize, buf_len: usize) -> RecvBatch {
        let count = count.max(1);
        RecvBatch {
            buf_len,
            bufs: vec![0u8; count * buf_len],
            addrs: vec![zeroed_sockaddr_un(); count],
            iovs: vec![
                libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0
                };
                count
            ],
            hdrs: vec![zeroed_mmsghdr(); count],
            filled: 0,
        }
    }

    /// Number of buffers.
    pub fn capacity(&self) -> usize {
        self.hdrs.len()
    }

    /// Receives up to `capacity()` datagrams without blocking. Returns how
    /// many arrived (0 when none was waiting).
    pub fn recv(&mut self, fd: BorrowedFd<'_>) -> io::Result<usize> {
        self.recv_up_to(fd, self.capacity())
    }

    /// Like [`RecvBatch::recv`] with at most `max` datagrams.
    pub fn recv_up_to(&mut self, fd: BorrowedFd<'_>, max: usize) -> io::Result<usize> {
        let n = max.min(self.capacity());
        self.filled = 0;
        let base = self.bufs.as_mut_ptr();
        for i in 0..n {
            // SAFETY: i < count, so the offset stays inside `bufs`
            // (count * buf_len bytes).
            self.iovs[i].iov_base = unsafe { base.add(i * self.buf_len) }.cast();
            self.iovs[i].iov_len = self.buf_len;
            let h = &mut self.hdrs[i].msg_hdr;
            h.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_un).cast();
            h.msg_namelen = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
            h.msg_iov = &mut self.iovs[i];
            h.msg_iovlen = 1;
            h.msg_control = std::ptr::null_mut();
            h.msg_controllen = 0;
            h.msg_flags = 0;
            self.hdrs[i].msg_len = 0;
        }
        // SAFETY: the first n headers point at live buffers owned by self
        // (iovecs, addresses, frame bytes) with the lengths given; they stay
        // valid and unaliased for the duration of the call.
        let rc = unsafe {
            libc::recvmmsg(
                fd.as_raw_fd(),
                self.hdrs.as_mut_ptr(),
                n as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if rc < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::WouldBlock {
                return Ok(0);
            }
            return Err(e);
        }
        self.filled = rc as usize;
        Ok(self.filled)
    }

    /// Frame `i` of the last receive (cut to the buffer length).
    pub fn frame(&self, i: usize) -> &[u8] {
        if i >= self.filled {
            return &[];
        }
        let len = (self.hdrs[i].msg_len as usize).min(self.buf_len);
        &self.bufs[i * self.buf_len..i * self.buf_len + len]
    }

    /// Whether datagram `i` was longer than the buffer (`MSG_TRUNC`).
    pub fn truncated(&self, i: usize) -> bool {
        i < self.filled && self.hdrs[i].msg_hdr.msg_flags & libc::MSG_TRUNC != 0
    }

    /// The raw sender address of datagram `i` (family + path, `addrlen`
    /// bytes as returned by the kernel).
    pub fn sender(&self, i: usize) -> &[u8] {
        if i >= self.filled {
            return &[];
        }
        let len = (self.hdrs[i].msg_hdr.msg_namelen as usize)
            .min(std::mem::size_of::<libc::sockaddr_un>());
        let addr = &self.addrs[i];
        // SAFETY: `addr` is a live sockaddr_un; viewing its first `len`
        // (<= its size) bytes as u8 is valid for any bit pattern.
        unsafe { std::slice::from_raw_parts((addr as *const libc::sockaddr_un).cast::<u8>(), len) }
    }

    /// Mutable access to buffer `i` (e.g. to `read` a tap frame into it).
    pub fn buffer_mut(&mut self, i: usize) -> &mut [u8] {
        let i = i.min(self.capacity() - 1);
        &mut self.bufs[i * self.buf_len..(i + 1) * self.buf_len]
    }

    /// Buffer `i` with an explicit length (after filling it by hand).
    pub fn buffer(&self, i: usize, len: usize) -> &[u8] {
        let i = i.min(self.capacity() - 1);
        &self.bufs[i * self.buf_len..i * self.buf_len + len.min(self.buf_len)]
    }
}

/// Outcome of [`SendBatch::flush`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Flushed {
    /// Datagrams sent.
    pub sent: usize,
    /// Datagrams dropped because the receiver's queue was full.
    pub would_block: usize,
    /// Datagrams handed back by [`SendBatch::flush_deferring`] because
    /// their connected socket was full.
    pub deferred: usize,
}

/// Failure of one message of a batch (other than a full queue).
#[derive(Debug)]
pub struct SendFailure {
    /// The `tag` given to [`SendBatch::push`].
    pub tag: u32,
    /// The error.
    pub error: io::Error,
}

/// Where [`SendBatch::flush_deferring`] hands a refused message: its tag
/// and bytes.
type OnBlocked<'a> = dyn FnMut(u32, &[u8]) + 'a;

/// Largest tag for which messages are grouped by destination with a
/// counting sort (tags are meant to be small, dense port ids).
const MAX_SORTED_TAG: usize = 1 << 16;

/// A batch of outgoing datagrams: frame bytes are copied in, so the batch
/// does not borrow the receive buffers.
pub struct SendBatch {
    buf_len: usize,
    bufs: Vec<u8>,
    lens: Vec<usize>,
    tags: Vec<u32>,
    addrs: Vec<libc::sockaddr_un>,
    /// Per message: the connected socket to send it on, or -1 for the
    /// shared socket given to `flush` (with the message's address).
    dests: Vec<RawFd>,
    /// Flush order: message indices grouped by tag (counting sort).
    order: Vec<u16>,
    counts: Vec<u32>,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
    n: usize,
    eagain_patience: std::time::Duration,
    eagain_cooldown: std::time::Duration,
    /// Per tag: until when its receiver counts as congested (it stayed
    /// full through a whole wait): one attempt per message, no waiting.
    congested_until: Vec<Option<std::time::Instant>>,
    /// Wait for a full connected receiver in `poll` rather than by
    /// yielding the CPU.
    sleep_while_full: bool,
}

impl std::fmt::Debug for SendBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SendBatch({}/{} queued)", self.n, self.hdrs.len())
    }
}

impl SendBatch {
    /// Room for `count` frames of up to `buf_len` bytes.
    pub fn new(count: usize, buf_len: usize) -> SendBatch {
        let count = count.clamp(1, usize::from(u16::MAX));
        SendBatch {
            buf_len,
            bufs: vec![0u8; count * buf_len],
            lens: vec![0; count],
            tags: vec![0; count],
            addrs: vec![zeroed_sockaddr_un(); count],
            dests: vec![-1; count],
            order: vec![0; count],
            counts: Vec::new(),
            iovs: vec![
                libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0
                };
                count
            ],
            hdrs: vec![zeroed_mmsghdr(); count],
            n: 0,
            eagain_patience: std::time::Duration::ZERO,
            eagain_cooldown: std::time::Duration::ZERO,
            congested_until: Vec::new(),
            sleep_while_full: false,
        }
    }

    /// How long a message refused with `EAGAIN` (receiver queue full) is
    /// retried, yielding the CPU in between, before it is dropped; a tag
    /// whose receiver stays full that long is congested for `cooldown`:
    /// its messages get one attempt each, no waiting. So a stopped or slow
    /// receiver costs the sender at most `patience` per `cooldown`, while
    /// a receiver that is only briefly behind loses nothing.
    pub fn set_eagain_patience(
        &mut self,
        patience: std::time::Duration,
        cooldown: std::time::Duration,
    ) {
        self.eagain_patience = patience;
        self.eagain_cooldown = cooldown;
    }

    /// During that wait (see [`SendBatch::set_eagain_patience`]), sleep in
    /// `poll` until a message's connected socket has room again, instead
    /// of yielding the CPU between attempts: the wait then costs no CPU,
    /// which the receiver — on a busy machine perhaps waiting for this
    /// very CPU — may need to drain its queue. Messages for the shared
    /// socket (with an address) still yield: its `POLLOUT` does not
    /// reflect their receivers.
    pub fn set_sleep_while_full(&mut self, on: bool) {
        self.sleep_while_full = on;
    }

    /// Whether messages for `tag` get no waiting at `now`.
    pub fn is_congested(&self, tag: u32, now: std::time::Instant) -> bool {
        self.congested_until
            .get(tag as usize)
            .copied()
            .flatten()
            .is_some_and(|until| now < until)
    }

    fn set_congested(&mut self, tag: u32, until: Option<std::time::Instant>) {
        let i = tag as usize;
        if until.is_some() && i >= self.congested_until.len() {
            self.congested_until.resize(i + 1, None);
        }
        if let Some(slot) = self.congested_until.get_mut(i) {
            *slot = until;
        }
    }

    /// Forgets what was learnt about `tag`'s receiver (its port is gone;
    /// the tag may be reused).
    pub fn forget_tag(&mut self, tag: u32) {
        self.set_congested(tag, None);
    }

    /// Whether no more frames fit.
    pub fn is_full(&self) -> bool {
        self.n == self.hdrs.len()
    }

    /// Number of queued frames.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Queues `frame` (cut to the buffer length) for `addr`, sent with
    /// addrlen 110. `tag` identifies the destination in failures. Returns
    /// false when the batch is full (flush first).
    pub fn push(&mut self, frame: &[u8], addr: &SockAddrUn, tag: u32) -> bool {
        if self.is_full() {
            return false;
        }
        let i = self.n;
        self.store(frame, tag, -1);
        let dst = &mut self.addrs[i];
        // SAFETY: sockaddr_un is exactly SOCKADDR_UN_LEN (110) bytes on
        // Linux (checked by a unit test); we overwrite it byte for byte
        // from a 110-byte array.
        unsafe {
            std::ptr::copy_nonoverlapping(
                addr.0.as_ptr(),
                (dst as *mut libc::sockaddr_un).cast::<u8>(),
                SOCKADDR_UN_LEN,
            );
        }
        self.n += 1;
        true
    }

    /// Queues `frame` (cut to the buffer length) for the connected socket
    /// `sock` (no address). `tag` identifies the destination; all messages
    /// of one tag must use the same `sock`, which the caller keeps open
    /// until the next `flush`. Returns false when the batch is full.
    pub fn push_connected(&mut self, frame: &[u8], sock: BorrowedFd<'_>, tag: u32) -> bool {
        if self.is_full() {
            return false;
        }
        self.store(frame, tag, sock.as_raw_fd());
        self.n += 1;
        true
    }

    /// Like [`SendBatch::push_connected`] for a message made of `header`
    /// then `frame` (a tunnel header in front of an Ethernet frame),
    /// copied once into the batch and cut to the buffer length together.
    pub fn push_connected_with_header(
        &mut self,
        header: &[u8],
        frame: &[u8],
        sock: BorrowedFd<'_>,
        tag: u32,
    ) -> bool {
        if self.is_full() {
            return false;
        }
        let i = self.n;
        let buf = &mut self.bufs[i * self.buf_len..(i + 1) * self.buf_len];
        let h = header.len().min(buf.len());
        buf[..h].copy_from_slice(&header[..h]);
        let f = frame.len().min(buf.len() - h);
        buf[h..h + f].copy_from_slice(&frame[..f]);
        self.lens[i] = h + f;
        self.tags[i] = tag;
        self.dests[i] = sock.as_raw_fd();
        self.n += 1;
        true
    }

    fn store(&mut self, frame: &[u8], tag: u32, dest: RawFd) {
        let i = self.n;
        let len = frame.len().min(self.buf_len);
        self.bufs[i * self.buf_len..i * self.buf_len + len].copy_from_slice(&frame[..len]);
        self.lens[i] = len;
        self.tags[i] = tag;
        self.dests[i] = dest;
    }

    /// Orders the queued messages by tag, keeping their order within a
    /// tag, so that each destination gets one `sendmmsg` per flush.
    fn sort_by_tag(&mut self) {
        let n = self.n;
        let max = self.tags[..n].iter().copied().max().unwrap_or(0) as usize;
        if max > MAX_SORTED_TAG {
            // Not small port ids: keep the queue order (runs of one tag
            // still share a call) rather than size the counts by the tag.
            for (k, slot) in self.order[..n].iter_mut().enumerate() {
                *slot = k as u16;
            }
            return;
        }
        self.counts.clear();
        self.counts.resize(max + 2, 0);
        for &t in &self.tags[..n] {
            self.counts[t as usize + 1] += 1;
        }
        for k in 1..self.counts.len() {
            self.counts[k] += self.counts[k - 1];
        }
        for i in 0..n {
            let slot = &mut self.counts[self.tags[i] as usize];
            self.order[*slot as usize] = i as u16;
            *slot += 1;
        }
    }

    /// Sends everything queued (on `fd`, or on each message's connected
    /// socket) without blocking. Messages whose
    /// receiver queue is full are dropped and counted; other failures are
    /// passed to `on_error` and dropped. The batch is empty afterwards.
    pub fn flush(&mut self, fd: BorrowedFd<'_>, on_error: impl FnMut(SendFailure)) -> Flushed {
        self.flush_inner(fd, on_error, None)
    }

    /// Like [`SendBatch::flush`], except that when a connected socket
    /// (see [`SendBatch::push_connected`]) refuses a message with `EAGAIN`
    /// (its receiver is full), that message and every later one for its
    /// tag are handed to `on_blocked` in order, with no waiting, instead
    /// of being dropped: the caller keeps them (a [`Backlog`]) and sends
    /// them when the socket is writable again. Messages for the shared
    /// socket are handled as by `flush`.
    pub fn flush_deferring(
        &mut self,
        fd: BorrowedFd<'_>,
        on_error: impl FnMut(SendFailure),
        mut on_blocked: impl FnMut(u32, &[u8]),
    ) -> Flushed {
        self.flush_inner(fd, on_error, Some(&mut on_blocked))
    }

    fn flush_inner(
        &mut self,
        fd: BorrowedFd<'_>,
        mut on_error: impl FnMut(SendFailure),
        mut on_blocked: Option<&mut OnBlocked<'_>>,
    ) -> Flushed {
        let mut out = Flushed::default();
        let n = self.n;
        self.sort_by_tag();
        let base = self.bufs.as_mut_ptr();
        for k in 0..n {
            let i = usize::from(self.order[k]);
            // SAFETY: i < count, so the offset stays inside `bufs`.
            self.iovs[k].iov_base = unsafe { base.add(i * self.buf_len) }.cast();
            self.iovs[k].iov_len = self.lens[i];
            let h = &mut self.hdrs[k].msg_hdr;
            if self.dests[i] < 0 {
                h.msg_name = (&mut self.addrs[i] as *mut libc::sockaddr_un).cast();
                h.msg_namelen = SOCKADDR_UN_LEN as libc::socklen_t;
            } else {
                h.msg_name = std::ptr::null_mut();
                h.msg_namelen = 0;
            }
            h.msg_iov = &mut self.iovs[k];
            h.msg_iovlen = 1;
            h.msg_control = std::ptr::null_mut();
            h.msg_controllen = 0;
            h.msg_flags = 0;
        }
        let patient = !self.eagain_patience.is_zero();
        let mut group = 0;
        while group < n {
            // Messages group..end share a tag, hence a socket.
            let first = usize::from(self.order[group]);
            let tag = self.tags[first];
            let dest = self.dests[first];
            let mut end = group + 1;
            while end < n && self.tags[usize::from(self.order[end])] == tag {
                end += 1;
            }
            let sock = if dest < 0 { fd.as_raw_fd() } else { dest };
            // When the current message was first refused with EAGAIN.
            let mut waiting_since: Option<std::time::Instant> = None;
            let mut start = group;
            while start < end {
                // SAFETY: headers start..end point at live buffers owned
                // by self, valid for the duration of the call; `sock` is
                // open (the shared socket is borrowed, connected sockets
                // are kept open by the caller until this flush).
                let rc = unsafe {
                    libc::sendmmsg(
                        sock,
                        self.hdrs.as_mut_ptr().add(start),
                        (end - start) as libc::c_uint,
                        libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                    )
                };
                if rc > 0 {
                    out.sent += rc as usize;
                    start += rc as usize;
                    waiting_since = None;
                    continue;
                }
                // rc <= 0: message `start` failed; drop it and go on.
                let e = io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::EINTR) => continue,
                    Some(libc::EAGAIN) if dest >= 0 && on_blocked.is_some() => {
                        if let Some(keep) = on_blocked.as_mut() {
                            for k in start..end {
                                let i = usize::from(self.order[k]);
                                let at = i * self.buf_len;
                                keep(tag, &self.bufs[at..at + self.lens[i]]);
                            }
                        }
                        out.deferred += end - start;
                        start = end;
                        continue;
                    }
                    Some(libc::EAGAIN) if patient => {
                        // The receiver's queue (or this socket's send
                        // buffer) is full: give it a moment to drain
                        // (bounded, so one slow port cannot stall the rest
                        // for long).
                        let now = std::time::Instant::now();
                        if !self.is_congested(tag, now) {
                            let since = *waiting_since.get_or_insert(now);
                            let waited = now.duration_since(since);
                            if waited < self.eagain_patience {
                                if dest >= 0 && self.sleep_while_full {
                                    // A connected socket tells when its
                                    // receiver has room: sleep until then,
                                    // leaving the CPU to the receiver.
                                    wait_writable(sock, self.eagain_patience - waited);
                                } else {
                                    std::thread::yield_now();
                                }
                                continue;
                            }
                            self.set_congested(tag, Some(now + self.eagain_cooldown));
                        }
                        out.would_block += 1;
                    }
                    Some(libc::EAGAIN) => out.would_block += 1,
                    _ => on_error(SendFailure { tag, error: e }),
                }
                start += 1;
                waiting_since = None;
            }
            group = end;
        }
        self.n = 0;
        out
    }
}

/// Frames kept for one connected socket whose receiver was full, sent in
/// order once it is writable again (see [`SendBatch::flush_deferring`]).
/// Bounded by a byte budget: a frame that does not fit is refused (the
/// caller drops and counts it), so a receiver that stops reading costs at
/// most the budget. The storage grows with use, up to the budget.
pub struct Backlog {
    /// Frames back to back; `data[head..]` is live.
    data: Vec<u8>,
    head: usize,
    /// Lengths of the live frames, oldest first.
    lens: std::collections::VecDeque<usize>,
    budget: usize,
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
}

impl std::fmt::Debug for Backlog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Backlog({} frames, {}/{} bytes)",
            self.lens.len(),
            self.bytes(),
            self.budget
        )
    }
}

/// Outcome of [`Backlog::send`].
#[derive(Debug, Default)]
pub struct BacklogSent {
    /// Frames sent.
    pub sent: usize,
    /// Frames dropped because sending them failed (not a full receiver).
    pub failed: usize,
    /// The first such failure.
    pub error: Option<io::Error>,
}

/// Frames per `sendmmsg` when a backlog is sent.
const BACKLOG_BATCH: usize = 64;

impl Backlog {
    /// An empty backlog holding at most `budget` bytes of frames.
    pub fn new(budget: usize) -> Backlog {
        Backlog {
            data: Vec::new(),
            head: 0,
            lens: std::collections::VecDeque::new(),
            budget,
            iovs: Vec::new(),
            hdrs: Vec::new(),
        }
    }

    /// Whether no frame is kept.
    pub fn is_empty(&self) -> bool {
        self.lens.is_empty()
    }

    /// Number of frames kept.
    pub fn len(&self) -> usize {
        self.lens.len()
    }

    /// Bytes of the frames kept.
    pub fn bytes(&self) -> usize {
        self.data.len() - self.head
    }

    /// Keeps `frame` after the others; false (nothing kept) when it does
    /// not fit in the budget.
    pub fn push(&mut self, frame: &[u8]) -> bool {
        if self.bytes() + frame.len() > self.budget {
            return false;
        }
        if self.data.len() + frame.len() > self.budget && self.head > 0 {
            // Move the live frames to the front: at most the budget's
            // worth of bytes, once per budget's worth of frames sent.
            self.data.drain(..self.head);
            self.head = 0;
        }
        self.data.extend_from_slice(frame);
        self.lens.push_back(frame.len());
        true
    }

    /// Drops every frame kept; returns how many.
    pub fn clear(&mut self) -> usize {
        let n = self.lens.len();
        self.lens.clear();
        self.data.clear();
        self.head = 0;
        n
    }

    /// Sends the frames kept, oldest first, on the connected socket `fd`
    /// without blocking, until none is left or the receiver is full
    /// again (`EAGAIN`: the rest stay). A frame refused for another
    /// reason is dropped and counted.
    pub fn send(&mut self, fd: BorrowedFd<'_>) -> BacklogSent {
        let mut out = BacklogSent::default();
        if self.hdrs.is_empty() {
            self.iovs = vec![
                libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0
                };
                BACKLOG_BATCH
            ];
            self.hdrs = vec![zeroed_mmsghdr(); BACKLOG_BATCH];
        }
        while !self.lens.is_empty() {
            let n = self.lens.len().min(BACKLOG_BATCH);
            let base = self.data.as_mut_ptr();
            let mut at = self.head;
            for k in 0..n {
                let len = self.lens[k];
                // SAFETY: head + the first k lengths stay inside `data`
                // (the live frames are data[head..], back to back).
                self.iovs[k].iov_base = unsafe { base.add(at) }.cast();
                self.iovs[k].iov_len = len;
                at += len;
                let h = &mut self.hdrs[k].msg_hdr;
                h.msg_name = std::ptr::null_mut();
                h.msg_namelen = 0;
                h.msg_iov = &mut self.iovs[k];
                h.msg_iovlen = 1;
                h.msg_control = std::ptr::null_mut();
                h.msg_controllen = 0;
                h.msg_flags = 0;
            }
            // SAFETY: the first n headers point at iovecs owned by self,
            // which point at live frames inside `data` (not touched during
            // the call); no names, no control data.
            let rc = unsafe {
                libc::sendmmsg(
                    fd.as_raw_fd(),
                    self.hdrs.as_mut_ptr(),
                    n as libc::c_uint,
                    libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                )
            };
            let done = if rc > 0 {
                out.sent += rc as usize;
                rc as usize
            } else {
                let e = io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::EINTR) => continue,
                    Some(libc::EAGAIN) => break,
                    _ => {
                        out.failed += 1;
                        out.error.get_or_insert(e);
                        1
                    }
                }
            };
            for _ in 0..done {
                if let Some(len) = self.lens.pop_front() {
                    self.head += len;
                }
            }
        }
        if self.lens.is_empty() {
            self.data.clear();
            self.head = 0;
        }
        out
    }
}

/// Waits at most `timeout` until `fd` can take a message (`POLLOUT`); a
/// connected unix datagram or seqpacket socket is writable again once its
/// receiver's queue has room.
fn wait_writable(fd: RawFd, timeout: std::time::Duration) {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLOUT,
        revents: 0,
    };
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
    };
    // SAFETY: one live pollfd and a live timespec for the duration of the
    // call; no signal mask (null).
    let _ = unsafe { libc::ppoll(&mut pfd, 1, &ts, std::ptr::null()) };
}

/// Headers for sending the frames of a [`RecvBatch`] on, unchanged and
/// without copying them, with one `sendmmsg` per call: what a two-port
/// relay needs (the benchmark's `bess-relay`).
pub struct ForwardBatch {
    iovs: Vec<libc::iovec>,
    hdrs: Vec<libc::mmsghdr>,
}

impl std::fmt::Debug for ForwardBatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ForwardBatch({})", self.hdrs.len())
    }
}

impl ForwardBatch {
    /// Room for `count` frames per call.
    pub fn new(count: usize) -> ForwardBatch {
        let count = count.max(1);
        ForwardBatch {
            iovs: vec![
                libc::iovec {
                    iov_base: std::ptr::null_mut(),
                    iov_len: 0
                };
                count
            ],
            hdrs: vec![zeroed_mmsghdr(); count],
        }
    }

    /// Sends frames `range` of `rx`'s last receive (as [`RecvBatch::frame`]
    /// returns them), in order, on the connected socket `fd` with one
    /// non-blocking `sendmmsg` (at most `count` of them). Returns how many
    /// were sent, always the first ones (at least one unless `range` is
    /// empty); when the first cannot be sent, its error (`WouldBlock` when
    /// the receiver's queue or this socket's send buffer is full).
    pub fn send(
        &mut self,
        fd: BorrowedFd<'_>,
        rx: &RecvBatch,
        range: std::ops::Range<usize>,
    ) -> io::Result<usize> {
        let n = range.len().min(self.hdrs.len());
        for (k, i) in range.take(n).enumerate() {
            let frame = rx.frame(i);
            // sendmmsg only reads through iov_base; the pointer is made
            // mutable for the C type only.
            self.iovs[k].iov_base = frame.as_ptr().cast_mut().cast();
            self.iovs[k].iov_len = frame.len();
            let h = &mut self.hdrs[k].msg_hdr;
            h.msg_name = std::ptr::null_mut();
            h.msg_namelen = 0;
            h.msg_iov = &mut self.iovs[k];
            h.msg_iovlen = 1;
            h.msg_control = std::ptr::null_mut();
            h.msg_controllen = 0;
            h.msg_flags = 0;
            self.hdrs[k].msg_len = 0;
        }
        if n == 0 {
            return Ok(0);
        }
        // SAFETY: the first n headers point at iovecs owned by self, which
        // point at frames inside `rx`'s buffers (borrowed for the whole
        // call, only read by the kernel), with their lengths; no names, no
        // control data.
        let rc = unsafe {
            libc::sendmmsg(
                fd.as_raw_fd(),
                self.hdrs.as_mut_ptr(),
                n as libc::c_uint,
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(rc as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixDatagram};

    #[test]
    fn sockaddr_un_is_110_bytes() {
        assert_eq!(std::mem::size_of::<libc::sockaddr_un>(), SOCKADDR_UN_LEN);
    }

    fn abstract_socket(tag: &str) -> (UnixDatagram, SockAddrUn) {
        let mut name = [0u8; 107];
        let t = format!("mmsg-test-{}-{tag}", std::process::id());
        name[..t.len()].copy_from_slice(t.as_bytes());
        let sock = UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name).unwrap()).unwrap();
        (sock, SockAddrUn::abstract_name(&name))
    }

    #[test]
    // Miri: unix datagram sockets, sendmmsg/recvmmsg: not emulated by Miri.
    #[cfg_attr(miri, ignore)]
    fn batch_round_trip_with_full_length_addresses() {
        let (a, a_addr) = abstract_socket("a");
        let (b, b_addr) = abstract_socket("b");
        let mut out = SendBatch::new(8, 1514);
        for i in 0..5u8 {
            assert!(out.push(&[i; 60], &b_addr, 7));
        }
        assert!(out.push(&[9u8; 3000], &b_addr, 7)); // cut to 1514
        let flushed = out.flush(a.as_fd(), |f| panic!("{f:?}"));
        assert_eq!(
            flushed,
            Flushed {
                sent: 6,
                would_block: 0,
                deferred: 0
            }
        );
        assert!(out.is_empty());
        let mut rx = RecvBatch::new(16, 1514);
        let n = rx.recv(b.as_fd()).unwrap();
        assert_eq!(n, 6);
        for i in 0..5 {
            assert_eq!(rx.frame(i), &[i as u8; 60][..]);
            assert!(!rx.truncated(i));
            // The sender is a's full 110-byte address.
            assert_eq!(rx.sender(i), &a_addr.0[..]);
        }
        assert_eq!(rx.frame(5).len(), 1514);
        assert_eq!(rx.frame(6), b"");
        assert_eq!(rx.recv(b.as_fd()).unwrap(), 0);
    }

    #[test]
    // Miri: unix datagram sockets, sendmmsg/recvmmsg: not emulated by Miri.
    #[cfg_attr(miri, ignore)]
    fn oversized_datagrams_are_flagged() {
        let (a, _) = abstract_socket("c");
        let (b, b_addr) = abstract_socket("d");
        let name = SocketAddr::from_abstract_name(&b_addr.0[3..]).unwrap();
        a.send_to_addr(&[1u8; 2000], &name).unwrap();
        let mut rx = RecvBatch::new(2, 1514);
        assert_eq!(rx.recv(b.as_fd()).unwrap(), 1);
        assert!(rx.truncated(0));
        assert_eq!(rx.frame(0).len(), 1514);
    }

    #[test]
    // Miri: unix datagram sockets, sendmmsg/recvmmsg: not emulated by Miri.
    #[cfg_attr(miri, ignore)]
    fn a_receiver_full_past_the_patience_is_congested_for_the_cooldown() {
        use std::time::{Duration, Instant};
        let (a, _) = abstract_socket("g");
        let (b, b_addr) = abstract_socket("h");
        let (_c, c_addr) = abstract_socket("i");
        let mut out = SendBatch::new(1200, 16);
        let cooldown = Duration::from_millis(300);
        out.set_eagain_patience(Duration::from_millis(20), cooldown);
        // Far more than a receive queue (max_dgram_qlen) or the send
        // buffer holds: the rest are refused with EAGAIN.
        // (The other receiver first: a full send buffer would refuse it
        // too.)
        out.push(&[2; 16], &c_addr, 9);
        for _ in 0..1199 {
            out.push(&[1; 16], &b_addr, 7);
        }
        let t = Instant::now();
        let flushed = out.flush(a.as_fd(), |f| panic!("unexpected failure {:?}", f.error));
        let took = t.elapsed();
        assert!(flushed.would_block > 0, "{flushed:?}");
        assert_eq!(flushed.sent + flushed.would_block, 1200);
        // One wait for the first refused message, none for the others.
        assert!(took >= Duration::from_millis(20), "{took:?}");
        assert!(took < Duration::from_millis(250), "{took:?}");
        assert!(out.is_congested(7, Instant::now()));
        assert!(!out.is_congested(9, Instant::now()));
        assert!(!out.is_congested(7, t + took + cooldown));
        // While congested: one attempt per message, dropped at once.
        out.push(&[1; 16], &b_addr, 7);
        let t = Instant::now();
        let again = out.flush(a.as_fd(), |_| {});
        assert_eq!(again.would_block, 1);
        assert!(t.elapsed() < Duration::from_millis(15));
        // Drained, it takes messages again.
        let mut rx = RecvBatch::new(64, 16);
        while rx.recv(b.as_fd()).unwrap() > 0 {}
        out.push(&[3; 16], &b_addr, 7);
        assert_eq!(out.flush(a.as_fd(), |_| {}).sent, 1);
        // A forgotten tag starts afresh.
        out.forget_tag(7);
        assert!(!out.is_congested(7, Instant::now()));
    }

    /// CPU time of the calling thread.
    fn thread_cpu() -> std::time::Duration {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a live timespec the call fills in.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        assert_eq!(rc, 0);
        std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
    }

    #[test]
    // Miri: unix datagram sockets, sendmmsg/recvmmsg: not emulated by Miri.
    #[cfg_attr(miri, ignore)]
    fn a_sender_sleeping_while_full_loses_nothing_to_a_receiver_that_drains() {
        use std::time::{Duration, Instant};
        let (b, b_addr) = abstract_socket("s");
        let to_b = UnixDatagram::unbound().unwrap();
        to_b.connect_addr(&SocketAddr::from_abstract_name(&b_addr.sun_path()[1..]).unwrap())
            .unwrap();
        to_b.set_nonblocking(true).unwrap();
        let mut queued = 0;
        while to_b.send(&[1; 16]).is_ok() {
            queued += 1;
            assert!(queued < 100_000, "never full");
        }
        let drain = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(150));
            let mut rx = RecvBatch::new(64, 16);
            let mut got = 0;
            let deadline = Instant::now() + Duration::from_secs(5);
            while got < queued + 1 && Instant::now() < deadline {
                got += rx.recv(b.as_fd()).unwrap();
                std::thread::sleep(Duration::from_millis(1));
            }
            (got, rx.frame(0).to_vec())
        });
        let mut out = SendBatch::new(4, 16);
        out.set_eagain_patience(Duration::from_secs(2), Duration::from_secs(1));
        out.set_sleep_while_full(true);
        out.push_connected(&[2; 16], to_b.as_fd(), 1);
        let t = Instant::now();
        let cpu = thread_cpu();
        let flushed = out.flush(to_b.as_fd(), |f| panic!("{f:?}"));
        let (cpu, took) = (thread_cpu() - cpu, t.elapsed());
        assert_eq!((flushed.sent, flushed.would_block), (1, 0));
        // It waited for the drain, asleep (yielding would have used the
        // CPU all along).
        assert!(took >= Duration::from_millis(100), "{took:?}");
        assert!(took < Duration::from_secs(1), "{took:?}");
        assert!(cpu < took / 4, "{cpu:?} of CPU in {took:?}");
        let (got, _) = drain.join().unwrap();
        assert_eq!(got, queued + 1);
    }

    #[test]
    // Miri: unix datagram sockets, sendmmsg/recvmmsg: not emulated by Miri.
    #[cfg_attr(miri, ignore)]
    fn connected_and_addressed_messages_keep_their_order_per_destination() {
        let (a, _) = abstract_socket("j");
        let (b, b_addr) = abstract_socket("k");
        let (c, c_addr) = abstract_socket("l");
        let (d, d_addr) = abstract_socket("m");
        let to_b = UnixDatagram::unbound().unwrap();
        to_b.connect_addr(&SocketAddr::from_abstract_name(&b_addr.sun_path()[1..]).unwrap())
            .unwrap();
        let to_c = UnixDatagram::unbound().unwrap();
        to_c.connect_addr(&SocketAddr::from_abstract_name(&c_addr.sun_path()[1..]).unwrap())
            .unwrap();
        let mut out = SendBatch::new(16, 8);
        // Interleaved, tags out of order: c (tag 5), b (tag 2), d (tag 3,
        // shared socket with its address).
        for i in 0..4u8 {
            assert!(out.push_connected(&[b'c', i], to_c.as_fd(), 5));
            assert!(out.push_connected(&[b'b', i], to_b.as_fd(), 2));
            assert!(out.push(&[b'd', i], &d_addr, 3));
        }
        let flushed = out.flush(a.as_fd(), |f| panic!("failure {:?}", f.error));
        assert_eq!(flushed.sent, 12);
        assert!(out.is_empty());
        for (sock, tag) in [(&b, b'b'), (&c, b'c'), (&d, b'd')] {
            let mut rx = RecvBatch::new(8, 8);
            assert_eq!(rx.recv(sock.as_fd()).unwrap(), 4);
            for i in 0..4u8 {
                assert_eq!(rx.frame(usize::from(i)), &[tag, i][..]);
            }
        }
    }

    #[test]
    // Miri: unix datagram sockets, sendmmsg/recvmmsg: not emulated by Miri.
    #[cfg_attr(miri, ignore)]
    fn headers_go_in_front_of_frames_within_the_buffer_length() {
        let (b, b_addr) = abstract_socket("p");
        let to_b = UnixDatagram::unbound().unwrap();
        to_b.connect_addr(&SocketAddr::from_abstract_name(&b_addr.sun_path()[1..]).unwrap())
            .unwrap();
        let mut out = SendBatch::new(4, 8);
        assert!(out.push_connected_with_header(&[1, 2], &[3, 4, 5], to_b.as_fd(), 0));
        assert!(out.push_connected_with_header(&[1, 2, 3], &[9; 20], to_b.as_fd(), 0));
        assert!(out.push_connected_with_header(&[7; 10], &[9], to_b.as_fd(), 0));
        assert_eq!(out.flush(to_b.as_fd(), |f| panic!("{f:?}")).sent, 3);
        let mut rx = RecvBatch::new(4, 16);
        assert_eq!(rx.recv(b.as_fd()).unwrap(), 3);
        assert_eq!(rx.frame(0), &[1, 2, 3, 4, 5][..]);
        assert_eq!(rx.frame(1), &[1, 2, 3, 9, 9, 9, 9, 9][..]);
        assert_eq!(rx.frame(2), &[7; 8][..]);
    }

    #[test]
    // Miri: unix datagram sockets, sendmmsg/recvmmsg: not emulated by Miri.
    #[cfg_attr(miri, ignore)]
    fn huge_tags_are_sent_in_queue_order() {
        let (a, _) = abstract_socket("n");
        let (b, b_addr) = abstract_socket("o");
        let mut out = SendBatch::new(4, 8);
        out.push(&[1], &b_addr, u32::MAX);
        out.push(&[2], &b_addr, 7);
        out.push(&[3], &b_addr, u32::MAX);
        assert_eq!(out.flush(a.as_fd(), |_| {}).sent, 3);
        let mut rx = RecvBatch::new(4, 8);
        assert_eq!(rx.recv(b.as_fd()).unwrap(), 3);
        for i in 0..3u8 {
            assert_eq!(rx.frame(usize::from(i)), &[i + 1][..]);
        }
    }

    #[test]
    // Miri: unix datagram sockets, sendmmsg/recvmmsg: not emulated by Miri.
    #[cfg_attr(miri, ignore)]
    fn received_frames_are_forwarded_unchanged() {
        let (a, a_addr) = abstract_socket("q");
        let (b, b_addr) = abstract_socket("r");
        let to_b = UnixDatagram::unbound().unwrap();
        to_b.connect_addr(&SocketAddr::from_abstract_name(&b_addr.sun_path()[1..]).unwrap())
            .unwrap();
        let mut out = SendBatch::new(8, 100);
        for i in 0..5u8 {
            out.push(&vec![i; 10 + usize::from(i)], &a_addr, 1);
        }
        assert_eq!(out.flush(b.as_fd(), |f| panic!("{f:?}")).sent, 5);
        let mut rx = RecvBatch::new(8, 100);
        assert_eq!(rx.recv(a.as_fd()).unwrap(), 5);
        let mut fwd = ForwardBatch::new(2);
        assert_eq!(fwd.send(to_b.as_fd(), &rx, 1..1).unwrap(), 0);
        // At most `count` per call, from the start of the range.
        assert_eq!(fwd.send(to_b.as_fd(), &rx, 1..5).unwrap(), 2);
        assert_eq!(fwd.send(to_b.as_fd(), &rx, 3..5).unwrap(), 2);
        let mut got = RecvBatch::new(8, 100);
        assert_eq!(got.recv(b.as_fd()).unwrap(), 4);
        for k in 0..4 {
            let i = k as u8 + 1;
            assert_eq!(got.frame(k), &vec![i; 10 + usize::from(i)][..]);
        }
        // A full receiver refuses the first frame with WouldBlock.
        let mut n = 0;
        let e = loop {
            match fwd.send(to_b.as_fd(), &rx, 0..1) {
                Ok(k) => n += k,
                Err(e) => break e,
            }
            assert!(n < 100_000, "never full");
        };
        assert_eq!(e.kind(), io::ErrorKind::WouldBlock);
    }

    #[test]
    // Miri: unix datagram sockets, sendmmsg/recvmmsg: not emulated by Miri.
    #[cfg_attr(miri, ignore)]
    fn unreachable_receivers_fail_per_message() {
        let (a, _) = abstract_socket("e");
        let (b, b_addr) = abstract_socket("f");
        let nobody = SockAddrUn::abstract_name(b"nobody-bound-this-name");
        let mut out = SendBatch::new(4, 100);
        out.push(&[1; 20], &nobody, 1);
        out.push(&[2; 20], &b_addr, 2);
        let mut failures = Vec::new();
        let flushed = out.flush(a.as_fd(), |f| failures.push(f.tag));
        assert_eq!(flushed.sent, 1);
        assert_eq!(failures, vec![1]);
        let mut rx = RecvBatch::new(2, 100);
        assert_eq!(rx.recv(b.as_fd()).unwrap(), 1);
        assert_eq!(rx.frame(0), &[2; 20][..]);
    }

    /// Frame `i` of the deferral tests: its number in the first bytes.
    fn numbered(i: u32) -> Vec<u8> {
        let mut f = vec![0xab; 100];
        f[..4].copy_from_slice(&i.to_be_bytes());
        f
    }

    fn number(frame: &[u8]) -> u32 {
        u32::from_be_bytes(frame[..4].try_into().unwrap())
    }

    #[test]
    // Miri: unix datagram sockets, sendmmsg/recvmmsg: not emulated by Miri.
    #[cfg_attr(miri, ignore)]
    fn a_full_connected_socket_hands_back_its_frames_in_order() {
        let (a, b) = UnixDatagram::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let (c, d) = UnixDatagram::pair().unwrap();
        let mut out = SendBatch::new(2000, 100);
        // Far more than a's send buffer holds, interleaved with frames
        // for another socket that has room.
        for i in 0..1500u32 {
            assert!(out.push_connected(&numbered(i), a.as_fd(), 3));
            if i % 100 == 0 {
                assert!(out.push_connected(&numbered(i), c.as_fd(), 4));
            }
        }
        let mut kept = Vec::new();
        let f = out.flush_deferring(
            a.as_fd(),
            |e| panic!("{e:?}"),
            |tag, frame| kept.push((tag, number(frame), frame.len())),
        );
        assert!(f.deferred > 0, "{f:?}");
        assert_eq!(f.would_block, 0);
        assert_eq!(f.sent + f.deferred, 1515);
        assert_eq!(kept.len(), f.deferred);
        // The kept frames are a's last ones, in order, whole.
        let first = 1500 - kept.len() as u32;
        for (k, &(tag, n, len)) in kept.iter().enumerate() {
            assert_eq!((tag, n, len), (3, first + k as u32, 100));
        }
        // The other socket lost nothing.
        let mut rx = RecvBatch::new(32, 100);
        assert_eq!(rx.recv(d.as_fd()).unwrap(), 15);
        // a's receiver got exactly the frames before the first kept one.
        let mut got = 0u32;
        let mut rx = RecvBatch::new(64, 100);
        loop {
            let n = rx.recv(b.as_fd()).unwrap();
            for i in 0..n {
                assert_eq!(number(rx.frame(i)), got);
                got += 1;
            }
            if n == 0 {
                break;
            }
        }
        assert_eq!(got, first);
    }

    #[test]
    // Miri: unix datagram sockets, sendmmsg/recvmmsg: not emulated by Miri.
    #[cfg_attr(miri, ignore)]
    fn a_backlog_is_sent_in_order_when_its_receiver_has_room() {
        let (a, b) = UnixDatagram::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        b.set_nonblocking(true).unwrap();
        let mut backlog = Backlog::new(100 * 3000);
        for i in 0..3000u32 {
            if !backlog.push(&numbered(i)) {
                // The budget: exactly 3000 frames of 100 bytes.
                panic!("frame {i} refused");
            }
        }
        assert!(!backlog.push(&numbered(3000)), "over the budget");
        assert_eq!((backlog.len(), backlog.bytes()), (3000, 300_000));
        let mut next = 0u32;
        let mut rx = RecvBatch::new(64, 200);
        let mut rounds = 0;
        while !backlog.is_empty() {
            let before = backlog.len();
            let s = backlog.send(a.as_fd());
            assert_eq!((s.failed, s.error.is_none()), (0, true));
            assert_eq!(backlog.len(), before - s.sent);
            // Refill while frames are still kept: new ones go after them
            // (and reuse the room of the sent ones).
            if rounds == 0 {
                assert!(!backlog.is_empty(), "a's buffer took 3000 frames");
                for i in 3000..3000 + s.sent as u32 {
                    assert!(backlog.push(&numbered(i)));
                }
            }
            loop {
                let n = rx.recv(b.as_fd()).unwrap_or(0);
                for i in 0..n {
                    assert_eq!(number(rx.frame(i)), next, "out of order");
                    assert_eq!(rx.frame(i).len(), 100);
                    next += 1;
                }
                if n == 0 {
                    break;
                }
            }
            rounds += 1;
            assert!(rounds < 10_000);
        }
        assert!(next > 3000);
        assert_eq!(backlog.bytes(), 0);
        // A closed receiver: frames fail one by one and are dropped.
        drop(b);
        assert!(backlog.push(&numbered(1)) && backlog.push(&numbered(2)));
        let s = backlog.send(a.as_fd());
        assert_eq!((s.sent, s.failed), (0, 2));
        assert!(s.error.is_some() && backlog.is_empty());
        assert!(backlog.push(&numbered(3)));
        assert_eq!(backlog.clear(), 1);
    }
}
