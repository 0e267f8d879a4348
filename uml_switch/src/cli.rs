//! The legacy command line, parsed left to right like the C switch:
//! `-hub` and `-compat-v0` print their notice as soon as they are seen.
//! New options are GNU-style long options (`--bess PATH`, `--help`; an
//! optional value, as `--mcast`'s, only with `=`); the usage text of an
//! error stays the C switch's.

use std::ffi::OsString;
use std::path::PathBuf;

use uml_common::tunnel_opts::TunnelKind;

#[cfg(feature = "clap-command")]
pub mod command;

/// Every option [`parse`] recognises, as it is spelled: the C switch's
/// single-dash words, which take their value from the next argument, and
/// the GNU-style options of the rewrite, which also take it after `=`.
/// [`parse`] looks each argument up here first, so it accepts no option
/// that is not listed; packaging's tests check that this is the set of
/// options in the description (`cli/command.rs`).
pub const OPTIONS: &[&str] = &[
    "-unix",
    "-hub",
    "-tap",
    "-compat-v0",
    "-daemon",
    "--bess",
    "--l2tpv3",
    "--gre",
    "--raw",
    "--mcast",
    "--mtu",
    "--mgmt",
    "--mgmt-mode",
    "--mgmt-group",
    "--pcap",
    "--pcap-limit",
    "--vxlan",
    "--pcap-port",
    "--pcap-format",
    "--user",
    "--bess-connect",
    "--qemu-connect",
    "--nat",
    "--help",
];

/// Default control socket.
pub const DEFAULT_CTL: &str = "/tmp/uml.ctl";
/// Default data socket of `-compat-v0`.
pub const DEFAULT_DATA: &str = "/tmp/uml.data";

/// Parsed options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Control socket path.
    pub ctl: PathBuf,
    /// Data socket path (`-compat-v0` only).
    pub data: Option<PathBuf>,
    /// Hub instead of switch.
    pub hub: bool,
    /// Host tap device to attach.
    pub tap: Option<String>,
    /// Protocol 0 compatibility.
    pub compat_v0: bool,
    /// Detach after set-up.
    pub daemon: bool,
    /// Listening sockets for bess guests (`--bess`), in order.
    pub bess: Vec<PathBuf>,
    /// Tunnel ports (`--l2tpv3 OPTIONS`, `--gre OPTIONS`) in order, their
    /// options unchecked (checked at start-up, before anything is
    /// opened).
    pub tunnels: Vec<(TunnelKind, String)>,
    /// Host interfaces to attach through `AF_PACKET` (`--raw IFNAME`), in
    /// order.
    pub raw: Vec<String>,
    /// Legacy mcast groups (`--mcast`, `--mcast=GROUP[,PORT[,TTL]]`; the
    /// value, empty for the defaults), unchecked.
    pub mcast: Vec<String>,
    /// `--mtu N`: the largest frame forwarded is N + 14 bytes (unchecked).
    pub mtu: Option<String>,
    /// `--mgmt PATH`: the management socket.
    pub mgmt: Option<PathBuf>,
    /// `--mgmt-mode MODE`: its permissions, octal (unchecked).
    pub mgmt_mode: Option<String>,
    /// `--mgmt-group GROUP`: its group, a name or a number (unchecked).
    pub mgmt_group: Option<String>,
    /// VXLAN trunks (`--vxlan OPTIONS`), in order, unchecked.
    pub vxlan: Vec<String>,
    /// `--pcap FILE`: capture every frame to FILE.
    pub pcap: Option<PathBuf>,
    /// `--pcap-limit SIZE`: its rotation size (unchecked).
    pub pcap_limit: Option<String>,
    /// Read-only pcap ports (`--pcap-port IFNAME[,filter=EXPR]`), in
    /// order, unchecked.
    pub pcap_ports: Vec<String>,
    /// `--pcap-format pcap|pcapng`: the capture file's format
    /// (unchecked).
    pub pcap_format: Option<String>,
    /// `--user USER[:GROUP]`: run as this user after set-up (unchecked).
    pub user: Option<String>,
    /// Peers listening in bess mode to connect to (`--bess-connect`), in
    /// order.
    pub bess_connect: Vec<PathBuf>,
    /// QEMU-stream peers to connect to (`--qemu-connect`), in order.
    pub qemu_connect: Vec<PathBuf>,
    /// `--nat[=OPTIONS]`: the NAT port's options, each as given (empty:
    /// the defaults), unchecked; more than one is refused at start-up.
    pub nat: Vec<String>,
    /// `--help`: print the help text and exit 0.
    pub help: bool,
}

