//! The command lines of every program in the package, described once, as
//! clap [`Command`]s, for the man pages and the shell completions that
//! `gen-docs` writes.
//!
//! **These descriptions are documentation, not parsers.** For drop-in
//! compatibility with Debian's uml-utilities each tool parses its argv by
//! hand, exactly as the C program does: single-dash long options
//! (`uml_switch -unix`, `uml_watchdog -pid`, `port-helper -uml-socket`),
//! glibc `getopt` for `tunctl`, fixed positional forms for `uml_moo`,
//! `uml_mkcow`, `jail_uml` and `uml_net`, and GNU-style options only where
//! the rewrite added them (`uml_mconsole --timeout`). The definitions here
//! were written from each tool's parser (`*/src/lib.rs`, `cli.rs`,
//! `options.rs`, `getopt.rs`) and `docs/`; they take their defaults, option
//! strings and usage texts from the tools' crates, and the tests of this
//! crate run the tools' own parsers over what is described here, so a
//! change to a parser that is not reflected here fails a test.
//!
//! clap has no single-dash long options; they are declared as long options
//! and listed in [`Tool::single_dash`], and the renderers
//! ([`crate::render`]) print them with one dash.

use clap::{Arg, ArgAction, ArgGroup, Command, ValueHint};

/// The version printed in every man page: the workspace's.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// One block of text in an extra man page section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    /// A paragraph.
    Para(String),
    /// A tagged paragraph: the tag in bold, then the text indented.
    Item(String, String),
    /// Lines printed as they are (examples, file formats).
    Code(String),
}

/// A man page section after OPTIONS (EXIT STATUS, FILES, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The heading, upper case.
    pub title: &'static str,
    /// Its content.
    pub blocks: Vec<Block>,
}

/// Everything the documentation knows about one program.
#[derive(Debug, Clone)]
pub struct Tool {
    /// The program name (also the man page and completion file name).
    pub name: &'static str,
    /// Man page section: `"1"`, or `"8"` for `tunctl` (as Debian).
    pub section: &'static str,
    /// Where the package installs it.
    pub path: &'static str,
    /// The command line.
    pub command: Command,
    /// Long options that the program spells with one dash (`-unix`).
    pub single_dash: &'static [&'static str],
    /// Sections after OPTIONS.
    pub sections: Vec<Section>,
    /// Whether shell completions are installed (not for `port-helper`,
    /// which is not on `PATH`).
    pub completions: bool,
}

fn para(text: &str) -> Block {
    Block::Para(text.to_string())
}

fn item(tag: &str, text: &str) -> Block {
    Block::Item(tag.to_string(), text.to_string())
}

fn code(text: &str) -> Block {
    Block::Code(text.to_string())
}

fn section(title: &'static str, blocks: Vec<Block>) -> Section {
    Section { title, blocks }
}

/// The usage text a tool prints, as a code block (bytes from the tool's
/// crate, shown with the program's name).
fn usage_block(usage: &[u8]) -> Block {
    Block::Code(String::from_utf8_lossy(usage).trim_end().to_string())
}

/// A command that has neither `-h`/`--help` nor `-V`/`--version` unless
/// they are declared explicitly, as none of the C tools had them.
fn bare(name: &'static str) -> Command {
    Command::new(name)
        .version(VERSION)
        .disable_help_flag(true)
        .disable_version_flag(true)
}

fn see_also(pages: &str) -> Section {
    section("SEE ALSO", vec![para(pages)])
}

/// Every program of the package, in install order.
pub fn tools() -> Vec<Tool> {
    vec![
        uml_mconsole(),
        uml_switch(),
        uml_net(),
        tunctl(),
        uml_moo(),
        uml_mkcow(),
        uml_watchdog(),
        port_helper(),
        jail_uml(),
    ]
}

