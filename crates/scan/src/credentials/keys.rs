//! Judging a value by its key name: `password`, `token`, `apiKey`, `default_pass`, ... hold
//! credentials; `secretName`, `passwordFile`, `tokenUrl`, `existingSecret` name where one is.
//! A value under a credential key is a finding only when it looks like one: long enough, of
//! mixed characters, and not a reference, a variable, a template, a placeholder, a path, a
//! digest, a UUID or a Kubernetes resource name.

use std::sync::OnceLock;

use regex::Regex;

/// Words that make a key name a credential's (compared after lowercasing and dropping
/// everything but letters and digits).
const CREDENTIAL_WORDS: &[&str] = &[
    "password",
    "passwd",
    "passphrase",
    "secret",
    "token",
    "credential",
    "authorization",
    "connectionstring",
];

/// Key names ending in `key` that hold one (`apiKey`, `privateKey`, MinIO's `secretKey`);
/// other keys ending in `key` name a key of a Secret (`passwordKey`, `usernameKey`).
const KEY_ENDINGS: &[&str] = &[
    "apikey",
    "accesskey",
    "privatekey",
    "secretkey",
    "clientkey",
    "tlskey",
    "encryptionkey",
    "signingkey",
    "masterkey",
    "licensekey",
    "licencekey",
    "authkey",
    "hmackey",
];

/// Endings that hold a credential on their own (`default_pass`, `basicAuth`, `AVP_SECRET_ID`).
const VALUE_ENDINGS: &[&str] = &["pass", "pwd", "auth", "secretid", "accesskeyid"];

/// Endings of key names that name, locate or describe a credential rather than hold it.
const NOT_A_VALUE_ENDINGS: &[&str] = &[
    "name",
    "names",
    "ref",
    "refs",
    "file",
    "files",
    "path",
    "dir",
    "url",
    "uri",
    "endpoint",
    "enabled",
    "enable",
    "disabled",
    "type",
    "mode",
    "length",
    "size",
    "policy",
    "ttl",
    "expiry",
    "expires",
    "expiration",
    "duration",
    "period",
    "interval",
    "field",
    "env",
    "header",
    "method",
    "provider",
    "store",
    "template",
    "namespace",
    "format",
    "selector",
    "version",
    "required",
    "count",
    "generate",
    "create",
    "hash",
    "checksum",
    "digest",
    "id",
    "ids",
    "prefix",
    "suffix",
    "regex",
    "algorithm",
    "annotations",
    "labels",
    "mount",
    "keys",
];

/// The word lists of which [`is_credential_key`] needs a key name to hold one word (once
/// squashed): the prefilter searches files for them ([`super::prefilter`]). A new list that
/// makes a key a credential's goes here too.
pub(crate) const WORD_LISTS: &[&[&str]] = &[CREDENTIAL_WORDS, KEY_ENDINGS, VALUE_ENDINGS];

/// Lowercase letters and digits of a key name.
pub(crate) fn squash(key: &str) -> String {
    key.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// Whether a key name is a credential's (`password`, `DB_PASSWORD`, `mqtt.default_pass`,
/// `aescbcEncryptionSecret`, `apiKey`), judged on its last dotted segment.
pub(crate) fn is_credential_key(key: &str) -> bool {
    let last = key.rsplit(['.', '/']).next().unwrap_or(key);
    let k = squash(last);
    if k.is_empty() || k.starts_with("existing") || squash(key).contains("checksum") {
        return false;
    }
    if VALUE_ENDINGS.iter().any(|e| k.ends_with(e)) {
        return true;
    }
    if k.ends_with("key") {
        return KEY_ENDINGS.iter().any(|e| k.ends_with(e));
    }
    !NOT_A_VALUE_ENDINGS.iter().any(|e| k.ends_with(e))
        && CREDENTIAL_WORDS.iter().any(|w| k.contains(w))
}

/// Values that stand for a credential in documentation or defaults.
const PLACEHOLDER_WORDS: &[&str] = &[
    "changeme",
    "change-me",
    "change_me",
    "changeit",
    "replaceme",
    "replace-me",
    "replace_me",
    "example",
    "xxx",
    "***",
    "dummy",
    "placeholder",
    "your-",
    "your_",
    "yourpassword",
    "redacted",
    "todo",
    "fixme",
    "sample",
    "fake",
    "notsecret",
    "not-a-secret",
    "insert",
    "secretvalue",
    "mysecret",
    "mypassword",
    "password123",
    "supersecret",
    "s3cr3t",
    "test",
];

fn safe_shape() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(concat!(
            r"^(?:",
            r"(?i:true|false|yes|no|on|off|null|none|nil|~)",
            r"|-?[0-9][0-9_.]*[smhdkKMGi]?[bB]?",
            // a UUID
            r"|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
            // a digest
            r"|(?i:sha1|sha256|sha384|sha512|md5|blake2b?)[:=-][0-9a-fA-F=+/]+",
            // a whole-value placeholder: `<key>`, `<your-token>`
            r"|<[^<>]*>",
            r")$"
        ))
        .expect("compiles")
    })
}