/// The usage text (stderr, exit 1).
pub fn usage(prog: &str) -> String {
    format!(
        "Usage : {prog} [ -unix control-socket ] [ -hub ] [ -tap tap-device ]\n\
         or : {prog} -compat-v0 [ -unix control-socket data-socket ] [ -hub ] [ -tap tap-device ]\n"
    )
}

/// The `--help` text (stdout, exit 0); packaging's tests check that it is
/// the text rendered from the description (`cli/command.rs`).
pub fn help(prog: &str) -> String {
    format!(
        "Usage: {prog} [-unix control-socket] [-hub] [-tap tap-device]\n\
         \x20        [-daemon] [--bess PATH]... [--l2tpv3 OPTIONS]... [--gre OPTIONS]...\n\
         \x20        [--raw IFNAME]... [--mcast[=GROUP[,PORT[,TTL]]]]... [--mtu N]\n\
         \x20        [--mgmt PATH [--mgmt-mode MODE] [--mgmt-group GROUP]]\n\
         \x20        [--pcap FILE [--pcap-limit SIZE] [--pcap-format pcap|pcapng]]\n\
         \x20        [--vxlan OPTIONS]... [--user USER[:GROUP]] [--bess-connect PATH]...\n\
         \x20        [--qemu-connect PATH]... [--pcap-port IFNAME[,filter=EXPR]]...\n\
         \x20        [--nat[=OPTIONS]]\n\
         \x20  or: {prog} -compat-v0 [-unix control-socket data-socket] [-hub]\n\
         \x20        [-tap tap-device] [-daemon] [--bess PATH]... [--l2tpv3 OPTIONS]...\n\
         \x20        [--gre OPTIONS]... [--raw IFNAME]... [--mcast[=...]]... [--mtu N]\n\
         \x20  or: {prog} --launch BESS-PATH [--fd N] [--] PROGRAM [ARG]...\n\
         \n\
         A virtual Ethernet switch for User-Mode Linux guests: it learns where each MAC\n\
         address is and forwards frames between its ports.\n\
         \n\
         \x20 -unix control-socket [data-socket]\n\
         \x20                 the daemon protocol's control socket (default {DEFAULT_CTL},\n\
         \x20                 always served); guests of kernels before 6.16 join with\n\
         \x20                 eth0=daemon,,unix,control-socket. Named DIR/ctl, it also\n\
         \x20                 serves vdeplug4's vde_plug: guests of 6.16 and later join\n\
         \x20                 with vec0:transport=vde,vnl=vde://DIR (other names:\n\
         \x20                 vde://DIR[NAME]); each such port gets its own data socket\n\
         \x20                 control-socket.N. Both arguments are printed at start-up.\n\
         \x20 -hub            send every frame to every other port\n\
         \x20 -tap tap-device attach an existing host tap device as a port\n\
         \x20 -compat-v0      also serve protocol 0 clients; the data socket is then the\n\
         \x20                 file {DEFAULT_DATA}, or the second path of a later -unix\n\
         \x20 -daemon         detach after set-up\n\
         \x20 --bess PATH     listen on the SOCK_SEQPACKET socket PATH for guests of the\n\
         \x20                 vector driver's bess transport (any kernel with vecN:,\n\
         \x20                 including 6.16 and later); every connection is a port, any\n\
         \x20                 number of guests can use one socket. Guests join with\n\
         \x20                 vec0:transport=bess,dst=PATH (PATH absolute, without ',' or\n\
         \x20                 '='). May be given more than once.\n\
         \x20 --l2tpv3 OPTIONS\n\
         \x20                 a port for one guest on vecN:transport=l2tpv3,OPTIONS: give\n\
         \x20                 the guest's own options (src=,dst=,rx_session=,tx_session=;\n\
         \x20                 udp=1,srcport=,dstport= for UDP, else IP, which needs\n\
         \x20                 CAP_NET_RAW; rx_cookie=,tx_cookie=[,cookie64=1];\n\
         \x20                 counter=1[,pin_counter=1]; v6=1). The switch binds dst,\n\
         \x20                 sends to src, expects the tx_ values and sends the rx_ ones;\n\
         \x20                 dstport=0 lets it choose a port. It prints the guest's\n\
         \x20                 argument at start-up.\n\
         \x20 --gre OPTIONS   a port for one guest on vecN:transport=gre,OPTIONS (src=,dst=\n\
         \x20                 [,rx_key=,tx_key=][,sequence=1[,pin_sequence=1]][,v6=1]);\n\
         \x20                 needs CAP_NET_RAW. Options that would make a guest panic\n\
         \x20                 (e.g. rx_session=0xffffffff: write -1 instead) or that it\n\
         \x20                 would misread are refused. Both may be given more than once.\n\
         \x20 --raw IFNAME    attach the host interface IFNAME through an AF_PACKET socket\n\
         \x20                 (needs CAP_NET_RAW): one end of a veth pair whose other end a\n\
         \x20                 guest uses with vec0:transport=raw,ifname=OTHER, or the tap of\n\
         \x20                 a guest on vec0:transport=tap,ifname=TAP. The guests' TCP\n\
         \x20                 segmentation and checksum offloads are completed. May be given\n\
         \x20                 more than once.\n\
         \x20 --mcast[=GROUP[,PORT[,TTL]]]\n\
         \x20                 join the multicast group of guests on the legacy transport\n\
         \x20                 eth0=mcast,MAC,GROUP,PORT,TTL (kernels before 6.16; defaults\n\
         \x20                 239.192.168.1, 1102, 1, the kernel's); the group is one port.\n\
         \x20                 Needs a route to the group (ip route add 224.0.0.0/4 dev IF).\n\
         \x20 --vxlan OPTIONS a VXLAN trunk (RFC 7348, UDP) to other switches or Linux vxlan\n\
         \x20                 devices: local=IP,remote=IP[,remote=IP...][,vni=N][,port=N]\n\
         \x20                 (vni 1 and port 4789 by default). A frame for a MAC learned\n\
         \x20                 behind a remote goes to it only, others to every remote.\n\
         \x20                 May be given more than once.\n\
         \x20 --bess-connect PATH\n\
         \x20                 connect to PATH, where a user-mode network stack listens in\n\
         \x20                 bess mode (slirp4netns --target-type=bess, gvproxy\n\
         \x20                 -listen-bess): one port, one frame per message. The peer\n\
         \x20                 must listen at start-up; when it goes the port is removed.\n\
         \x20 --qemu-connect PATH\n\
         \x20                 connect to the stream socket PATH of a peer that speaks\n\
         \x20                 QEMU's 4-byte length framing (passt -s PATH, gvproxy\n\
         \x20                 -listen-qemu, QEMU -netdev stream,server=on): one port.\n\
         \x20                 Both may be given more than once.\n\
         \x20 --nat[=OPTIONS] a NAT port, the gateway of every guest on the switch (DHCP,\n\
         \x20                 DNS forwarding, outbound TCP and UDP, host port forwards),\n\
         \x20                 with no root and no CAP_NET_*: libslirp in the helper\n\
         \x20                 uml_switch_nat. OPTIONS, comma-separated, as QEMU's -netdev\n\
         \x20                 user: net=10.0.2.0/24, host=10.0.2.2, dns=10.0.2.3,\n\
         \x20                 dhcpstart=10.0.2.15 (the defaults), dns=off, restrict=on,\n\
         \x20                 host-loopback=off (guests cannot reach the host's 127.0.0.1),\n\
         \x20                 hostfwd=[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT;\n\
         \x20                 may be given more than once; ipv6=on adds QEMU's fec0::/64.\n\
         \x20 --mtu N         forward frames of up to N + 14 bytes (N from 1500 to 65535,\n\
         \x20                 default 1500) between ports that take them: bess, tunnel and\n\
         \x20                 raw ports (guests with mtu=N); daemon and mcast ports keep\n\
         \x20                 1514. Longer frames are dropped and counted per port.\n\
         \x20 --mgmt PATH     serve the management socket PATH (a unix stream socket): list\n\
         \x20                 the ports, the MAC table and the counters, as text or JSON.\n\
         \x20                 With a COMMAND after PATH instead of options: send it to the\n\
         \x20                 running switch's socket and print the answer (try: help).\n\
         \x20 --mgmt-mode MODE\n\
         \x20                 permissions of the management socket, in octal (default 0600:\n\
         \x20                 only the switch's user may use it)\n\
         \x20 --mgmt-group GROUP\n\
         \x20                 give the management socket to GROUP (a name in /etc/group or a\n\
         \x20                 number), so that with --mgmt-mode 0660 its members may use it\n\
         \x20 --pcap FILE     capture every frame the switch receives to the new pcap file\n\
         \x20                 FILE (Wireshark, tcpdump), rotated to FILE.1 at the limit\n\
         \x20 --pcap-limit SIZE\n\
         \x20                 the capture file's size limit (bytes, or with K, M, G;\n\
         \x20                 default 64M; at least 64K)\n\
         \x20 --pcap-format FORMAT\n\
         \x20                 the capture file's format: pcap (libpcap's, the default) or\n\
         \x20                 pcapng (the next generation format; both rotate the same way)\n\
         \x20 --pcap-port IFNAME[,filter=EXPR]\n\
         \x20                 a read-only port fed with the frames that libpcap captures on\n\
         \x20                 the host interface IFNAME and that pass the BPF filter EXPR\n\
         \x20                 (pcap-filter(7), the rest of the value); frames sent to it are\n\
         \x20                 dropped. Runs the helper uml_switch_pcap (needs CAP_NET_RAW).\n\
         \x20                 May be given more than once.\n\
         \x20 --user USER[:GROUP]\n\
         \x20                 after opening every socket and port, run as USER (a name\n\
         \x20                 from /etc/passwd or a uid) and GROUP (default: the user's\n\
         \x20                 group; for a uid, the same number), without supplementary\n\
         \x20                 groups, keeping only CAP_NET_RAW and only when a --raw,\n\
         \x20                 --gre or IP --l2tpv3 port needs it. The directories of the\n\
         \x20                 socket files must be writable by USER (they are removed at\n\
         \x20                 exit). Needs root.\n\
         \x20 --help          print this help and exit\n\
         \x20 --launch BESS-PATH [--fd N] [--] PROGRAM [ARG]...\n\
         \x20                 instead of running a switch: connect to the --bess socket\n\
         \x20                 BESS-PATH of a running switch, put the connection on\n\
         \x20                 descriptor N (default 3) and run PROGRAM with it, e.g.\n\
         \x20                 linux.uml ... vec0:transport=fd,fd=N (the guest needs no\n\
         \x20                 socket path). One port per launch; the guest's first\n\
         \x20                 ip link set down closes it for good.\n\
         \n\
         SIGINT, SIGTERM and SIGHUP remove the sockets and end the switch; SIGUSR1 prints\n\
         frame and drop counters on stderr.\n"
    )
}

