//! Command line: Debian's positional form `uml_mconsole socket-name
//! [command...]`, plus new leading `--` options that never collide with it.

use crate::Error;
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

/// Default bound on the wait for each reply packet.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// `--help`.
    Help,
    /// `--version`.
    Version,
    /// `--notify SOCKET`: print notifications until interrupted.
    Notify {
        /// Path of the datagram socket to bind.
        socket: OsString,
    },
    /// The classic form.
    Run {
        /// Socket name (umid or path).
        name: OsString,
        /// The command words joined by single spaces; `None` = interactive.
        command: Option<Vec<u8>>,
    },
}

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// What to do.
    pub mode: Mode,
    /// Bound on every wait for a reply packet.
    pub timeout: Duration,
}

/// Debian's usage line (stderr, exit 1).
pub const USAGE: &str = "Usage : uml_mconsole socket-name [command]\n";

/// Every option [`parse`] recognises (before socket-name; `--` ends
/// them), with a value after `=` or in the next argument for `--timeout`
/// and `--notify`. [`parse`] looks each `--` argument up here first, so it
/// accepts no option that is not listed; packaging's tests check that this
/// is the set of options in the description (`command.rs`).
pub const OPTIONS: &[&str] = &["--timeout", "--notify", "--help", "--version"];

/// `--help` text; packaging's tests check that it is the text rendered
/// from the description (`command.rs`).
pub const HELP: &str = "\
Usage: uml_mconsole [OPTIONS] socket-name [command...]
       uml_mconsole --notify SOCKET

Send management-console commands to a User-Mode Linux kernel. With a command,
run it once and exit with its status; without, read commands interactively.
socket-name is a umid (looked up in ~/.uml/UMID/mconsole and
/tmp/uml/UMID/mconsole) or the path of an mconsole socket.

Options (before socket-name):
  --timeout SECONDS  give up waiting for a reply packet after SECONDS
                     (default 5; fractions allowed)
  --notify SOCKET    bind a datagram socket at SOCKET (boot the UML with
                     mconsole=notify:SOCKET) and print each notification
                     (SOCKET, PANIC, HANG, USER_NOTIFY) on its own line
                     until interrupted
  --help             print this help and exit
  --version          print the version and exit
  --                 end of options

Exit status: 0 on success; the low byte of the kernel's error code for a
failed command (1, or 256 - errno); 1 for usage, send and receive errors;
2 when a reply did not arrive in full within the timeout.
Local commands: quit, help, switch NAME, log TEXT, log -f FILE,
mconsole-version, int (SIGINT to the UML).
";

