//! Marks this package's programs for a dynamic link against glibc
//! (`.cargo/link-cc`), so that user and group names resolve through every
//! NSS module of `/etc/nsswitch.conf`; the workspace links all other
//! programs statically.

fn main() {
    println!("cargo:rustc-link-arg-bins=-Wl,--defsym=__uml_utilities_dynamic_link=0");
    println!("cargo:rerun-if-changed=build.rs");
}
