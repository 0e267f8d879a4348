//! Differential runs: Debian's C tool and ours, started the same way (the
//! same arguments, environment, stdin, working directory, `argv[0]` and
//! wrapper programs), must print the same stdout and stderr and end the
//! same way (exit code or signal). What may legitimately differ between
//! the two runs (the program's own path in a message, say) is taken out by
//! per-test normalisation hooks before comparing; a mismatch fails with a
//! line diff of what differs.
//!
//! ```ignore
//! let d = Differential::new("/usr/bin/uml_mkcow", "uml_mkcow")
//!     .arg0("uml_mkcow")
//!     .current_dir(&dir);
//! let ours = d.same(&["-f", "a.cow", "back.img"]);
//! assert_eq!(ours.code, Some(0));
//! ```

use std::ffi::{OsStr, OsString};
use std::fmt::Write as _;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::rc::Rc;
use std::time::Duration;

use crate::process::{run_with_timeout_input, RunOutput};

/// Bound of each run unless [`Differential::limit`] says otherwise.
pub const DEFAULT_LIMIT: Duration = Duration::from_secs(15);

/// Which of the two implementations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// Debian's C reference tool.
    C,
    /// This workspace's rewrite.
    Ours,
}

impl Side {
    /// Both, in the order a differential run uses them.
    pub const BOTH: [Side; 2] = [Side::C, Side::Ours];

    /// `"C"` or `"ours"`, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Side::C => "C",
            Side::Ours => "ours",
        }
    }
}

/// A hook that rewrites one side's output before it is compared; it gets
/// the path of the program that ran.
type Normaliser<'a> = Rc<dyn Fn(&Path, &mut RunOutput) + 'a>;
/// Makes the command that runs `program` (e.g. inside a namespace).
type Launcher<'a> = Rc<dyn Fn(&OsStr) -> Command + 'a>;

/// How to run one tool both ways; see the [module](self) documentation.
/// Every setter returns the changed runner, so a test can derive a
/// variant (another directory, another wrapper) from a common one with
/// `clone()`.
#[derive(Clone)]
pub struct Differential<'a> {
    c: PathBuf,
    ours: PathBuf,
    limit: Duration,
    arg0: Option<OsString>,
    cwd: Option<PathBuf>,
    env: Vec<(OsString, Option<OsString>)>,
    wrapper: Vec<OsString>,
    stdin: Vec<u8>,
    launcher: Option<Launcher<'a>>,
    normalisers: Vec<Normaliser<'a>>,
}

impl std::fmt::Debug for Differential<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Differential")
            .field("c", &self.c)
            .field("ours", &self.ours)
            .field("limit", &self.limit)
            .field("arg0", &self.arg0)
            .field("cwd", &self.cwd)
            .field("env", &self.env)
            .field("wrapper", &self.wrapper)
            .field("stdin", &self.stdin.len())
            .field("launcher", &self.launcher.is_some())
            .field("normalisers", &self.normalisers.len())
            .finish()
    }
}

impl<'a> Differential<'a> {
    /// Debian's tool at `c` against this workspace's binary `ours` (see
    /// [`workspace_bin`](crate::workspace_bin)), each run bounded by
    /// [`DEFAULT_LIMIT`], with an empty stdin, in the test's working
    /// directory and environment.
    ///
    /// # Panics
    ///
    /// When `ours` has not been built.
    pub fn new(c: impl Into<PathBuf>, ours: &str) -> Self {
        Self::with_programs(c, crate::workspace_bin(ours))
    }

    /// The same with both programs given by path.
    pub fn with_programs(c: impl Into<PathBuf>, ours: impl Into<PathBuf>) -> Self {
        Differential {
            c: c.into(),
            ours: ours.into(),
            limit: DEFAULT_LIMIT,
            arg0: None,
            cwd: None,
            env: Vec::new(),
            wrapper: Vec::new(),
            stdin: Vec::new(),
            launcher: None,
            normalisers: Vec::new(),
        }
    }

    /// Each run may take at most `limit`; a run that takes longer fails
    /// the test.
    #[must_use]
    pub fn limit(mut self, limit: Duration) -> Self {
        self.limit = limit;
        self
    }

