//! `port-helper`: hands a terminal to the UML kernel (see `lib.rs`).
#![forbid(unsafe_code)]

fn main() {
    std::process::exit(port_helper::uumain(std::env::args_os()))
}
