//! The optional policy file `/etc/uml-utilities/uml_net.conf`, modelled on
//! qemu-bridge-helper's ACL: which users or groups may use which gateway
//! and guest addresses. Without the file everything valid is allowed (the
//! Debian behaviour); with it, the first matching rule decides and no match
//! means deny. Root is never restricted.
//!
//! ```text
//! # allow|deny  user:NAME | group:NAME | uid:N | gid:N | all  ADDRESS/PREFIX
//! allow group:uml-net 10.0.0.0/8
//! allow user:alice    192.168.7.0/24
//! deny  all           0.0.0.0/0
//! ```

use std::net::Ipv4Addr;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use uml_common::umlnet::parse_ipv4;

use crate::Error;

/// Where the policy lives. Not configurable: the environment is the
/// caller's and must not choose the rules.
pub const POLICY_PATH: &str = "/etc/uml-utilities/uml_net.conf";

/// Who a rule is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Who {
    /// Everybody.
    All,
    /// A user id.
    Uid(u32),
    /// Members of a group.
    Gid(u32),
}

/// One rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Allow or deny.
    pub allow: bool,
    /// Who.
    pub who: Who,
    /// Network address.
    pub net: Ipv4Addr,
    /// Prefix length.
    pub prefix: u8,
}

impl Rule {
    fn covers(&self, addr: Ipv4Addr) -> bool {
        let mask = if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix))
        };
        u32::from(addr) & mask == u32::from(self.net) & mask
    }
}

/// The caller as the policy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// Real uid.
    pub uid: u32,
    /// Real gid and supplementary groups.
    pub groups: Vec<u32>,
}

/// Parses the policy text; `user`/`group` resolve names to ids. The
/// error is [`Error::PolicySyntax`].
pub fn parse(
    text: &str,
    user: impl Fn(&str) -> Option<u32>,
    group: impl Fn(&str) -> Option<u32>,
) -> Result<Vec<Rule>, Error> {
    let mut rules = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let bad = |why| Error::PolicySyntax { line: n + 1, why };
        let words: Vec<&str> = line.split_whitespace().collect();
        let [verb, who, cidr] = words[..] else {
            return Err(bad("expected 'allow|deny WHO ADDRESS/PREFIX'"));
        };
        let allow = match verb {
            "allow" => true,
            "deny" => false,
            _ => return Err(bad("expected 'allow' or 'deny'")),
        };
        let who = if who == "all" {
            Who::All
        } else if let Some(name) = who.strip_prefix("user:") {
            Who::Uid(user(name).ok_or_else(|| bad("unknown user"))?)
        } else if let Some(name) = who.strip_prefix("group:") {
            Who::Gid(group(name).ok_or_else(|| bad("unknown group"))?)
        } else if let Some(n) = who.strip_prefix("uid:") {
            Who::Uid(n.parse().map_err(|_| bad("bad uid"))?)
        } else if let Some(n) = who.strip_prefix("gid:") {
            Who::Gid(n.parse().map_err(|_| bad("bad gid"))?)
        } else {
            return Err(bad("expected all, user:NAME, group:NAME, uid:N or gid:N"));
        };
        let (net, prefix) = cidr.split_once('/').unwrap_or((cidr, "32"));
        let net = parse_ipv4(net, "network").map_err(|_| bad("bad network address"))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= 32)
            .ok_or_else(|| bad("bad prefix length"))?;
        rules.push(Rule {
            allow,
            who,
            net,
            prefix,
        });
    }
    Ok(rules)
}

/// Whether `caller` may use `addr` under `rules`.
pub fn allows(rules: &[Rule], caller: &Caller, addr: Ipv4Addr) -> bool {
    if caller.uid == 0 {
        return true;
    }
    for r in rules {
        let who = match r.who {
            Who::All => true,
            Who::Uid(u) => u == caller.uid,
            Who::Gid(g) => caller.groups.contains(&g),
        };
        if who && r.covers(addr) {
            return r.allow;
        }
    }
    false
}

/// The largest policy file read.
const MAX_POLICY: u64 = 1 << 20;

/// Reads the policy file's text: `None` when there is no policy file.
///
/// Called while the helper is still root (the file may be root's and
/// mode 0600), so nothing on the way may be chosen by another user: every
/// directory from `/` down is checked with `lstat` (a directory, not a
/// link, owned by root, not writable by group or others — or root's and
/// sticky, like `/tmp`, where nobody else can replace root's entries),
/// the file is opened with `O_NOFOLLOW` (and `O_NONBLOCK`, so a FIFO
/// cannot stall the helper) and checked on the open descriptor: a
/// regular file owned by root, not writable by group or others.
pub fn read(path: &Path) -> Result<Option<String>, Error> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let unreadable = |source| Error::PolicyRead {
        path: path.to_path_buf(),
        source,
    };
    let not_found = |e: &std::io::Error| e.kind() == std::io::ErrorKind::NotFound;
    if let Some(dir) = path.parent() {
        let mut at = std::path::PathBuf::new();
        for part in dir.components() {
            at.push(part);
            let meta = match std::fs::symlink_metadata(&at) {
                Ok(m) => m,
                Err(e) if not_found(&e) => return Ok(None),
                Err(e) => return Err(unreadable(e)),
            };
            let sticky = meta.mode() & 0o1000 != 0;
            if !meta.is_dir() || meta.uid() != 0 || (meta.mode() & 0o022 != 0 && !sticky) {
                return Err(Error::PolicyDirInsecure(at));
            }
        }
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path);
    let file = match file {
        Ok(f) => f,
        Err(e) if not_found(&e) => return Ok(None),
        // O_NOFOLLOW on a symbolic link.
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(Error::PolicyInsecure(path.to_path_buf()))
        }
        Err(e) => return Err(unreadable(e)),
    };
    let meta = file.metadata().map_err(unreadable)?;
    if !meta.is_file() || meta.uid() != 0 || meta.mode() & 0o022 != 0 {
        return Err(Error::PolicyInsecure(path.to_path_buf()));
    }
    let mut text = String::new();
    file.take(MAX_POLICY)
        .read_to_string(&mut text)
        .map_err(unreadable)?;
    Ok(Some(text))
}