    /// Both programs see `name` as their `argv[0]` (so that messages that
    /// print it are the same); without it each sees its own path.
    #[must_use]
    pub fn arg0(mut self, name: impl Into<OsString>) -> Self {
        self.arg0 = Some(name.into());
        self
    }

    /// Both run in `dir`.
    #[must_use]
    pub fn current_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// Both get `key=value` in their environment.
    #[must_use]
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Self {
        self.env.push((key.into(), Some(value.into())));
        self
    }

    /// Neither gets `key` in its environment.
    #[must_use]
    pub fn env_remove(mut self, key: impl Into<OsString>) -> Self {
        self.env.push((key.into(), None));
        self
    }

    /// Both read `input` on stdin, then EOF.
    #[must_use]
    pub fn stdin(mut self, input: &[u8]) -> Self {
        self.stdin = input.to_vec();
        self
    }

    /// Both run under these programs (e.g. `setpriv --reuid=65534`, or
    /// `sh -c 'exec 7</dev/null; exec "$@"' sh`): the command is
    /// `WRAPPER... PROGRAM ARGS...`. A second call appends (an outer
    /// wrapper first). With a wrapper, [`arg0`](Self::arg0) is not
    /// available (the wrapper execs the program by its path).
    #[must_use]
    pub fn wrapper<I, S>(mut self, argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.wrapper.extend(argv.into_iter().map(Into::into));
        self
    }

    /// Both are started by the command `launch(program)` makes, e.g.
    /// `|p| ns.exec(p)` to run them in a network namespace; arguments,
    /// environment and directory are added to it.
    #[must_use]
    pub fn launcher(mut self, launch: impl Fn(&OsStr) -> Command + 'a) -> Self {
        self.launcher = Some(Rc::new(launch));
        self
    }

    /// Rewrites each side's output before it is compared (and before it
    /// is returned); `hook` gets the path of the program that ran. Hooks
    /// run in the order they were added.
    #[must_use]
    pub fn normalise(mut self, hook: impl Fn(&Path, &mut RunOutput) + 'a) -> Self {
        self.normalisers.push(Rc::new(hook));
        self
    }

    /// A [normalisation](Self::normalise) hook: every occurrence of the
    /// program's path in stdout and stderr becomes `placeholder` (each
    /// side names itself by its own path).
    #[must_use]
    pub fn program_as(self, placeholder: &'a str) -> Self {
        self.normalise(move |program, out| {
            let path = program.as_os_str().as_encoded_bytes();
            let place = placeholder.as_bytes();
            out.stdout = replace_bytes(&out.stdout, path, place);
            out.stderr = replace_bytes(&out.stderr, path, place);
        })
    }

    /// The program of `side`.
    pub fn program(&self, side: Side) -> &Path {
        match side {
            Side::C => &self.c,
            Side::Ours => &self.ours,
        }
    }

    /// Runs `side` with `args`, normalised.
    ///
    /// # Panics
    ///
    /// When the run takes longer than the [limit](Self::limit).
    pub fn run<S: AsRef<OsStr>>(&self, side: Side, args: &[S]) -> RunOutput {
        let program = self.program(side);
        let mut cmd = self.command(program);
        cmd.args(args);
        let mut out = run_with_timeout_input(&mut cmd, &self.stdin, self.limit);
        assert!(
            !out.timed_out,
            "{} ({}) {} timed out after {:?}:\n{out}",
            program.display(),
            side.name(),
            describe_args(args),
            self.limit
        );
        for hook in &self.normalisers {
            hook(program, &mut out);
        }
        out
    }

    /// Runs C, then ours, with `args`; returns both outputs (normalised)
    /// without comparing them.
    pub fn both<S: AsRef<OsStr>>(&self, args: &[S]) -> (RunOutput, RunOutput) {
        (self.run(Side::C, args), self.run(Side::Ours, args))
    }

    /// Runs C, then ours, with `args` and asserts the same stdout, stderr
    /// and status (see [`assert_same`]); returns ours.
    pub fn same<S: AsRef<OsStr>>(&self, args: &[S]) -> RunOutput {
        let (c, ours) = self.both(args);
        assert_same(&self.describe(args), &c, &ours);
        ours
    }