/// Result of parsing: the options, plus the notices to print on stdout in
/// order (they are printed even when a later argument is bad, as in C).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// Notices printed while parsing.
    pub notices: Vec<String>,
    /// The options, or `None` for a usage error.
    pub options: Option<Options>,
}

/// Parses `args` (without `argv[0]`); `prog` is `argv[0]` as invoked.
pub fn parse(prog: &str, args: &[OsString]) -> Parsed {
    let mut notices = Vec::new();
    let mut o = Options {
        ctl: PathBuf::from(DEFAULT_CTL),
        data: None,
        hub: false,
        tap: None,
        compat_v0: false,
        daemon: false,
        bess: Vec::new(),
        tunnels: Vec::new(),
        raw: Vec::new(),
        mcast: Vec::new(),
        mtu: None,
        mgmt: None,
        mgmt_mode: None,
        mgmt_group: None,
        pcap: None,
        pcap_limit: None,
        vxlan: Vec::new(),
        pcap_ports: Vec::new(),
        pcap_format: None,
        user: None,
        bess_connect: Vec::new(),
        qemu_connect: Vec::new(),
        nat: Vec::new(),
        help: false,
    };
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let Some((option, inline)) = arg.to_str().and_then(option_of) else {
            return Parsed {
                notices,
                options: None,
            };
        };
        match (option, inline) {
            ("-unix", None) => {
                let Some(ctl) = it.next() else {
                    return Parsed {
                        notices,
                        options: None,
                    };
                };
                o.ctl = PathBuf::from(ctl);
                if o.compat_v0 {
                    let Some(data) = it.next() else {
                        return Parsed {
                            notices,
                            options: None,
                        };
                    };
                    o.data = Some(PathBuf::from(data));
                }
            }
            ("-hub", None) => {
                notices.push(format!("{prog} will be a hub instead of a switch\n"));
                o.hub = true;
            }
            ("-tap", None) => {
                let Some(dev) = it.next() else {
                    return Parsed {
                        notices,
                        options: None,
                    };
                };
                o.tap = Some(dev.to_string_lossy().into_owned());
            }
            ("-compat-v0", None) => {
                notices.push("Control protocol 0 compatibility\n".to_string());
                o.compat_v0 = true;
                if o.data.is_none() {
                    o.data = Some(PathBuf::from(DEFAULT_DATA));
                }
            }
            ("-daemon", None) => o.daemon = true,
            ("--help", None) => o.help = true,
            // The value is optional, so only `--mcast=VALUE` gives one.
            ("--mcast", _) => o.mcast.push(inline.unwrap_or_default().to_string()),
            ("--nat", _) => o.nat.push(inline.unwrap_or_default().to_string()),
            (
                "--bess" | "--raw" | "--mtu" | "--l2tpv3" | "--gre" | "--mgmt" | "--mgmt-mode"
                | "--mgmt-group" | "--pcap" | "--pcap-limit" | "--vxlan" | "--user"
                | "--bess-connect" | "--qemu-connect" | "--pcap-port" | "--pcap-format",
                _,
            ) => {
                // The value: after `=`, else the next argument.
                let Some(v) = inline.map(OsString::from).or_else(|| it.next().cloned()) else {
                    return Parsed {
                        notices,
                        options: None,
                    };
                };
                let text = v.to_string_lossy().into_owned();
                match option {
                    "--bess" => o.bess.push(PathBuf::from(v)),
                    "--raw" => o.raw.push(text),
                    "--mtu" => o.mtu = Some(text),
                    "--mgmt" => o.mgmt = Some(PathBuf::from(v)),
                    "--mgmt-mode" => o.mgmt_mode = Some(text),
                    "--mgmt-group" => o.mgmt_group = Some(text),
                    "--pcap" => o.pcap = Some(PathBuf::from(v)),
                    "--pcap-limit" => o.pcap_limit = Some(text),
                    "--vxlan" => o.vxlan.push(text),
                    "--pcap-port" => o.pcap_ports.push(text),
                    "--pcap-format" => o.pcap_format = Some(text),
                    "--user" => o.user = Some(text),
                    "--bess-connect" => o.bess_connect.push(PathBuf::from(v)),
                    "--qemu-connect" => o.qemu_connect.push(PathBuf::from(v)),
                    "--l2tpv3" => o.tunnels.push((TunnelKind::L2tpv3, text)),
                    _ => o.tunnels.push((TunnelKind::Gre, text)),
                }
            }
            _ => {
                return Parsed {
                    notices,
                    options: None,
                }
            }
        }
    }
    Parsed {
        notices,
        options: Some(o),
    }
}

