//! The scanner on any file: findings or notes, never a panic, and never the bytes of a value
//! in what it reports.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let scanner = kustodian_scan::Scanner::new();
    for name in ["fuzz.yaml", "kustomization.yaml"] {
        let _ = scanner.scan_file(name, data);
    }
});
