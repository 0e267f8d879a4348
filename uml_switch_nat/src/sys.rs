//! The only `unsafe` code of this crate (and the workspace's one exception
//! to "unsafe lives in `common/src/sys/`", because `uml_common` must not
//! link libslirp; ARCHITECTURE.md): a safe wrapper around one libslirp
//! instance.
//!
//! [`Stack::new`] creates the instance with a [`NatConfig`]; the stack
//! sends every Ethernet frame for the guests on the socket given to it
//! (non-blocking, `MSG_DONTWAIT`); [`Stack::input`] hands it a guest's
//! frame; [`Stack::poll`] waits (for the stack's host sockets, its timers
//! and one more descriptor, the switch's socket) and lets the stack do its
//! work. Everything libslirp calls back (send, timers, poll registration)
//! is served by [`State`], which lives in a `Box` whose address libslirp
//! keeps as its `opaque` pointer; no Rust reference to it is held while a
//! libslirp function runs, since libslirp may call back into it.
//!
//! libslirp's declarations are the few this needs, written from
//! `<slirp/libslirp.h>` of libslirp 4.7 (configuration version 4); a unit
//! test compiles a C program against that header and compares every
//! field's offset and each struct's size with these.

use std::ffi::{c_char, c_int, c_void, CStr};
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::time::{Duration, Instant};

use uml_common::nat::{self, HostFwd, NatConfig, Proto};

/// The `SlirpConfig` version used (libslirp ≥ 4.7).
const CONFIG_VERSION: u32 = 4;

/// `<slirp/libslirp.h>`, the part used.
#[allow(non_camel_case_types, dead_code)]
mod ffi {
    use std::ffi::{c_char, c_int, c_void};

    pub use libc::{in6_addr, in_addr, sockaddr_in, sockaddr_in6};

    /// The opaque instance.
    #[repr(C)]
    pub struct Slirp {
        _private: [u8; 0],
    }

    pub const SLIRP_POLL_IN: c_int = 1 << 0;
    pub const SLIRP_POLL_OUT: c_int = 1 << 1;
    pub const SLIRP_POLL_PRI: c_int = 1 << 2;
    pub const SLIRP_POLL_ERR: c_int = 1 << 3;
    pub const SLIRP_POLL_HUP: c_int = 1 << 4;

    pub type SlirpWriteCb =
        Option<unsafe extern "C" fn(buf: *const c_void, len: usize, opaque: *mut c_void) -> isize>;
    pub type SlirpTimerCb = Option<unsafe extern "C" fn(opaque: *mut c_void)>;
    pub type SlirpAddPollCb =
        Option<unsafe extern "C" fn(fd: c_int, events: c_int, opaque: *mut c_void) -> c_int>;
    pub type SlirpGetREventsCb =
        Option<unsafe extern "C" fn(idx: c_int, opaque: *mut c_void) -> c_int>;

    /// `SlirpCb`, up to version 4.
    #[repr(C)]
    pub struct SlirpCb {
        pub send_packet: SlirpWriteCb,
        pub guest_error: Option<unsafe extern "C" fn(msg: *const c_char, opaque: *mut c_void)>,
        pub clock_get_ns: Option<unsafe extern "C" fn(opaque: *mut c_void) -> i64>,
        pub timer_new: Option<
            unsafe extern "C" fn(
                cb: SlirpTimerCb,
                cb_opaque: *mut c_void,
                opaque: *mut c_void,
            ) -> *mut c_void,
        >,
        pub timer_free: Option<unsafe extern "C" fn(timer: *mut c_void, opaque: *mut c_void)>,
        pub timer_mod:
            Option<unsafe extern "C" fn(timer: *mut c_void, expire_time: i64, opaque: *mut c_void)>,
        pub register_poll_fd: Option<unsafe extern "C" fn(fd: c_int, opaque: *mut c_void)>,
        pub unregister_poll_fd: Option<unsafe extern "C" fn(fd: c_int, opaque: *mut c_void)>,
        pub notify: Option<unsafe extern "C" fn(opaque: *mut c_void)>,
        pub init_completed: Option<unsafe extern "C" fn(slirp: *mut Slirp, opaque: *mut c_void)>,
        pub timer_new_opaque: Option<
            unsafe extern "C" fn(
                id: c_int,
                cb_opaque: *mut c_void,
                opaque: *mut c_void,
            ) -> *mut c_void,
        >,
    }

