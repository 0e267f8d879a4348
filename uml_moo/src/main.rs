//! `uml_moo`: merge a UML COW file with its backing file (see `lib.rs`).
#![forbid(unsafe_code)]

fn main() {
    std::process::exit(uml_moo::uumain(std::env::args_os()))
}
