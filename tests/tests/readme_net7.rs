//! README "Networking a 7.x guest", as written: root makes a persistent
//! tap for a user with our `tunctl`, gives it the host's address and
//! brings it up; the user boots a 7.x guest with
//! `vec0:transport=tap,ifname=...`; the guest configures `vec0` and pings
//! the host side, which pings back; root removes the tap with `tunctl -d`.
//!
//! Everything runs in a network namespace the test creates. The user is
//! `nobody`: the kernel is started through `setpriv` in a private mount
//! namespace whose `/dev/net/tun` is mode 0666, as Debian's udev makes it
//! (on a test machine it may be 0600).

// Test code: a failed setup step should abort the test with its message.
#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::time::Duration;

use uml_integration_tests::{
    require, run_with_timeout, workspace_bin, Kernel, NetNs, Requirement, RunOutput, Uml,
    UmlConfig, DONE_MARKER,
};

const LIMIT: Duration = Duration::from_secs(20);
/// `nobody` on Debian.
const NOBODY_UID: u32 = 65534;

fn ok(out: RunOutput, what: &str) -> String {
    assert!(out.success(), "{what}: {out}");
    out.stdout_str()
}

/// The real uid of process `pid`.
fn uid_of(pid: u32) -> Option<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[test]
fn readme_tap_made_by_tunctl_for_a_7_guest_of_an_unprivileged_user() {
    require!(
        Requirement::Root,
        Requirement::LinuxUml7,
        Requirement::NetNs,
        Requirement::DevNetTun
    );
    let ns = NetNs::new("rdm7");
    let tunctl = |args: &[&str]| {
        run_with_timeout(
            ns.exec(workspace_bin("tunctl").as_os_str()).args(args),
            LIMIT,
        )
    };

    // root, once: a tap the user may use, with the host's address, up.
    assert_eq!(
        ok(
            tunctl(&["-u", "nobody", "-t", "uml0"]),
            "tunctl -u nobody -t uml0"
        ),
        format!("Set 'uml0' persistent and owned by uid {NOBODY_UID}\n")
    );
    ok(
        ns.ip(&["addr", "add", "192.168.7.1/24", "dev", "uml0"]),
        "ip addr add",
    );
    ok(ns.ip(&["link", "set", "uml0", "up"]), "ip link set up");

    // The user: boot with the tap as vec0.
    let mut cfg = UmlConfig::with_kernel("rdm7", Kernel::Linux7);
    cfg.netns = Some(ns.name().to_string());
    cfg.extra_args
        .push("vec0:transport=tap,ifname=uml0".to_string());
    cfg.wrapper = [
        "unshare",
        "-m",
        "--propagation",
        "private",
        "sh",
        "-c",
        "mount -t tmpfs -o mode=755 tmpfs /dev/net && mknod -m 666 /dev/net/tun c 10 200 && \
         chmod 755 \"$0\" && chmod 777 \"$0/uml\" \"$0/out\" && \
         exec setpriv --reuid=nobody --regid=nogroup --clear-groups \"$@\"",
        "$WORK",
    ]
    .map(String::from)
    .to_vec();
    // In the guest.
    cfg.init_script = r#"
ip addr add 192.168.7.2/24 dev vec0 && ip link set vec0 up || exit 2
ping -c 3 -i 0.3 -w 20 192.168.7.1
echo "README7: ping rc=$?"
while :; do sleep 3600; done
"#
    .into();
    let mut uml = Uml::boot(cfg).expect("boot");
    assert_eq!(
        uid_of(uml.pid()),
        Some(NOBODY_UID),
        "the kernel does not run as nobody"
    );
    assert!(
        uml.wait_console("README7: ping rc=", Duration::from_secs(60)),
        "{}",
        uml.console()
    );
    let console = uml.console();
    assert!(console.contains("README7: ping rc=0"), "{console}");
    assert!(!console.contains(DONE_MARKER), "{console}");
    let back = run_with_timeout(
        ns.exec("ping")
            .args(["-c", "2", "-i", "0.3", "-w", "10", "192.168.7.2"]),
        LIMIT,
    );
    assert!(back.success(), "ping from the host side: {back}");
    // (The harness's own mconsole client replies through a socket the
    // unprivileged kernel may not write to: ours, from the namespace,
    // receives on an abstract address.)
    let halt = run_with_timeout(
        ns.exec(workspace_bin("uml_mconsole").as_os_str())
            .arg(uml.socket_path())
            .arg("halt"),
        LIMIT,
    );
    assert_eq!(
        (halt.code, halt.stdout_str().as_str()),
        (Some(0), "OK \n"),
        "{halt}"
    );
    assert!(uml.wait_exit(Duration::from_secs(20)), "{}", uml.console());

    // root, later: remove the tap.
    assert_eq!(
        ok(tunctl(&["-d", "uml0"]), "tunctl -d uml0"),
        "Set 'uml0' nonpersistent\n"
    );
    let gone = ns.ip(&["link", "show", "uml0"]);
    assert!(!gone.success(), "uml0 still exists: {gone}");
}
