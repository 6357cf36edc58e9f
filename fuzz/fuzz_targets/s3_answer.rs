//! An S3-compatible store's answers (list pages, upload ids, error codes) and its
//! `Content-Range` headers are read by hand: whatever the bytes, no panic, and a range read
//! back lies inside the size it names.
#![no_main]

use libfuzzer_sys::fuzz_target;
use moim::storage::s3::{parse_content_range, xml_values};

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for tag in [
        "Key",
        "IsTruncated",
        "NextContinuationToken",
        "UploadId",
        "Code",
    ] {
        for v in xml_values(&text, tag) {
            assert!(v.len() <= text.len());
        }
    }
    if let Some((range, size)) = parse_content_range(&text) {
        assert!(range.start < range.end && range.end <= size);
    }
});
