//! `jail_uml`: run a UML kernel chrooted as an unprivileged user (see
//! `lib.rs`).
#![forbid(unsafe_code)]

fn main() {
    std::process::exit(jail_uml::uumain(std::env::args_os()))
}