    /// Runs every invocation of `steps` with C, then all of them with
    /// ours (so that state the steps change, in files or in a live
    /// kernel, replays identically), and asserts step by step the same
    /// stdout, stderr and status. Returns our outputs.
    pub fn same_sequence<S: AsRef<OsStr>>(&self, steps: &[Vec<S>]) -> Vec<RunOutput> {
        let run_all =
            |side: Side| -> Vec<RunOutput> { steps.iter().map(|a| self.run(side, a)).collect() };
        let c = run_all(Side::C);
        let ours = run_all(Side::Ours);
        for ((args, c), o) in steps.iter().zip(&c).zip(&ours) {
            assert_same(&self.describe(args), c, o);
        }
        ours
    }

    /// `<our program's name> ARGS` (with stdin, if any), for messages.
    pub fn describe<S: AsRef<OsStr>>(&self, args: &[S]) -> String {
        let name = self
            .arg0
            .as_deref()
            .or(self.ours.file_name())
            .unwrap_or(self.ours.as_os_str());
        let mut what = format!("{} {}", name.to_string_lossy(), describe_args(args));
        if !self.stdin.is_empty() {
            let _ = write!(
                what,
                " with stdin {:?}",
                String::from_utf8_lossy(&self.stdin)
            );
        }
        what
    }

    /// The command running `program`, without its arguments.
    fn command(&self, program: &Path) -> Command {
        assert!(
            self.arg0.is_none() || (self.wrapper.is_empty() && self.launcher.is_none()),
            "arg0 goes with neither a wrapper nor a launcher (it would name them)"
        );
        let (first, wrapped) = match self.wrapper.split_first() {
            Some((w, rest)) => (w.as_os_str(), rest),
            None => (program.as_os_str(), &[][..]),
        };
        let mut cmd = match &self.launcher {
            Some(launch) => launch(first),
            None => Command::new(first),
        };
        if !self.wrapper.is_empty() {
            cmd.args(wrapped).arg(program);
        }
        if let Some(name) = &self.arg0 {
            cmd.arg0(name);
        }
        if let Some(dir) = &self.cwd {
            cmd.current_dir(dir);
        }
        for (key, value) in &self.env {
            match value {
                Some(v) => cmd.env(key, v),
                None => cmd.env_remove(key),
            };
        }
        cmd
    }
}

/// `["a", "b c"]`, arguments as Rust string literals (lossy).
fn describe_args<S: AsRef<OsStr>>(args: &[S]) -> String {
    let args: Vec<String> = args
        .iter()
        .map(|a| a.as_ref().to_string_lossy().into_owned())
        .collect();
    format!("{args:?}")
}

/// `haystack` with every `needle` replaced by `with`.
fn replace_bytes(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    if needle.is_empty() {
        return haystack.to_vec();
    }
    let mut out = Vec::with_capacity(haystack.len());
    let mut rest = haystack;
    while let Some(at) = rest.windows(needle.len()).position(|w| w == needle) {
        out.extend_from_slice(&rest[..at]);
        out.extend_from_slice(with);
        rest = &rest[at + needle.len()..];
    }
    out.extend_from_slice(rest);
    out
}

/// How a run ended: `exit 1`, `signal 11`, `timed out`.
pub fn describe_status(out: &RunOutput) -> String {
    match (out.timed_out, out.code, out.signal) {
        (true, _, _) => "timed out".to_string(),
        (false, Some(code), _) => format!("exit {code}"),
        (false, None, Some(sig)) => format!("signal {sig}"),
        (false, None, None) => "unknown status".to_string(),
    }
}

/// `None` when `c` and `ours` have the same stdout and stderr (byte for
/// byte) and ended the same way (exit code and signal); else a report of
/// each difference, with a line diff of differing streams (`-` C, `+`
/// ours).
pub fn difference(c: &RunOutput, ours: &RunOutput) -> Option<String> {
    let mut report = String::new();
    if (c.code, c.signal, c.timed_out) != (ours.code, ours.signal, ours.timed_out) {
        let _ = writeln!(
            report,
            "status: C {}, ours {}",
            describe_status(c),
            describe_status(ours)
        );
    }
    for (name, a, b) in [
        ("stdout", &c.stdout, &ours.stdout),
        ("stderr", &c.stderr, &ours.stderr),
    ] {
        if a != b {
            let _ = writeln!(report, "{name} differs (- C, + ours):");
            report.push_str(&byte_diff(a, b));
        }
    }
    (!report.is_empty()).then_some(report)
}

