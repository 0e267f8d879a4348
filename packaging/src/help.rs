//! The `--help` text of a program, rendered from its description.
//!
//! The programs do not carry clap: each prints a text compiled into it
//! (`uml_mconsole::options::HELP`, `uml_switch::cli::help`,
//! `tunctl::help`, `uml_moo::help`, `uml_mkcow::help`), and the tests of
//! this crate check that it is, byte for byte, the text rendered here from
//! the tool's description. So the description is the one source of the
//! help text too, and where Debian's usage text is part of it (tunctl,
//! uml_moo, uml_mkcow) the description takes it from the tool's crate.
//!
//! How a description says what its `--help` prints (the conventions of
//! every `command.rs`):
//!
//! * `before_help`, printed as it is: usage lines, an introduction, the
//!   heading of the option list;
//! * one entry per option that has a `help` (options without one, such as
//!   Debian's own options that its usage text already explains, and the
//!   operands are not listed): the option as the program spells it, with
//!   its values (`--timeout SECONDS`, `-unix control-socket [data-socket]`,
//!   `--mcast[=GROUP[,PORT[,TTL]]]`), then its `help` from the column
//!   given by the tool's `HELP_LAYOUT`, each further line of the `help`
//!   indented to that column; an option too wide for the column is alone
//!   on its line;
//! * `after_help`, printed as it is.
//!
//! An option's `long_help` is its paragraph in the man page and its
//! description in the completions (see [`crate::render::completion`]);
//! the `help` is the line or lines of `--help`, broken as printed.

use clap::{Arg, Command};

use crate::tools::Tool;

/// The `--help` text that `tool` prints, rendered from its description,
/// or `None` for a program without one.
pub fn help_text(tool: &Tool) -> Option<String> {
    let (indent, column) = tool.help_layout?;
    Some(render(&tool.command, tool.single_dash, indent, column))
}

/// `before_help`, the option list (options at `indent`, their texts from
/// `column`), then `after_help`.
pub fn render(cmd: &Command, single_dash: &[&str], indent: usize, column: usize) -> String {
    // Built, so that every argument knows how many values it takes.
    let mut cmd = cmd.clone();
    cmd.build();
    let mut out = String::new();
    if let Some(before) = cmd.get_before_help() {
        out.push_str(&before.to_string());
    }
    for arg in cmd.get_arguments().filter(|a| !a.is_positional()) {
        let Some(help) = arg.get_help() else {
            continue;
        };
        let help = help.to_string();
        let flag = format!("{}{}", " ".repeat(indent), spelling(arg, single_dash));
        let mut lines = help.lines();
        out.push_str(&flag);
        if flag.len() < column {
            out.push_str(&" ".repeat(column - flag.len()));
            out.push_str(lines.next().unwrap_or_default());
        }
        out.push('\n');
        for line in lines {
            out.push_str(&" ".repeat(column));
            out.push_str(line);
            out.push('\n');
        }
    }
    if let Some(after) = cmd.get_after_help() {
        out.push_str(&after.to_string());
    }
    out
}

/// The option as the program reads it, with its values: `-t
/// device-name`, `--timeout SECONDS`, `-unix control-socket
/// [data-socket]`, `--mcast[=GROUP[,PORT[,TTL]]]` (an optional value given
/// with `=` only).
pub fn spelling(arg: &Arg, single_dash: &[&str]) -> String {
    let mut text = option_name(arg, single_dash);
    let range = arg.get_num_args().unwrap_or_default();
    if !range.takes_values() {
        return text;
    }
    let names: Vec<String> = arg
        .get_value_names()
        .map(|v| v.iter().map(|s| s.to_string()).collect())
        .unwrap_or_else(|| vec![arg.get_id().to_string()]);
    if arg.is_require_equals_set() {
        let value = names.join(" ");
        if range.min_values() == 0 {
            text.push_str(&format!("[={value}]"));
        } else {
            text.push_str(&format!("={value}"));
        }
        return text;
    }
    for (i, name) in names.iter().enumerate() {
        if i >= range.min_values() {
            text.push_str(&format!(" [{name}]"));
        } else {
            text.push_str(&format!(" {name}"));
        }
    }
    text
}

/// The option's name as the program reads it: `-t`, `--timeout`, or
/// `-unix` for a long option in `single_dash`. Empty for an operand.
pub fn option_name(arg: &Arg, single_dash: &[&str]) -> String {
    match (arg.get_short(), arg.get_long()) {
        (Some(s), _) => format!("-{s}"),
        (None, Some(l)) if single_dash.contains(&l) => format!("-{l}"),
        (None, Some(l)) => format!("--{l}"),
        (None, None) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::ArgAction;

    #[test]
    fn options_are_listed_at_the_column() {
        let cmd = Command::new("t")
            .disable_help_flag(true)
            .before_help("Usage: t\n\n")
            .after_help("\nEnd.\n")
            .arg(
                Arg::new("a")
                    .short('a')
                    .action(ArgAction::SetTrue)
                    .long_help("Not listed."),
            )
            .arg(
                Arg::new("long")
                    .long("long")
                    .value_name("N")
                    .help("first\nsecond"),
            )
            .arg(
                Arg::new("unix")
                    .long("unix")
                    .value_names(["ctl", "data"])
                    .num_args(1..=2)
                    .help("wide"),
            )
            .arg(
                Arg::new("mcast")
                    .long("mcast")
                    .value_name("G")
                    .num_args(0..=1)
                    .require_equals(true)
                    .help("m"),
            )
            .arg(Arg::new("op").help("an operand"));
        assert_eq!(
            render(&cmd, &["unix"], 2, 12),
            "Usage: t\n\n  --long N  first\n            second\n  -unix ctl [data]\n            \
             wide\n  --mcast[=G]\n            m\n\nEnd.\n"
        );
    }
}
