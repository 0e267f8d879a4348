//! `uml_mconsole` entry point: argv in, exit status out.
#![forbid(unsafe_code)]

fn main() {
    std::process::exit(uml_mconsole::uumain(std::env::args_os()))
}