/// The entry of [`OPTIONS`] that `arg` is, with the value given after
/// `=` (non-empty; GNU-style options only), or `None` for an argument that
/// is no option.
fn option_of(arg: &str) -> Option<(&'static str, Option<&str>)> {
    if let Some(&option) = OPTIONS.iter().find(|&&o| o == arg) {
        return Some((option, None));
    }
    let (name, value) = arg.split_once('=')?;
    if !name.starts_with("--") || value.is_empty() {
        return None;
    }
    let &option = OPTIONS.iter().find(|&&o| o == name)?;
    Some((option, Some(value)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Parsed {
        let a: Vec<OsString> = args.iter().map(OsString::from).collect();
        parse("sw", &a)
    }

    #[test]
    fn defaults_and_options() {
        let o = p(&[]).options.unwrap();
        assert_eq!(o.ctl, PathBuf::from("/tmp/uml.ctl"));
        assert_eq!(o.data, None);
        let r = p(&["-unix", "/w/ctl", "-hub", "-tap", "tap0", "-daemon"]);
        assert_eq!(r.notices, ["sw will be a hub instead of a switch\n"]);
        let o = r.options.unwrap();
        assert_eq!(o.ctl, PathBuf::from("/w/ctl"));
        assert!(o.hub && o.daemon);
        assert_eq!(o.tap.as_deref(), Some("tap0"));
    }

    #[test]
    fn compat_v0_takes_a_data_path_only_after_it() {
        let r = p(&["-compat-v0", "-unix", "c", "d"]);
        assert_eq!(r.notices, ["Control protocol 0 compatibility\n"]);
        let o = r.options.unwrap();
        assert_eq!(o.data, Some(PathBuf::from("d")));
        let o = p(&["-compat-v0"]).options.unwrap();
        assert_eq!(o.data, Some(PathBuf::from("/tmp/uml.data")));
        // Before -compat-v0, -unix takes one value: "d" is then unknown.
        assert_eq!(p(&["-unix", "c", "d", "-compat-v0"]).options, None);
        let o = p(&["-unix", "c", "-compat-v0"]).options.unwrap();
        assert_eq!(o.data, Some(PathBuf::from("/tmp/uml.data")));
    }

    #[test]
    fn bess_and_help() {
        let o = p(&["--bess", "/w/a", "-unix", "c", "--bess=/w/b"])
            .options
            .unwrap();
        assert_eq!(o.bess, [PathBuf::from("/w/a"), PathBuf::from("/w/b")]);
        assert!(!o.help);
        assert!(p(&["--help"]).options.unwrap().help);
        assert_eq!(p(&["--bess"]).options, None);
        assert_eq!(p(&["--bess="]).options, None);
        assert_eq!(p(&["-bess", "x"]).options, None);
        assert_eq!(p(&["---bess", "x"]).options, None);
        let h = help("sw");
        assert!(h.starts_with("Usage: sw [-unix control-socket]"), "{h}");
        assert!(h.contains("vec0:transport=bess,dst=PATH"), "{h}");
        assert!(h.contains("vec0:transport=vde,vnl=vde://DIR"), "{h}");
        assert!(h.contains("vec0:transport=fd,fd=N"), "{h}");
        assert!(h.lines().all(|l| l.len() <= 80), "{h}");
    }

    #[test]
    fn tunnel_options_are_collected_in_order_unchecked() {
        let o = p(&[
            "--l2tpv3",
            "udp=1,src=a",
            "--gre=src=b,dst=c",
            "--l2tpv3=x=1",
            "--gre",
            "anything",
        ])
        .options
        .unwrap();
        assert_eq!(
            o.tunnels,
            [
                (TunnelKind::L2tpv3, "udp=1,src=a".to_string()),
                (TunnelKind::Gre, "src=b,dst=c".to_string()),
                (TunnelKind::L2tpv3, "x=1".to_string()),
                (TunnelKind::Gre, "anything".to_string()),
            ]
        );
        for bad in [
            &["--l2tpv3"][..],
            &["--gre"],
            &["--gre="],
            &["--l2tpv3="],
            &["-gre", "x"],
            &["--l2tpv", "x"],
            &["--l2tpv3x", "y"],
        ] {
            assert_eq!(p(bad).options, None, "{bad:?}");
        }
        let h = help("sw");
        assert!(
            h.contains("--l2tpv3 OPTIONS") && h.contains("--gre OPTIONS"),
            "{h}"
        );
    }

    #[test]
    fn raw_mcast_and_mtu() {
        let o = p(&[
            "--raw",
            "vb0",
            "--mcast",
            "--raw=tap1",
            "--mcast=239.1.1.1,5",
            "--mtu",
            "9000",
        ])
        .options
        .unwrap();
        assert_eq!(o.raw, ["vb0", "tap1"]);
        assert_eq!(o.mcast, ["", "239.1.1.1,5"]);
        assert_eq!(o.mtu.as_deref(), Some("9000"));
        assert_eq!(
            p(&["--mtu=65535"]).options.unwrap().mtu.as_deref(),
            Some("65535")
        );
        for bad in [
            &["--raw"][..],
            &["--raw="],
            &["--mcast="],
            &["--mtu"],
            &["--mtu="],
            &["-raw", "x"],
            &["--rawx"],
            &["--mcastx"],
        ] {
            assert_eq!(p(bad).options, None, "{bad:?}");
        }
        let h = help("sw");
        for o in ["--raw IFNAME", "--mcast[=GROUP[,PORT[,TTL]]]", "--mtu N"] {
            assert!(h.contains(o), "{o}\n{h}");
        }
        assert!(h.lines().all(|l| l.len() <= 80), "{h}");
    }

    #[test]
    fn connections_out_are_collected_in_order() {
        let o = p(&[
            "--qemu-connect",
            "/run/passt.socket",
            "--bess-connect=/run/slirp.bess",
            "--qemu-connect=q2",
        ])
        .options
        .unwrap();
        assert_eq!(o.bess_connect, [PathBuf::from("/run/slirp.bess")]);
        assert_eq!(
            o.qemu_connect,
            [PathBuf::from("/run/passt.socket"), PathBuf::from("q2")]
        );
        for bad in [
            &["--qemu-connect"][..],
            &["--bess-connect="],
            &["-qemu-connect", "x"],
            &["--bess-connectx", "x"],
        ] {
            assert_eq!(p(bad).options, None, "{bad:?}");
        }
        let h = help("sw");
        assert!(
            h.contains("--bess-connect PATH") && h.contains("--qemu-connect PATH"),
            "{h}"
        );
        assert!(h.lines().all(|l| l.len() <= 80), "{h}");
    }

    #[test]
    fn nat_takes_a_value_after_equals_only() {
        let o = p(&["--nat"]).options.unwrap();
        assert_eq!(o.nat, [""]);
        let o = p(&["--nat=net=10.9.0.0/16,hostfwd=tcp::8080-:80"])
            .options
            .unwrap();
        assert_eq!(o.nat, ["net=10.9.0.0/16,hostfwd=tcp::8080-:80"]);
        // Collected as given; more than one is refused at start-up.
        assert_eq!(p(&["--nat", "--nat=x"]).options.unwrap().nat, ["", "x"]);
        for bad in [&["--nat="][..], &["--nat", "net=10.9.0.0/16"], &["-nat"]] {
            assert_eq!(p(bad).options, None, "{bad:?}");
        }
        assert!(p(&[]).options.unwrap().nat.is_empty());
        assert!(help("sw").contains("--nat[=OPTIONS]"));
    }

    #[test]
    fn usage_errors_keep_earlier_notices() {
        let r = p(&["-hub", "-bogus"]);
        assert_eq!(r.options, None);
        assert_eq!(r.notices.len(), 1);
        assert_eq!(p(&["-unix"]).options, None);
        assert_eq!(p(&["-tap"]).options, None);
        assert_eq!(p(&["-compat-v0", "-unix", "c"]).options, None);
        assert_eq!(
            usage("sw"),
            "Usage : sw [ -unix control-socket ] [ -hub ] [ -tap tap-device ]\n\
             or : sw -compat-v0 [ -unix control-socket data-socket ] [ -hub ] [ -tap tap-device ]\n"
        );
    }
}
