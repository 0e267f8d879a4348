//! Man pages (clap_mangen) and shell completions (clap_complete) from the
//! descriptions the tools' crates give ([`crate::tools`]).
//!
//! Both generators know only GNU-style `--long` options; the options a tool
//! spells with one dash ([`Tool::single_dash`]) are rewritten in their
//! output, token by token, so that `-unix` is documented and completed as
//! `-unix`.

use std::io;

use clap::{Arg, Command};
use clap_complete::Shell;
use clap_mangen::Man;
use roff::{bold, italic, roman, Inline, Roff};

use crate::tools::{Block, Section, Tool, VERSION};

/// The shells completions are written for.
pub const SHELLS: [Shell; 3] = [Shell::Bash, Shell::Zsh, Shell::Fish];

/// The man page's file name: `uml_switch.1`, `tunctl.8`.
pub fn man_file_name(tool: &Tool) -> String {
    format!("{}.{}", tool.name, tool.section)
}

/// The completion file name and the directory of the package it goes to
/// (relative to `/usr/share`).
pub fn completion_file(tool: &Tool, shell: Shell) -> (String, &'static str) {
    match shell {
        Shell::Zsh => (format!("_{}", tool.name), "zsh/vendor-completions"),
        Shell::Fish => (format!("{}.fish", tool.name), "fish/vendor_completions.d"),
        _ => (tool.name.to_string(), "bash-completion/completions"),
    }
}

/// The whole man page of `tool` in roff. `date` goes into the title line
/// (`.TH`), e.g. the date of the package's changelog entry.
pub fn man_page(tool: &Tool, date: Option<&str>) -> io::Result<Vec<u8>> {
    let manual = if tool.section == "8" {
        "System Administration"
    } else {
        "User Commands"
    };
    let mut man = Man::new(tool.command.clone())
        .section(tool.section)
        .source(format!("uml-utilities-rs {VERSION}"))
        .manual(manual);
    if let Some(date) = date {
        man = man.date(date);
    }
    let mut out = Vec::new();
    man.render_title(&mut out)?;
    man.render_name_section(&mut out)?;
    synopsis_roff(&tool.command).to_writer(&mut out)?;
    man.render_description_section(&mut out)?;
    if tool.command.get_arguments().next().is_some() {
        man.render_options_section(&mut out)?;
    }
    let mut roff = Roff::new();
    for s in &tool.sections {
        section_roff(&mut roff, s);
    }
    roff.control("SH", ["NOTES"]);
    roff.text([roman(format!(
        "{} is part of uml-utilities-rs, a drop-in replacement for Debian's \
         uml-utilities; the package installs it as {}. Its deliberate differences from \
         the C program are listed in /usr/share/doc/uml-utilities-rs/README.md.",
        tool.name, tool.path
    ))]);
    roff.to_writer(&mut out)?;
    let text = String::from_utf8_lossy(&out).into_owned();
    let text = once_preamble(&text);
    Ok(single_dash_roff(&text, tool.single_dash).into_bytes())
}

/// The definition of `\*(Aq` (roff's apostrophe) that the roff crate puts
/// before every rendered piece.
const AQ_PREAMBLE: &str = ".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n";

/// Keeps the first [`AQ_PREAMBLE`] (before `.TH`) and drops the copies
/// that rendering the page section by section left between the sections.
fn once_preamble(text: &str) -> String {
    match text.find(AQ_PREAMBLE) {
        Some(i) => {
            let head = i + AQ_PREAMBLE.len();
            format!("{}{}", &text[..head], text[head..].replace(AQ_PREAMBLE, ""))
        }
        None => text.to_string(),
    }
}

/// SYNOPSIS from the command: every option with its values
/// (`[-t device-name]`, `[-unix control-socket [data-socket]]`), a required
/// group as alternatives (`-pid pid | -mconsole socket`), then the
/// operands (`[command...]`). clap_mangen's own synopsis leaves out the
/// values.
fn synopsis_roff(cmd: &Command) -> Roff {
    // Built, so that every argument knows how many values it takes.
    let mut cmd = cmd.clone();
    cmd.build();
    let cmd = &cmd;
    let mut line: Vec<Inline> = vec![bold(cmd.get_name())];
    let required_groups: Vec<Vec<String>> = cmd
        .get_groups()
        .filter(|g| g.is_required_set())
        .map(|g| g.get_args().map(|a| a.to_string()).collect())
        .collect();
    let in_group = |a: &Arg| {
        required_groups
            .iter()
            .any(|g| g.iter().any(|id| id == a.get_id().as_str()))
    };
    for group in &required_groups {
        line.push(roman(" "));
        let mut first = true;
        for arg in cmd
            .get_arguments()
            .filter(|a| group.iter().any(|id| id == a.get_id().as_str()))
        {
            if !first {
                line.push(roman(" | "));
            }
            first = false;
            option_synopsis(arg, &mut line);
        }
    }
    for arg in cmd.get_arguments() {
        if arg.is_positional() || arg.is_hide_set() || in_group(arg) {
            continue;
        }
        line.push(roman(" ["));
        option_synopsis(arg, &mut line);
        line.push(roman("]"));
    }
    for arg in cmd.get_positionals() {
        let name = arg
            .get_value_names()
            .and_then(|v| v.first())
            .map_or_else(|| arg.get_id().to_string(), |v| v.to_string());
        let many = arg.get_num_args().is_some_and(|r| r.max_values() > 1);
        line.push(roman(" "));
        if !arg.is_required_set() {
            line.push(roman("["));
        }
        line.push(italic(name));
        if many {
            line.push(roman("..."));
        }
        if !arg.is_required_set() {
            line.push(roman("]"));
        }
    }
    let mut roff = Roff::new();
    roff.control("SH", ["SYNOPSIS"]);
    roff.text(line);
    roff
}

