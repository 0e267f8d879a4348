//! `uml_net` entry point.
#![forbid(unsafe_code)]

fn main() {
    // Arguments that are not UTF-8 cannot be valid; they are replaced and
    // then refused by the validation.
    let argv: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    std::process::exit(uml_net::run(&argv));
}
