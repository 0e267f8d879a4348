//! systemd's service protocols, as a daemon (the switch) sees them: socket
//! activation (`LISTEN_PID`, `LISTEN_FDS`, `LISTEN_FDNAMES`: sd_listen_fds(3))
//! and readiness notification (`NOTIFY_SOCKET`: sd_notify(3)). Pure: the
//! environment comes in as a lookup function; sending the notification is
//! `sys` work.

use std::os::fd::RawFd;

/// The first passed descriptor (`SD_LISTEN_FDS_START`).
pub const LISTEN_FDS_START: RawFd = 3;
/// More passed descriptors than this is taken for a broken environment.
const MAX_LISTEN_FDS: usize = 4096;

/// A descriptor passed by the service manager.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenFd {
    /// Its number.
    pub fd: RawFd,
    /// Its name (`FileDescriptorName=`; systemd's default is "unknown").
    pub name: Option<String>,
}

/// Why the activation environment is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActivationError {
    /// `LISTEN_FDS` or `LISTEN_PID` is not a number.
    #[error("{0}='{1}' is not a number")]
    NotANumber(&'static str, String),
    /// Too many descriptors.
    #[error("LISTEN_FDS={0}: more descriptors than a switch can be passed")]
    TooMany(usize),
    /// `LISTEN_FDNAMES` names a different number of descriptors.
    #[error("LISTEN_FDNAMES names {names} descriptors, LISTEN_FDS passes {fds}")]
    NameCount {
        /// Names given.
        names: usize,
        /// Descriptors passed.
        fds: usize,
    },
}

/// The descriptors passed to process `pid` by socket activation: none when
/// `LISTEN_PID` is unset or names another process (the variables were
/// meant for a parent; sd_listen_fds(3) ignores them then).
pub fn listen_fds(
    env: impl Fn(&str) -> Option<String>,
    pid: u32,
) -> Result<Vec<ListenFd>, ActivationError> {
    let Some(for_pid) = env("LISTEN_PID") else {
        return Ok(Vec::new());
    };
    let for_pid: u32 = for_pid
        .trim()
        .parse()
        .map_err(|_| ActivationError::NotANumber("LISTEN_PID", for_pid.clone()))?;
    if for_pid != pid {
        return Ok(Vec::new());
    }
    let count = match env("LISTEN_FDS") {
        None => return Ok(Vec::new()),
        Some(n) => n
            .trim()
            .parse::<usize>()
            .map_err(|_| ActivationError::NotANumber("LISTEN_FDS", n.clone()))?,
    };
    if count > MAX_LISTEN_FDS {
        return Err(ActivationError::TooMany(count));
    }
    let names: Vec<Option<String>> = match env("LISTEN_FDNAMES") {
        None => vec![None; count],
        Some(list) => {
            let names: Vec<Option<String>> = list
                .split(':')
                .map(|n| (!n.is_empty()).then(|| n.to_string()))
                .collect();
            if names.len() != count {
                return Err(ActivationError::NameCount {
                    names: names.len(),
                    fds: count,
                });
            }
            names
        }
    };
    Ok(names
        .into_iter()
        .enumerate()
        .map(|(i, name)| ListenFd {
            fd: LISTEN_FDS_START + i as RawFd,
            name,
        })
        .collect())
}

/// Where readiness is to be sent: `NOTIFY_SOCKET`, a path or (leading `@`)
/// an abstract name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyTarget {
    /// A socket file.
    Path(std::path::PathBuf),
    /// An abstract address (without the leading NUL).
    Abstract(Vec<u8>),
}

/// The notification socket from the environment, if any (`NOTIFY_SOCKET`
/// unset, empty or neither a path nor an abstract name: none).
pub fn notify_target(env: impl Fn(&str) -> Option<String>) -> Option<NotifyTarget> {
    let v = env("NOTIFY_SOCKET")?;
    if let Some(name) = v.strip_prefix('@') {
        (!name.is_empty()).then(|| NotifyTarget::Abstract(name.as_bytes().to_vec()))
    } else if v.starts_with('/') {
        Some(NotifyTarget::Path(v.into()))
    } else {
        None
    }
}

