//! Debian packaging of the UML host utilities: every program's command
//! line, described by its own crate and collected here ([`tools`]), and
//! the man pages and shell completions rendered from it ([`render`]), and
//! its `--help` text ([`help`]), which the tests compare with the one the
//! program prints. `gen-docs` writes the man pages and completions for
//! `packaging/build-deb`; the package itself is described in this crate's
//! `Cargo.toml` (`[package.metadata.deb]`, built with cargo-deb).

#![forbid(unsafe_code)]

pub mod help;
pub mod render;
pub mod tools;
