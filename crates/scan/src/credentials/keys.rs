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
    // PagerDuty's `routing_key` / `service_key`, an integration's key, Datadog's `appKey`.
    "routingkey",
    "servicekey",
    "integrationkey",
    "appkey",
    "applicationkey",
    "accountkey",
    "subscriptionkey",
    "sessionkey",
    "sharedkey",
];

/// Endings that hold a credential on their own (`default_pass`, `basicAuth`, `AVP_SECRET_ID`).
const VALUE_ENDINGS: &[&str] = &["pass", "pwd", "pw", "auth", "secretid", "accesskeyid"];

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

/// Whether a text file that is not a manifest is a config file or a script whose `KEY=value`
/// / `key = "value"` lines are judged by key name (env files, shell scripts, Terraform and
/// HCL, INI, TOML, properties, rclone and `.terraformrc`); any other text file is searched
/// for known formats only.
pub(crate) fn judges_assignments(path: &str) -> bool {
    let name = path
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or(path)
        .to_ascii_lowercase();
    const NAMES: &[&str] = &[
        ".envrc",
        ".terraformrc",
        "terraformrc",
        "makefile",
        "dockerfile",
    ];
    const ENDINGS: &[&str] = &[
        ".env",
        ".sh",
        ".bash",
        ".zsh",
        ".tfvars",
        ".tf",
        ".hcl",
        ".tfstate",
        ".json5",
        ".conf",
        ".ini",
        ".cfg",
        ".properties",
        ".toml",
    ];
    NAMES.contains(&name.as_str())
        || name.starts_with(".env.")
        || ENDINGS.iter().any(|e| name.ends_with(e))
}

fn assignment() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(concat!(
            // `KEY=value`, `export KEY="value"`, `key = 'value' # comment`, a Dockerfile's
            // `ENV KEY=value`, a Makefile's `KEY ?= value`
            r#"^\s*(?:export\s+|readonly\s+|declare\s+(?:-x\s+)?|ENV\s+|ARG\s+)?["']?([A-Za-z_][A-Za-z0-9_.\-]{0,79})["']?\s*[?:+]?=\s*"#,
            r#"(?:"([^"]*)"|'([^']*)'|([^\s"'#;]+))\s*(?:[#;].*)?$"#,
            // `"key": "value",` (a Terraform state, JSON5)
            r#"|^\s*"([A-Za-z_][A-Za-z0-9_.\-]{0,79})"\s*:\s*"([^"]*)",?\s*$"#,
        ))
        .expect("compiles")
    })
}

fn command_flag() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(concat!(
            // `--from-literal=password=...`, `--set auth.password=...`
            r#"(?:^|\s)--(?:from-literal=|set(?:-string)?[ =])["']?([A-Za-z0-9_.\-]+)="#,
            r#"(?:"([^"]*)"|'([^']*)'|([^\s"'\\]+))"#,
            // `--password=...`, `--token ...`
            r#"|(?:^|\s)--([A-Za-z][A-Za-z0-9\-]*)(?:=|\s+)(?:"([^"]*)"|'([^']*)'|([^\s"'\\\-][^\s"'\\]*))"#,
        ))
        .expect("compiles")
    })
}

/// The key and value of the first match of `re` in `line` whose key is a credential's and
/// whose value is a literal that looks like one. `forms` are the group numbers of the key of
/// each alternative of `re`; the groups after a key, up to the next, are its value written in
/// different quotes.
fn credential_pair<'l>(
    re: &Regex,
    forms: &[usize],
    line: &'l str,
) -> Option<(&'l str, std::ops::Range<usize>)> {
    for c in re.captures_iter(line) {
        let Some(i) = forms.iter().position(|g| c.get(*g).is_some()) else {
            continue;
        };
        let key = c.get(forms[i]).map_or("", |m| m.as_str());
        let end = forms.get(i + 1).copied().unwrap_or(c.len());
        let Some(v) = (forms[i] + 1..end).find_map(|g| c.get(g)) else {
            continue;
        };
        if !v.as_str().contains(['$', '`', '(']) && holds_credential(key, v.as_str()) {
            return Some((key, v.range()));
        }
    }
    None
}

/// A `KEY=literal` / `key = "literal"` / `"key": "literal"` line of a config file or script,
/// or a command's `--password=literal`, `--from-literal=token=literal` or `--set
/// auth.password=literal`, whose key is a credential's and whose value looks like one: the
/// key, and the byte range of the value in the line. Values that expand anything (`$VAR`,
/// `$(cmd)`, `` `cmd` ``, `${VAR}`) are not literals.
pub(crate) fn find_assignment(line: &str) -> Option<(&str, std::ops::Range<usize>)> {
    if !line.contains(['=', ':', '-']) {
        return None;
    }
    credential_pair(assignment(), &[1, 5], line)
        .or_else(|| credential_pair(command_flag(), &[1, 5], line))
}

