//! `hold-lock read|write FILE...`: takes the `fcntl` record lock a UML
//! kernel's block driver takes on a ubd file (`F_SETLK` over the whole
//! file: a read lock on a backing file, a write lock on an image or COW
//! file), prints `locked` on stdout and holds the locks until stdin reaches
//! end of file. A stand-in for a running guest in the tests of
//! `uml_moo`/`uml_mkcow` that need no kernel.

#![forbid(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::process::ExitCode;

use nix::fcntl::{fcntl, FcntlArg};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((kind, files)) = args.split_first() else {
        eprintln!("usage: hold-lock read|write FILE...");
        return ExitCode::from(2);
    };
    let (write, l_type) = match kind.as_str() {
        "read" => (false, libc::F_RDLCK),
        "write" => (true, libc::F_WRLCK),
        _ => {
            eprintln!("hold-lock: read or write, not {kind:?}");
            return ExitCode::from(2);
        }
    };
    let mut held: Vec<File> = Vec::new();
    for path in files {
        let file = match OpenOptions::new().read(true).write(write).open(path) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("hold-lock: {path}: {e}");
                return ExitCode::from(1);
            }
        };
        let lock = libc::flock {
            l_type: l_type as libc::c_short,
            l_whence: libc::SEEK_SET as libc::c_short,
            l_start: 0,
            l_len: 0,
            l_pid: 0,
        };
        if let Err(e) = fcntl(file.as_raw_fd(), FcntlArg::F_SETLK(&lock)) {
            eprintln!("hold-lock: F_SETLK {path}: {e}");
            return ExitCode::from(1);
        }
        held.push(file);
    }
    let mut out = std::io::stdout();
    if writeln!(out, "locked").and_then(|()| out.flush()).is_err() {
        return ExitCode::from(1);
    }
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
    drop(held);
    ExitCode::SUCCESS
}
