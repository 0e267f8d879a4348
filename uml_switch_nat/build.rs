//! Marks this package's program for a dynamic link (`.cargo/link-cc`):
//! libslirp has no static archive (Debian ships `libslirp.so` only) and
//! needs glib, so this one program (and its unit tests) links dynamically against libslirp,
//! glib and glibc; the switch itself stays static and never links
//! libslirp (`docs/nat.md` §1).

fn main() {
    println!("cargo:rustc-link-arg=-Wl,--defsym=__uml_utilities_dynamic_link=0");
    println!("cargo:rerun-if-changed=build.rs");
}
