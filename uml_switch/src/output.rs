//! The switch's messages: stdout is flushed after every line (the C switch
//! block-buffers it when it is not a terminal and loses lines when it
//! dies by a signal); stderr is unbuffered.

use std::io::{self, Write};

/// Writes `line` on stdout and flushes it.
pub fn out(line: &str) {
    let stdout = io::stdout();
    let mut o = stdout.lock();
    let _ = o.write_all(line.as_bytes());
    let _ = o.flush();
}

/// Writes `line` on stderr.
pub fn err(line: &str) {
    let _ = io::stderr().write_all(line.as_bytes());
}
