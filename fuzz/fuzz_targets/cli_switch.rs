//! `uml_switch`'s command line: the legacy single-dash long options
//! (`-unix CTL -hub -tap DEV -compat-v0 -daemon ...`), read left to right
//! with their notices, and the new GNU-style long options (`--bess`,
//! `--l2tpv3 OPTIONS`, ...).
#![no_main]
use libfuzzer_sys::fuzz_target;
use uml_switch::cli::parse;
use uml_utilities_fuzz::argv;

fuzz_target!(|data: &[u8]| {
    let args = argv(data);
    let parsed = parse("uml_switch", &args);
    for n in &parsed.notices {
        let _ = n.len();
    }
});
