//! Debian packaging of the UML host utilities: the clap descriptions of
//! every program ([`cli_defs`]) and the man pages and shell completions
//! rendered from them ([`render`]). `gen-docs` writes those files for
//! `packaging/build-deb`; the package itself is described in this crate's
//! `Cargo.toml` (`[package.metadata.deb]`, built with cargo-deb).

#![forbid(unsafe_code)]

pub mod cli_defs;
pub mod render;
