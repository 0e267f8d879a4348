//! `uml_switch_pcap`: see the library.

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    std::process::exit(uml_switch_pcap::uumain(&args));
}
