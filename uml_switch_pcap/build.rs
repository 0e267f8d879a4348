//! Marks this program for a dynamic link (`.cargo/link-cc`): it links
//! libpcap, which Debian ships without a usable static archive (its
//! `libpcap.a` needs static libdbus-1 and libsystemd, which Debian lacks).
//! uml_switch itself stays static-pie and runs this program. Every link
//! of the package is marked (not only the program's): its unit tests link
//! libpcap too.

fn main() {
    println!("cargo:rustc-link-arg=-Wl,--defsym=__uml_utilities_dynamic_link=0");
    println!("cargo:rerun-if-changed=build.rs");
}
