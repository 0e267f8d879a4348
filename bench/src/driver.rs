//! What the benchmark drivers (`bench-mconsole`, `bench-switch`,
//! `bench-moo`, `bench-guests`) share: their error type, their exit
//! statuses and where the binaries are.

use std::fmt;
use std::path::PathBuf;
use std::process::ExitCode;

/// Why a driver stops: a usage error (status 2, with a pointer to
/// `--help`), an interrupt (status 130) or a failure (status 2).
#[derive(Debug)]
pub enum Error {
    /// Bad command line.
    Usage(String),
    /// SIGINT, SIGTERM or SIGHUP.
    Interrupted,
    /// Anything else, with its message.
    Failed(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(msg) => write!(f, "{msg} (see --help)"),
            Error::Interrupted => write!(f, "interrupted"),
            Error::Failed(msg) => write!(f, "{msg}"),
        }
    }
}

/// A failure with `msg`.
pub fn failed(msg: impl Into<String>) -> Error {
    Error::Failed(msg.into())
}

/// For `map_err`: a failure "`what`: error".
pub fn io_ctx<E: fmt::Display>(what: impl fmt::Display) -> impl FnOnce(E) -> Error {
    let what = what.to_string();
    move |e| Error::Failed(format!("{what}: {e}"))
}

/// The exit status of driver `name` for `result`: 0 when it measured
/// (`Ok(true)`: whatever the verdict, unless it was enforced), 1 for a
/// missed target it was asked to enforce (`Ok(false)`), 130 when
/// interrupted (after printing `name: interrupted; <cleaned_up>`), 2 for
/// any other error (printed as `name: <error>`).
pub fn exit_code(name: &str, cleaned_up: &str, result: Result<bool, Error>) -> ExitCode {
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(Error::Interrupted) => {
            eprintln!("{name}: interrupted; {cleaned_up}");
            ExitCode::from(130)
        }
        Err(e) => {
            eprintln!("{name}: {e}");
            ExitCode::from(2)
        }
    }
}

/// A binary built beside the running driver (the release directory).
pub fn sibling(name: &str) -> PathBuf {
    match std::env::current_exe() {
        Ok(exe) => exe.with_file_name(name),
        Err(_) => PathBuf::from("target/x86_64-unknown-linux-gnu/release").join(name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages() {
        assert_eq!(Error::Usage("bad".into()).to_string(), "bad (see --help)");
        assert_eq!(failed("x").to_string(), "x");
        let e = io_ctx::<std::io::Error>("reading f")(std::io::Error::from_raw_os_error(2));
        assert!(e.to_string().starts_with("reading f: "), "{e}");
        assert!(sibling("uml_switch").ends_with("uml_switch"));
        assert_eq!(exit_code("t", "", Ok(true)), ExitCode::SUCCESS);
        assert_eq!(exit_code("t", "", Ok(false)), ExitCode::from(1));
        assert_eq!(
            exit_code("t", "", Err(Error::Interrupted)),
            ExitCode::from(130)
        );
        assert_eq!(exit_code("t", "", Err(failed("x"))), ExitCode::from(2));
    }
}
