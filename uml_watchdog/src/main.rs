//! `uml_watchdog`: the host side of UML's harddog watchdog (see `lib.rs`).
#![forbid(unsafe_code)]

fn main() {
    std::process::exit(uml_watchdog::uumain(std::env::args_os()))
}
