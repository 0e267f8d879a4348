//! The one description of `uml_net`'s command line, as a clap [`Command`]
//! (feature `clap-command`), for the man page and the shell completions.
//! `uml_net` (setuid root) has operands only, no options (and no
//! `--help`): packaging's tests check that the description has none
//! either, and that every transport it lists is one the parser
//! (`uml_common::umlnet::parse_argv`) knows.
//!
//! Documentation, not a parser: the program does not carry clap.

use clap::{Arg, Command};

/// Long options spelled with one dash: none.
pub const SINGLE_DASH: &[&str] = &[];

/// The command line of `uml_net`.
pub fn command() -> Command {
    let max = uml_common::umlnet::MAX_VERSION;
    Command::new("uml_net")
        .version(env!("CARGO_PKG_VERSION"))
        .disable_help_flag(true)
        .disable_version_flag(true)
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
        )
}
