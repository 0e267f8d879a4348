//! umid → mconsole socket path resolution (`docs/mconsole.md` §1.1, §5.2).
//!
//! The search order and the warning texts are those of Debian's
//! `uml_mconsole`; the file-system checks are passed in as a closure so the
//! rules are tested without touching the disk.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// One place where the mconsole socket of NAME may be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The socket path to `stat` and send to.
    pub socket: PathBuf,
    /// The pid file next to it, if this layout has one.
    pub pid_file: Option<PathBuf>,
}

fn join_bytes(parts: &[&[u8]]) -> PathBuf {
    let mut v = Vec::new();
    for p in parts {
        v.extend_from_slice(p);
    }
    PathBuf::from(OsString::from_vec(v))
}

/// The candidates for NAME in the order `uml_mconsole` tries them.
///
/// 1. `$HOME/.uml/NAME/mconsole` unless NAME starts with `$HOME/.uml`;
/// 2. `/tmp/uml/NAME/mconsole` unless NAME starts with `/tmp/uml/`;
/// 3. NAME itself;
/// 4. only when step 1 was skipped: `$HOME/.uml/NAME/mconsole` again — or,
///    with `$HOME` unset, the empty path (the C client then stats an
///    uninitialised, in practice empty, buffer and warns about `''`).
///
/// Deliberate fix: pid files are looked up where the kernel writes them
/// (`<dir>/pid` beside the socket), not at the C client's wrong
/// `/tmp/uml/NAME/NAME/pid`; for a socket path given directly, the `pid`
/// file beside a socket named `mconsole` is used.
pub fn candidates(name: &OsStr, home: Option<&OsStr>) -> Vec<Candidate> {
    let n = name.as_bytes();
    let mut out = Vec::with_capacity(4);
    let mut tried_home = false;
    if let Some(home) = home {
        let h = home.as_bytes();
        let prefix = [h, b"/.uml"].concat();
        if !n.starts_with(&prefix) {
            tried_home = true;
            out.push(Candidate {
                socket: join_bytes(&[h, b"/.uml/", n, b"/mconsole"]),
                pid_file: Some(join_bytes(&[h, b"/.uml/", n, b"/pid"])),
            });
        }
    }
    if !n.starts_with(b"/tmp/uml/") {
        out.push(Candidate {
            socket: join_bytes(&[b"/tmp/uml/", n, b"/mconsole"]),
            pid_file: Some(join_bytes(&[b"/tmp/uml/", n, b"/pid"])),
        });
    }
    let literal = PathBuf::from(name);
    let pid_file = if literal.file_name() == Some(OsStr::new("mconsole")) {
        literal.parent().map(|d| d.join("pid"))
    } else {
        Some(join_bytes(&[n, b"/pid"]))
    };
    out.push(Candidate {
        socket: literal,
        pid_file,
    });
    if !tried_home {
        out.push(match home {
            Some(home) => {
                let h = home.as_bytes();
                Candidate {
                    socket: join_bytes(&[h, b"/.uml/", n, b"/mconsole"]),
                    pid_file: Some(join_bytes(&[h, b"/.uml/", n, b"/pid"])),
                }
            }
            None => Candidate {
                socket: PathBuf::new(),
                pid_file: None,
            },
        });
    }
    out
}

/// The stderr line the C client prints when a candidate cannot be stat'ed.
pub fn stat_warning(path: &Path, err: &io::Error) -> Vec<u8> {
    let mut line = b"Warning: couldn't stat file: ".to_vec();
    line.extend_from_slice(path.as_os_str().as_bytes());
    line.extend_from_slice(b" - ");
    line.extend_from_slice(crate::cli::strerror(err).as_bytes());
    line.push(b'\n');
    line
}

/// Result of resolving a name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolution {
    /// Warning lines, in order, for stderr.
    pub warnings: Vec<Vec<u8>>,
    /// The first candidate that exists, if any.
    pub found: Option<Candidate>,
}

/// Resolves NAME: the first candidate for which `stat` succeeds wins; every
/// failure before it yields a warning line.
pub fn resolve(
    name: &OsStr,
    home: Option<&OsStr>,
    mut stat: impl FnMut(&Path) -> io::Result<()>,
) -> Resolution {
    let mut warnings = Vec::new();
    for cand in candidates(name, home) {
        match stat(&cand.socket) {
            Ok(()) => {
                return Resolution {
                    warnings,
                    found: Some(cand),
                }
            }
            Err(e) => warnings.push(stat_warning(&cand.socket, &e)),
        }
    }
    Resolution {
        warnings,
        found: None,
    }
}

