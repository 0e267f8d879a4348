//! The drivers' command lines, parsed with clap: value parsers with the
//! bounds each option accepts, the mapping of clap's outcomes to the
//! drivers' exit statuses (`--help`: its text, status 0; a bad command
//! line: [`Error::Usage`], status 2), and the check that a program given
//! by path exists.

use std::ffi::OsString;
use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;
use std::time::Duration;

use clap::error::ErrorKind;
use clap::{Arg, ArgAction, ArgMatches, Command};

use crate::driver::{exit_code, failed, Error};

/// The hint for a missing workspace binary.
pub const BUILD_HINT: &str = " (build it: cargo build --release --workspace --bins)";

/// What parsing the command line gave: options to run with, or a text to
/// print (`--help`) before exiting with status 0.
#[derive(Debug)]
pub enum Parsed {
    /// The matches, to turn into the driver's options.
    Run(ArgMatches),
    /// `--help` was given: print this and exit 0.
    Help(String),
}

/// Parses `args` (without the program name) with `cmd`. Every option may
/// be given again (the last one counts), as with the drivers' earlier
/// hand-written parsers.
///
/// # Errors
///
/// [`Error::Usage`] with clap's message for a bad command line.
pub fn parse(cmd: Command, args: impl IntoIterator<Item = OsString>) -> Result<Parsed, Error> {
    let mut cmd = cmd.args_override_self(true);
    let name = OsString::from(cmd.get_name());
    match cmd.try_get_matches_from_mut(std::iter::once(name).chain(args)) {
        Ok(m) => Ok(Parsed::Run(m)),
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            let mut text = e.render().to_string();
            if !text.ends_with('\n') {
                text.push('\n');
            }
            Ok(Parsed::Help(text))
        }
        Err(e) => Err(Error::Usage(usage_message(&e.render().to_string()))),
    }
}

/// A driver's `main`: parses `args` (without the program name) with
/// `cmd`, prints the help text if asked for it, else makes the options
/// with `options` and runs them with `run` (`Ok(false)`: a target missed
/// that was to be enforced). The exit status is
/// [`exit_code`]`(name, cleaned_up, ...)`'s.
pub fn main<O>(
    name: &str,
    cleaned_up: &str,
    cmd: Command,
    args: impl IntoIterator<Item = OsString>,
    options: impl FnOnce(&ArgMatches) -> Result<O, Error>,
    run: impl FnOnce(O) -> Result<bool, Error>,
) -> ExitCode {
    let result = parse(cmd, args).and_then(|parsed| match parsed {
        Parsed::Help(text) => {
            print!("{text}");
            Ok(true)
        }
        Parsed::Run(m) => options(&m).and_then(run),
    });
    exit_code(name, cleaned_up, result)
}

/// clap's error text reduced to its first line, without `error: `.
fn usage_message(rendered: &str) -> String {
    let first = rendered.lines().next().unwrap_or(rendered);
    first.strip_prefix("error: ").unwrap_or(first).to_string()
}

/// A long option `--name VALUE` (value name `value_name`) with `help`.
pub fn opt(name: &'static str, value_name: &'static str, help: &'static str) -> Arg {
    Arg::new(name)
        .long(name)
        .value_name(value_name)
        .action(ArgAction::Set)
        .help(help)
}

/// A long option `--name PATH`, parsed as a path.
pub fn path_opt(name: &'static str, help: &'static str) -> Arg {
    opt(name, "PATH", help).value_parser(clap::value_parser!(PathBuf))
}

/// A flag `--name` with `help`.
pub fn flag(name: &'static str, help: &'static str) -> Arg {
    Arg::new(name)
        .long(name)
        .action(ArgAction::SetTrue)
        .help(help)
}

/// A parser of integers in `min..=max`.
pub fn int<T>(min: T, max: T) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync
where
    T: FromStr + PartialOrd + Display + Copy + Send + Sync + 'static,
{
    move |s: &str| {
        s.parse::<T>()
            .ok()
            .filter(|n| *n >= min && *n <= max)
            .ok_or_else(|| range_text("an integer", min, max))
    }
}

/// A parser of integers of at least `min`.
pub fn int_min<T>(min: T) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync
where
    T: FromStr + PartialOrd + Display + Copy + Send + Sync + 'static,
{
    move |s: &str| {
        s.parse::<T>()
            .ok()
            .filter(|n| *n >= min)
            .ok_or_else(|| format!("needs an integer >= {min}"))
    }
}

/// A parser of finite numbers of at least `min`.
pub fn float_min(min: f64) -> impl Fn(&str) -> Result<f64, String> + Clone + Send + Sync {
    move |s: &str| {
        s.parse::<f64>()
            .ok()
            .filter(|x| x.is_finite() && *x >= min)
            .ok_or_else(|| format!("needs a number >= {min}"))
    }
}

/// A parser of seconds (fractions allowed) in `min..=max`, as a
/// [`Duration`]; `zero_ok` also accepts exactly `0` (a phase left out).
pub fn secs(
    min: f64,
    max: f64,
    zero_ok: bool,
) -> impl Fn(&str) -> Result<Duration, String> + Clone + Send + Sync {
    move |s: &str| {
        if zero_ok && s == "0" {
            return Ok(Duration::ZERO);
        }
        s.parse::<f64>()
            .ok()
            .filter(|x| x.is_finite() && (min..=max).contains(x))
            .map(Duration::from_secs_f64)
            .ok_or_else(|| format!("needs seconds between {min} and {max}"))
    }
}