/// `uml_mconsole` (parser: `uml_mconsole/src/options.rs`).
pub fn uml_mconsole() -> Tool {
    let timeout = uml_mconsole::options::DEFAULT_TIMEOUT.as_secs();
    let command = bare("uml_mconsole")
        .about("send management-console commands to a User-Mode Linux kernel")
        .long_about(
            "uml_mconsole talks to the management console (mconsole) of a running User-Mode \
             Linux kernel. With a command on the command line it sends that command once, \
             prints the reply (\"OK text\" or \"ERR text\") and exits with the command's \
             status. Without one it reads commands interactively, with line editing, history \
             and completion of command names.\n\n\
             socket-name is a umid, looked up as ~/.uml/UMID/mconsole and then \
             /tmp/uml/UMID/mconsole, or the path of an mconsole socket. Every candidate that \
             does not exist is reported on standard error (\"Warning: couldn't stat file: \
             ...\"), as Debian's client does.\n\n\
             The options are new in this implementation; they are recognised only before \
             socket-name, so every command line of Debian's uml_mconsole means what it meant.",
        )
        .arg(
            Arg::new("timeout")
                .long("timeout")
                .value_name("SECONDS")
                .help(format!(
                    "Give up waiting for a reply packet after SECONDS (default {timeout}; \
                     fractions allowed, at most 86400). An incomplete reply is printed, \
                     reported on standard error and ends with status 2."
                )),
        )
        .arg(
            Arg::new("notify")
                .long("notify")
                .value_name("SOCKET")
                .value_hint(ValueHint::FilePath)
                .help(
                    "Bind a datagram socket at SOCKET (boot the UML with \
                     mconsole=notify:SOCKET) and print each notification (SOCKET, PANIC, HANG, \
                     USER_NOTIFY) on its own line until interrupted. Takes no socket-name.",
                ),
        )
        .arg(
            Arg::new("help")
                .long("help")
                .action(ArgAction::Help)
                .help("Print a help text and exit."),
        )
        .arg(
            Arg::new("version")
                .long("version")
                .action(ArgAction::Version)
                .help("Print the version and exit."),
        )
        .arg(
            Arg::new("socket-name")
                .value_name("socket-name")
                .value_hint(ValueHint::AnyPath)
                .help("The umid of the UML, or the path of its mconsole socket."),
        )
        .arg(
            Arg::new("command")
                .value_name("command")
                .num_args(0..)
                .trailing_var_arg(true)
                .allow_hyphen_values(true)
                .help(
                    "A command for the kernel or a local command; its words are joined with \
                     single spaces. Without it, commands are read from standard input.",
                ),
        );
    Tool {
        name: "uml_mconsole",
        section: "1",
        path: "/usr/bin/uml_mconsole",
        command,
        single_dash: &[],
        sections: vec![
            section(
                "KERNEL COMMANDS",
                vec![
                    para("Answered by the UML kernel (Linux 6.1); \"help\" lists them:"),
                    item(
                        "version",
                        "The kernel's uname: sysname, release, version, machine.",
                    ),
                    item(
                        "halt, reboot",
                        "Shut the virtual machine down, or reboot it.",
                    ),
                    item(
                        "config DEV=SPEC, config DEV",
                        "Add a device (for example config eth1=daemon or config \
                         ubd1=cow,backing) or show its configuration. File names of ubd \
                         devices are made absolute relative to the client's directory first.",
                    ),
                    item("remove DEV", "Remove a device, for example remove ubd1."),
                    item(
                        "sysrq LETTER",
                        "Run a magic SysRq function and print its output.",
                    ),
                    item("cad", "Deliver a Ctrl-Alt-Del to the guest's init."),
                    item("stop, go", "Stop the whole machine, and let it go on."),
                    item("log TEXT", "Write TEXT into the kernel log."),
                    item("proc FILE", "Print the guest's /proc/FILE."),
                    item("stack PID", "Print the kernel stack of guest task PID."),
                ],
            ),
            section(
                "LOCAL COMMANDS",
                vec![
                    item("quit", "Leave the client."),
                    item("help", "The kernel's help, then the local commands."),
                    item("switch socket-name", "Talk to another UML from now on."),
                    item(
                        "log -f FILE",
                        "Send the contents of FILE to the kernel log, in pieces.",
                    ),
                    item(
                        "mconsole-version",
                        "Print the client's protocol version (2).",
                    ),
                    item(
                        "int",
                        "Send SIGINT to the UML's process, if its pid file was found.",
                    ),
                ],
            ),
            section(
                "EXIT STATUS",
                vec![
                    item("0", "The command succeeded (interactive mode: always 0)."),
                    item(
                        "1 to 255",
                        "A failed kernel command: the low byte of the kernel's error code \
                         (1, or 256 - errno, for example 237 for ENODEV). Usage, send and \
                         receive errors are 1.",
                    ),
                    item(
                        "2",
                        "A reply that did not arrive in full within the timeout (new; \
                         Debian's client waits for ever).",
                    ),
                ],
            ),
            section(
                "FILES",
                vec![
                    item(
                        "~/.uml/UMID/mconsole, /tmp/uml/UMID/mconsole",
                        "The mconsole sockets that a umid names; the pid file beside them \
                         is used by int.",
                    ),
                    item("~/.uml_mconsole_history", "Interactive history."),
                ],
            ),
            see_also("uml_switch(1), uml_watchdog(1)"),
        ],
        completions: true,
    }
}

