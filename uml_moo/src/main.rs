//! `uml_moo`: not implemented yet (stub). See README.md for the feature table.
#![forbid(unsafe_code)]

fn main() {
    uml_common::cli::not_implemented("uml_moo")
}
