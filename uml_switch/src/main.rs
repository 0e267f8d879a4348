//! `uml_switch` entry point.
#![forbid(unsafe_code)]

fn main() {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    match uml_switch::main_with_args(&argv) {
        uml_switch::server::Exit::Status(code) => std::process::exit(code),
        uml_switch::server::Exit::Signal(sig) => {
            let _ = uml_common::sys::signal::reraise_default(sig);
            std::process::exit(128 + sig);
        }
    }
}