/// Asserts that `c` and `ours` have the same stdout, stderr and status;
/// the failure message names `what` and shows [`difference`] and both
/// outputs in full.
///
/// # Panics
///
/// When they differ.
#[track_caller]
pub fn assert_same(what: &str, c: &RunOutput, ours: &RunOutput) {
    if let Some(report) = difference(c, ours) {
        panic!("{what}: C and ours differ\n{report}--- C ---\n{c}\n--- ours ---\n{ours}");
    }
}

/// Asserts that two lists of lines (state observed after a step, e.g. the
/// links of a namespace) are the same, with a line diff (`-` C, `+` ours)
/// when not.
///
/// # Panics
///
/// When they differ.
#[track_caller]
pub fn assert_same_lines(what: &str, c: &[String], ours: &[String]) {
    if c != ours {
        panic!(
            "{what}: C and ours differ (- C, + ours):\n{}",
            line_diff(c, ours)
        );
    }
}

/// A line diff of two byte strings (lossy text; the bytes of lines that
/// read the same but differ are shown escaped).
fn byte_diff(a: &[u8], b: &[u8]) -> String {
    let split = |s: &[u8]| -> Vec<String> {
        s.split_inclusive(|&c| c == b'\n')
            .map(|l| {
                let text = String::from_utf8_lossy(l);
                if text.contains('\u{fffd}') {
                    l.escape_ascii().to_string()
                } else {
                    text.trim_end_matches('\n').to_string()
                        + if l.ends_with(b"\n") {
                            ""
                        } else {
                            " (no newline)"
                        }
                }
            })
            .collect()
    };
    line_diff(&split(a), &split(b))
}

