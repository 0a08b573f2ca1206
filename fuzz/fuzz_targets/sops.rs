//! The SOPS decoder: any file is decrypted or refused with an error (the key is a fixed test
//! identity, so the fuzzer mostly explores the parsing of values and metadata).
#![no_main]
use libfuzzer_sys::fuzz_target;

const KEY: &str = "AGE-SECRET-KEY-1YFTHGT9FJ8DV7SXJUJ638CRTMS5AM02L09RSYWDV4G76DFSXRNXSAFECCG";

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(ids) = kustodian_sops::Identities::parse(KEY, "fuzz") else {
        return;
    };
    for format in [kustodian_sops::Format::Yaml, kustodian_sops::Format::Json] {
        let _ = kustodian_sops::decrypt(&text, format, &ids, "fuzz");
    }
});
