//! A line typed at (or piped into) `uml_mconsole`: the `config ubdN=` path
//! rewriting, the completion of the first word, and the `strtoul` that
//! reads numbers of local commands.
#![no_main]
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use uml_mconsole::absolutize::absolutize_config;
use uml_mconsole::client::parse_strtoul;
use uml_mconsole::interactive::complete_word;

fuzz_target!(|data: &[u8]| {
    let (line, warnings) = absolutize_config(data, Some(Path::new("/nonexistent-cwd")));
    if warnings.is_empty() && !data.starts_with(b"config") {
        assert_eq!(line, data);
    }
    let _ = parse_strtoul(data);
    if let Ok(text) = std::str::from_utf8(data) {
        // rustyline passes a cursor on a character boundary.
        for pos in (0..=text.len())
            .filter(|&p| text.is_char_boundary(p))
            .take(64)
        {
            let (start, names) = complete_word(text, pos);
            assert!(start <= pos);
            assert!(names.len() <= 64);
        }
    }
});