    /// `SlirpConfig`, up to version 4.
    #[repr(C)]
    pub struct SlirpConfig {
        pub version: u32,
        pub restricted: c_int,
        pub in_enabled: bool,
        pub vnetwork: in_addr,
        pub vnetmask: in_addr,
        pub vhost: in_addr,
        pub in6_enabled: bool,
        pub vprefix_addr6: in6_addr,
        pub vprefix_len: u8,
        pub vhost6: in6_addr,
        pub vhostname: *const c_char,
        pub tftp_server_name: *const c_char,
        pub tftp_path: *const c_char,
        pub bootfile: *const c_char,
        pub vdhcp_start: in_addr,
        pub vnameserver: in_addr,
        pub vnameserver6: in6_addr,
        pub vdnssearch: *mut *const c_char,
        pub vdomainname: *const c_char,
        pub if_mtu: usize,
        pub if_mru: usize,
        pub disable_host_loopback: bool,
        pub enable_emu: bool,
        pub outbound_addr: *const sockaddr_in,
        pub outbound_addr6: *const sockaddr_in6,
        pub disable_dns: bool,
        pub disable_dhcp: bool,
    }

    #[link(name = "slirp")]
    extern "C" {
        pub fn slirp_new(
            cfg: *const SlirpConfig,
            callbacks: *const SlirpCb,
            opaque: *mut c_void,
        ) -> *mut Slirp;
        pub fn slirp_cleanup(slirp: *mut Slirp);
        pub fn slirp_pollfds_fill(
            slirp: *mut Slirp,
            timeout: *mut u32,
            add_poll: SlirpAddPollCb,
            opaque: *mut c_void,
        );
        pub fn slirp_pollfds_poll(
            slirp: *mut Slirp,
            select_error: c_int,
            get_revents: SlirpGetREventsCb,
            opaque: *mut c_void,
        );
        pub fn slirp_input(slirp: *mut Slirp, pkt: *const u8, pkt_len: c_int);
        pub fn slirp_add_hostfwd(
            slirp: *mut Slirp,
            is_udp: c_int,
            host_addr: in_addr,
            host_port: c_int,
            guest_addr: in_addr,
            guest_port: c_int,
        ) -> c_int;
        pub fn slirp_remove_hostfwd(
            slirp: *mut Slirp,
            is_udp: c_int,
            host_addr: in_addr,
            host_port: c_int,
        ) -> c_int;
        pub fn slirp_version_string() -> *const c_char;
    }
}

/// One timer libslirp created.
#[derive(Debug)]
struct Timer {
    cb: ffi::SlirpTimerCb,
    cb_opaque: *mut c_void,
    /// When it fires, in ms of [`State::now_ms`]; `None`: not armed.
    expire_ms: Option<i64>,
}

/// What libslirp's callbacks work on.
#[derive(Debug)]
struct State {
    /// The switch's socket, where frames for the guests go.
    sock: RawFd,
    /// The clock's zero.
    start: Instant,
    /// Timers by index; a timer's handle is its index + 1.
    timers: Vec<Option<Timer>>,
    /// The descriptors of the current `poll`.
    pollfds: Vec<libc::pollfd>,
    /// Frames dropped because the switch's socket stayed full.
    dropped: u64,
    /// Other send errors (reported once).
    send_error: Option<io::Error>,
}

impl State {
    fn now_ms(&self) -> i64 {
        i64::try_from(self.start.elapsed().as_millis()).unwrap_or(i64::MAX)
    }
}