/// Whether `value` under `key` is judged a credential: the key is a credential's
/// ([`is_credential_key`]), the value looks like one ([`looks_like_credential`]), and it is not
/// a hex digest under a key that names a digest ([`is_named_digest`]).
pub(crate) fn holds_credential(key: &str, value: &str) -> bool {
    is_credential_key(key) && looks_like_credential(value) && !is_named_digest(key, value)
}

/// Words of a key name that say its value is a digest (`CONFIG_TOKEN_SHA256`,
/// `secret_checksum`, `sha256sum`, `TOKEN_HASH`, `image_digest`).
const DIGEST_WORDS: &[&str] = &[
    "sha1", "sha224", "sha256", "sha384", "sha512", "md5", "checksum", "hash", "digest",
];

/// Whether a key names a digest and its value is one: 32, 40, 56, 64, 96 or 128 hex digits
/// (MD5 to SHA-512), optionally after `sha256:`. A hex value under a key that names no digest
/// (`api_token: <64 hex>`) is judged as any other value.
pub(crate) fn is_named_digest(key: &str, value: &str) -> bool {
    let k = squash(key);
    let v = value.trim().trim_matches(['"', '\'']);
    let v = v.split_once(':').map_or(v, |(_, hex)| hex);
    DIGEST_WORDS.iter().any(|w| k.contains(w))
        && matches!(v.len(), 32 | 40 | 56 | 64 | 96 | 128)
        && v.bytes().all(|b| b.is_ascii_hexdigit())
}

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
            // an environment variable's name (ESO `secretKey: AWS_SECRET_ACCESS_KEY`)
            r"|[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+",
            // a camelCase or PascalCase identifier of words (`secretKey: awsSecretAccessKey`)
            r"|[a-z]{2,}(?:[A-Z][a-z]{2,})+|(?:[A-Z][a-z]{2,}){2,}",
            // a digest
            r"|(?i:sha1|sha256|sha384|sha512|md5|blake2b?)[:=-][0-9a-fA-F=+/]+",
            // a whole-value placeholder: `<key>`, `<your-token>`, `__PASSWORD__`, `@TOKEN@`
            r"|<[^<>]*>|__[A-Za-z0-9_]+__|@[A-Za-z0-9_]+@",
            // SealedSecret ciphertext (a Helm chart that templates the SealedSecret)
            r"|Ag[A-D][A-Za-z0-9+/]{300,}={0,2}",
            r")$"
        ))
        .expect("compiles")
    })
}

fn bootstrap_token() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"^[a-z0-9]{6}\.[a-z0-9]{16}$").expect("compiles"))
}

/// A Kubernetes resource name, a DNS name, a dictionary-like word or a path of them
/// (`my-app-db-password`, `postgres.default.svc`, `database/creds/payments`): lowercase words,
/// few digits.
fn is_resource_name(v: &str) -> bool {
    let shape = v.starts_with(|c: char| c.is_ascii_lowercase())
        && v.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._/".contains(&b));
    let digits = v.bytes().filter(u8::is_ascii_digit).count();
    shape && digits * 4 < v.len()
}

/// An absolute path (`/run/secrets/password`), not base64 that starts with `/`: path
/// characters only, and no segment of 20 characters or more.
fn is_path(v: &str) -> bool {
    v.starts_with('/')
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/-._@:~".contains(&b))
        && v.split('/').all(|seg| seg.len() < 20)
}