/// Parses a pid file's content as the client does: a decimal number at the
/// start (after optional blanks). Zero, negative or absent → `None`.
pub fn parse_pid(content: &[u8]) -> Option<i32> {
    let s = content
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .map_or(&[][..], |i| &content[i..]);
    let digits = s.iter().take_while(|b| b.is_ascii_digit()).count();
    let pid: i32 = std::str::from_utf8(&s[..digits]).ok()?.parse().ok()?;
    (pid > 0).then_some(pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(s: &str) -> &OsStr {
        OsStr::new(s)
    }

    fn sockets(c: &[Candidate]) -> Vec<String> {
        c.iter()
            .map(|c| c.socket.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn absolute_path_gives_two_warnings_then_succeeds() {
        let r = resolve(os("/abs/dir/mconsole"), Some(os("/root")), |p| {
            if p == Path::new("/abs/dir/mconsole") {
                Ok(())
            } else {
                Err(io::Error::from_raw_os_error(2))
            }
        });
        assert_eq!(
            r.warnings,
            vec![
                b"Warning: couldn't stat file: /root/.uml//abs/dir/mconsole/mconsole - No such file or directory\n".to_vec(),
                b"Warning: couldn't stat file: /tmp/uml//abs/dir/mconsole/mconsole - No such file or directory\n".to_vec(),
            ]
        );
        let found = r.found.unwrap();
        assert_eq!(found.socket, Path::new("/abs/dir/mconsole"));
        assert_eq!(found.pid_file.as_deref(), Some(Path::new("/abs/dir/pid")));
    }

    #[test]
    fn umid_under_home() {
        let c = candidates(os("t1"), Some(os("/h")));
        assert_eq!(
            sockets(&c),
            ["/h/.uml/t1/mconsole", "/tmp/uml/t1/mconsole", "t1"]
        );
        assert_eq!(c[0].pid_file.as_deref(), Some(Path::new("/h/.uml/t1/pid")));
        // Fixed: the pid file of the /tmp/uml layout is beside its socket.
        assert_eq!(c[1].pid_file.as_deref(), Some(Path::new("/tmp/uml/t1/pid")));
    }

    #[test]
    fn nothing_found_gives_three_warnings() {
        let r = resolve(os("nosuch"), Some(os("/tmp/t1/h")), |_| {
            Err(io::Error::from_raw_os_error(2))
        });
        assert!(r.found.is_none());
        let w: Vec<String> = r
            .warnings
            .iter()
            .map(|w| String::from_utf8_lossy(w).into_owned())
            .collect();
        assert_eq!(
            w,
            [
                "Warning: couldn't stat file: /tmp/t1/h/.uml/nosuch/mconsole - No such file or directory\n",
                "Warning: couldn't stat file: /tmp/uml/nosuch/mconsole - No such file or directory\n",
                "Warning: couldn't stat file: nosuch - No such file or directory\n",
            ]
        );
    }

    #[test]
    fn home_unset_tries_the_empty_path_last() {
        // Observed with the C client: `env -u HOME uml_mconsole nosuch ...`
        // warns about `/tmp/uml/nosuch/mconsole`, `nosuch` and `` (empty).
        let c = candidates(os("nosuch"), None);
        assert_eq!(sockets(&c), ["/tmp/uml/nosuch/mconsole", "nosuch", ""]);
    }

    #[test]
    fn name_inside_home_uml_skips_step_one_and_retries_it_last() {
        let c = candidates(os("/tmp/t1/.uml/x"), Some(os("/tmp/t1")));
        assert_eq!(
            sockets(&c),
            [
                "/tmp/uml//tmp/t1/.uml/x/mconsole",
                "/tmp/t1/.uml/x",
                "/tmp/t1/.uml//tmp/t1/.uml/x/mconsole"
            ]
        );
    }

    #[test]
    fn name_under_tmp_uml_skips_step_two() {
        let c = candidates(os("/tmp/uml/a/mconsole"), Some(os("/h")));
        assert_eq!(
            sockets(&c),
            [
                "/h/.uml//tmp/uml/a/mconsole/mconsole",
                "/tmp/uml/a/mconsole"
            ]
        );
    }

    #[test]
    fn pid_parsing() {
        assert_eq!(parse_pid(b"17837\n"), Some(17837));
        assert_eq!(parse_pid(b"  42x"), Some(42));
        assert_eq!(parse_pid(b"0\n"), None);
        assert_eq!(parse_pid(b"-5\n"), None);
        assert_eq!(parse_pid(b""), None);
        assert_eq!(parse_pid(b"abc"), None);
        assert_eq!(parse_pid(b"99999999999999999999"), None);
    }
}