/// One libslirp instance and the state its callbacks use.
#[derive(Debug)]
pub struct Stack {
    slirp: *mut ffi::Slirp,
    /// Owned: made by `Box::into_raw`, freed in `Drop` after
    /// `slirp_cleanup`.
    state: *mut State,
}

/// How long sending a frame waits for room in a full switch socket
/// before the frame is dropped (TCP then retransmits, as over a lossy
/// link).
const SEND_PATIENCE_MS: c_int = 20;

unsafe extern "C" fn cb_send_packet(buf: *const c_void, len: usize, opaque: *mut c_void) -> isize {
    // SAFETY: opaque is the State pointer given to slirp_new, alive until
    // slirp_cleanup; libslirp calls back from within our calls only, when
    // no Rust reference to the State exists.
    let state = unsafe { &mut *opaque.cast::<State>() };
    for attempt in 0..2 {
        // SAFETY: libslirp passes a buffer of len readable bytes.
        let rc = unsafe { libc::send(state.sock, buf, len, libc::MSG_DONTWAIT) };
        if rc >= 0 {
            return rc;
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EAGAIN) if attempt == 0 => {
                let mut p = libc::pollfd {
                    fd: state.sock,
                    events: libc::POLLOUT,
                    revents: 0,
                };
                // SAFETY: one valid pollfd.
                unsafe { libc::poll(&mut p, 1, SEND_PATIENCE_MS) };
            }
            Some(libc::EAGAIN) => {
                state.dropped += 1;
                return len as isize;
            }
            _ => {
                state.send_error.get_or_insert(e);
                return -1;
            }
        }
    }
    len as isize
}

unsafe extern "C" fn cb_guest_error(msg: *const c_char, _opaque: *mut c_void) {
    if msg.is_null() {
        return;
    }
    // SAFETY: libslirp passes a NUL-terminated message.
    let text = unsafe { CStr::from_ptr(msg) }.to_string_lossy();
    eprintln!("uml_switch_nat: a guest misbehaves: {text}");
}

unsafe extern "C" fn cb_clock_get_ns(opaque: *mut c_void) -> i64 {
    // SAFETY: as in cb_send_packet.
    let state = unsafe { &*opaque.cast::<State>() };
    i64::try_from(state.start.elapsed().as_nanos()).unwrap_or(i64::MAX)
}

unsafe extern "C" fn cb_timer_new(
    cb: ffi::SlirpTimerCb,
    cb_opaque: *mut c_void,
    opaque: *mut c_void,
) -> *mut c_void {
    // SAFETY: as in cb_send_packet.
    let state = unsafe { &mut *opaque.cast::<State>() };
    let timer = Timer {
        cb,
        cb_opaque,
        expire_ms: None,
    };
    let index = match state.timers.iter().position(Option::is_none) {
        Some(i) => {
            state.timers[i] = Some(timer);
            i
        }
        None => {
            state.timers.push(Some(timer));
            state.timers.len() - 1
        }
    };
    // A handle, never dereferenced: the index + 1 (never null).
    (index + 1) as *mut c_void
}

fn timer_slot(state: &mut State, handle: *mut c_void) -> Option<&mut Option<Timer>> {
    (handle as usize)
        .checked_sub(1)
        .and_then(|i| state.timers.get_mut(i))
}

unsafe extern "C" fn cb_timer_free(timer: *mut c_void, opaque: *mut c_void) {
    // SAFETY: as in cb_send_packet.
    let state = unsafe { &mut *opaque.cast::<State>() };
    if let Some(slot) = timer_slot(state, timer) {
        *slot = None;
    }
}

unsafe extern "C" fn cb_timer_mod(timer: *mut c_void, expire_ms: i64, opaque: *mut c_void) {
    // SAFETY: as in cb_send_packet.
    let state = unsafe { &mut *opaque.cast::<State>() };
    if let Some(Some(t)) = timer_slot(state, timer) {
        t.expire_ms = Some(expire_ms);
    }
}

unsafe extern "C" fn cb_poll_fd(_fd: c_int, _opaque: *mut c_void) {}

