//! The scanner never reports clean on input it could not read: whenever a file that may hold a
//! Secret is not valid UTF-8 text or does not parse as YAML/JSON (and is not a Helm template,
//! which is read line by line), the scan has an `unreadable-manifest` finding.
//! `cargo test -p kustodian-scan never_clean_on_input_it_could_not_read` checks the same
//! property with proptest.
#![no_main]
use kustodian_scan::{Rule, Scanner, MAX_FILE_SIZE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // UTF-16 with a byte-order mark is decoded first; its own rules apply.
    if data.len() > MAX_FILE_SIZE
        || data.starts_with(&[0xFF, 0xFE])
        || data.starts_with(&[0xFE, 0xFF])
    {
        return;
    }
    let scanner = Scanner::new();
    let unreadable = match std::str::from_utf8(data) {
        Ok(text) if !text.contains('\0') => {
            scanner.prefilter(data)
                && !text.contains("{{")
                && kustodian_manifest::parse_stream(text).is_err()
        }
        _ => scanner.may_hold_secret(data),
    };
    if unreadable {
        let r = scanner.scan_file("fuzz.yaml", data);
        assert!(
            r.findings
                .iter()
                .any(|f| f.rule == Rule::UnreadableManifest),
            "reported clean on input it could not read"
        );
    }
});
