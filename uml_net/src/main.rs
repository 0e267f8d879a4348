//! `uml_net` entry point. The process hygiene of a setuid helper
//! (environment, umask, descriptors, privileges) is the first thing
//! `uumain` does.
#![forbid(unsafe_code)]

fn main() {
    std::process::exit(uml_net::uumain(std::env::args_os()))
}
