//! `config ubd…=COW,BACKING` file names made absolute before sending, since
//! the kernel resolves them against its own working directory
//! (`docs/mconsole.md` §5.3).

use std::io;
use std::path::Path;

use uml_common::cli::strerror;

/// Whether `line` is `config`, optional whitespace, then `ubd…`.
fn is_config_ubd(line: &[u8]) -> bool {
    let Some(rest) = line.strip_prefix(b"config") else {
        return false;
    };
    let start = rest
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(rest.len());
    rest[start..].starts_with(b"ubd")
}

/// Makes one file name absolute relative to `cwd`. Names containing `/`
/// have their directory part resolved (symlinks included, as `chdir` +
/// `getcwd` do) and the last component appended; other names are
/// `cwd/name`. On failure returns the stderr message and the caller keeps
/// the name as it was.
fn absolutize_name(name: &[u8], cwd: &Path) -> Result<Vec<u8>, Vec<u8>> {
    use std::os::unix::ffi::OsStrExt;
    let cwd = cwd.as_os_str().as_bytes();
    let Some(slash) = name.iter().rposition(|&b| b == b'/') else {
        let mut out = cwd.to_vec();
        out.push(b'/');
        out.extend_from_slice(name);
        return Ok(out);
    };
    let (dir, file) = (&name[..slash], &name[slash + 1..]);
    let dir_path = Path::new(std::ffi::OsStr::from_bytes(dir));
    let resolved = if dir.is_empty() {
        // chdir("") fails with ENOENT, as the C client shows for "/file".
        Err(io::Error::from_raw_os_error(
            nix::errno::Errno::ENOENT as i32,
        ))
    } else {
        std::fs::canonicalize(dir_path).and_then(|p| {
            if p.is_dir() {
                Ok(p)
            } else {
                Err(io::Error::from_raw_os_error(
                    nix::errno::Errno::ENOTDIR as i32,
                ))
            }
        })
    };
    match resolved {
        Ok(abs) => {
            let mut out = abs.as_os_str().as_bytes().to_vec();
            if out != b"/" {
                out.push(b'/');
            }
            out.extend_from_slice(file);
            Ok(out)
        }
        Err(e) => {
            let mut msg = b"absolutize : Can't cd to '".to_vec();
            msg.extend_from_slice(dir);
            msg.extend_from_slice(b"', ");
            msg.extend_from_slice(strerror(&e).as_bytes());
            msg.push(b'\n');
            Err(msg)
        }
    }
}

/// Rewrites a `config ubd…=` line with absolute file names. Returns the line
/// to send and the warnings for stderr. Other lines are returned unchanged.
pub fn absolutize_config(line: &[u8], cwd: Option<&Path>) -> (Vec<u8>, Vec<Vec<u8>>) {
    if !is_config_ubd(line) {
        return (line.to_vec(), Vec::new());
    }
    let Some(eq) = line.iter().position(|&b| b == b'=') else {
        return (line.to_vec(), Vec::new());
    };
    let Some(cwd) = cwd else {
        return (line.to_vec(), Vec::new());
    };
    let (head, value) = (&line[..eq], &line[eq + 1..]);
    let mut warnings = Vec::new();
    let mut fix = |name: &[u8]| match absolutize_name(name, cwd) {
        Ok(abs) => abs,
        Err(msg) => {
            warnings.push(msg);
            name.to_vec()
        }
    };
    let mut out = head.to_vec();
    out.push(b'=');
    match value.iter().position(|&b| b == b',') {
        Some(comma) => {
            let cow = fix(&value[..comma]);
            let backing = fix(&value[comma + 1..]);
            out.extend_from_slice(&cow);
            out.push(b',');
            out.extend_from_slice(&backing);
        }
        None => {
            let backing = fix(value);
            out.extend_from_slice(&backing);
        }
    }
    (out, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(line: &str, cwd: &Path) -> (String, Vec<String>) {
        let (l, w) = absolutize_config(line.as_bytes(), Some(cwd));
        (
            String::from_utf8(l).unwrap(),
            w.into_iter()
                .map(|w| String::from_utf8(w).unwrap())
                .collect(),
        )
    }

    #[test]
    fn plain_names_join_the_cwd() {
        let cwd = Path::new("/w");
        assert_eq!(
            run("config ubd2=disk1.img", cwd).0,
            "config ubd2=/w/disk1.img"
        );
        assert_eq!(run("config  ubd1=x,y", cwd).0, "config  ubd1=/w/x,/w/y");
        assert_eq!(run("config ubd1=", cwd).0, "config ubd1=/w/");
        assert_eq!(run("configubd1r=a", cwd).0, "configubd1r=/w/a");
    }

    #[test]
    fn other_lines_are_untouched() {
        let cwd = Path::new("/w");
        for l in [
            "config ubd1",
            "config eth0=daemon",
            "version",
            "config con1=x",
        ] {
            assert_eq!(run(l, cwd), (l.to_string(), vec![]));
        }
    }

    #[test]
    fn directories_are_resolved() {
        let tmp = std::env::temp_dir().canonicalize().unwrap();
        let cwd = Path::new("/w");
        let line = format!("config ubd1={}/a.img", tmp.display());
        assert_eq!(
            run(&line, cwd).0,
            format!("config ubd1={}/a.img", tmp.display())
        );
        assert_eq!(
            run("config ubd1=/etc/../etc/x", cwd).0,
            "config ubd1=/etc/x"
        );
    }

    #[test]
    fn failures_warn_and_keep_the_name() {
        let cwd = Path::new("/w");
        let (l, w) = run("config ubd2=/nonexistent/file", cwd);
        assert_eq!(l, "config ubd2=/nonexistent/file");
        assert_eq!(
            w,
            ["absolutize : Can't cd to '/nonexistent', No such file or directory\n"]
        );
        let (l, w) = run("config ubd1=/file", cwd);
        assert_eq!(l, "config ubd1=/file");
        assert_eq!(
            w,
            ["absolutize : Can't cd to '', No such file or directory\n"]
        );
        let (_, w) = run("config ubd1=/etc/hostname/x", cwd);
        assert_eq!(
            w,
            ["absolutize : Can't cd to '/etc/hostname', Not a directory\n"]
        );
    }
}
