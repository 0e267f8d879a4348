//! A datagram arriving at the kernel side of the mconsole socket, as the
//! tests' fake kernel and `uml_common::mconsole::decode_request` read it.
#![no_main]
use libfuzzer_sys::fuzz_target;
use uml_common::mconsole::{decode_request, encode_request, Request, MAX_DATA};

fuzz_target!(|data: &[u8]| {
    match decode_request(data) {
        Request::Unversioned => assert!(data.len() < 4 || data[..4] != [0xbe, 0xba, 0xfe, 0xca]),
        Request::TooLarge(len) => assert!(len as usize >= MAX_DATA),
        Request::Command { command, .. } => {
            assert!(command.len() < MAX_DATA);
            assert!(!command.contains(&0));
            // What our client would send for that command decodes to it.
            let again = encode_request(command);
            assert_eq!(
                decode_request(&again),
                Request::Command {
                    version: 2,
                    command
                }
            );
        }
    }
});
