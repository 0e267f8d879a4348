//! The one description of `uml_switch`'s command line, as a clap
//! [`Command`] (feature `clap-command`), for the man page, the shell
//! completions and the `--help` text ([`super::help`], checked against the
//! text rendered from it); packaging's tests check it against the parser's
//! [`super::OPTIONS`] in both directions. The conventions are in
//! `uml-utilities-packaging`'s `help` module. The fd launcher (`--launch`,
//! its own small parser in `crate::launch`) is described in `after_help`
//! and in the man page's FD LAUNCHER section.
//!
//! Documentation, not a parser: the switch reads its argv by hand
//! ([`super::parse`]) and does not carry clap.

use clap::{Arg, ArgAction, Command, ValueHint};

use super::{DEFAULT_CTL, DEFAULT_DATA};

/// The indent of the option list in `--help` and the column its texts
/// start at.
pub const HELP_LAYOUT: (usize, usize) = (2, 18);

/// The long options the switch spells with one dash (`-unix`), as the C
/// switch did.
pub const SINGLE_DASH: &[&str] = &["unix", "hub", "tap", "compat-v0", "daemon"];

/// The command line of `uml_switch`.
pub fn command() -> Command {
    let ctl = DEFAULT_CTL;
    let data = DEFAULT_DATA;
    // The launcher's usage line, as `--launch` prints it.
    let launch = crate::launch::usage("uml_switch");
    let launch_usage = launch.replacen("Usage:", "   or:", 1);
    let launch_synopsis = launch
        .trim_end()
        .trim_start_matches("Usage: uml_switch ")
        .to_string();
    let fd = crate::launch::DEFAULT_FD;
    Command::new("uml_switch")
        .version(env!("CARGO_PKG_VERSION"))
        .disable_help_flag(true)
        .disable_version_flag(true)
        .about("virtual Ethernet switch for User-Mode Linux")
        .long_about(format!(
            "uml_switch connects the network interfaces of User-Mode Linux kernels that use \
             the daemon transport (eth0=daemon), and optionally a host tap device, as one \
             Ethernet segment. It learns where each MAC address is and forwards frames like a \
             switch, or repeats every frame to every port with -hub.\n\n\
             Kernels connect to the control socket (a Unix stream socket, default {ctl}); \
             frames travel over datagram sockets in the abstract namespace, so the switch \
             and its kernels must share one network namespace. Debian's kernel connects to \
             /var/run/uml-utilities/uml_switch.ctl when no socket is given (eth0=daemon): \
             that is the socket of the uml-utilities service, which runs uml_switch as user \
             uml-net (see /etc/default/uml-utilities).\n\n\
             Guests of kernels with the vector driver (all current kernels; from 6.16 on \
             the only network driver) join a --bess socket instead: \
             vec0:transport=bess,dst=PATH. Each connection to it is one port, any number of \
             guests can share one socket, and it needs no privileges.\n\n\
             The control socket also serves vdeplug4's vde_plug (Debian package vdeplug), \
             which kernels from 6.16 on run for vec0:transport=vde,vnl=vde://DIR: name the \
             control socket DIR/ctl (or join DIR/NAME with vnl=vde://DIR[NAME]). Each such \
             port gets a data socket of its own, control-socket.N, connected to the \
             client's; the switch logs the description vde_plug sends (user and pid). \
             At start-up the switch prints the argument that joins each of its sockets.\n\n\
             uml_switch --launch (see FD LAUNCHER) runs a guest on an inherited \
             connection to a --bess socket: vec0:transport=fd,fd=N.\n\n\
             Guests on the vector driver's tunnel transports (vec0:transport=l2tpv3 over UDP \
             or IP, vec0:transport=gre) get one statically configured port each from \
             --l2tpv3 and --gre, which take the guest's own options, so the same string \
             works on both sides.\n\n\
             A host interface can be a port too (--raw): one end of a veth pair whose other \
             end a guest uses with vec0:transport=raw, or the tap of a guest on \
             vec0:transport=tap or hybrid. Guests on the legacy multicast transport \
             (eth0=mcast, kernels before 6.16) are one port of the switch with --mcast. \
             --mtu lets guests with a larger MTU exchange larger frames.\n\n\
             The legacy options are words with a single dash and are read from left to \
             right; the options the rewrite added have two dashes. Any other argument \
             prints the usage text and exits with status 1."
        ))
        .before_help(format!(
            "Usage: uml_switch [-unix control-socket] [-hub] [-tap tap-device]\n\
             \x20        [-daemon] [--bess PATH]... [--l2tpv3 OPTIONS]... [--gre OPTIONS]...\n\
             \x20        [--raw IFNAME]... [--mcast[=GROUP[,PORT[,TTL]]]]... [--mtu N]\n\
             \x20        [--mgmt PATH [--mgmt-mode MODE] [--mgmt-group GROUP]]\n\
             \x20        [--pcap FILE [--pcap-limit SIZE] [--pcap-format pcap|pcapng]]\n\
             \x20        [--vxlan OPTIONS]... [--user USER[:GROUP]] [--bess-connect PATH]...\n\
             \x20        [--qemu-connect PATH]... [--pcap-port IFNAME[,filter=EXPR]]...\n\
             \x20        [--nat[=OPTIONS]]\n\
             \x20  or: uml_switch -compat-v0 [-unix control-socket data-socket] [-hub]\n\
             \x20        [-tap tap-device] [-daemon] [--bess PATH]... [--l2tpv3 OPTIONS]...\n\
             \x20        [--gre OPTIONS]... [--raw IFNAME]... [--mcast[=...]]... [--mtu N]\n\
             {launch_usage}\
             \n\
             A virtual Ethernet switch for User-Mode Linux guests: it learns where each MAC\n\
             address is and forwards frames between its ports.\n\
             \n"
        ))
        .after_help(format!(
            "  {launch_synopsis}\n\
             \x20                 instead of running a switch: connect to the --bess socket\n\
             \x20                 BESS-PATH of a running switch, put the connection on\n\
             \x20                 descriptor N (default {fd}) and run PROGRAM with it, e.g.\n\
             \x20                 linux.uml ... vec0:transport=fd,fd=N (the guest needs no\n\
             \x20                 socket path). One port per launch; the guest's first\n\
             \x20                 ip link set down closes it for good.\n\
             \n\
             SIGINT, SIGTERM and SIGHUP remove the sockets and end the switch; SIGUSR1 prints\n\
             frame and drop counters on stderr.\n"
        ))
        .arg(
            Arg::new("unix")
                .long("unix")
                .value_names(["control-socket", "data-socket"])
                .num_args(1..=2)
                .value_hint(ValueHint::FilePath)
                .help(format!("the daemon protocol's control socket (default {ctl},\n\
                     always served); guests of kernels before 6.16 join with\n\
                     eth0=daemon,,unix,control-socket. Named DIR/ctl, it also\n\
                     serves vdeplug4's vde_plug: guests of 6.16 and later join\n\
                     with vec0:transport=vde,vnl=vde://DIR (other names:\n\
                     vde://DIR[NAME]); each such port gets its own data socket\n\
                     control-socket.N. Both arguments are printed at start-up."))
                .long_help(format!(
                    "Listen on control-socket instead of {ctl}. After -compat-v0 it takes a \
                     second path, the data socket (default {data}). Kernels before 6.16 join \
                     with eth0=daemon,,unix,control-socket; with vde_plug, kernels from 6.16 \
                     join with vec0:transport=vde,vnl=vde://DIR when control-socket is \
                     DIR/ctl."
                )),
        )
        .arg(
            Arg::new("hub")
                .long("hub")
                .action(ArgAction::SetTrue)
                .help("send every frame to every other port")
                .long_help("Be a hub: send every frame to every other port."),
        )
        .arg(Arg::new("tap").long("tap").value_name("tap-device").help("attach an existing host tap device as a port")
                .long_help(
            "Attach the host tap device tap-device as a port. It must exist and be \
                     usable by the switch's user (a persistent tap made with tunctl -u), or \
                     the switch must run as root; if it cannot be opened the switch runs \
                     without it.",
        ))
        .arg(
            Arg::new("compat-v0")
                .long("compat-v0")
                .action(ArgAction::SetTrue)
                .help(format!("also serve protocol 0 clients; the data socket is then the\n\
                     file {data}, or the second path of a later -unix"))
                .long_help(
                    "Also serve clients of control protocol 0, which send their frames to a \
                     data socket with a file name.",
                ),
        )
        .arg(
            Arg::new("daemon")
                .long("daemon")
                .action(ArgAction::SetTrue)
                .help("detach after set-up")
                .long_help(
                    "Detach from the terminal after setting up (socket paths are made \
                     absolute first).",
                ),
        )
        .arg(
            Arg::new("bess")
                .long("bess")
                .value_name("PATH")
                .action(ArgAction::Append)
                .value_hint(ValueHint::FilePath)
                .help("listen on the SOCK_SEQPACKET socket PATH for guests of the\n\
                     vector driver's bess transport (any kernel with vecN:,\n\
                     including 6.16 and later); every connection is a port, any\n\
                     number of guests can use one socket. Guests join with\n\
                     vec0:transport=bess,dst=PATH (PATH absolute, without ',' or\n\
                     '='). May be given more than once.")
                .long_help(
                    "Also listen on the Unix SOCK_SEQPACKET socket PATH for guests of the \
                     vector driver's bess transport, which join with \
                     vec0:transport=bess,dst=PATH (absolute, without ',' or '='; the switch \
                     prints this argument at start-up). Every connection is a port, with \
                     its peer's pid and uid in the log lines; a closed connection removes \
                     the port and its MAC addresses. A stale socket at PATH is replaced; \
                     anything else there is refused. May be given more than once.",
                ),
        )
        .arg(
            Arg::new("l2tpv3")
                .long("l2tpv3")
                .value_name("OPTIONS")
                .action(ArgAction::Append)
                .help("a port for one guest on vecN:transport=l2tpv3,OPTIONS: give\n\
                     the guest's own options (src=,dst=,rx_session=,tx_session=;\n\
                     udp=1,srcport=,dstport= for UDP, else IP, which needs\n\
                     CAP_NET_RAW; rx_cookie=,tx_cookie=[,cookie64=1];\n\
                     counter=1[,pin_counter=1]; v6=1). The switch binds dst,\n\
                     sends to src, expects the tx_ values and sends the rx_ ones;\n\
                     dstport=0 lets it choose a port. It prints the guest's\n\
                     argument at start-up.")
                .long_help(
                    "Also serve one guest on vecN:transport=l2tpv3,OPTIONS: OPTIONS are the \
                     guest's own (src=, dst=, rx_session=, tx_session=; udp=1, srcport=, \
                     dstport= for UDP, else L2TPv3 over IP, which needs CAP_NET_RAW; \
                     rx_cookie=, tx_cookie= and cookie64=1; counter=1, pin_counter=1; v6=1; \
                     transport=l2tpv3, a leading vecN: and the guest's mac=, mtu= (at most \
                     1500, or --mtu), depth= (1 to 4096), headroom=, gro=, vec=, bpffile=, bpfflash= \
                     are accepted too). The switch binds the guest's dst[:dstport], sends to its \
                     src[:srcport], expects its tx_session and tx_cookie and sends its \
                     rx_session and rx_cookie, with the same header layout. dstport=0 lets \
                     the switch choose a free port. At start-up it prints the guest's \
                     argument (\"l2tpv3 port N (...): the guest joins with \
                     vec0:transport=l2tpv3,...\"). Packets with another session or cookie are \
                     dropped and counted (the first of each kind is reported). Options a \
                     guest would panic on (a session or key written as hex of 0x80000000 or \
                     more: write it as a negative number, e.g. -1 for 0xffffffff; a missing \
                     session; rx_cookie without tx_cookie; a depth above 4096) or would \
                     misread are refused \
                     before anything is opened (status 1). May be given more than once; \
                     each UDP port needs its own dstport.",
                ),
        )
        .arg(
            Arg::new("gre")
                .long("gre")
                .value_name("OPTIONS")
                .action(ArgAction::Append)
                .help("a port for one guest on vecN:transport=gre,OPTIONS (src=,dst=\n\
                     [,rx_key=,tx_key=][,sequence=1[,pin_sequence=1]][,v6=1]);\n\
                     needs CAP_NET_RAW. Options that would make a guest panic\n\
                     (e.g. rx_session=0xffffffff: write -1 instead) or that it\n\
                     would misread are refused. Both may be given more than once.")
                .long_help(
                    "Also serve one guest on vecN:transport=gre,OPTIONS (src=, dst=; rx_key= \
                     and tx_key=, both or neither; sequence=1, pin_sequence=1; v6=1): GRE \
                     over a raw IP socket, which needs CAP_NET_RAW. As for --l2tpv3, the \
                     options are the guest's: the switch binds dst, sends to src, expects \
                     tx_key and sends rx_key, with the key and sequence bits the guest uses \
                     and never a checksum. Each GRE port needs its own pair of addresses \
                     (e.g. 127.0.0.2 for the guest, 127.0.0.1 for the switch).",
                ),
        )
        .arg(
            Arg::new("raw")
                .long("raw")
                .value_name("IFNAME")
                .action(ArgAction::Append)
                .help("attach the host interface IFNAME through an AF_PACKET socket\n\
                     (needs CAP_NET_RAW): one end of a veth pair whose other end a\n\
                     guest uses with vec0:transport=raw,ifname=OTHER, or the tap of\n\
                     a guest on vec0:transport=tap,ifname=TAP. The guests' TCP\n\
                     segmentation and checksum offloads are completed. May be given\n\
                     more than once.")
                .long_help(
                    "Also attach the host interface IFNAME as a port, through an AF_PACKET \
                     socket, which needs CAP_NET_RAW: one end of a veth pair whose other end \
                     a guest uses with vec0:transport=raw,ifname=OTHER, or an existing tap \
                     that a guest uses with vec0:transport=tap,ifname=TAP (or hybrid). The \
                     switch prints the guest's argument at start-up. Frames the switch sends \
                     are never received back. The guests' drivers turn on TCP segmentation \
                     and checksum offload: their checksums are completed and their TSO frames \
                     cut into segments before other ports get them. May be given more than \
                     once.",
                ),
        )
        .arg(
            Arg::new("mcast")
                .long("mcast")
                .value_name("GROUP[,PORT[,TTL]]")
                .num_args(0..=1)
                .require_equals(true)
                .action(ArgAction::Append)
                .help("join the multicast group of guests on the legacy transport\n\
                     eth0=mcast,MAC,GROUP,PORT,TTL (kernels before 6.16; defaults\n\
                     239.192.168.1, 1102, 1, the kernel's); the group is one port.\n\
                     Needs a route to the group (ip route add 224.0.0.0/4 dev IF).")
                .long_help(
                    "Also join the multicast group of guests on the legacy transport \
                     eth0=mcast,MAC,GROUP,PORT,TTL (kernels before 6.16); the whole group is \
                     one port. The defaults are the kernel's: 239.192.168.1, port 1102, TTL 1; \
                     a value is given with = only. The switch sends from a port of its own \
                     and drops its own frames when they loop back. A route to the group must \
                     exist (ip route add 224.0.0.0/4 dev IFACE), for the guests too. May be \
                     given more than once, for different groups.",
                ),
        )
        .arg(
            Arg::new("vxlan")
                .long("vxlan")
                .value_name("OPTIONS")
                .action(ArgAction::Append)
                .help("a VXLAN trunk (RFC 7348, UDP) to other switches or Linux vxlan\n\
                     devices: local=IP,remote=IP[,remote=IP...][,vni=N][,port=N]\n\
                     (vni 1 and port 4789 by default). A frame for a MAC learned\n\
                     behind a remote goes to it only, others to every remote.\n\
                     May be given more than once.")
                .long_help(
                    "A VXLAN trunk port (RFC 7348): the switch binds local=IP (UDP port 4789, \
                     or port=N), sends the frames it forwards to the port to the remote=IP \
                     addresses (several may be given) with network identifier vni=N \
                     (default 1), and takes datagrams from those remotes' addresses (any \
                     source port) with that VNI. As a Linux vxlan device, it learns which \
                     remote each source MAC came from: a unicast frame for a MAC learned \
                     there (in the last 100 s) goes to that remote only; unknown, broadcast \
                     and multicast destinations go to every remote. The far end may be another uml_switch, a Linux vxlan device \
                     (ip link add NAME type vxlan id N local IP remote IP dstport 4789) or \
                     Open vSwitch. No privilege is needed for ports above 1023.",
                ),
        )
        .arg(
            Arg::new("bess-connect")
                .long("bess-connect")
                .value_name("PATH")
                .action(ArgAction::Append)
                .value_hint(ValueHint::FilePath)
                .help("connect to PATH, where a user-mode network stack listens in\n\
                     bess mode (slirp4netns --target-type=bess, gvproxy\n\
                     -listen-bess): one port, one frame per message. The peer\n\
                     must listen at start-up; when it goes the port is removed.")
                .long_help(
                    "Connect to the Unix SOCK_SEQPACKET socket PATH, where a user-mode network \
                     stack listens in bess mode (slirp4netns --target-type=bess PATH, gvproxy \
                     -listen-bess unixpacket://PATH), and make the connection a port: one \
                     Ethernet frame per message, as on --bess sockets, so every guest on the \
                     segment reaches the stack (slirp4netns gives addresses by DHCP from \
                     10.0.2.15). Nothing listening at PATH at start-up is an error (status 1). \
                     When the peer closes the connection the port is removed and that is \
                     logged; the switch does not reconnect (port add bess-connect PATH on \
                     the management socket connects again). May be given more than once.",
                ),
        )
        .arg(
            Arg::new("qemu-connect")
                .long("qemu-connect")
                .value_name("PATH")
                .action(ArgAction::Append)
                .value_hint(ValueHint::FilePath)
                .help("connect to the stream socket PATH of a peer that speaks\n\
                     QEMU's 4-byte length framing (passt -s PATH, gvproxy\n\
                     -listen-qemu, QEMU -netdev stream,server=on): one port.\n\
                     Both may be given more than once.")
                .long_help(
                    "Connect to the Unix SOCK_STREAM socket PATH of a peer that frames each \
                     Ethernet frame with its length as 4 big-endian bytes: passt (-s PATH, or \
                     the /tmp/passt_N.socket it prints), gvproxy -listen-qemu unix://PATH, \
                     QEMU -netdev stream,server=on,addr.type=unix,addr.path=PATH. The \
                     connection is one port. Frames longer than the switch's largest (see \
                     --mtu) are dropped and counted; a length longer than any Ethernet frame \
                     closes the port (counted as a protocol error on SIGUSR1). Sending never \
                     blocks: what the peer does not take at once waits, up to 512 KiB. \
                     passt serves one guest per instance (the last MAC address it saw). \
                     Nothing listening at PATH at start-up is an error (status 1); when the \
                     peer closes the connection the port is removed and that is logged, \
                     without reconnecting. May be given more than once.",
                ),
        )
        .arg(
            Arg::new("nat")
                .long("nat")
                .value_name("OPTIONS")
                .num_args(0..=1)
                .require_equals(true)
                .action(ArgAction::Append)
                .help("a NAT port, the gateway of every guest on the switch (DHCP,\n\
                     DNS forwarding, outbound TCP and UDP, host port forwards),\n\
                     with no root and no CAP_NET_*: libslirp in the helper\n\
                     uml_switch_nat. OPTIONS, comma-separated, as QEMU's -netdev\n\
                     user: net=10.0.2.0/24, host=10.0.2.2, dns=10.0.2.3,\n\
                     dhcpstart=10.0.2.15 (the defaults), dns=off, restrict=on,\n\
                     host-loopback=off (guests cannot reach the host's 127.0.0.1),\n\
                     hostfwd=[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT;\n\
                     may be given more than once; ipv6=on adds QEMU's fec0::/64.")
                .long_help(
                    "A NAT port (docs/nat.md): libslirp, the user-mode TCP/IP stack of QEMU's \
                     -netdev user and slirp4netns, run by the helper uml_switch_nat \
                     (/usr/lib/uml/uml_switch_nat, or $UML_SWITCH_NAT) on one port of the \
                     switch. Every guest of the segment, of any kernel and transport, gets an \
                     address by DHCP (one lease per MAC address), a DNS forwarder to the \
                     host's resolvers and outbound TCP and UDP through ordinary sockets of the \
                     switch's user: no root, no CAP_NET_*, no tap. OPTIONS are QEMU's: \
                     net=ADDRESS/PREFIX (default 10.0.2.0/24), host= (the gateway, .2), dns= \
                     (.3; dns=off: no forwarder), dhcpstart= (.15; 16 leases), restrict=on \
                     (nothing outside the virtual network), host-loopback=off (the gateway \
                     does not lead to the host's 127.0.0.1), ipv6=on (IPv6 too, QEMU's \
                     fec0::/64 with gateway fec0::2 and DNS fec0::3; off by default) and \
                     hostfwd=[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT, which may \
                     repeat (the guest address defaults to dhcpstart). A network that \
                     overlaps one of the host's, a forward of a privileged port without \
                     CAP_NET_BIND_SERVICE, or a host port that is taken stops the start. \
                     Given once.",
                ),
        )
        .arg(
            Arg::new("mtu")
                .long("mtu")
                .value_name("N")
                .help("forward frames of up to N + 14 bytes (N from 1500 to 65535,\n\
                     default 1500) between ports that take them: bess, tunnel and\n\
                     raw ports (guests with mtu=N); daemon and mcast ports keep\n\
                     1514. Longer frames are dropped and counted per port.")
                .long_help(
                    "Forward frames of up to N + 14 bytes (N from 1500 to 65535; default \
                     1500) between the ports that take them: bess, tunnel (whose guests may \
                     then use mtu= up to N) and raw ports (up to their interface's MTU). \
                     Daemon and mcast ports keep 1514 bytes. A frame longer than a port takes \
                     is dropped and counted for that port, not cut, except that frames from \
                     daemon ports are cut to 1514 bytes as before.",
                ),
        )
        .arg(
            Arg::new("mgmt")
                .long("mgmt")
                .value_name("PATH")
                .help("serve the management socket PATH (a unix stream socket): list\n\
                     the ports, the MAC table and the counters, as text or JSON.\n\
                     With a COMMAND after PATH instead of options: send it to the\n\
                     running switch's socket and print the answer (try: help).")
                .long_help(
                    "Serve a management socket at PATH: a unix stream socket on which \
                     clients send one command per line (help, ports, macs, counters; json \
                     COMMAND for a JSON answer) and read the answer, ended by a line ok or \
                     error: MESSAGE. At most 64 clients at once; a client that sends a line \
                     longer than 4096 bytes or leaves 1 MiB of answers unread is \
                     disconnected. uml_switch --mgmt PATH COMMAND... is the client: it \
                     sends COMMAND to the switch listening on PATH, prints the answer's \
                     body on standard output (a JSON answer as it is) and exits 0, or \
                     prints the error on standard error and exits 1.",
                ),
        )
        .arg(
            Arg::new("mgmt-mode")
                .long("mgmt-mode")
                .value_name("MODE")
                .help("permissions of the management socket, in octal (default 0600:\n\
                     only the switch's user may use it)")
                .long_help(
                    "The permissions of the management socket, in octal (default 0600: only \
                     the user the switch runs as may connect).",
                ),
        )
        .arg(
            Arg::new("mgmt-group")
                .long("mgmt-group")
                .value_name("GROUP")
                .help("give the management socket to GROUP (a name in /etc/group or a\n\
                     number), so that with --mgmt-mode 0660 its members may use it")
                .long_help(
                    "Give the management socket to GROUP, a group name or a numeric gid, so \
                     that with --mgmt-mode 0660 the group's members may use it and nobody \
                     else. A name is looked up in /etc/group only (uml_switch is a static \
                     program, which cannot load the other name services of \
                     /etc/nsswitch.conf); give a group that only LDAP, SSSD or the like knows \
                     by its number. The switch must be allowed to give its socket to the \
                     group (root, or a member of it); if it is not, or the group is unknown, \
                     it does not start (status 1). A socket passed by a service manager \
                     keeps the group the manager gave it (SocketGroup=).",
                ),
        )
        .arg(
            Arg::new("pcap")
                .long("pcap")
                .value_name("FILE")
                .help("capture every frame the switch receives to the new pcap file\n\
                     FILE (Wireshark, tcpdump), rotated to FILE.1 at the limit")
                .long_help(
                    "Capture every frame the switch receives, as received, to FILE in \
                     libpcap's format (Ethernet). FILE must not exist (and neither must \
                     FILE.1); when it reaches the size limit it becomes FILE.1 and a new FILE \
                     is started, so at most twice the limit is used. The management socket \
                     starts and stops captures at run time (capture start FILE [port=N] \
                     [vlan=V] [limit=SIZE], capture stop).",
                ),
        )
        .arg(
            Arg::new("pcap-limit")
                .long("pcap-limit")
                .value_name("SIZE")
                .help("the capture file's size limit (bytes, or with K, M, G;\n\
                     default 64M; at least 64K)")
                .long_help(
                    "The capture file's size limit: bytes, or a number with K, M or G \
                     (powers of 1024); default 64M, at least 64K.",
                ),
        )
        .arg(
            Arg::new("pcap-format")
                .long("pcap-format")
                .value_name("FORMAT")
                .help("the capture file's format: pcap (libpcap's, the default) or\n\
                     pcapng (the next generation format; both rotate the same way)")
                .long_help(
                    "The format of the --pcap capture file: pcap, libpcap's classic format \
                     (the default), or pcapng, the PCAP Next Generation format (one section, \
                     one Ethernet interface, nanosecond timestamps), which Wireshark and \
                     tcpdump read too. Both are rotated at the size limit. Captures started \
                     through the management socket choose theirs with format=.",
                ),
        )
        .arg(
            Arg::new("pcap-port")
                .long("pcap-port")
                .value_name("IFNAME[,filter=EXPR]")
                .action(ArgAction::Append)
                .help("a read-only port fed with the frames that libpcap captures on\n\
                     the host interface IFNAME and that pass the BPF filter EXPR\n\
                     (pcap-filter(7), the rest of the value); frames sent to it are\n\
                     dropped. Runs the helper uml_switch_pcap (needs CAP_NET_RAW).\n\
                     May be given more than once.")
                .long_help(
                    "A read-only port fed by libpcap: the helper program uml_switch_pcap \
                     (/usr/lib/uml/uml_switch_pcap, or the program $UML_SWITCH_PCAP names) \
                     opens the host interface IFNAME (promiscuous), sets the BPF filter EXPR \
                     (pcap-filter(7); everything after filter=, spaces and commas included) \
                     and drops root and its capabilities; every frame it captures that \
                     passes the filter enters the segment as if from a port. Frames the \
                     switch forwards to the port are counted and dropped, never written to \
                     the interface. A bad interface or filter is an error at start-up. \
                     Opening the capture needs CAP_NET_RAW. May be given more than once.",
                ),
        )
        .arg(
            Arg::new("user")
                .long("user")
                .value_name("USER[:GROUP]")
                .value_hint(ValueHint::Username)
                .help("after opening every socket and port, run as USER (a name\n\
                     from /etc/passwd or a uid) and GROUP (default: the user's\n\
                     group; for a uid, the same number), without supplementary\n\
                     groups, keeping only CAP_NET_RAW and only when a --raw,\n\
                     --gre or IP --l2tpv3 port needs it. The directories of the\n\
                     socket files must be writable by USER (they are removed at\n\
                     exit). Needs root.")
                .long_help(
                    "After binding every socket and opening every port (and the tap), give \
                     up root: become USER (a name from /etc/passwd, or a number) and GROUP (a \
                     name from /etc/group or a number; default the user's primary group, or \
                     for a numeric uid the same number), with no supplementary groups, \
                     no_new_privs set, and no capability at all unless a --raw, --gre or IP \
                     (not udp=1) --l2tpv3 port is configured: then CAP_NET_RAW alone is kept \
                     (permitted, effective and bounding sets). Names are looked up in \
                     /etc/passwd and /etc/group only (the switch is a static program). Every \
                     step is checked; a failure ends the switch at start-up with status 1 and \
                     its sockets removed. The socket files are given to USER (their group and \
                     permissions stay), so their directories must be writable by USER; this \
                     is checked before anything is bound. Ports added at run time through the \
                     management socket run with what was kept: port add raw, gre or l2tpv3 \
                     over IP answer an error without CAP_NET_RAW, port add tap works for a \
                     tap that USER owns.",
                ),
        )
        .arg(
            Arg::new("help")
                .long("help")
                .action(ArgAction::Help)
                .help("print this help and exit")
                .long_help("Print a summary of the options and exit."),
        )
}
