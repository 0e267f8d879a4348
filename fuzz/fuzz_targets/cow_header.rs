//! The first bytes of a COW file, as `uml_moo`, `uml_mkcow` and the switch
//! of backing files read them (`uml_common::cow::parse_header`), with the
//! geometry and notices derived from a header and the encoding of it.
#![no_main]
use libfuzzer_sys::fuzz_target;
use uml_common::cow::{parse_header, Version};

fuzz_target!(|data: &[u8]| {
    let Ok(Some(h)) = parse_header(data) else {
        return;
    };
    let _ = h.notices();
    if let Ok(g) = h.geometry() {
        assert!(g.bitmap_offset >= h.version.header_len());
        assert!(g.data_offset >= g.bitmap_offset + g.bitmap_len);
        assert!(g.image_len() <= g.size);
        let _ = g.cow_file_len();
    }
    let _ = h.check_backing(h.size, i64::from(h.mtime));
    // Written again, the header reads back the same. Except: a name that
    // fills its whole field (no NUL; C's strdup would run past it) cannot
    // be written, and a v3 header with an empty name reads back as the
    // broken layout (its first four name bytes are the broken layout's
    // zero cow_format).
    if h.backing_file.len() >= h.version.name_field_len()
        || (h.version == Version::V3 && h.backing_file.is_empty())
    {
        assert!(h.encode().is_err() || h.backing_file.is_empty());
        return;
    }
    let bytes = h.encode().expect("a parsed name fits its field");
    assert_eq!(parse_header(&bytes), Ok(Some(h)));
});
