//! `fake-xterm`: a terminal emulator without a window, for the tests of
//! UML's `xterm` console channel (which runs `<terminal> -T <title> -e
//! <port-helper> -uml-socket <socket>`; boot with
//! `xterm=/path/to/fake-xterm,-T,-e`).
//!
//! It runs the command after `-e` on a new pseudo-terminal and appends
//! everything the command side writes to the file named by
//! `$FAKE_XTERM_LOG`. Once the output contains `$FAKE_XTERM_TYPE_AFTER`
//! (e.g. a shell prompt; default: as soon as anything arrives), it
//! "types" `$FAKE_XTERM_INPUT` (if set; `\n` stands for Enter). It ends
//! when the terminal is closed on the other side or it is killed.

#![forbid(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::process::{Command, ExitCode, Stdio};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(e) = args.iter().position(|a| a == "-e") else {
        eprintln!("fake-xterm: no -e COMMAND");
        return ExitCode::from(2);
    };
    let Some((program, rest)) = args[e + 1..].split_first() else {
        eprintln!("fake-xterm: no command after -e");
        return ExitCode::from(2);
    };
    let Some(log_path) = std::env::var_os("FAKE_XTERM_LOG") else {
        eprintln!("fake-xterm: FAKE_XTERM_LOG is not set");
        return ExitCode::from(2);
    };
    let input = std::env::var("FAKE_XTERM_INPUT")
        .unwrap_or_default()
        .replace("\\n", "\n");
    let after = std::env::var("FAKE_XTERM_TYPE_AFTER").unwrap_or_default();
    match run(program, rest, &log_path, &input, after.as_bytes()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fake-xterm: {e}");
            ExitCode::from(1)
        }
    }
}

fn run(
    program: &str,
    args: &[String],
    log_path: &std::ffi::OsStr,
    input: &str,
    after: &[u8],
) -> std::io::Result<()> {
    let mut log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)?;
    let pty = nix::pty::openpty(None, None)?;
    let slave: OwnedFd = pty.slave;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::from(slave.try_clone()?))
        .stdout(Stdio::from(slave.try_clone()?))
        .stderr(Stdio::from(slave))
        .spawn()?;
    let mut master = File::from(pty.master);
    let mut typed = input.is_empty();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match master.read(&mut buf) {
            Ok(0) | Err(_) => break, // EIO: every slave descriptor is closed
            Ok(n) => {
                log.write_all(&buf[..n])?;
                log.flush()?;
                if !typed {
                    seen.extend_from_slice(&buf[..n]);
                }
                if !typed && (after.is_empty() || seen.windows(after.len()).any(|w| w == after)) {
                    master.write_all(input.as_bytes())?;
                    typed = true;
                }
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    Ok(())
}