/// `-t device-name`, `--timeout SECONDS`, `-unix control-socket
/// [data-socket]`.
fn option_synopsis(arg: &Arg, line: &mut Vec<Inline>) {
    let flag = match (arg.get_short(), arg.get_long()) {
        (Some(s), _) => format!("-{s}"),
        (None, Some(l)) => format!("--{l}"),
        (None, None) => return,
    };
    line.push(bold(flag));
    let range = arg.get_num_args().unwrap_or_default();
    if !range.takes_values() {
        return;
    }
    let names: Vec<String> = arg
        .get_value_names()
        .map(|v| v.iter().map(|s| s.to_string()).collect())
        .unwrap_or_else(|| vec![arg.get_id().to_string()]);
    for (i, name) in names.iter().enumerate() {
        let optional = i >= range.min_values();
        line.push(roman(if optional { " [" } else { " " }));
        line.push(italic(name.as_str()));
        if optional {
            line.push(roman("]"));
        }
    }
}

fn section_roff(roff: &mut Roff, s: &Section) {
    roff.control("SH", [s.title]);
    for block in &s.blocks {
        match block {
            Block::Para(text) => {
                roff.control("PP", []);
                roff.text([roman(text.as_str())]);
            }
            Block::Item(tag, text) => {
                roff.control("TP", []);
                roff.text([bold(tag.as_str())]);
                roff.text([roman(text.as_str())]);
            }
            Block::Code(text) => {
                roff.control("PP", []);
                roff.control("RS", ["4"]);
                roff.control("nf", []);
                for line in text.lines() {
                    // Tabs of the usage texts: a fixed indent instead.
                    roff.text([roman(line.replace('\t', "    "))]);
                }
                roff.control("fi", []);
                roff.control("RE", []);
            }
        }
    }
}

/// The completion script of `tool` for `shell`. An option's description
/// is its `long_help` (its man page paragraph) where it has one: its
/// `help` is its line in the `--help` text ([`crate::help`]).
pub fn completion(tool: &Tool, shell: Shell) -> Vec<u8> {
    let mut cmd = tool
        .command
        .clone()
        .mut_args(|arg| match arg.get_long_help() {
            Some(long) => {
                let long = long.clone();
                arg.help(long)
            }
            None => arg,
        });
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, tool.name, &mut out);
    let text = String::from_utf8_lossy(&out).into_owned();
    let fixed = match shell {
        Shell::Zsh => single_dash_zsh(&text, tool.single_dash),
        Shell::Fish => single_dash_fish(&text, tool.single_dash),
        _ => single_dash_plain(&text, tool.single_dash),
    };
    fixed.into_bytes()
}

/// Replaces `from` by `to` wherever it is not followed by a character that
/// could continue an option name.
fn replace_token(text: &str, from: &str, to: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(from) {
        let after = &rest[i + from.len()..];
        let continues = after
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        out.push_str(&rest[..i]);
        out.push_str(if continues { from } else { to });
        rest = after;
    }
    out.push_str(rest);
    out
}

/// roff: `\-\-unix` → `\-unix` (roff escapes every `-`).
fn single_dash_roff(text: &str, names: &[&str]) -> String {
    names.iter().fold(text.to_string(), |t, name| {
        let esc = name.replace('-', "\\-");
        replace_token(&t, &format!("\\-\\-{esc}"), &format!("\\-{esc}"))
    })
}

/// bash: `--unix` → `-unix`.
fn single_dash_plain(text: &str, names: &[&str]) -> String {
    names.iter().fold(text.to_string(), |t, name| {
        replace_token(&t, &format!("--{name}"), &format!("-{name}"))
    })
}

/// zsh `_arguments` specs: `--unix=[...]` (value in the same word or the
/// next) → `-unix[...]` (the next word only, as the tools read it), and
/// `--hub[...]` → `-hub[...]`.
fn single_dash_zsh(text: &str, names: &[&str]) -> String {
    names.iter().fold(text.to_string(), |t, name| {
        let t = t.replace(&format!("--{name}=["), &format!("-{name}["));
        replace_token(&t, &format!("--{name}"), &format!("-{name}"))
    })
}

/// fish: `-l unix` (GNU long option) → `-o unix` (old-style option).
fn single_dash_fish(text: &str, names: &[&str]) -> String {
    names.iter().fold(text.to_string(), |t, name| {
        replace_token(&t, &format!(" -l {name}"), &format!(" -o {name}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preamble_once() {
        let two = format!("{AQ_PREAMBLE}.TH x\n{AQ_PREAMBLE}.SH NAME\n");
        assert_eq!(
            once_preamble(&two),
            format!("{AQ_PREAMBLE}.TH x\n.SH NAME\n")
        );
        assert_eq!(once_preamble(".TH x\n"), ".TH x\n");
    }

    #[test]
    fn tokens_are_replaced_whole() {
        assert_eq!(
            replace_token("--tap --tap-x --tap=", "--tap", "-tap"),
            "-tap --tap-x -tap="
        );
        assert_eq!(
            single_dash_roff(r"\fB\-\-compat\-v0\fR \-\-hubx", &["compat-v0", "hub"]),
            r"\fB\-compat\-v0\fR \-\-hubx"
        );
        assert_eq!(
            single_dash_zsh("'--unix=[x]:a:_files' '--hub[y]'", &["unix", "hub"]),
            "'-unix[x]:a:_files' '-hub[y]'"
        );
        assert_eq!(
            single_dash_fish("complete -c s -l unix -r\n", &["unix"]),
            "complete -c s -o unix -r\n"
        );
    }
}