fn bootstrap_token() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"^[a-z0-9]{6}\.[a-z0-9]{16}$").expect("compiles"))
}

/// A Kubernetes resource name, a DNS name or a dictionary-like word (`my-app-db-password`,
/// `postgres.default.svc`): lowercase words, few digits.
fn is_resource_name(v: &str) -> bool {
    let shape = v.starts_with(|c: char| c.is_ascii_lowercase())
        && v.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._".contains(&b));
    let digits = v.bytes().filter(u8::is_ascii_digit).count();
    shape && digits * 4 < v.len()
}

/// Whether a literal under a credential key looks like a real credential: not a reference,
/// variable or template (`<path:...>`, `ref+`, `op://`, `${VAR}`, `$(VAR)`, `{{ }}`), not a
/// placeholder, path, digest, UUID, number or resource name, and long and mixed enough (10
/// characters or more, two character classes or more, not one repeated character).
pub(crate) fn looks_like_credential(value: &str) -> bool {
    let v = value.trim().trim_matches(|c| c == '"' || c == '\'');
    if v.len() < 10 || v.len() > 4096 || v.contains(char::is_whitespace) {
        return false;
    }
    if v.contains("${")
        || v.contains("$(")
        || v.contains("{{")
        || v.contains("%{")
        || v.contains("#{")
        || v.starts_with('$')
        || v.starts_with("ref+")
        || v.starts_with("op://")
        || v.starts_with('/')
        || v.starts_with("./")
        || v.starts_with('~')
        || v.starts_with("ENC[")
        || kustodian_refs::contains_reference_with_generic(v)
    {
        return false;
    }
    // A URL is judged by its userinfo (a known format), not here.
    if v.contains("://") {
        return false;
    }
    // A kubeadm/Talos bootstrap token (`abcdef.0123456789abcdef`).
    if bootstrap_token().is_match(v) {
        return true;
    }
    let lower = v.to_ascii_lowercase();
    if PLACEHOLDER_WORDS.iter().any(|w| lower.contains(w))
        || safe_shape().is_match(v)
        || is_resource_name(v)
    {
        return false;
    }
    let classes = [
        v.bytes().any(|b| b.is_ascii_lowercase()),
        v.bytes().any(|b| b.is_ascii_uppercase()),
        v.bytes().any(|b| b.is_ascii_digit()),
        v.bytes().any(|b| !b.is_ascii_alphanumeric()),
    ]
    .iter()
    .filter(|x| **x)
    .count();
    let mut distinct: Vec<u8> = v.bytes().collect();
    distinct.sort_unstable();
    distinct.dedup();
    classes >= 2 && distinct.len() >= 6
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_keys() {
        for k in [
            "password",
            "DB_PASSWORD",
            "mqtt.default_pass",
            "aescbcEncryptionSecret",
            "apiKey",
            "api_key",
            "token",
            "clientSecret",
            "basicAuth",
            "AWS_SECRET_ACCESS_KEY",
            "secretKey",
            "AVP_SECRET_ID",
            "VAULT_TOKEN",
            "credentials",
            "privateKey",
            "licenseKey",
        ] {
            assert!(is_credential_key(k), "{k}");
        }
        for k in [
            "secretName",
            "passwordFile",
            "tokenUrl",
            "existingSecret",
            "checksum/secret",
            "key",
            "name",
            "image",
            "authType",
            "secretStoreRef",
            "author",
            "monkey",
            "tokenTTL",
            "usernameKey",
            "passwordKey",
            "secretRef",
        ] {
            assert!(!is_credential_key(k), "{k}");
        }
    }

    #[test]
    fn credential_values() {
        for v in [
            "Tr0ub4dor&3xyz",
            "a8f5f167f44f4964e6c998dee827110c",
            "rabbit-2023-Secure!",
        ] {
            assert!(looks_like_credential(v), "{v}");
        }
        for v in [
            "changeme",
            "<your-token>",
            "<password>",
            "${DB_PASSWORD}",
            "${VAR:=default}",
            "{{ .Values.pw }}",
            "ref+vault://kv/app#/pw",
            "op://vault/item/field",
            "<path:kv/data/app#pw>",
            "admin",
            "my-app-db-password",
            "sha256:abcdef0123456789",
            "3f2a9c1e-7b4d-4e2a-9f1c-0d5e6a7b8c9d",
            "/etc/secrets/password",
            "true",
            "postgres.default.svc",
            "xxxxxxxxxxxx",
            "1111111111111",
        ] {
            assert!(!looks_like_credential(v), "{v}");
        }
    }
}