fn parse_timeout(value: &[u8]) -> Result<Duration, Error> {
    let text = String::from_utf8_lossy(value);
    let bad = || Error::BadTimeout(text.clone().into_owned());
    let secs: f64 = text.trim().parse().map_err(|_| bad())?;
    if !secs.is_finite() || secs <= 0.0 || secs > 86400.0 {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parses `argv` (without the program name). The errors are
/// [`Error::Usage`] and the option errors.
pub fn parse(args: &[OsString]) -> Result<Options, Error> {
    let mut timeout = DEFAULT_TIMEOUT;
    let mut notify = None;
    let mut i = 0;
    while let Some(arg) = args.get(i) {
        let a = arg.as_bytes();
        if !a.starts_with(b"--") {
            break;
        }
        i += 1;
        if a == b"--" {
            break;
        }
        let (name, inline) = match a.iter().position(|&b| b == b'=') {
            Some(at) => (&a[..at], Some(&a[at + 1..])),
            None => (a, None),
        };
        let unrecognized = || Error::UnknownOption(String::from_utf8_lossy(a).into_owned());
        // Only the options of the table are recognised.
        let Some(&option) = OPTIONS.iter().find(|o| o.as_bytes() == name) else {
            return Err(unrecognized());
        };
        match (option, inline) {
            ("--help", None) => {
                return Ok(Options {
                    mode: Mode::Help,
                    timeout,
                })
            }
            ("--version", None) => {
                return Ok(Options {
                    mode: Mode::Version,
                    timeout,
                })
            }
            ("--timeout" | "--notify", _) => {
                let value = match inline {
                    Some(value) => value,
                    None => {
                        let Some(value) = args.get(i) else {
                            return Err(Error::MissingValue(option.to_string()));
                        };
                        i += 1;
                        value.as_bytes()
                    }
                };
                if option == "--timeout" {
                    timeout = parse_timeout(value)?;
                } else {
                    notify = Some(OsString::from(std::ffi::OsStr::from_bytes(value)));
                }
            }
            _ => return Err(unrecognized()),
        }
    }
    let rest = &args[i..];
    if let Some(socket) = notify {
        if !rest.is_empty() {
            return Err(Error::NotifyWithOperands);
        }
        return Ok(Options {
            mode: Mode::Notify { socket },
            timeout,
        });
    }
    let Some((name, words)) = rest.split_first() else {
        return Err(Error::Usage);
    };
    let command = if words.is_empty() {
        None
    } else {
        let mut cmd = Vec::new();
        for (n, w) in words.iter().enumerate() {
            if n > 0 {
                cmd.push(b' ');
            }
            cmd.extend_from_slice(w.as_bytes());
        }
        Some(cmd)
    };
    Ok(Options {
        mode: Mode::Run {
            name: name.clone(),
            command,
        },
        timeout,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn classic_forms() {
        assert!(matches!(parse(&args(&[])), Err(Error::Usage)));
        let o = parse(&args(&["t1"])).unwrap();
        assert_eq!(
            o.mode,
            Mode::Run {
                name: "t1".into(),
                command: None
            }
        );
        assert_eq!(o.timeout, DEFAULT_TIMEOUT);
        let o = parse(&args(&["t1", "config", "ubd1=x"])).unwrap();
        assert_eq!(
            o.mode,
            Mode::Run {
                name: "t1".into(),
                command: Some(b"config ubd1=x".to_vec())
            }
        );
        // Single-dash words are socket names or command words, as in C.
        let o = parse(&args(&["-h", "--help"])).unwrap();
        assert_eq!(
            o.mode,
            Mode::Run {
                name: "-h".into(),
                command: Some(b"--help".to_vec())
            }
        );
    }

    #[test]
    fn new_options() {
        assert_eq!(parse(&args(&["--help"])).unwrap().mode, Mode::Help);
        assert_eq!(parse(&args(&["--version"])).unwrap().mode, Mode::Version);
        let o = parse(&args(&["--timeout", "0.5", "t1", "version"])).unwrap();
        assert_eq!(o.timeout, Duration::from_millis(500));
        let o = parse(&args(&["--timeout=2", "t1"])).unwrap();
        assert_eq!(o.timeout, Duration::from_secs(2));
        let o = parse(&args(&["--notify", "/tmp/n.sock"])).unwrap();
        assert_eq!(
            o.mode,
            Mode::Notify {
                socket: "/tmp/n.sock".into()
            }
        );
        let o = parse(&args(&["--", "--weird", "version"])).unwrap();
        assert_eq!(
            o.mode,
            Mode::Run {
                name: "--weird".into(),
                command: Some(b"version".to_vec())
            }
        );
    }

    #[test]
    fn bad_options() {
        for bad in [
            &["--timeout"][..],
            &["--timeout", "0", "t1"],
            &["--timeout", "-1", "t1"],
            &["--timeout", "abc", "t1"],
            &["--timeout", "inf", "t1"],
            &["--timeout", "NaN", "t1"],
            &["--frob", "t1"],
            &["--notify"],
            &["--notify", "/x", "t1"],
        ] {
            let r = parse(&args(bad));
            assert!(
                matches!(
                    r,
                    Err(Error::BadTimeout(_)
                        | Error::MissingValue(_)
                        | Error::UnknownOption(_)
                        | Error::NotifyWithOperands)
                ),
                "{bad:?}: {r:?}"
            );
        }
        assert!(matches!(
            parse(&args(&["--timeout", "3"])),
            Err(Error::Usage)
        ));
    }

    #[test]
    fn option_error_texts() {
        let text = |v: &[&str]| parse(&args(v)).unwrap_err().to_string();
        assert_eq!(
            text(&["--timeout", "0", "t1"]),
            "uml_mconsole: invalid --timeout value '0': expected a positive number of seconds (at most 86400)"
        );
        assert_eq!(
            text(&["--notify"]),
            "uml_mconsole: option '--notify' needs a value"
        );
        assert_eq!(
            text(&["--frob"]),
            "uml_mconsole: unrecognized option '--frob'\nTry 'uml_mconsole --help' for more information."
        );
        assert_eq!(
            text(&["--notify", "/x", "t1"]),
            "uml_mconsole: --notify takes no socket-name or command"
        );
        assert_eq!(format!("{}\n", text(&[])), USAGE);
    }
}
