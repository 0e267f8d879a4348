//! `uml_mconsole` entry point: argv in, exit status out.
#![forbid(unsafe_code)]

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let status = uml_mconsole::main_with_args(&args);
    std::process::exit(status);
}
