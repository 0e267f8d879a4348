//! A byte-exact model of glibc's `getopt(3)` for short options, so that
//! clustering, attached values, `--`, argument permutation and the error
//! messages are those of the C tools.
//!
//! Supported: `x` (flag), `x:` (required argument, attached or in the next
//! argument, even if that starts with `-`), `x::` (optional, attached
//! only); a leading `+` in the option string, or `POSIXLY_CORRECT` in the
//! environment, stops at the first operand instead of permuting. Options
//! are reported in command-line order, operands are collected for the end,
//! `--` ends the options. As in glibc, a `-` inside a cluster is just an
//! unknown option (so `--help` is `invalid option -- '-'`), and `:` and
//! `;` are never valid options.
//!
//! Long options, which Debian's tools do not have, are recognised only
//! when an argument is exactly `--NAME` for a name given to
//! [`Getopt::long_options`] (no abbreviations, no `=VALUE`); any other
//! `--word` is parsed as the short-option cluster it is to plain getopt,
//! so what Debian's tools did with it is unchanged.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;

/// One step of the parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event<'a> {
    /// A known option with its argument (for options that take one).
    Opt(u8, Option<&'a [u8]>),
    /// An option character not in the option string.
    Invalid(u8),
    /// An option that needs an argument was last on the command line.
    MissingArgument(u8),
    /// `--NAME`, one of the [long options](Getopt::long_options).
    Long(&'a [u8]),
}

impl Event<'_> {
    /// glibc's message for an error event (with `opterr` set), including
    /// the newline: `ARGV0: invalid option -- 'x'` or `ARGV0: option
    /// requires an argument -- 'x'`. `None` for [`Event::Opt`].
    pub fn error_message(&self, argv0: &[u8]) -> Option<Vec<u8>> {
        let (text, c): (&[u8], u8) = match *self {
            Event::Opt(..) | Event::Long(_) => return None,
            Event::Invalid(c) => (b": invalid option -- '", c),
            Event::MissingArgument(c) => (b": option requires an argument -- '", c),
        };
        let mut m = argv0.to_vec();
        m.extend_from_slice(text);
        m.push(c);
        m.extend_from_slice(b"'\n");
        Some(m)
    }
}

/// What an option character takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Takes {
    Nothing,
    Required,
    Optional,
}

/// The parser over `args` (with `args[0]` the program name, which is
/// skipped).
#[derive(Debug)]
pub struct Getopt<'a> {
    args: &'a [OsString],
    optstring: &'a [u8],
    long: &'a [&'a [u8]],
    require_order: bool,
    /// Next argument to look at.
    optind: usize,
    /// Position inside `args[optind]` while in a cluster (0: not in one).
    nextchar: usize,
    operands: Vec<&'a [u8]>,
    done: bool,
}

impl<'a> Getopt<'a> {
    /// A parser for `optstring`. `posixly_correct` is whether
    /// `POSIXLY_CORRECT` is set in the environment.
    pub fn new(args: &'a [OsString], optstring: &'a [u8], posixly_correct: bool) -> Getopt<'a> {
        let (require_order, optstring) = match optstring.first() {
            Some(b'+') => (true, &optstring[1..]),
            _ => (posixly_correct, optstring),
        };
        Getopt {
            args,
            optstring,
            long: &[],
            require_order,
            optind: 1,
            nextchar: 0,
            operands: Vec::new(),
            done: false,
        }
    }

    /// Also recognise `--NAME` for each of `names` (without the dashes).
    pub fn long_options(mut self, names: &'a [&'a [u8]]) -> Getopt<'a> {
        self.long = names;
        self
    }

    /// The arguments that are not options, in order. Complete once
    /// [`Iterator::next`] returned `None`.
    pub fn operands(&self) -> &[&'a [u8]] {
        &self.operands
    }

    fn arg(&self, i: usize) -> &'a [u8] {
        self.args[i].as_bytes()
    }

    fn takes(&self, c: u8) -> Option<Takes> {
        if c == b':' || c == b';' {
            return None;
        }
        let at = self.optstring.iter().position(|&o| o == c)?;
        let colons = self.optstring[at + 1..]
            .iter()
            .take(2)
            .take_while(|&&o| o == b':')
            .count();
        Some(match colons {
            0 => Takes::Nothing,
            1 => Takes::Required,
            _ => Takes::Optional,
        })
    }

    /// All remaining arguments from `from` on are operands; stop.
    fn finish(&mut self, from: usize) -> Option<Event<'a>> {
        let rest: Vec<&'a [u8]> = (from..self.args.len()).map(|i| self.arg(i)).collect();
        self.operands.extend(rest);
        self.optind = self.args.len();
        self.done = true;
        None
    }
}

