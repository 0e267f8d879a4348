//! `uml_mkcow`: create an empty UML copy-on-write file (see `lib.rs`).
#![forbid(unsafe_code)]

fn main() {
    std::process::exit(uml_mkcow::uumain(std::env::args_os()))
}
