//! The one description of `tunctl`'s command line, as a clap [`Command`]
//! (feature `clap-command`), for the man page, the shell completions and
//! the `--help` text ([`crate::help`]: Debian's usage text, then the
//! options Debian's tunctl does not have, which have a short `help`);
//! packaging's tests check it against [`crate::OPTSTRING`] and
//! [`crate::LONG_OPTIONS`], the tables the parser runs on, in both
//! directions, and [`crate::help`] against the text rendered from it. The
//! conventions are in `uml-utilities-packaging`'s `help` module.
//!
//! Documentation, not a parser: `tunctl` parses its argv with a model of
//! glibc's getopt ([`crate::getopt`]) and does not carry clap.

use clap::{Arg, ArgAction, Command, ValueHint};

/// The indent of the option list in `--help` and the column its texts
/// start at.
pub const HELP_LAYOUT: (usize, usize) = (0, 16);

/// Long options spelled with one dash: none.
pub const SINGLE_DASH: &[&str] = &[];

/// The command line of `tunctl`.
pub fn command() -> Command {
    let clone = uml_common::sys::tun::DEFAULT_CLONE_DEVICE;
    Command::new("tunctl")
        .version(env!("CARGO_PKG_VERSION"))
        .disable_help_flag(true)
        .disable_version_flag(true)
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
        .before_help(format!(
            "{}\nNew in this tunctl (not in Debian's):\n",
            String::from_utf8_lossy(&crate::usage(b"tunctl"))
        ))
        .after_help(
            "\nA tap for a Linux 7.x guest (vecN:transport=tap,ifname=NAME) needs neither:\n\
             the guest asks for virtio-net headers itself, and it cannot attach to a\n\
             multi-queue device.\n",
        )
        .arg(
            Arg::new("brief")
                .short('b')
                .action(ArgAction::SetTrue)
                .long_help("Brief output: print only the device name."),
        )
        .arg(
            Arg::new("delete")
                .short('d')
                .value_name("device-name")
                .long_help("Make device-name non-persistent (delete it)."),
        )
        .arg(
            Arg::new("device")
                .short('t')
                .value_name("device-name")
                .long_help(
                    "The device to create or take over; without it the kernel picks the next \
                     free tapN. Names are cut to 15 bytes.",
                ),
        )
        .arg(
            Arg::new("owner")
                .short('u')
                .value_name("owner")
                .value_hint(ValueHint::Username)
                .long_help("Owner: a user name, else a number (decimal, 0x hex or 0 octal)."),
        )
        .arg(
            Arg::new("group")
                .short('g')
                .value_name("group")
                .long_help("Group allowed to use the device: a group name, else a number."),
        )
        .arg(
            Arg::new("clone-device")
                .short('f')
                .value_name("tun-clone-device")
                .value_hint(ValueHint::FilePath)
                .long_help(format!("The TUN/TAP clone device (default {clone}).")),
        )
        .arg(
            Arg::new("tun")
                .short('n')
                .action(ArgAction::SetTrue)
                .help("make a TUN device (IP packets); -p a TAP device (the default)")
                .long_help("Make a TUN device (IP packets, no Ethernet header); new."),
        )
        .arg(
            Arg::new("tap")
                .short('p')
                .action(ArgAction::SetTrue)
                .long_help("Make a TAP device (Ethernet frames), the default; new."),
        )
        .arg(
            Arg::new("vnet-hdr")
                .long("vnet-hdr")
                .action(ArgAction::SetTrue)
                .help("set IFF_VNET_HDR: frames carry a virtio-net header")
                .long_help(
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
                    "make a multi-queue device (IFF_MULTI_QUEUE); such a device is\n\
                     taken over and deleted only with --multi-queue as well",
                )
                .long_help(
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
                    "list the TUN/TAP devices with their flags, owner and group,\n\
                     as ip tuntap show does (with -b: just the names)",
                )
                .long_help(
                    "List the TUN/TAP devices of the network namespace, in interface-index \
                     order, as ip tuntap show prints them (\"tap0: tap vnet_hdr persist user \
                     1000 group 100\"): kind, flags, and the owner and group ids when set, \
                     read from /sys/class/net/*/tun_flags, owner and group. With -b only the \
                     names. Takes no other option; new.",
                ),
        )
        .arg(
            Arg::new("help")
                .long("help")
                .action(ArgAction::Help)
                .help("print this text")
                .long_help(
                    "Print Debian's usage text and then the new options on standard output \
                     and exit 0 (Debian's tunctl: invalid option); new.",
                ),
        )
}
