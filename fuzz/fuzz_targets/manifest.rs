//! The YAML/JSON reader: any text parses or fails with an error, within its limits, and what
//! parses can be written back out.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(docs) = kustodian_manifest::parse_stream(&text) {
        let roots: Vec<&kustodian_manifest::Node> = docs.iter().map(|d| &d.root).collect();
        let _ = kustodian_manifest::emit_stream(roots);
        for d in &docs {
            let _ = kustodian_manifest::objects(&d.root).len();
        }
    }
});
