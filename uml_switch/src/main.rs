//! `uml_switch` entry point: everything, including dying by a signal after
//! cleanup, is in [`uml_switch::uumain`].
#![forbid(unsafe_code)]

fn main() {
    std::process::exit(uml_switch::uumain(std::env::args_os()))
}