/// Whether a literal under a credential key looks like a real credential: not a reference,
/// variable or template (`<path:...>`, `ref+`, `op://`, `${VAR}`, `$(VAR)`, `{{ }}`), not a
/// placeholder, path, digest, number, resource name or identifier, and long and mixed enough
/// (10 characters or more, two character classes or more, not one repeated character). A
/// UUID under a credential key is one (Opsgenie keys, Vault AppRole secret ids).
pub(crate) fn looks_like_credential(value: &str) -> bool {
    let v = value.trim().trim_matches(|c| c == '"' || c == '\'');
    // An `Authorization` header's value: the credential follows the scheme.
    let v = ["Bearer ", "bearer ", "Basic ", "basic ", "token ", "Token "]
        .iter()
        .find_map(|scheme| v.strip_prefix(scheme))
        .map_or(v, str::trim_start);
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
        // a bank-vaults webhook reference (`vault:secret/data/app#KEY`)
        || v.starts_with("vault:")
        || is_path(v)
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
            "routing_key",
            "service_key",
            "appKey",
            "ADMIN_PW",
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
    fn assignments_in_config_files_and_scripts() {
        for (line, key) in [
            (
                "export RESTIC_PASSWORD=Xk9mP2vL7qAb3ZrT8wYc",
                "RESTIC_PASSWORD",
            ),
            (
                "cloudflare_api_token  = \"Xk9mP2vL7qAb3ZrT8wYc_-\"",
                "cloudflare_api_token",
            ),
            ("password = Xk9mP2vL7qAb3ZrT8wYc", "password"),
            ("  token = 'Xk9mP2vL7qAb3ZrT8wYc' # ci", "token"),
            ("      \"password\": \"Xk9mP2vL7qAb3ZrT8wYc\",", "password"),
            (
                "kubectl create secret generic db --from-literal=password=Xk9mP2vL7qAb3ZrT8wYc",
                "password",
            ),
            (
                "helm upgrade app ./chart --set auth.password=Xk9mP2vL7qAb3ZrT8wYc",
                "auth.password",
            ),
            (
                "docker login ghcr.io -u bot --password Xk9mP2vL7qAb3ZrT8wYc",
                "password",
            ),
            ("ENV API_TOKEN=Xk9mP2vL7qAb3ZrT8wYc", "API_TOKEN"),
            (
                "REGISTRY_PASSWORD ?= Xk9mP2vL7qAb3ZrT8wYc",
                "REGISTRY_PASSWORD",
            ),
            (
                "vault login --method=userpass --password='Xk9mP2vL7qAb3ZrT8wYc'",
                "password",
            ),
        ] {
            assert_eq!(find_assignment(line).map(|(k, _)| k), Some(key), "{line}");
        }
        for line in [
            "export RESTIC_PASSWORD=\"$(pass show restic)\"",
            "export GITHUB_TOKEN=${GITHUB_TOKEN:?set it}",
            "PASSWORD_FILE=/run/secrets/password",
            "POSTGRES_PASSWORD=changeme",
            "token = var.token",
            "RESTIC_PASSWORD=",
            "docker login -u bot --password-stdin < token.txt",
            "helm upgrade app --set auth.existingSecret=app-credentials-v2",
            "argocd login --password \"$PASSWORD\"",
            "\"password\": null,",
        ] {
            assert_eq!(find_assignment(line), None, "{line}");
        }
        assert!(judges_assignments("scripts/backup.sh"));
        assert!(judges_assignments("terraform/terraform.tfvars"));
        assert!(judges_assignments(".env.sample"));
        assert!(!judges_assignments("docs/README.md"));
        assert!(!judges_assignments("apps/values.yaml"));
    }

    #[test]
    fn hex_digests_pass_under_keys_that_name_a_digest_only() {
        let sha256 = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
        let sha1 = "a94a8fe5ccb19ba61c4c0873d391e987982fbbd3";
        for (key, value) in [
            ("CONFIG_TOKEN_SHA256", sha256),
            ("secret_sha1", sha1),
            ("PASSWORD_SHA256SUM", sha256),
            ("tokenChecksum", sha256),
            ("api_key_hash", sha256),
            ("token_digest", &format!("sha256:{sha256}")),
        ] {
            assert!(!holds_credential(key, value), "{key}");
        }
        // A hex value under a key that names no digest is a credential; a key that names a
        // digest holding something else is judged as before.
        assert!(holds_credential("api_token", sha256));
        assert!(holds_credential("GITHUB_TOKEN", sha1));
        assert!(holds_credential("CONFIG_TOKEN_SHA256", "Tr0ub4dor&3xyz-Q9"));
    }

    #[test]
    fn lines_with_a_lone_credential_flag_pass_the_prefilter() {
        for line in [
            "        args: [\"--s3-secret-key=Xk9mP2vL7qAb3ZrT8wYc\"]",
            "        args: [\"--api-token\", \"Xk9mP2vL7qAb3ZrT8wYc\"]",
            "        - --password",
            "        - -client-secret",
            "        - \"-client-secret\"",
        ] {
            let text = format!("spec:\n  containers:\n  - name: app\n    args:\n{line}\n        - Xk9mP2vL7qAb3ZrT8wYc\n");
            assert!(super::super::prefilter::gate(&text).parse, "{line}");
        }
    }

    #[test]
    fn credential_values() {
        for v in [
            "Tr0ub4dor&3xyz",
            "a8f5f167f44f4964e6c998dee827110c",
            "rabbit-2023-Secure!",
            "3f2a9c1e-7b4d-4e2a-9f1c-0d5e6a7b8c9d",
            "/NH+FFdCmrD37CIGC3SrZSCieuwhIr1sWO24cJYqIcA=",
            "Bearer 7f9c2ba4e88f827d616045507605853e",
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
            "/etc/secrets/password",
            "database/creds/payments",
            "AWS_SECRET_ACCESS_KEY",
            "awsSecretAccessKey",
            "MinioSecretKey",
            "__ADMIN_PASSWORD__",
            "Bearer ${TOKEN}",
            "Bearer <token>",
            "vault:secret/data/orders#DB_PASSWORD",
            "true",
            "postgres.default.svc",
            "xxxxxxxxxxxx",
            "1111111111111",
        ] {
            assert!(!looks_like_credential(v), "{v}");
        }
    }
}
