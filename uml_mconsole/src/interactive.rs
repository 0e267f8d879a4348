//! Interactive mode: rustyline on a terminal (history kept in
//! `~/.uml_mconsole_history`, line editing, tab completion), and the C
//! client's readline behaviour on a pipe (prompt and line echoed).

use std::io::{self, BufRead, IsTerminal, Write};
use std::path::PathBuf;

use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::{Context, Editor, Helper, Highlighter, Hinter, Validator};

use crate::client::{Io, Session};

/// Command names offered by tab completion: the local ones and the
/// kernel's (Linux 6.1 `help`).
pub const COMMANDS: &[&str] = &[
    "quit",
    "help",
    "switch",
    "log",
    "mconsole-version",
    "int",
    "version",
    "halt",
    "reboot",
    "config",
    "remove",
    "sysrq",
    "cad",
    "stop",
    "go",
    "proc",
    "stack",
];

/// Completes the first word of a line from [`COMMANDS`].
#[derive(Debug, Default, Helper, Highlighter, Hinter, Validator)]
pub struct CommandCompleter;

/// The completions of the word under the cursor.
pub fn complete_word(line: &str, pos: usize) -> (usize, Vec<String>) {
    let head = &line[..pos];
    if head.contains(char::is_whitespace) {
        return (pos, Vec::new());
    }
    let mut names: Vec<String> = COMMANDS
        .iter()
        .filter(|c| c.starts_with(head))
        .map(|c| (*c).to_string())
        .collect();
    names.sort();
    (0, names)
}

impl Completer for CommandCompleter {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let (start, names) = complete_word(line, pos);
        Ok((
            start,
            names
                .into_iter()
                .map(|n| Pair {
                    display: n.clone(),
                    replacement: format!("{n} "),
                })
                .collect(),
        ))
    }
}

fn history_file() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| PathBuf::from(h).join(".uml_mconsole_history"))
}

/// Runs the interactive loop; returns the exit status.
pub fn run(session: &mut Session) -> i32 {
    if io::stdin().is_terminal() {
        run_terminal(session)
    } else {
        run_pipe(session)
    }
}

fn run_pipe(session: &mut Session) -> i32 {
    let stdin = io::stdin();
    let mut input = stdin.lock();
    let stdout = io::stdout();
    let stderr = io::stderr();
    let mut line = Vec::new();
    loop {
        let prompt = session.prompt();
        let mut out = stdout.lock();
        let _ = out.write_all(prompt.as_bytes());
        line.clear();
        match input.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => {
                let _ = out.write_all(b"\n");
                let _ = out.flush();
                return 0;
            }
            Ok(_) => {}
        }
        if line.last() == Some(&b'\n') {
            line.pop();
        }
        let _ = out.write_all(&line);
        let _ = out.write_all(b"\n");
        let mut err = stderr.lock();
        let outcome = session.run_line(
            &line,
            &mut Io {
                out: &mut out,
                err: &mut err,
            },
        );
        let _ = out.flush();
        if outcome.quit {
            return 0;
        }
        if outcome.fatal {
            return outcome.status;
        }
    }
}

fn run_terminal(session: &mut Session) -> i32 {
    let config = rustyline::Config::builder()
        .auto_add_history(false)
        .max_history_size(1000)
        .map(|b| b.build())
        .unwrap_or_default();
    let mut editor: Editor<CommandCompleter, DefaultHistory> = match Editor::with_config(config) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("uml_mconsole: cannot start line editing: {e}; reading plain lines");
            return run_pipe(session);
        }
    };
    editor.set_helper(Some(CommandCompleter));
    let history = history_file();
    if let Some(h) = &history {
        let _ = editor.load_history(h);
    }
    let status = loop {
        match editor.readline(&session.prompt()) {
            Ok(line) => {
                if !line.trim().is_empty() {
                    let _ = editor.add_history_entry(line.as_str());
                }
                let stdout = io::stdout();
                let stderr = io::stderr();
                let mut out = stdout.lock();
                let mut err = stderr.lock();
                let outcome = session.run_line(
                    line.as_bytes(),
                    &mut Io {
                        out: &mut out,
                        err: &mut err,
                    },
                );
                let _ = out.flush();
                if outcome.quit {
                    break 0;
                }
                if outcome.fatal {
                    break outcome.status;
                }
            }
            Err(ReadlineError::Interrupted) => continue,
            Err(_) => {
                println!();
                break 0;
            }
        }
    };
    if let Some(h) = &history {
        let _ = editor.save_history(h);
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completes_first_word_only() {
        assert_eq!(complete_word("ver", 3), (0, vec!["version".to_string()]));
        assert_eq!(
            complete_word("s", 1).1,
            ["stack", "stop", "switch", "sysrq"]
        );
        assert!(complete_word("config ub", 9).1.is_empty());
        assert_eq!(complete_word("", 0).1.len(), COMMANDS.len());
    }
}