/// A longest-common-subsequence line diff: `  ` same, `- ` only in `a`,
/// `+ ` only in `b`. Runs of more than 3 same lines are cut to their ends.
pub fn line_diff(a: &[String], b: &[String]) -> String {
    // Long outputs: compare line by line (no alignment) rather than
    // building a huge table.
    const MAX_CELLS: usize = 4_000_000;
    let ops: Vec<(char, &str)> = if (a.len() + 1) * (b.len() + 1) > MAX_CELLS {
        let mut ops = Vec::new();
        for i in 0..a.len().max(b.len()) {
            match (a.get(i), b.get(i)) {
                (Some(x), Some(y)) if x == y => ops.push((' ', x.as_str())),
                (x, y) => {
                    ops.extend(x.map(|x| ('-', x.as_str())));
                    ops.extend(y.map(|y| ('+', y.as_str())));
                }
            }
        }
        ops
    } else {
        // lcs[i][j]: the LCS length of a[i..] and b[j..].
        let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
        for i in (0..a.len()).rev() {
            for j in (0..b.len()).rev() {
                lcs[i][j] = if a[i] == b[j] {
                    lcs[i + 1][j + 1] + 1
                } else {
                    lcs[i + 1][j].max(lcs[i][j + 1])
                };
            }
        }
        let (mut i, mut j) = (0, 0);
        let mut ops = Vec::new();
        while i < a.len() || j < b.len() {
            if i < a.len() && j < b.len() && a[i] == b[j] {
                ops.push((' ', a[i].as_str()));
                i += 1;
                j += 1;
            } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
                ops.push(('-', a[i].as_str()));
                i += 1;
            } else {
                ops.push(('+', b[j].as_str()));
                j += 1;
            }
        }
        ops
    };
    let mut out = String::new();
    let mut k = 0;
    while k < ops.len() {
        if ops[k].0 != ' ' {
            let _ = writeln!(out, "{} {}", ops[k].0, ops[k].1);
            k += 1;
            continue;
        }
        let end = ops[k..]
            .iter()
            .position(|o| o.0 != ' ')
            .map_or(ops.len(), |n| k + n);
        let run = &ops[k..end];
        if run.len() > 3 {
            // Context: one line after a change, one before the next.
            let (head, tail) = (k > 0, end < ops.len());
            if head {
                let _ = writeln!(out, "  {}", run[0].1);
            }
            let hidden = run.len() - usize::from(head) - usize::from(tail);
            let _ = writeln!(out, "  … {hidden} same lines");
            if tail {
                let _ = writeln!(out, "  {}", run[run.len() - 1].1);
            }
        } else {
            for o in run {
                let _ = writeln!(out, "  {}", o.1);
            }
        }
        k = end;
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn lines(s: &str) -> Vec<String> {
        s.lines().map(str::to_string).collect()
    }

    fn out(stdout: &str, stderr: &str, code: i32) -> RunOutput {
        RunOutput {
            stdout: stdout.as_bytes().to_vec(),
            stderr: stderr.as_bytes().to_vec(),
            code: Some(code),
            signal: None,
            timed_out: false,
        }
    }

    #[test]
    fn line_diff_marks_changes() {
        let d = line_diff(&lines("a\nb\nc"), &lines("a\nx\nc"));
        assert_eq!(d, "  a\n- b\n+ x\n  c\n");
        let d = line_diff(&lines("1\n2\n3\n4\n5\n6\nz"), &lines("1\n2\n3\n4\n5\n6"));
        assert_eq!(d, "  … 5 same lines\n  6\n- z\n");
    }

    #[test]
    fn difference_names_each_part() {
        assert_eq!(difference(&out("a\n", "", 0), &out("a\n", "", 0)), None);
        let d = difference(&out("a\n", "e\n", 1), &out("a\n", "f\n", 2)).unwrap();
        assert_eq!(
            d,
            "status: C exit 1, ours exit 2\nstderr differs (- C, + ours):\n- e\n+ f\n"
        );
        let mut sig = out("", "", 0);
        sig.code = None;
        sig.signal = Some(11);
        let d = difference(&sig, &out("", "", 0)).unwrap();
        assert_eq!(d, "status: C signal 11, ours exit 0\n");
        // Bytes that are not UTF-8 are shown escaped.
        let mut bin = out("", "", 0);
        bin.stdout = vec![b'x', 0xff, b'\n'];
        let d = difference(&bin, &out("x\u{fffd}\n", "", 0)).unwrap();
        assert!(d.contains("- x\\xff\\n\n"), "{d}");
    }

    #[test]
    fn replaces_the_program_path() {
        assert_eq!(
            replace_bytes(b"/p/x: bad; /p/x again", b"/p/x", b"PROG"),
            b"PROG: bad; PROG again"
        );
        assert_eq!(replace_bytes(b"abc", b"", b"X"), b"abc");
    }

    #[test]
    fn runs_both_with_the_same_set_up() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f"), "data\n").unwrap();
        // `cat` stands for both tools; arg0, cwd, env and stdin reach it.
        let d = Differential::with_programs("/bin/cat", "/usr/bin/cat")
            .current_dir(dir.path())
            .stdin(b"in\n");
        let ours = d.same(&["f", "-"]);
        assert_eq!(ours.stdout_str(), "data\nin\n");
        let d = Differential::with_programs("/bin/sh", "/usr/bin/sh")
            .arg0("shell")
            .env("V", "v1")
            .env_remove("HOME");
        let ours = d.same(&["-c", "echo \"$0 $V ${HOME-unset}\""]);
        assert_eq!(ours.stdout_str(), "shell v1 unset\n");
        // A wrapper, and a normaliser that sees each side's program.
        let d = Differential::with_programs("/bin/echo", "/usr/bin/echo")
            .wrapper(["sh", "-c", "\"$0\" \"$0\" \"$@\""])
            .program_as("ECHO");
        let ours = d.same(&["x"]);
        assert_eq!(ours.stdout_str(), "ECHO x\n");
        let steps = vec![vec!["-n", "a"], vec!["b"]];
        let ours = Differential::with_programs("/bin/echo", "/usr/bin/echo").same_sequence(&steps);
        assert_eq!(ours.len(), 2);
    }

    #[test]
    #[should_panic(expected = "status: C exit 0, ours exit 1")]
    fn a_difference_fails() {
        Differential::with_programs("/bin/true", "/bin/false").same::<&str>(&[]);
    }
}
