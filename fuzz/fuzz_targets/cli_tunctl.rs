//! `tunctl`'s command line: the byte-exact glibc `getopt` (short options,
//! clustered, with values attached or separate, the long options, `--`,
//! permutation with and without `POSIXLY_CORRECT`) and the parser built on
//! it, with made-up user and group databases; the error texts are
//! rendered as `tunctl` prints them.
#![no_main]
use libfuzzer_sys::fuzz_target;
use tunctl::{parse, Accounts};
use uml_utilities_fuzz::argv;

struct Fake;

impl Accounts for Fake {
    fn uid_of(&self, name: &[u8]) -> Option<u32> {
        (name == b"alice").then_some(1000)
    }
    fn gid_of(&self, name: &[u8]) -> Option<u32> {
        (name == b"uml-net").then_some(120)
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&cfg, rest)) = data.split_first() else {
        return;
    };
    let args = argv(rest);
    match parse(&args, cfg & 1 != 0, &Fake) {
        Ok(_) => {}
        Err(e) => {
            let _ = e.stderr_text(b"tunctl");
            let _ = e.exit_code();
        }
    }
});