impl<'a> Iterator for Getopt<'a> {
    type Item = Event<'a>;

    fn next(&mut self) -> Option<Event<'a>> {
        if self.done {
            return None;
        }
        if self.nextchar == 0 {
            loop {
                if self.optind >= self.args.len() {
                    self.done = true;
                    return None;
                }
                let arg = self.arg(self.optind);
                if arg == b"--" {
                    return self.finish(self.optind + 1);
                }
                let is_operand = arg.len() < 2 || arg[0] != b'-';
                if !is_operand {
                    if let Some(name) = arg.strip_prefix(b"--") {
                        if self.long.contains(&name) {
                            self.optind += 1;
                            return Some(Event::Long(name));
                        }
                    }
                    break;
                }
                if self.require_order {
                    return self.finish(self.optind);
                }
                self.operands.push(arg);
                self.optind += 1;
            }
            self.nextchar = 1;
        }
        let arg = self.arg(self.optind);
        let c = arg[self.nextchar];
        self.nextchar += 1;
        let rest = &arg[self.nextchar..];
        // Leave the cluster now; an attached argument is `rest`.
        let end_of_cluster = |me: &mut Self| {
            me.optind += 1;
            me.nextchar = 0;
        };
        let Some(takes) = self.takes(c) else {
            if rest.is_empty() {
                end_of_cluster(self);
            }
            return Some(Event::Invalid(c));
        };
        match takes {
            Takes::Nothing => {
                if rest.is_empty() {
                    end_of_cluster(self);
                }
                Some(Event::Opt(c, None))
            }
            Takes::Optional => {
                end_of_cluster(self);
                Some(Event::Opt(c, (!rest.is_empty()).then_some(rest)))
            }
            Takes::Required => {
                end_of_cluster(self);
                if !rest.is_empty() {
                    return Some(Event::Opt(c, Some(rest)));
                }
                if self.optind >= self.args.len() {
                    return Some(Event::MissingArgument(c));
                }
                let value = self.arg(self.optind);
                self.optind += 1;
                Some(Event::Opt(c, Some(value)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(args: &[&str]) -> Vec<OsString> {
        std::iter::once("prog")
            .chain(args.iter().copied())
            .map(OsString::from)
            .collect()
    }

    /// Events rendered compactly (`b`, `t=tap0`, `?x`, `:t`), then the
    /// operands after `|`.
    fn parse(args: &[&str], optstring: &str, posix: bool) -> String {
        let a = argv(args);
        let mut g = Getopt::new(&a, optstring.as_bytes(), posix);
        let mut out: Vec<String> = Vec::new();
        for e in g.by_ref() {
            out.push(match e {
                Event::Opt(c, None) => (c as char).to_string(),
                Event::Opt(c, Some(v)) => format!("{}={}", c as char, String::from_utf8_lossy(v)),
                Event::Invalid(c) => format!("?{}", c as char),
                Event::MissingArgument(c) => format!(":{}", c as char),
                Event::Long(name) => format!("--{}", String::from_utf8_lossy(name)),
            });
        }
        let ops: Vec<String> = g
            .operands()
            .iter()
            .map(|o| String::from_utf8_lossy(o).into_owned())
            .collect();
        format!("{} | {}", out.join(" "), ops.join(" "))
    }

    const OPTS: &str = "bd:f:t:u:g:np";

    #[test]
    fn clusters_and_attached_values() {
        assert_eq!(parse(&["-bt", "tap0"], OPTS, false), "b t=tap0 | ");
        assert_eq!(parse(&["-bttap9"], OPTS, false), "b t=tap9 | ");
        assert_eq!(parse(&["-ttap0", "-b"], OPTS, false), "t=tap0 b | ");
        assert_eq!(parse(&["-b", "-b", "-nbp"], OPTS, false), "b b n b p | ");
    }

    #[test]
    fn separate_values_may_look_like_options() {
        assert_eq!(parse(&["-t", "-b"], OPTS, false), "t=-b | ");
        assert_eq!(parse(&["-t", "--"], OPTS, false), "t=-- | ");
        assert_eq!(parse(&["-u", ""], OPTS, false), "u= | ");
    }

    #[test]
    fn errors() {
        assert_eq!(parse(&["-x"], OPTS, false), "?x | ");
        assert_eq!(parse(&["-bxb"], OPTS, false), "b ?x b | ");
        assert_eq!(parse(&["-t"], OPTS, false), ":t | ");
        assert_eq!(parse(&["-bd"], OPTS, false), "b :d | ");
        assert_eq!(parse(&["--help"], OPTS, false), "?- ?h ?e ?l p | ");
        assert_eq!(parse(&["-:"], OPTS, false), "?: | ");
        assert_eq!(parse(&["-;"], "a;", false), "?; | ");
    }

    #[test]
    fn operands_are_permuted_unless_posixly_correct() {
        assert_eq!(
            parse(&["foo", "-b", "-", "bar"], OPTS, false),
            "b | foo - bar"
        );
        assert_eq!(parse(&["foo", "-b"], OPTS, true), " | foo -b");
        assert_eq!(parse(&["foo", "-b"], "+b", false), " | foo -b");
        assert_eq!(parse(&["-b", "--", "-t", "x"], OPTS, false), "b | -t x");
        assert_eq!(parse(&["a", "--", "-b"], OPTS, false), " | a -b");
        assert_eq!(parse(&["--"], OPTS, false), " | ");
        assert_eq!(parse(&[], OPTS, false), " | ");
    }

    #[test]
    fn optional_arguments_are_attached_only() {
        assert_eq!(
            parse(&["-ofoo", "-o", "bar"], "o::", false),
            "o=foo o | bar"
        );
    }

    #[test]
    fn long_options_only_when_named_exactly() {
        let long: &[&[u8]] = &[b"list", b"vnet-hdr"];
        let parse_long = |args: &[&str], posix: bool| {
            let a = argv(args);
            let mut g = Getopt::new(&a, OPTS.as_bytes(), posix).long_options(long);
            let events: Vec<String> = g
                .by_ref()
                .map(|e| match e {
                    Event::Long(n) => format!("--{}", String::from_utf8_lossy(n)),
                    Event::Opt(c, None) => (c as char).to_string(),
                    Event::Opt(c, Some(v)) => {
                        format!("{}={}", c as char, String::from_utf8_lossy(v))
                    }
                    Event::Invalid(c) => format!("?{}", c as char),
                    Event::MissingArgument(c) => format!(":{}", c as char),
                })
                .collect();
            let ops: Vec<String> = g
                .operands()
                .iter()
                .map(|o| String::from_utf8_lossy(o).into_owned())
                .collect();
            format!("{} | {}", events.join(" "), ops.join(" "))
        };
        assert_eq!(parse_long(&["--list", "-b"], false), "--list b | ");
        assert_eq!(
            parse_long(&["-b", "--vnet-hdr", "x"], false),
            "b --vnet-hdr | x"
        );
        // Anything else is what plain getopt makes of it.
        assert_eq!(parse_long(&["--lis"], false), "?- ?l ?i ?s | ");
        assert_eq!(parse_long(&["--list=1"], false), "?- ?l ?i ?s t==1 | ");
        assert_eq!(parse_long(&["--help"], false), "?- ?h ?e ?l p | ");
        // A value, after `--`, or after an operand under POSIXLY_CORRECT:
        // not an option.
        assert_eq!(parse_long(&["-t", "--list"], false), "t=--list | ");
        assert_eq!(parse_long(&["--", "--list"], false), " | --list");
        assert_eq!(parse_long(&["x", "--list"], true), " | x --list");
        assert_eq!(parse_long(&["x", "--list"], false), "--list | x");
        // Without long options nothing changes.
        assert_eq!(parse(&["--list"], OPTS, false), "?- ?l ?i ?s :t | ");
        assert_eq!(Event::Long(b"list").error_message(b"p"), None);
    }

    #[test]
    fn messages_are_glibcs() {
        let m = Event::Invalid(b'x')
            .error_message(b"/usr/bin/tunctl")
            .unwrap();
        assert_eq!(m, b"/usr/bin/tunctl: invalid option -- 'x'\n");
        let m = Event::MissingArgument(b't')
            .error_message(b"tunctl")
            .unwrap();
        assert_eq!(m, b"tunctl: option requires an argument -- 't'\n");
        assert_eq!(Event::Opt(b'b', None).error_message(b"t"), None);
    }

    #[test]
    fn non_utf8_bytes_pass_through() {
        use std::os::unix::ffi::OsStringExt;
        let a = vec![
            OsString::from("prog"),
            OsString::from_vec(vec![b'-', 0xff]),
            OsString::from_vec(vec![b'-', b't', 0xfe]),
        ];
        let got: Vec<Event> = Getopt::new(&a, OPTS.as_bytes(), false).collect();
        assert_eq!(
            got,
            vec![Event::Invalid(0xff), Event::Opt(b't', Some(&[0xfe][..]))]
        );
    }
}
