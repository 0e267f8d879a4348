//! Every program in the package, collected for the man pages and the
//! shell completions that `gen-docs` writes: its command line, which its
//! own crate describes (`command::command()` behind the crate's
//! `clap-command` feature, the one description, also of its `--help`
//! text), and what only the man page says (install path, section, EXIT
//! STATUS, FILES, EXAMPLES, ...).
//!
//! **The descriptions are documentation, not parsers.** For drop-in
//! compatibility with Debian's uml-utilities each tool parses its argv by
//! hand, exactly as the C program does: single-dash long options
//! (`uml_switch -unix`, `uml_watchdog -pid`, `port-helper -uml-socket`),
//! glibc `getopt` for `tunctl`, fixed positional forms for `uml_moo`,
//! `uml_mkcow`, `jail_uml` and `uml_net`, and GNU-style options only where
//! the rewrite added them (`uml_mconsole --timeout`). Each parser names
//! the options it accepts in a table it matches against (`OPTIONS`,
//! tunctl's `OPTSTRING` and `LONG_OPTIONS`), and the tests of this crate
//! check, per tool, that the table is the set of options described, that
//! the parser accepts every option in the form described, and that the
//! `--help` text compiled into the program is the one rendered from the
//! description ([`crate::help`]).
//!
//! clap has no single-dash long options; they are declared as long options
//! and listed in [`Tool::single_dash`] (the crate's `SINGLE_DASH`), and the
//! renderers ([`crate::render`], [`crate::help`]) print them with one dash.

use clap::Command;

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
    /// The command line: the tool crate's `command::command()`.
    pub command: Command,
    /// Long options that the program spells with one dash (`-unix`): the
    /// tool crate's `command::SINGLE_DASH`.
    pub single_dash: &'static [&'static str],
    /// For a program with a `--help` text: the indent of its option list
    /// and the column the options' texts start at (the tool crate's
    /// `command::HELP_LAYOUT`); see [`crate::help`].
    pub help_layout: Option<(usize, usize)>,
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
    Tool {
        name: "uml_mconsole",
        section: "1",
        path: "/usr/bin/uml_mconsole",
        command: uml_mconsole::command::command(),
        single_dash: uml_mconsole::command::SINGLE_DASH,
        help_layout: Some(uml_mconsole::command::HELP_LAYOUT),
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
    Tool {
        name: "uml_switch",
        section: "1",
        path: "/usr/bin/uml_switch",
        command: uml_switch::cli::command::command(),
        single_dash: uml_switch::cli::command::SINGLE_DASH,
        help_layout: Some(uml_switch::cli::command::HELP_LAYOUT),
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
    let policy = uml_net::policy::POLICY_PATH;
    Tool {
        name: "uml_net",
        section: "1",
        path: "/usr/bin/uml_net",
        command: uml_net::command::command(),
        single_dash: uml_net::command::SINGLE_DASH,
        help_layout: None,
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
    Tool {
        name: "tunctl",
        section: "8",
        path: "/usr/bin/tunctl",
        command: tunctl::command::command(),
        single_dash: tunctl::command::SINGLE_DASH,
        help_layout: Some(tunctl::command::HELP_LAYOUT),
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
    Tool {
        name: "uml_moo",
        section: "1",
        path: "/usr/bin/uml_moo",
        command: uml_moo::command::command(),
        single_dash: uml_moo::command::SINGLE_DASH,
        help_layout: Some(uml_moo::command::HELP_LAYOUT),
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
                     uml_moo --ignore-locks root.cow root-merged.img   # guest stopped\n\
                     uml_moo --no-reflink root.cow root-merged.img     # a full copy, even on XFS or btrfs",
                )],
            ),
            see_also("uml_mkcow(1)"),
        ],
        completions: true,
    }
}

/// `uml_mkcow` (parser: `uml_mkcow::parse_args`).
pub fn uml_mkcow() -> Tool {
    Tool {
        name: "uml_mkcow",
        section: "1",
        path: "/usr/bin/uml_mkcow",
        command: uml_mkcow::command::command(),
        single_dash: uml_mkcow::command::SINGLE_DASH,
        help_layout: Some(uml_mkcow::command::HELP_LAYOUT),
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
    Tool {
        name: "uml_watchdog",
        section: "1",
        path: "/usr/bin/uml_watchdog",
        command: uml_watchdog::command::command(),
        single_dash: uml_watchdog::command::SINGLE_DASH,
        help_layout: None,
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
    Tool {
        name: "port-helper",
        section: "1",
        path: "/usr/lib/uml/port-helper",
        command: port_helper::command::command(),
        single_dash: port_helper::command::SINGLE_DASH,
        help_layout: None,
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
    Tool {
        name: "jail_uml",
        section: "1",
        path: "/usr/sbin/jail_uml",
        command: jail_uml::command::command(),
        single_dash: jail_uml::command::SINGLE_DASH,
        help_layout: None,
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
