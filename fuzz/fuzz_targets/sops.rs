//! The SOPS decoder: any file is decrypted or refused with an error. The identity is the render
//! fixtures' test key, so inputs derived from tests/fixtures/render/store/*.enc.yaml reach the
//! value decryption and MAC check, not only the parsing.
#![no_main]
use libfuzzer_sys::fuzz_target;

const KEYS: &str = include_str!("../../tests/fixtures/render/store/keys.txt");

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(ids) = kustodian_sops::Identities::parse(KEYS, "fuzz") else {
        return;
    };
    for format in [
        kustodian_sops::Format::Yaml,
        kustodian_sops::Format::Json,
        kustodian_sops::Format::Dotenv,
    ] {
        let _ = kustodian_sops::decrypt(&text, format, &ids, "fuzz");
    }
});