/// The message that says the service is ready, with a status line and
/// the main pid (for a switch that forked with `-daemon`).
pub fn ready_message(status: &str, main_pid: Option<u32>) -> String {
    let status: String = status.chars().filter(|c| *c != '\n').collect();
    let mut m = format!("READY=1\nSTATUS={status}\n");
    if let Some(pid) = main_pid {
        m.push_str(&format!("MAINPID={pid}\n"));
    }
    m
}

/// The message that says the service is stopping.
pub const STOPPING: &str = "STOPPING=1\n";

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env<'a>(vars: &'a [(&str, &str)]) -> impl Fn(&str) -> Option<String> + 'a {
        let map: HashMap<&str, &str> = vars.iter().copied().collect();
        move |k| map.get(k).map(|v| v.to_string())
    }

    #[test]
    fn passed_descriptors_start_at_3_with_their_names() {
        let e = [
            ("LISTEN_PID", "42"),
            ("LISTEN_FDS", "3"),
            ("LISTEN_FDNAMES", "ctl:bess:"),
        ];
        assert_eq!(
            listen_fds(env(&e), 42).unwrap(),
            vec![
                ListenFd {
                    fd: 3,
                    name: Some("ctl".into())
                },
                ListenFd {
                    fd: 4,
                    name: Some("bess".into())
                },
                ListenFd { fd: 5, name: None },
            ]
        );
        let unnamed = [("LISTEN_PID", "42"), ("LISTEN_FDS", "1")];
        assert_eq!(
            listen_fds(env(&unnamed), 42).unwrap(),
            vec![ListenFd { fd: 3, name: None }]
        );
    }

    #[test]
    fn descriptors_meant_for_another_process_are_not_taken() {
        let e = [("LISTEN_PID", "41"), ("LISTEN_FDS", "2")];
        assert_eq!(listen_fds(env(&e), 42).unwrap(), vec![]);
        assert_eq!(listen_fds(env(&[("LISTEN_FDS", "2")]), 42).unwrap(), vec![]);
        assert_eq!(listen_fds(env(&[]), 42).unwrap(), vec![]);
    }

    #[test]
    fn a_broken_environment_is_refused_with_what_is_wrong() {
        let bad = [("LISTEN_PID", "42"), ("LISTEN_FDS", "two")];
        assert_eq!(
            listen_fds(env(&bad), 42),
            Err(ActivationError::NotANumber("LISTEN_FDS", "two".into()))
        );
        let bad = [("LISTEN_PID", "x")];
        assert_eq!(
            listen_fds(env(&bad), 42).unwrap_err().to_string(),
            "LISTEN_PID='x' is not a number"
        );
        let bad = [
            ("LISTEN_PID", "42"),
            ("LISTEN_FDS", "2"),
            ("LISTEN_FDNAMES", "a"),
        ];
        assert_eq!(
            listen_fds(env(&bad), 42),
            Err(ActivationError::NameCount { names: 1, fds: 2 })
        );
        let bad = [("LISTEN_PID", "42"), ("LISTEN_FDS", "100000")];
        assert_eq!(
            listen_fds(env(&bad), 42),
            Err(ActivationError::TooMany(100_000))
        );
    }

    #[test]
    fn notify_socket_paths_and_abstract_names() {
        assert_eq!(
            notify_target(env(&[("NOTIFY_SOCKET", "/run/systemd/notify")])),
            Some(NotifyTarget::Path("/run/systemd/notify".into()))
        );
        assert_eq!(
            notify_target(env(&[("NOTIFY_SOCKET", "@sd-notify/1")])),
            Some(NotifyTarget::Abstract(b"sd-notify/1".to_vec()))
        );
        for bad in ["", "@", "relative"] {
            assert_eq!(notify_target(env(&[("NOTIFY_SOCKET", bad)])), None);
        }
        assert_eq!(notify_target(env(&[])), None);
        assert_eq!(
            ready_message("2 ports\nlistening", Some(7)),
            "READY=1\nSTATUS=2 portslistening\nMAINPID=7\n"
        );
        assert_eq!(ready_message("up", None), "READY=1\nSTATUS=up\n");
    }
}
