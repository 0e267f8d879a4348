//! The positional and legacy command lines of the other tools:
//! `uml_mconsole` (with its leading `--` options), `uml_moo` (`-d`, `-b`),
//! `uml_mkcow` (`-f`), `uml_watchdog` (`-pid`, `-mconsole`), `port-helper`
//! (`-uml-socket`) and `jail_uml` (numeric users), plus the C-style number
//! readers they share.
#![no_main]
use libfuzzer_sys::fuzz_target;
use uml_utilities_fuzz::argv;

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let args = argv(rest);
    match which % 7 {
        0 => {
            let _ = uml_mconsole::options::parse(&args);
        }
        1 => {
            let _ = uml_moo::parse_args(&args);
        }
        2 => {
            let _ = uml_mkcow::parse_args(&args);
        }
        3 => {
            let _ = uml_watchdog::parse_args(&args);
        }
        4 => {
            let _ = port_helper::parse_args(&args);
        }
        5 => {
            let _ = jail_uml::parse(&args, |_| None);
            let _ = jail_uml::parse_uid(rest);
        }
        _ => {
            let _ = uml_common::cli::c_integer(rest);
            let _ = tunctl::c_strtol(rest);
        }
    }
});
