//! `tunctl`: create and delete persistent TUN/TAP devices (see `lib.rs`).
#![forbid(unsafe_code)]

fn main() {
    std::process::exit(tunctl::uumain(std::env::args_os()))
}