/// A parser of a comma-separated, non-empty list of integers in
/// `min..=max`.
pub fn int_list<T>(min: T, max: T) -> impl Fn(&str) -> Result<Vec<T>, String> + Clone + Send + Sync
where
    T: FromStr + PartialOrd + Display + Copy + Send + Sync + 'static,
{
    move |s: &str| {
        let items: Option<Vec<T>> = s
            .split(',')
            .map(|x| {
                x.trim()
                    .parse::<T>()
                    .ok()
                    .filter(|n| *n >= min && *n <= max)
            })
            .collect();
        items
            .filter(|v| !v.is_empty())
            .ok_or_else(|| range_text("a comma-separated list of integers", min, max))
    }
}

fn range_text<T: Display>(what: &str, min: T, max: T) -> String {
    format!("needs {what} from {min} to {max}")
}

/// The value of option `id`, when given (or defaulted).
pub fn get<T: Clone + Send + Sync + 'static>(m: &ArgMatches, id: &str) -> Option<T> {
    m.get_one::<T>(id).cloned()
}

/// The value of option `id`, or `default` when it was not given.
pub fn get_or<T: Clone + Send + Sync + 'static>(m: &ArgMatches, id: &str, default: T) -> T {
    get(m, id).unwrap_or(default)
}

/// Whether flag `id` was given.
pub fn given(m: &ArgMatches, id: &str) -> bool {
    m.get_flag(id)
}

/// Fails unless `path`, given as `what` (an option name), is a file; the
/// error ends with `hint` (where to get it).
///
/// # Errors
///
/// [`Error::Failed`] naming the option and the path.
pub fn require_file(what: &str, path: &Path, hint: &str) -> Result<(), Error> {
    if path.is_file() {
        Ok(())
    } else {
        Err(failed(format!(
            "{what}: {} does not exist{hint}",
            path.display()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd() -> Command {
        Command::new("t")
            .about("a test")
            .arg(
                opt("trials", "N", "trials")
                    .value_parser(int_min(1usize))
                    .default_value("5"),
            )
            .arg(opt("ports", "LIST", "ports").value_parser(int_list(2usize, 1000)))
            .arg(opt("secs", "S", "seconds").value_parser(secs(0.05, 600.0, true)))
            .arg(path_opt("ours", "ours"))
            .arg(flag("enforce", "exit 1"))
    }

    fn run(args: &[&str]) -> Result<ArgMatches, Error> {
        match parse(cmd(), args.iter().map(OsString::from))? {
            Parsed::Run(m) => Ok(m),
            Parsed::Help(h) => panic!("help: {h}"),
        }
    }

    #[test]
    fn values_bounds_and_repeats() {
        cmd().debug_assert();
        let m = run(&[]).unwrap();
        assert_eq!(get::<usize>(&m, "trials"), Some(5));
        assert!(!given(&m, "enforce"));
        let m = run(&[
            "--trials=3",
            "--ports",
            "2, 64",
            "--secs",
            "0",
            "--ours",
            "x",
            "--enforce",
            "--trials",
            "4",
        ])
        .unwrap();
        assert_eq!(get::<usize>(&m, "trials"), Some(4));
        assert_eq!(get::<Vec<usize>>(&m, "ports"), Some(vec![2, 64]));
        assert_eq!(get::<Duration>(&m, "secs"), Some(Duration::ZERO));
        assert_eq!(get::<PathBuf>(&m, "ours"), Some(PathBuf::from("x")));
        assert!(given(&m, "enforce"));
        for bad in [
            &["--trials", "0"][..],
            &["--ports", "1,2"],
            &["--ports", ""],
            &["--secs", "0.01"],
            &["--nope"],
            &["--trials"],
            &["--enforce=1"],
        ] {
            let e = run(bad).unwrap_err();
            assert!(matches!(e, Error::Usage(_)), "{bad:?}: {e}");
        }
        let e = run(&["--trials", "0"]).unwrap_err().to_string();
        assert!(e.contains("--trials") && e.contains(">= 1"), "{e}");
        assert!(e.ends_with("(see --help)"), "{e}");
    }

    #[test]
    fn help_is_text() {
        match parse(cmd(), [OsString::from("--help")]).unwrap() {
            Parsed::Help(h) => {
                assert!(h.contains("--trials <N>") && h.contains("a test"), "{h}");
                assert!(h.ends_with("Print help\n"), "{h:?}");
            }
            Parsed::Run(_) => panic!("no help"),
        }
    }

    #[test]
    fn main_runs_or_helps() {
        let run = |args: &[&str], ok: bool| {
            main(
                "t",
                "",
                cmd(),
                args.iter().map(OsString::from),
                |m| Ok(get::<usize>(m, "trials")),
                |t| Ok(ok && t == Some(5)),
            )
        };
        assert_eq!(run(&[], true), ExitCode::SUCCESS);
        assert_eq!(run(&[], false), ExitCode::from(1));
        assert_eq!(run(&["--help"], false), ExitCode::SUCCESS);
        assert_eq!(run(&["--trials", "x"], true), ExitCode::from(2));
    }

    #[test]
    fn missing_files_are_named() {
        let e = require_file("--c", Path::new("/nonexistent/x"), " (hint)").unwrap_err();
        assert_eq!(e.to_string(), "--c: /nonexistent/x does not exist (hint)");
        assert!(require_file("--c", Path::new("/bin/sh"), "").is_ok());
    }
}
