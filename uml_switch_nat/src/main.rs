//! `uml_switch_nat`: the NAT port of `uml_switch` (see `lib.rs`).
#![forbid(unsafe_code)]

fn main() {
    std::process::exit(uml_switch_nat::uumain(std::env::args_os()))
}
