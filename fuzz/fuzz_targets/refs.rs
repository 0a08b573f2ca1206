//! The reference grammar: any string gives references with in-bounds spans, or an error.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    for parsed in [
        kustodian_refs::parse_all(&text),
        kustodian_refs::parse_all_with_generic(&text),
    ] {
        if let Ok(refs) = parsed {
            for r in refs {
                assert!(text.get(r.span.clone()).is_some(), "span out of bounds");
            }
        }
    }
    let _ = kustodian_refs::contains_reference(&text);
});
