//! tus headers come from whoever uploads: `Upload-Metadata` and `Upload-Checksum` parse or are
//! refused, and a file name from them never keeps a folder or a control character.
#![no_main]

use libfuzzer_sys::fuzz_target;
use moim::domain::uploads::{clean_filename, parse_metadata, Checksum};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Some(meta) = parse_metadata(&text) {
        assert!(meta.len() <= 32);
        for (_, value) in meta {
            let name = clean_filename(&value);
            assert!(!name.is_empty());
            assert!(!name.contains(['/', '\\']));
            assert!(!name.chars().any(char::is_control));
        }
    }
    let _ = Checksum::parse(&text);
});