/// `uml_switch` (parser: `uml_switch/src/cli.rs`).
pub fn uml_switch() -> Tool {
    let ctl = uml_switch::cli::DEFAULT_CTL;
    let data = uml_switch::cli::DEFAULT_DATA;
    let command = bare("uml_switch")
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
        .arg(
            Arg::new("unix")
                .long("unix")
                .value_names(["control-socket", "data-socket"])
                .num_args(1..=2)
                .value_hint(ValueHint::FilePath)
                .help(format!(
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
                .help("Be a hub: send every frame to every other port."),
        )
        .arg(Arg::new("tap").long("tap").value_name("tap-device").help(
            "Attach the host tap device tap-device as a port. It must exist and be \
                     usable by the switch's user (a persistent tap made with tunctl -u), or \
                     the switch must run as root; if it cannot be opened the switch runs \
                     without it.",
        ))
        .arg(
            Arg::new("compat-v0")
                .long("compat-v0")
                .action(ArgAction::SetTrue)
                .help(
                    "Also serve clients of control protocol 0, which send their frames to a \
                     data socket with a file name.",
                ),
        )
        .arg(
            Arg::new("daemon")
                .long("daemon")
                .action(ArgAction::SetTrue)
                .help(
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
                .help(
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
                .help(
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
                .help(
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
                .help(
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
                .help(
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
            Arg::new("mtu")
                .long("mtu")
                .value_name("N")
                .help(
                    "Forward frames of up to N + 14 bytes (N from 1500 to 65535; default \
                     1500) between the ports that take them: bess, tunnel (whose guests may \
                     then use mtu= up to N) and raw ports (up to their interface's MTU). \
                     Daemon and mcast ports keep 1514 bytes. A frame longer than a port takes \
                     is dropped and counted for that port, not cut, except that frames from \
                     daemon ports are cut to 1514 bytes as before.",
                ),
        )
        .arg(
            Arg::new("help")
                .long("help")
                .action(ArgAction::Help)
                .help("Print a summary of the options and exit."),
        );
    Tool {
        name: "uml_switch",
        section: "1",
        path: "/usr/bin/uml_switch",
        command,
        single_dash: &["unix", "hub", "tap", "compat-v0", "daemon"],
        sections: vec![
            section(
                "USAGE TEXT",
                vec![usage_block(uml_switch::cli::usage("uml_switch").as_bytes())],
            ),
            section(
                "FD LAUNCHER",
                vec![
                    code("uml_switch --launch BESS-PATH [--fd N] [--] PROGRAM [ARG]..."),
                    para(
                        "Instead of running a switch: connect to the --bess socket BESS-PATH \
                         of a running switch (one port of it), put the connection on \
                         descriptor N (default 3, from 3 to 1023) without close-on-exec, \
                         and run PROGRAM with ARGs in place of uml_switch (same pid). A UML \
                         started so joins with vec0:transport=fd,fd=N and names no socket \
                         on its command line. The kernel closes the descriptor when the \
                         guest takes the interface down: one ip link set up per boot.",
                    ),
                    para(
                        "Exit status when PROGRAM is not run: 1 for a missing or wrong \
                         socket (\"not a --bess socket\"), a bad --fd or no PROGRAM; 127 \
                         when PROGRAM is not found, 126 when it cannot be run.",
                    ),
                ],
            ),
            section(
                "SIGNALS",
                vec![
                    item(
                        "SIGINT, SIGTERM, SIGHUP",
                        "Remove the sockets, print \"Caught signal N, cleaning up and \
                         exiting\" and end.",
                    ),
                    item(
                        "SIGUSR1",
                        "Print frame and drop counters on standard error, then the ports \
                         that dropped frames too long for them, then each tunnel, raw and \
                         mcast port's own counters.",
                    ),
                    para(
                        "When standard input is a terminal, end of file on it also ends the \
                         switch (status 0).",
                    ),
                ],
            ),
            section(
                "EXIT STATUS",
                vec![
                    item("0", "End of file on the terminal."),
                    item(
                        "1",
                        "Usage or set-up error (for example the socket is in use).",
                    ),
                    para("After a signal the switch ends by that signal."),
                ],
            ),
            section(
                "FILES",
                vec![
                    item(
                        "/etc/default/uml-utilities",
                        "Settings of the service: UML_SWITCH_START, UML_SWITCH_OPTIONS, \
                         UML_SWITCH_USER, UML_SWITCH_CTL.",
                    ),
                    item(
                        "/run/uml-utilities/uml_switch.ctl",
                        "Control socket of the service (also reached as /var/run/...).",
                    ),
                ],
            ),
            section(
                "EXAMPLES",
                vec![code(
                    "T=udp=1,src=127.0.0.1,srcport=5556,dst=127.0.0.1,dstport=5555,rx_session=1,tx_session=2\n\
                     uml_switch -unix /tmp/sw.ctl --bess /tmp/sw.bess --l2tpv3 $T &\n\
                     linux.uml ... eth0=daemon,,unix,/tmp/sw.ctl\n\
                     linux.uml ... vec0:transport=bess,dst=/tmp/sw.bess\n\
                     linux.uml ... vec0:transport=l2tpv3,$T\n\
                     uml_switch --launch /tmp/sw.bess -- linux.uml ... vec0:transport=fd,fd=3\n\
                     mkdir /tmp/sw; uml_switch -unix /tmp/sw/ctl &\n\
                     linux.uml ... vec0:transport=vde,vnl=vde:///tmp/sw\n\
                     uml_switch -unix /tmp/sw.ctl --raw vb --mcast &   # as root\n\
                     linux.uml ... vec0:transport=raw,ifname=va         # va: vb's veth peer\n\
                     linux.uml ... eth0=mcast,,239.192.168.1,1102,1\n\
                     systemctl start uml-utilities     # the service, for eth0=daemon",
                )],
            ),
            see_also("uml_mconsole(1), tunctl(8), uml_net(1)"),
        ],
        completions: true,
    }
}

/// `uml_net` (parser: `uml_common::umlnet::parse_argv`).
pub fn uml_net() -> Tool {
    let max = uml_common::umlnet::MAX_VERSION;
    let policy = uml_net::policy::POLICY_PATH;
    let command = bare("uml_net")
        .about("network helper that User-Mode Linux runs to set up host networking")
        .long_about(format!(
            "uml_net is run by the UML kernel, not by hand: it creates a tap device for \
             eth0=tuntap,,,GATEWAY and hands it to the kernel, adds and removes a host route \
             and proxy ARP entry when the guest sets an address, and serves the old ethertap \
             and slip transports. The kernel finds it through its PATH.\n\n\
             It is installed setuid root with mode 4754, group uml-net (set with \
             dpkg-statoverride): only members of group uml-net can run it, and they can then \
             change the host's network configuration in the ways listed below. It never runs \
             a shell or another program; it uses netlink and /proc/sys, validates every \
             argument before changing anything, and acts only on tap devices that the caller \
             owns. Protocol versions 0 to {max} are understood; the kernel uses {max}."
        ))
        .arg(Arg::new("version").value_name("version").help(format!(
            "Protocol version, 0 to {max}. Without a leading number the first argument \
                     is the transport (version 0)."
        )))
        .arg(
            Arg::new("transport")
                .value_name("transport")
                .value_parser(["tuntap", "add", "del", "ethertap", "slip"])
                .help("What to do: tuntap, add, del, ethertap or slip."),
        )
        .arg(
            Arg::new("arguments")
                .value_name("arguments")
                .num_args(0..)
                .trailing_var_arg(true)
                .help("The transport's arguments (see INVOCATION)."),
        );
    Tool {
        name: "uml_net",
        section: "1",
        path: "/usr/bin/uml_net",
        command,
        single_dash: &[],
        sections: vec![
            section(
                "INVOCATION",
                vec![
                    para("The forms the kernel uses (version 4):"),
                    item(
                        "uml_net 4 tuntap up [GATEWAY]",
                        "Create a tap owned by the caller, bring it up (with a route to \
                         GATEWAY's network when given) and send it to the kernel over \
                         standard output.",
                    ),
                    item(
                        "uml_net 4 add DEV ADDRESS NETMASK, uml_net 4 del DEV ADDRESS NETMASK",
                        "Add or remove the host route to the guest's ADDRESS through tap DEV \
                         and the proxy ARP entry for it.",
                    ),
                    item(
                        "uml_net 4 ethertap DEV FD [GATEWAY], uml_net 4 slip up|down ...",
                        "The obsolete ethertap and slip transports.",
                    ),
                    para(
                        "Run with fewer than two arguments it prints \"uml_net : bad argument \
                         list - if you're running uml_net by hand, don't bother.\"",
                    ),
                ],
            ),
            section(
                "EXIT STATUS",
                vec![
                    item("0", "The request was carried out."),
                    item(
                        "1",
                        "A bad or refused request; the reason goes to the kernel (or standard \
                         error) and nothing was changed.",
                    ),
                ],
            ),
            section(
                "FILES",
                vec![
                    item(
                        policy,
                        "Optional policy: which users or groups may use which gateway and \
                         guest addresses. Without it every valid request of a uml-net member \
                         is allowed (Debian's behaviour); with it, the first matching rule \
                         decides and no match means deny. Root is never restricted. An \
                         example is in /usr/share/doc/uml-utilities-rs/examples/uml_net.conf.",
                    ),
                    code(
                        "# allow|deny  user:NAME | group:NAME | uid:N | gid:N | all  ADDRESS/PREFIX\n\
                         allow group:uml-net 10.0.0.0/8\n\
                         deny  all           0.0.0.0/0",
                    ),
                ],
            ),
            section(
                "SECURITY",
                vec![para(
                    "Membership of group uml-net grants the power to create tap devices and to \
                     add host routes and proxy ARP entries for any address the policy allows. \
                     Add only trusted users to the group.",
                )],
            ),
            see_also("tunctl(8), uml_switch(1)"),
        ],
        completions: true,
    }
}

/// `tunctl` (parser: `tunctl/src/lib.rs` with `tunctl::OPTSTRING`).
pub fn tunctl() -> Tool {
    let clone = uml_common::sys::tun::DEFAULT_CLONE_DEVICE;
    let command = bare("tunctl")
        .about("create and delete persistent TUN/TAP devices")
        .long_about(
            "tunctl lets the administrator make a persistent TAP (or TUN) device for a \
             particular user or group, who may then open and use it (for example a UML kernel \
             with eth0=tuntap,tap0, or uml_switch -tap tap0) without being able to change \
             the host side of the interface.\n\n\
             Without -d it creates the device (or takes over the existing one named by -t), \
             makes it persistent and sets its owner: the -u user, the -g group, or the \
             calling user when neither is given. It prints \"Set 'tap0' persistent and owned \
             by uid 1000\" (-b: just the name). With -d it makes the device non-persistent, \
             so it disappears when nobody has it open, and prints \"Set 'tap0' \
             nonpersistent\".\n\n\
             Options are parsed like glibc getopt(3): they may be clustered (-bt tap0) and \
             values attached (-ttap0); any operand prints the usage text. The long options \
             are new and recognised only when spelled exactly (no abbreviations), so every \
             command line of Debian's tunctl means what it meant.\n\n\
             A tap for a Linux 7.x guest (vecN:transport=tap,ifname=NAME) needs neither \
             --vnet-hdr nor --multi-queue: the guest's vector driver asks for virtio-net \
             headers itself each time it opens the tap, and it cannot attach to a \
             multi-queue device.",
        )
        .arg(
            Arg::new("brief")
                .short('b')
                .action(ArgAction::SetTrue)
                .help("Brief output: print only the device name."),
        )
        .arg(
            Arg::new("delete")
                .short('d')
                .value_name("device-name")
                .help("Make device-name non-persistent (delete it)."),
        )
        .arg(
            Arg::new("device")
                .short('t')
                .value_name("device-name")
                .help(
                    "The device to create or take over; without it the kernel picks the next \
                     free tapN. Names are cut to 15 bytes.",
                ),
        )
        .arg(
            Arg::new("owner")
                .short('u')
                .value_name("owner")
                .value_hint(ValueHint::Username)
                .help("Owner: a user name, else a number (decimal, 0x hex or 0 octal)."),
        )
        .arg(
            Arg::new("group")
                .short('g')
                .value_name("group")
                .help("Group allowed to use the device: a group name, else a number."),
        )
        .arg(
            Arg::new("clone-device")
                .short('f')
                .value_name("tun-clone-device")
                .value_hint(ValueHint::FilePath)
                .help(format!("The TUN/TAP clone device (default {clone}).")),
        )
        .arg(
            Arg::new("tun")
                .short('n')
                .action(ArgAction::SetTrue)
                .help("Make a TUN device (IP packets, no Ethernet header); new."),
        )
        .arg(
            Arg::new("tap")
                .short('p')
                .action(ArgAction::SetTrue)
                .help("Make a TAP device (Ethernet frames), the default; new."),
        )
        .arg(
            Arg::new("vnet-hdr")
                .long("vnet-hdr")
                .action(ArgAction::SetTrue)
                .help(
                    "Set IFF_VNET_HDR (frames on the descriptor carry a virtio-net header), \
                     as ip tuntap's vnet_hdr. The kernel takes this flag from every attach, so \
                     it lasts until the next program opens the device; new.",
                ),
        )
        .arg(
            Arg::new("multi-queue")
                .long("multi-queue")
                .action(ArgAction::SetTrue)
                .help(
                    "Make a multi-queue device (IFF_MULTI_QUEUE), as ip tuntap's multi_queue. \
                     Every later attach must ask for it too: such a device is taken over and \
                     deleted (-d) only with --multi-queue as well; new.",
                ),
        )
        .arg(
            Arg::new("list")
                .long("list")
                .action(ArgAction::SetTrue)
                .help(
                    "List the TUN/TAP devices of the network namespace, in interface-index \
                     order, as ip tuntap show prints them (\"tap0: tap vnet_hdr persist user \
                     1000 group 100\"): kind, flags, and the owner and group ids when set, \
                     read from /sys/class/net/*/tun_flags, owner and group. With -b only the \
                     names. Takes no other option; new.",
                ),
        )
        .arg(Arg::new("help").long("help").action(ArgAction::Help).help(
            "Print Debian's usage text and then the new options on standard output \
                     and exit 0 (Debian's tunctl: invalid option); new.",
        ));
    Tool {
        name: "tunctl",
        section: "8",
        path: "/usr/bin/tunctl",
        command,
        single_dash: &[],
        sections: vec![
            section("USAGE TEXT", vec![usage_block(&tunctl::usage(b"tunctl"))]),
            section(
                "EXIT STATUS",
                vec![
                    item("0", "Success."),
                    item(
                        "1",
                        "Usage error, unknown user or group, or a failed open or ioctl (the \
                         message names it, as Debian's tunctl does).",
                    ),
                ],
            ),
            section(
                "EXAMPLES",
                vec![
                    para("A tap for user alice, used by her UML through a proxy-ARP route:"),
                    code(
                        "tunctl -u alice -t tap0\n\
                         ip addr add 192.168.0.254/32 dev tap0\n\
                         ip link set tap0 up\n\
                         ip route add 192.168.0.253 dev tap0\n\
                         echo 1 > /proc/sys/net/ipv4/conf/tap0/proxy_arp\n\
                         ip neigh add proxy 192.168.0.253 dev eth0\n\
                         tunctl -d tap0",
                    ),
                    para(
                        "In /etc/network/interfaces, \"tunctl_user alice\" on a tap0 stanza \
                         runs tunctl -u alice -t tap0 before the interface comes up.",
                    ),
                    para("A tap alice's Linux 7.x guest uses as vec0:"),
                    code(
                        "tunctl -u alice -t uml0\n\
                         ip addr add 192.168.7.1/24 dev uml0\n\
                         ip link set uml0 up\n\
                         linux.uml ... vec0:transport=tap,ifname=uml0    # as alice",
                    ),
                    para("A multi-queue tap with virtio-net headers, and the list:"),
                    code(
                        "tunctl --multi-queue --vnet-hdr -t mq0\n\
                         tunctl --list\n\
                         tunctl --multi-queue -d mq0",
                    ),
                ],
            ),
            see_also("uml_switch(1), uml_net(1), ip(8)"),
        ],
        completions: true,
    }
}

/// `uml_moo` (parser: `uml_moo::parse_args`).
pub fn uml_moo() -> Tool {
    let command = bare("uml_moo")
        .about("merge a UML copy-on-write file with its backing file")
        .long_about(
            "uml_moo writes the disk image that a UML kernel sees through a COW \
             (copy-on-write) file: the backing file with the COW file's changed sectors \
             applied. It reads COW files of versions 1, 2 and 3. The backing file (the one \
             recorded in the COW header, or the one given with -b) must still have the size \
             and modification time recorded in the header.\n\n\
             Without -d the result is a new file; it is written to a temporary file beside \
             it and renamed into place when complete, keeping holes. With -d the backing \
             file itself is changed in place (destructive: other COW files based on it become \
             invalid). -d must come before -b, as in the C tool.\n\n\
             Files a running UML guest holds are refused: the UML block driver locks the files \
             of each ubd device (a write lock on the COW file, a read lock on the backing \
             file; Linux 7.x as long as the device exists, 6.1 while the guest has it open). \
             uml_moo refuses a COW file a guest writes to, a backing file a guest uses when \
             merging into it with -d, and an output file a guest uses, with a message naming \
             the file and the process holding the lock; nothing is changed and the exit \
             status is 1. Merging into a new image from a backing file that guests only read \
             is allowed. Halt the guest (or remove its device with uml_mconsole UMID remove \
             ubdN) first, or give --ignore-locks for a guest that is stopped.",
        )
        .arg(
            Arg::new("destructive")
                .short('d')
                .action(ArgAction::SetTrue)
                .help(
                    "Merge in place into the backing file; then only the COW file is given. \
                     Must be the first argument.",
                ),
        )
        .arg(
            Arg::new("backing")
                .short('b')
                .value_name("actual-backing-file")
                .value_hint(ValueHint::FilePath)
                .help(
                    "Use this backing file instead of the one named in the COW header (for \
                     a COW file made inside a chroot).",
                ),
        )
        .arg(
            Arg::new("ignore-locks")
                .long("ignore-locks")
                .action(ArgAction::SetTrue)
                .help(
                    "Merge even when a UML guest holds a lock on the COW, backing or output \
                     file; only for a guest that is stopped and will not write. May appear \
                     anywhere (not as the value of -b). Not in Debian's uml_moo.",
                ),
        )
        .arg(Arg::new("help").long("help").action(ArgAction::Help).help(
            "Print the usage text and the options of this implementation on standard \
                     output and exit 0 (only as the sole argument; Debian's uml_moo prints the \
                     usage on standard error and exits 1).",
        ))
        .arg(
            Arg::new("cow")
                .value_name("COW-file")
                .required(true)
                .value_hint(ValueHint::FilePath)
                .help("The COW file."),
        )
        .arg(
            Arg::new("new")
                .value_name("new-image")
                .value_hint(ValueHint::FilePath)
                .help("The file to write (not with -d)."),
        );
    Tool {
        name: "uml_moo",
        section: "1",
        path: "/usr/bin/uml_moo",
        command,
        single_dash: &[],
        sections: vec![
            section("USAGE TEXT", vec![usage_block(&uml_moo::usage(b"uml_moo"))]),
            section(
                "EXIT STATUS",
                vec![
                    item("0", "The image was written (or --help was printed)."),
                    item(
                        "1",
                        "Usage error, unreadable or invalid COW header, a backing file that \
                         does not match it, a file a UML guest holds, or an I/O error; a \
                         failed merge leaves no partial output.",
                    ),
                ],
            ),
            section(
                "EXAMPLES",
                vec![code(
                    "uml_moo root.cow root-merged.img\n\
                     uml_moo -d root.cow\n\
                     uml_moo --ignore-locks root.cow root-merged.img   # guest stopped",
                )],
            ),
            see_also("uml_mkcow(1)"),
        ],
        completions: true,
    }
}

/// `uml_mkcow` (parser: `uml_mkcow::parse_args`).
pub fn uml_mkcow() -> Tool {
    let command = bare("uml_mkcow")
        .about("create an empty UML copy-on-write file")
        .long_about(
            "uml_mkcow creates a COW (copy-on-write) file for backing file without booting a \
             UML kernel: a version 3 header recording the backing file's absolute path, size \
             and modification time, and an empty sparse bitmap and data area, exactly as the \
             kernel would write them. Use it as ubd0=COW,BACKING.\n\n\
             Only the first argument can be -f; arguments after the backing file are ignored.\n\n\
             Files a running UML guest holds are refused: the UML block driver locks the files \
             of each ubd device (a write lock on the COW file or a writable image, a read lock \
             on a backing file; Linux 7.x as long as the device exists, 6.1 while the guest \
             has it open). uml_mkcow -f refuses an existing COW file a guest uses, and \
             uml_mkcow refuses a backing file a guest writes to, with a message naming the \
             file and the process holding the lock; nothing is created or changed and the \
             exit status is 1. A backing file that guests only read (through other COW files) \
             is fine. Halt the guest (or remove its device with uml_mconsole UMID remove \
             ubdN) first, or give --ignore-locks for a guest that is stopped.",
        )
        .arg(
            Arg::new("force")
                .short('f')
                .action(ArgAction::SetTrue)
                .help(
                    "Overwrite an existing COW file (it is started afresh; the backing file \
                     itself is refused).",
                ),
        )
        .arg(
            Arg::new("ignore-locks")
                .long("ignore-locks")
                .action(ArgAction::SetTrue)
                .help(
                    "Write even when a UML guest holds a lock on the COW file (with -f) or a \
                     write lock on the backing file; only for a guest that is stopped. May \
                     appear anywhere. Not in Debian's uml_mkcow.",
                ),
        )
        .arg(Arg::new("help").long("help").action(ArgAction::Help).help(
            "Print the usage text and the options of this implementation on standard \
                     output and exit 0 (only as the sole argument; Debian's uml_mkcow prints \
                     the usage on standard error and exits 2).",
        ))
        .arg(
            Arg::new("cow")
                .value_name("COW-file")
                .required(true)
                .value_hint(ValueHint::FilePath)
                .help("The COW file to create."),
        )
        .arg(
            Arg::new("backing")
                .value_name("backing-file")
                .required(true)
                .value_hint(ValueHint::FilePath)
                .help("The backing file (a regular file or a block device)."),
        );
    Tool {
        name: "uml_mkcow",
        section: "1",
        path: "/usr/bin/uml_mkcow",
        command,
        single_dash: &[],
        sections: vec![
            section(
                "USAGE TEXT",
                vec![usage_block(&uml_mkcow::usage(b"uml_mkcow"))],
            ),
            section(
                "EXIT STATUS",
                vec![
                    item("0", "The COW file was written (or --help was printed)."),
                    item(
                        "1",
                        "The COW file could not be created or written, or a UML guest holds \
                         it or the backing file.",
                    ),
                    item(
                        &uml_mkcow::EXIT_USAGE.to_string(),
                        "Usage error (as Debian's uml_mkcow).",
                    ),
                ],
            ),
            section(
                "EXAMPLES",
                vec![code(
                    "uml_mkcow root.cow root.img\n\
                     uml_mkcow -f root.cow root.img     # start root.cow afresh",
                )],
            ),
            see_also("uml_moo(1)"),
        ],
        completions: true,
    }
}

/// `uml_watchdog` (parser: `uml_watchdog::parse_args`).
pub fn uml_watchdog() -> Tool {
    let secs = uml_watchdog::TIMEOUT.as_secs();
    let command = bare("uml_watchdog")
        .about("host side of the User-Mode Linux harddog watchdog")
        .long_about(format!(
            "When a guest process opens /dev/watchdog, the UML kernel runs \
             /usr/bin/uml_watchdog (at that fixed path) with a pipe on standard input that \
             carries one byte per ping. If no ping arrives for {secs} seconds, uml_watchdog \
             acts on the UML: with -pid it sends SIGINT, waits a second, SIGINT again, and \
             then SIGKILL; with -mconsole it sends a HANG notification to the given mconsole \
             notification socket. When the guest closes the device (end of file) it exits \
             quietly. It is not meant to be run by hand."
        ))
        .arg(
            Arg::new("pid")
                .long("pid")
                .value_name("pid")
                .help("The UML's host process id (a positive number)."),
        )
        .arg(
            Arg::new("mconsole")
                .long("mconsole")
                .value_name("socket")
                .value_hint(ValueHint::FilePath)
                .help("The mconsole notification socket (mconsole=notify:SOCKET)."),
        )
        .group(
            ArgGroup::new("mode")
                .args(["pid", "mconsole"])
                .required(true),
        );
    Tool {
        name: "uml_watchdog",
        section: "1",
        path: "/usr/bin/uml_watchdog",
        command,
        single_dash: &["pid", "mconsole"],
        sections: vec![
            section(
                "EXIT STATUS",
                vec![
                    item("0", "The guest closed the watchdog."),
                    item(
                        "1",
                        "The watchdog expired, or the arguments were bad (no message, as in \
                         C).",
                    ),
                ],
            ),
            see_also("uml_mconsole(1)"),
        ],
        completions: true,
    }
}

/// `port-helper` (parser: `port_helper::parse_args`).
pub fn port_helper() -> Tool {
    let command = bare("port-helper")
        .about("hand a terminal to a User-Mode Linux console channel")
        .long_about(
            "port-helper is run for the UML kernel's port and xterm console channels, not by \
             hand. For a port channel, in.telnetd -L /usr/lib/uml/port-helper runs it with the \
             telnet session's terminal as standard input and output and descriptor 3 \
             connected to the kernel. For an xterm channel, the terminal emulator runs \
             port-helper -uml-socket SOCKET inside the new window. Either way it sends its \
             terminal (descriptor 0) and its pid to the kernel and waits until the terminal \
             hangs up. Kernels up to 6.15 (and 32-bit ones) find it at \
             /usr/lib/uml/port-helper, 64-bit kernels from 6.16 on (Debian's 7.x) at \
             /usr/lib64/uml/port-helper; the package installs both (the second is a link to \
             the first). For the port channel the environment variable UML_PORT_HELPER \
             overrides the path; the xterm channel has no override.",
        )
        .arg(
            Arg::new("uml-socket")
                .long("uml-socket")
                .value_name("socket-path")
                .value_hint(ValueHint::FilePath)
                .help(
                    "Socket mode: connect to the kernel's datagram socket at socket-path \
                     instead of using descriptor 3.",
                ),
        );
    Tool {
        name: "port-helper",
        section: "1",
        path: "/usr/lib/uml/port-helper",
        command,
        single_dash: &["uml-socket"],
        sections: vec![
            section(
                "EXIT STATUS",
                vec![
                    item("0", "The terminal hung up."),
                    item(
                        "1",
                        "-uml-socket without a path, or the kernel could not be reached.",
                    ),
                ],
            ),
            see_also("uml_mconsole(1)"),
        ],
        completions: false,
    }
}

/// `jail_uml` (parser: `jail_uml::parse`).
pub fn jail_uml() -> Tool {
    let gid = jail_uml::NUMERIC_USER_GID;
    let command = bare("jail_uml")
        .about("run a User-Mode Linux kernel chrooted as an unprivileged user")
        .long_about(format!(
            "jail_uml, run as root, changes into jail-directory, makes it the root directory, \
             takes the identity of user (its uid, primary group and supplementary groups) and \
             runs uml-command-line there: the program path is taken inside the jail, without \
             a PATH search, and with an empty environment. A user name that is not found is \
             read as a number (uid), which then gets group {gid}. Every step is checked; \
             inherited descriptors other than 0 to 2 are closed."
        ))
        .arg(
            Arg::new("jail-directory")
                .value_name("jail-directory")
                .required(true)
                .value_hint(ValueHint::DirPath)
                .help("The directory that becomes the root directory."),
        )
        .arg(
            Arg::new("user")
                .value_name("user")
                .required(true)
                .value_hint(ValueHint::Username)
                .help("A user name, or a numeric uid."),
        )
        .arg(
            Arg::new("uml-command-line")
                .value_name("uml-command-line")
                .required(true)
                .num_args(1..)
                .trailing_var_arg(true)
                .allow_hyphen_values(true)
                .help("The program (a path inside the jail) and its arguments."),
        );
    Tool {
        name: "jail_uml",
        section: "1",
        path: "/usr/sbin/jail_uml",
        command,
        single_dash: &[],
        sections: vec![
            section("USAGE TEXT", vec![code(jail_uml::USAGE.trim_end())]),
            section(
                "EXIT STATUS",
                vec![item(
                    "1",
                    "Usage error, not run as root, or a failed chdir, chroot, setgroups, \
                     setgid, setuid or execve (the message says which). On success the \
                     program replaces jail_uml.",
                )],
            ),
            section(
                "EXAMPLES",
                vec![code(
                    "jail_uml /srv/uml-jail uml /linux mem=256M ubd0=root.img",
                )],
            ),
            see_also("uml_mconsole(1)"),
        ],
        completions: true,
    }
}
