//! Shell lines for UML guests (hostfs root: the host's busybox and bash)
//! that take an address by DHCP and fetch a page over HTTP, as the guests
//! of the NAT port and of the ports that connect out to passt and
//! slirp4netns do. `busybox wget` crashes on the test hosts' Debian 12, so
//! pages are fetched with bash's `/dev/tcp`.

/// busybox `udhcpc`'s event script: on `bound` and `renew` it puts the
/// lease's address on the interface, the first router as the default
/// route, and writes `IP ROUTER DNS` to `/tmp/lease`.
pub const UDHCPC_SCRIPT: &str = r#"#!/bin/sh
case "$1" in
bound|renew)
    ip -4 addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface" || exit 1
    for r in $router; do ip route replace default via "$r" dev "$interface"; break; done
    echo "$ip $router $dns" >/tmp/lease
    ;;
esac
exit 0
"#;

/// Brings `dev` up and asks for a lease (busybox `udhcpc` with
/// [`UDHCPC_SCRIPT`], at most 10 tries 2 s apart); prints `TEST: lease IP
/// ROUTER DNS` (empty without a lease) and `TEST: dhcp rc=N`. `/tmp/lease`
/// holds the lease afterwards.
pub fn dhcp(dev: &str) -> String {
    format!(
        "cat >/tmp/udhcpc.sh <<'EOF'\n{UDHCPC_SCRIPT}EOF\n\
         chmod +x /tmp/udhcpc.sh\n\
         ip link set {dev} up\n\
         busybox udhcpc -i {dev} -s /tmp/udhcpc.sh -n -q -t 10 -T 2 -A 1 >/tmp/udhcpc.log 2>&1\n\
         rc=$?; cat /tmp/udhcpc.log; echo \"TEST: lease $(cat /tmp/lease 2>/dev/null)\"\n\
         echo \"TEST: dhcp rc=$rc\"\n"
    )
}

/// `GET /PATH` from `host`:`port` with bash's `/dev/tcp`, the answer
/// (headers and body) and any error in `out`. `host` is put inside double
/// quotes, so it may be a shell expansion such as `$addr`; an IPv6 address
/// is written as is.
pub fn http_get(host: &str, port: u16, path: &str, out: &str) -> String {
    format!(
        "bash -c \"exec 3<>/dev/tcp/{host}/{port} && \
         printf 'GET /{path} HTTP/1.0\\r\\n\\r\\n' >&3 && cat <&3\" >{out} 2>&1\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lines are valid shell (`sh -n`), with the script's heredoc
    /// closed.
    #[test]
    fn lines_are_valid_shell() {
        let text = format!(
            "{}addr=10.0.0.1\n{}{}",
            dhcp("eth0"),
            http_get("$addr", 8000, "page", "/tmp/page"),
            http_get("fd00:77::1", 8002, "p", "/tmp/p6")
        );
        let out = std::process::Command::new("sh")
            .arg("-n")
            .arg("-c")
            .arg(&text)
            .output()
            .expect("sh");
        assert!(
            out.status.success(),
            "{}\n{text}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("-s /tmp/udhcpc.sh") && text.contains("\nEOF\n"));
        assert!(text.contains("/dev/tcp/$addr/8000"), "{text}");
    }
}