unsafe extern "C" fn cb_notify(_opaque: *mut c_void) {}

unsafe extern "C" fn cb_add_poll(fd: c_int, events: c_int, opaque: *mut c_void) -> c_int {
    // SAFETY: opaque is the State pointer Stack::poll passes, valid for
    // the call of slirp_pollfds_fill.
    let state = unsafe { &mut *opaque.cast::<State>() };
    let mut ev: libc::c_short = 0;
    if events & ffi::SLIRP_POLL_IN != 0 {
        ev |= libc::POLLIN;
    }
    if events & ffi::SLIRP_POLL_OUT != 0 {
        ev |= libc::POLLOUT;
    }
    if events & ffi::SLIRP_POLL_PRI != 0 {
        ev |= libc::POLLPRI;
    }
    state.pollfds.push(libc::pollfd {
        fd,
        events: ev,
        revents: 0,
    });
    c_int::try_from(state.pollfds.len() - 1).unwrap_or(-1)
}

unsafe extern "C" fn cb_get_revents(idx: c_int, opaque: *mut c_void) -> c_int {
    // SAFETY: as in cb_add_poll, for slirp_pollfds_poll.
    let state = unsafe { &*opaque.cast::<State>() };
    let Some(p) = usize::try_from(idx).ok().and_then(|i| state.pollfds.get(i)) else {
        return 0;
    };
    let r = p.revents;
    let mut out = 0;
    if r & libc::POLLIN != 0 {
        out |= ffi::SLIRP_POLL_IN;
    }
    if r & libc::POLLOUT != 0 {
        out |= ffi::SLIRP_POLL_OUT;
    }
    if r & libc::POLLPRI != 0 {
        out |= ffi::SLIRP_POLL_PRI;
    }
    if r & libc::POLLERR != 0 {
        out |= ffi::SLIRP_POLL_ERR;
    }
    if r & libc::POLLHUP != 0 {
        out |= ffi::SLIRP_POLL_HUP;
    }
    out
}

static CALLBACKS: ffi::SlirpCb = ffi::SlirpCb {
    send_packet: Some(cb_send_packet),
    guest_error: Some(cb_guest_error),
    clock_get_ns: Some(cb_clock_get_ns),
    timer_new: Some(cb_timer_new),
    timer_free: Some(cb_timer_free),
    timer_mod: Some(cb_timer_mod),
    register_poll_fd: Some(cb_poll_fd),
    unregister_poll_fd: Some(cb_poll_fd),
    notify: Some(cb_notify),
    init_completed: None,
    timer_new_opaque: None,
};

fn in_addr(a: Ipv4Addr) -> ffi::in_addr {
    ffi::in_addr {
        s_addr: u32::from(a).to_be(),
    }
}

fn in6_addr(a: std::net::Ipv6Addr) -> ffi::in6_addr {
    ffi::in6_addr {
        s6_addr: a.octets(),
    }
}

