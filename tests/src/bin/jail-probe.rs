//! `jail-probe`: run by the `jail_uml` tests inside a jail. It is linked
//! statically like every binary of the workspace, so it runs in an empty
//! chroot, and prints what the jail looks like from inside, one `key=value`
//! line each:
//!
//! ```text
//! uid=<real>,<effective>,<saved>
//! gid=<real>,<effective>,<saved>
//! groups=<supplementary groups, sorted, comma-separated>
//! cwd=<working directory>
//! root=<entries of "/", sorted, comma-separated>
//! env=<number of environment variables>
//! fds=<open descriptors above 2, comma-separated>
//! args=<arguments after argv[0], comma-separated>
//! ```

#![forbid(unsafe_code)]

use std::os::unix::ffi::OsStrExt;

fn join<T: ToString>(items: impl IntoIterator<Item = T>) -> String {
    items
        .into_iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",")
}

fn main() {
    let mut out = String::new();
    match nix::unistd::getresuid() {
        Ok(r) => out.push_str(&format!("uid={},{},{}\n", r.real, r.effective, r.saved)),
        Err(e) => out.push_str(&format!("uid=error {e}\n")),
    }
    match nix::unistd::getresgid() {
        Ok(g) => out.push_str(&format!("gid={},{},{}\n", g.real, g.effective, g.saved)),
        Err(e) => out.push_str(&format!("gid=error {e}\n")),
    }
    let mut groups: Vec<u32> = nix::unistd::getgroups()
        .unwrap_or_default()
        .into_iter()
        .map(|g| g.as_raw())
        .collect();
    groups.sort_unstable();
    out.push_str(&format!("groups={}\n", join(groups)));
    let cwd = std::env::current_dir()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|e| format!("error {e}"));
    out.push_str(&format!("cwd={cwd}\n"));
    let mut root: Vec<String> = match std::fs::read_dir("/") {
        Ok(dir) => dir
            .flatten()
            .map(|e| String::from_utf8_lossy(e.file_name().as_bytes()).into_owned())
            .collect(),
        Err(e) => vec![format!("error {e}")],
    };
    root.sort();
    out.push_str(&format!("root={}\n", join(root)));
    out.push_str(&format!("env={}\n", std::env::vars_os().count()));
    // No /proc in a jail: ask each descriptor number.
    let fds = (3..1024).filter(|&fd| nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_GETFD).is_ok());
    out.push_str(&format!("fds={}\n", join(fds)));
    let args = std::env::args_os()
        .skip(1)
        .map(|a| String::from_utf8_lossy(a.as_bytes()).into_owned());
    out.push_str(&format!("args={}\n", join(args)));
    print!("{out}");
}