/// Parses the text [`read`] returned, names through every NSS service of
/// `/etc/nsswitch.conf` (uml_net is linked dynamically for this; see
/// uml_common::sys::nss).
pub fn rules(text: &str) -> Result<Vec<Rule>, Error> {
    let user = |n: &str| uml_common::sys::nss::user_by_name(n.as_bytes()).map(|u| u.uid);
    let group = |n: &str| uml_common::sys::nss::group_by_name(n.as_bytes());
    parse(text, user, group)
}

/// The policy in force: `None` when there is no policy file.
pub fn load(path: &Path) -> Result<Option<Vec<Rule>>, Error> {
    read(path)?.map(|t| rules(&t)).transpose()
}

/// The caller's identity.
pub fn caller() -> Caller {
    let mut groups: Vec<u32> = nix::unistd::getgroups()
        .unwrap_or_default()
        .into_iter()
        .map(|g| g.as_raw())
        .collect();
    groups.push(nix::unistd::getgid().as_raw());
    Caller {
        uid: nix::unistd::getuid().as_raw(),
        groups,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(text: &str) -> Vec<Rule> {
        parse(
            text,
            |n| (n == "alice").then_some(1000),
            |n| (n == "uml-net").then_some(120),
        )
        .unwrap()
    }

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn first_match_decides_and_default_is_deny() {
        let r = rules(
            "# comment\n\
             allow user:alice 192.168.7.0/24\n\
             deny group:uml-net 10.9.0.0/16   # no\n\
             allow group:uml-net 10.0.0.0/8\n",
        );
        let alice = Caller {
            uid: 1000,
            groups: vec![1000],
        };
        let member = Caller {
            uid: 2000,
            groups: vec![120],
        };
        let other = Caller {
            uid: 3000,
            groups: vec![3000],
        };
        assert!(allows(&r, &alice, ip("192.168.7.9")));
        assert!(!allows(&r, &alice, ip("192.168.8.9")));
        assert!(allows(&r, &member, ip("10.1.2.3")));
        assert!(!allows(&r, &member, ip("10.9.2.3")));
        assert!(!allows(&r, &other, ip("10.1.2.3")));
        let root = Caller {
            uid: 0,
            groups: vec![0],
        };
        assert!(allows(&r, &root, ip("1.2.3.4")));
        assert!(allows(&rules("allow all 0.0.0.0/0"), &other, ip("8.8.8.8")));
        assert!(allows(
            &rules("allow uid:3000 1.2.3.4"),
            &other,
            ip("1.2.3.4")
        ));
        assert!(!allows(
            &rules("allow uid:3000 1.2.3.4"),
            &other,
            ip("1.2.3.5")
        ));
    }

    #[test]
    fn bad_lines_are_errors_with_line_numbers() {
        let p = |t: &str| parse(t, |_| None, |_| None);
        assert_eq!(
            p("allow all").unwrap_err().to_string(),
            "/etc/uml-utilities/uml_net.conf:1: expected 'allow|deny WHO ADDRESS/PREFIX'"
        );
        assert!(matches!(
            p("\npermit all 1.2.3.4/8"),
            Err(Error::PolicySyntax { line: 2, .. })
        ));
        assert!(p("allow user:nobody-here 1.2.3.4/8").is_err());
        assert!(p("allow all 1.2.3/8").is_err());
        assert!(p("allow all 1.2.3.4/33").is_err());
        assert!(p("allow someone 1.2.3.4/8").is_err());
        assert_eq!(p("# only comments\n\n").unwrap(), vec![]);
    }

    #[test]
    fn missing_file_means_no_policy() {
        assert!(matches!(
            load(Path::new("/nonexistent/uml_net.conf")),
            Ok(None)
        ));
    }

    #[test]
    fn insecure_file_is_refused() {
        let dir = std::env::temp_dir().join(format!("umlnet-policy-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("p.conf");
        std::fs::write(&f, "allow all 0.0.0.0/0\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o666)).unwrap();
        let owned_by_root = std::fs::metadata(&f).unwrap().uid() == 0;
        let text = load(&f).unwrap_err().to_string();
        if owned_by_root {
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
            assert_eq!(
                load(&f).unwrap_err().to_string(),
                format!(
                    "uml_net : refusing: {} must be a regular file owned by root and not writable by others",
                    f.display()
                )
            );
            // Root's, mode 0600: readable (the helper reads it as root).
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
            assert_eq!(load(&f).unwrap().unwrap().len(), 1);
            // A symbolic link is not followed, even to a good file.
            let link = dir.join("link.conf");
            std::os::unix::fs::symlink(&f, &link).unwrap();
            assert!(matches!(load(&link), Err(Error::PolicyInsecure(_))));
            // A directory others may write to is refused.
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
            assert!(matches!(load(&f), Err(Error::PolicyDirInsecure(d)) if d == dir));
        } else {
            // The user's own temporary directory is refused first.
            assert!(text.contains("must be a directory owned by root"), "{text}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