/// libslirp's version, e.g. `4.7.0`.
pub fn version() -> String {
    // SAFETY: returns a pointer to a static NUL-terminated string.
    let p = unsafe { ffi::slirp_version_string() };
    if p.is_null() {
        return String::from("?");
    }
    // SAFETY: non-null, static, NUL-terminated.
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

impl Stack {
    /// Creates the stack for `config`; frames for the guests are sent on
    /// `sock`, which must stay open as long as the stack.
    pub fn new(config: &NatConfig, sock: BorrowedFd<'_>) -> io::Result<Stack> {
        let state = Box::into_raw(Box::new(State {
            sock: sock.as_raw_fd(),
            start: Instant::now(),
            timers: Vec::new(),
            pollfds: Vec::new(),
            dropped: 0,
            send_error: None,
        }));
        let cfg = ffi::SlirpConfig {
            version: CONFIG_VERSION,
            restricted: c_int::from(config.restricted),
            in_enabled: true,
            vnetwork: in_addr(config.net),
            vnetmask: in_addr(config.mask()),
            vhost: in_addr(config.host),
            in6_enabled: config.ipv6,
            vprefix_addr6: in6_addr(nat::IPV6_PREFIX),
            vprefix_len: 64,
            vhost6: in6_addr(nat::IPV6_HOST),
            vhostname: std::ptr::null(),
            tftp_server_name: std::ptr::null(),
            tftp_path: std::ptr::null(),
            bootfile: std::ptr::null(),
            vdhcp_start: in_addr(config.dhcp_start),
            vnameserver: in_addr(config.dns),
            vnameserver6: in6_addr(nat::IPV6_DNS),
            vdnssearch: std::ptr::null_mut(),
            vdomainname: std::ptr::null(),
            if_mtu: 0,
            if_mru: 0,
            disable_host_loopback: !config.host_loopback,
            enable_emu: false,
            outbound_addr: std::ptr::null(),
            outbound_addr6: std::ptr::null(),
            disable_dns: !config.dns_forwarding,
            disable_dhcp: false,
        };
        // SAFETY: cfg is a complete version-4 configuration whose pointers
        // are null (libslirp copies what it keeps); CALLBACKS is static;
        // state is a valid pointer that outlives the instance (freed in
        // Drop after slirp_cleanup).
        let slirp = unsafe { ffi::slirp_new(&cfg, &CALLBACKS, state.cast()) };
        if slirp.is_null() {
            // SAFETY: made by Box::into_raw above and not shared (no
            // instance exists).
            drop(unsafe { Box::from_raw(state) });
            return Err(io::Error::other(format!(
                "libslirp {} refused the configuration",
                version()
            )));
        }
        Ok(Stack { slirp, state })
    }

    /// Adds a host port forward (binds the host socket).
    pub fn add_hostfwd(&mut self, f: &HostFwd) -> io::Result<()> {
        // Cleared so that a failure without errno is not blamed on an
        // older error.
        nix::errno::Errno::clear();
        // SAFETY: self.slirp is a live instance; plain values.
        let rc = unsafe {
            ffi::slirp_add_hostfwd(
                self.slirp,
                c_int::from(f.proto == Proto::Udp),
                in_addr(f.host_addr),
                c_int::from(f.host_port),
                in_addr(f.guest_addr),
                c_int::from(f.guest_port),
            )
        };
        if rc == 0 {
            return Ok(());
        }
        let e = io::Error::last_os_error();
        Err(if e.raw_os_error().unwrap_or(0) == 0 {
            io::Error::other("libslirp could not listen")
        } else {
            e
        })
    }

    /// Removes a host port forward; false if there was none.
    pub fn remove_hostfwd(&mut self, proto: Proto, host_addr: Ipv4Addr, host_port: u16) -> bool {
        // SAFETY: self.slirp is a live instance; plain values.
        let rc = unsafe {
            ffi::slirp_remove_hostfwd(
                self.slirp,
                c_int::from(proto == Proto::Udp),
                in_addr(host_addr),
                c_int::from(host_port),
            )
        };
        rc == 0
    }

    /// Hands the stack one frame a guest sent.
    pub fn input(&mut self, frame: &[u8]) {
        let Ok(len) = c_int::try_from(frame.len()) else {
            return;
        };
        // SAFETY: self.slirp is live; frame is len readable bytes that
        // libslirp copies or parses during the call. Its callbacks reach
        // the State through the raw pointer only.
        unsafe { ffi::slirp_input(self.slirp, frame.as_ptr(), len) };
    }

    /// Waits up to `max_wait` for the stack's sockets, its next timer or
    /// one of `extra` (at most 32) to be readable, then lets the stack
    /// handle its sockets and fires the timers that are due. Returns which
    /// of `extra` are readable (or hung up): bit i for `extra[i]`.
    pub fn poll(&mut self, extra: &[BorrowedFd<'_>], max_wait: Duration) -> io::Result<u32> {
        let state = self.state;
        let extras = extra.len().min(32);
        {
            // SAFETY: state is live and no other reference exists now (no
            // libslirp call is running).
            let s = unsafe { &mut *state };
            s.pollfds.clear();
            for fd in &extra[..extras] {
                s.pollfds.push(libc::pollfd {
                    fd: fd.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                });
            }
        }
        let mut timeout: u32 = u32::MAX;
        // SAFETY: live instance; cb_add_poll gets state, which it may
        // borrow for each call (no Rust reference is held meanwhile).
        unsafe {
            ffi::slirp_pollfds_fill(self.slirp, &mut timeout, Some(cb_add_poll), state.cast())
        };
        let wait = {
            // SAFETY: as above, after the call returned.
            let s = unsafe { &mut *state };
            let now = s.now_ms();
            let mut wait = i64::try_from(max_wait.as_millis()).unwrap_or(i64::MAX);
            if timeout != u32::MAX {
                wait = wait.min(i64::from(timeout));
            }
            for t in s.timers.iter().flatten() {
                if let Some(at) = t.expire_ms {
                    wait = wait.min((at - now).max(0));
                }
            }
            c_int::try_from(wait.max(0)).unwrap_or(c_int::MAX)
        };
        let (rc, poll_error) = {
            // SAFETY: as above.
            let s = unsafe { &mut *state };
            let n = libc::nfds_t::try_from(s.pollfds.len()).unwrap_or(0);
            // SAFETY: pollfds is a Vec of n initialised pollfd structs.
            let rc = unsafe { libc::poll(s.pollfds.as_mut_ptr(), n, wait) };
            let error = (rc < 0).then(io::Error::last_os_error);
            (rc, error)
        };
        if let Some(e) = &poll_error {
            if e.raw_os_error() != Some(libc::EINTR) {
                return Err(io::Error::new(e.kind(), e.to_string()));
            }
        }
        // SAFETY: live instance; cb_get_revents reads the pollfds filled
        // above through state.
        unsafe {
            ffi::slirp_pollfds_poll(
                self.slirp,
                c_int::from(rc < 0),
                Some(cb_get_revents),
                state.cast(),
            )
        };
        self.fire_timers();
        // SAFETY: as above.
        let s = unsafe { &*state };
        let mut ready = 0;
        if rc > 0 {
            for (i, p) in s.pollfds.iter().take(extras).enumerate() {
                if p.revents & (libc::POLLIN | libc::POLLHUP | libc::POLLERR) != 0 {
                    ready |= 1 << i;
                }
            }
        }
        Ok(ready)
    }

    /// Fires every timer that is due (each once; a timer re-armed by its
    /// callback waits for the next round).
    fn fire_timers(&mut self) {
        let state = self.state;
        let due: Vec<usize> = {
            // SAFETY: live, no other reference.
            let s = unsafe { &mut *state };
            let now = s.now_ms();
            s.timers
                .iter_mut()
                .enumerate()
                .filter_map(|(i, t)| {
                    let t = t.as_mut()?;
                    t.expire_ms.filter(|&at| at <= now)?;
                    t.expire_ms = None;
                    Some(i)
                })
                .collect()
        };
        for i in due {
            let next = {
                // SAFETY: live, no other reference (between callbacks).
                let s = unsafe { &*state };
                // Looked up again: an earlier callback may have freed it.
                match s.timers.get(i) {
                    Some(Some(t)) => t.cb.map(|cb| (cb, t.cb_opaque)),
                    _ => None,
                }
            };
            if let Some((cb, cb_opaque)) = next {
                // SAFETY: a callback and its argument that libslirp gave
                // timer_new for a timer it has not freed; the instance is
                // live.
                unsafe { cb(cb_opaque) };
            }
        }
    }

    /// Frames dropped so far because the switch's socket stayed full, and
    /// the first error sending to it, if any (taken).
    pub fn take_send_trouble(&mut self) -> (u64, Option<io::Error>) {
        // SAFETY: live, no other reference.
        let s = unsafe { &mut *self.state };
        (s.dropped, s.send_error.take())
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: the instance is live and is not used again; afterwards
        // libslirp calls nothing back, so the State can be freed.
        unsafe {
            ffi::slirp_cleanup(self.slirp);
            drop(Box::from_raw(self.state));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{offset_of, size_of};
    use std::os::fd::AsFd;
    use std::os::unix::net::UnixDatagram;

    /// The C side of `declarations_match_the_header`.
    const LAYOUT_C: &str = r#"
#include <stddef.h>
#include <stdio.h>
#include <libslirp.h>
#define F(t, f) printf("%s.%s %zu\n", #t, #f, offsetof(t, f));
int main(void) {
    printf("SlirpConfig %zu\nSlirpCb %zu\n", sizeof(SlirpConfig), sizeof(SlirpCb));
    F(SlirpConfig, restricted) F(SlirpConfig, in_enabled) F(SlirpConfig, vnetwork)
    F(SlirpConfig, vnetmask) F(SlirpConfig, vhost) F(SlirpConfig, in6_enabled)
    F(SlirpConfig, vprefix_addr6) F(SlirpConfig, vprefix_len) F(SlirpConfig, vhost6)
    F(SlirpConfig, vhostname) F(SlirpConfig, tftp_server_name) F(SlirpConfig, tftp_path)
    F(SlirpConfig, bootfile) F(SlirpConfig, vdhcp_start) F(SlirpConfig, vnameserver)
    F(SlirpConfig, vnameserver6) F(SlirpConfig, vdnssearch) F(SlirpConfig, vdomainname)
    F(SlirpConfig, if_mtu) F(SlirpConfig, if_mru) F(SlirpConfig, disable_host_loopback)
    F(SlirpConfig, enable_emu) F(SlirpConfig, outbound_addr) F(SlirpConfig, outbound_addr6)
    F(SlirpConfig, disable_dns) F(SlirpConfig, disable_dhcp)
    F(SlirpCb, send_packet) F(SlirpCb, guest_error) F(SlirpCb, clock_get_ns)
    F(SlirpCb, timer_new) F(SlirpCb, timer_free) F(SlirpCb, timer_mod)
    F(SlirpCb, register_poll_fd) F(SlirpCb, unregister_poll_fd) F(SlirpCb, notify)
    F(SlirpCb, init_completed) F(SlirpCb, timer_new_opaque)
    return 0;
}
"#;

    macro_rules! rust_layout {
        ($($t:ident . $f:ident),* $(,)?) => {{
            let mut lines = vec![
                format!("SlirpConfig {}", size_of::<ffi::SlirpConfig>()),
                format!("SlirpCb {}", size_of::<ffi::SlirpCb>()),
            ];
            $(lines.push(format!("{}.{} {}", stringify!($t), stringify!($f), offset_of!(ffi::$t, $f)));)*
            lines.join("\n") + "\n"
        }};
    }

    /// Every field's offset and each struct's size agree with the
    /// installed `<slirp/libslirp.h>` (compiled with cc, which the build
    /// needs anyway).
    #[test]
    fn declarations_match_the_header() {
        let dir = std::env::temp_dir().join(format!("slirp-layout-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let src = dir.join("layout.c");
        let exe = dir.join("layout");
        std::fs::write(&src, LAYOUT_C).unwrap();
        let cc = std::process::Command::new("cc")
            .arg("-I/usr/include/slirp")
            .arg(&src)
            .arg("-o")
            .arg(&exe)
            .output()
            .unwrap();
        assert!(
            cc.status.success(),
            "{}",
            String::from_utf8_lossy(&cc.stderr)
        );
        let out = std::process::Command::new(&exe).output().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        let c = String::from_utf8(out.stdout).unwrap();
        let rust = rust_layout!(
            SlirpConfig.restricted,
            SlirpConfig.in_enabled,
            SlirpConfig.vnetwork,
            SlirpConfig.vnetmask,
            SlirpConfig.vhost,
            SlirpConfig.in6_enabled,
            SlirpConfig.vprefix_addr6,
            SlirpConfig.vprefix_len,
            SlirpConfig.vhost6,
            SlirpConfig.vhostname,
            SlirpConfig.tftp_server_name,
            SlirpConfig.tftp_path,
            SlirpConfig.bootfile,
            SlirpConfig.vdhcp_start,
            SlirpConfig.vnameserver,
            SlirpConfig.vnameserver6,
            SlirpConfig.vdnssearch,
            SlirpConfig.vdomainname,
            SlirpConfig.if_mtu,
            SlirpConfig.if_mru,
            SlirpConfig.disable_host_loopback,
            SlirpConfig.enable_emu,
            SlirpConfig.outbound_addr,
            SlirpConfig.outbound_addr6,
            SlirpConfig.disable_dns,
            SlirpConfig.disable_dhcp,
            SlirpCb.send_packet,
            SlirpCb.guest_error,
            SlirpCb.clock_get_ns,
            SlirpCb.timer_new,
            SlirpCb.timer_free,
            SlirpCb.timer_mod,
            SlirpCb.register_poll_fd,
            SlirpCb.unregister_poll_fd,
            SlirpCb.notify,
            SlirpCb.init_completed,
            SlirpCb.timer_new_opaque,
        );
        assert_eq!(rust, c);
    }

    #[test]
    fn a_stack_is_made_and_answers_arp_for_the_gateway() {
        assert!(version().starts_with('4'), "{}", version());
        let config = uml_common::nat::parse("").unwrap();
        let (ours, theirs) = UnixDatagram::pair().unwrap();
        let mut stack = Stack::new(&config, ours.as_fd()).unwrap();
        // An ARP request for 10.0.2.2 from 52:54:00:12:34:56 (10.0.2.15).
        let mut f = vec![0xff; 6];
        f.extend([0x52, 0x54, 0, 0x12, 0x34, 0x56, 0x08, 0x06]);
        f.extend([0, 1, 8, 0, 6, 4, 0, 1]);
        f.extend([0x52, 0x54, 0, 0x12, 0x34, 0x56, 10, 0, 2, 15]);
        f.extend([0, 0, 0, 0, 0, 0, 10, 0, 2, 2]);
        f.resize(60, 0);
        stack.input(&f);
        theirs
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut buf = [0u8; 1600];
        let n = theirs.recv(&mut buf).unwrap();
        assert!(n >= 42, "{n}");
        assert_eq!(&buf[12..14], &[0x08, 0x06]);
        assert_eq!(&buf[20..22], &[0, 2], "an ARP reply");
        assert_eq!(&buf[28..32], &[10, 0, 2, 2]);
        assert_eq!(&buf[0..6], &[0x52, 0x54, 0, 0x12, 0x34, 0x56]);
        // A forward of a free port is added and removed again.
        let f = uml_common::nat::parse_hostfwd("tcp:127.0.0.1:0-:80", config.dhcp_start);
        assert!(f.is_err(), "port 0 is refused by the parser");
        // A port that was free a moment ago (other tests running beside
        // this one may take it meanwhile: then another, a bounded number
        // of times).
        let mut port = 0;
        for attempt in 1.. {
            port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .unwrap()
                .port();
            let fwd = HostFwd {
                proto: Proto::Tcp,
                host_addr: Ipv4Addr::LOCALHOST,
                host_port: port,
                guest_addr: config.dhcp_start,
                guest_port: 80,
            };
            match stack.add_hostfwd(&fwd) {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && attempt < 20 => {}
                Err(e) => panic!("hostfwd on port {port}, attempt {attempt}: {e}"),
            }
        }
        assert_eq!(stack.poll(&[theirs.as_fd()], Duration::ZERO).unwrap(), 0);
        // Listening now; removed once.
        assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
        assert!(stack.remove_hostfwd(Proto::Tcp, Ipv4Addr::LOCALHOST, port));
        assert!(!stack.remove_hostfwd(Proto::Tcp, Ipv4Addr::LOCALHOST, port));
    }
}
