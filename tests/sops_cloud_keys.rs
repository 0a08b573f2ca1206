//! SOPS master keys in the clouds:
//!
//! - `gcp_kms` against drongo's Cloud KMS (the real REST API:
//!   `POST /v1/{resource_id}:encrypt|decrypt`), through a recording proxy, with Google's token
//!   endpoint played by the loopback stand-in of tests/support/google.rs (it checks the service
//!   account's signed JWT);
//! - `azure_kv` against the Key Vault stand-in of tests/support/azure.rs over TLS (real
//!   RSA-OAEP-256 by openssl), with its Entra ID token endpoint.
//!
//! kustodian encrypts, decrypts, renders, follows `.sops.yaml` rules and key groups, and
//! rotates; errors name the key and why.
//!
//! The real sops 3.11 is not used here: it reaches Cloud KMS through Google's Go client
//! (gRPC by default, REST with `SOPS_GCP_KMS_CLIENT_TYPE=rest`) at `cloudkms.googleapis.com`, and
//! Key Vault at the file's vault URL, over TLS with no endpoint setting, so it cannot be
//! pointed at a loopback server. The `enc` formats are checked by hand instead: sops stores
//! `base64(ciphertext bytes)` for GCP (REST's `ciphertext` field as it is) and unpadded
//! base64url for Azure (Key Vault's `value` as it is).
//!
//! Every value and token holds `canary`; no stderr may show them.

#[path = "support/azure.rs"]
mod azure;
#[path = "support/google.rs"]
mod google;
#[path = "support/moto.rs"]
mod moto;

use std::path::PathBuf;
use std::process::{Command, Output};

use base64::Engine as _;
use google::{drongo, http, json_response, rsa_key, service_account_json, token_server, Google};
use moto::{Proxy, Rule};
use serde_json::{json, Value};

const CANARY: &str = "canary-sops-gcp-kms-41c9";
const TOKEN: &str = "canary-gcp-kms-token";
const EMAIL: &str = "sops@proj.iam.gserviceaccount.com";
const AZ_TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const AZ_CLIENT: &str = "0a1b2c3d-1111-2222-3333-444455556666";
const AZ_SECRET: &str = "canary-azure-client-secret";

fn plain() -> String {
    format!("db:\n    password: {CANARY}\n    user: app\n")
}

/// A Cloud KMS key in drongo: `projects/P/locations/global/keyRings/R/cryptoKeys/K`.
fn kms_key(project: &str, ring: &str, key: &str) -> String {
    let d = &drongo().url;
    let loc = format!("projects/{project}/locations/global");
    let (s, b) = http(
        "POST",
        &format!("{d}/v1/{loc}/keyRings?keyRingId={ring}"),
        "{}",
    );
    assert!(s < 300 || s == 409, "create key ring: {s} {b}");
    let (s, b) = http(
        "POST",
        &format!("{d}/v1/{loc}/keyRings/{ring}/cryptoKeys?cryptoKeyId={key}"),
        r#"{"purpose":"ENCRYPT_DECRYPT"}"#,
    );
    assert!(s < 300, "create crypto key: {s} {b}");
    format!("{loc}/keyRings/{ring}/cryptoKeys/{key}")
}

/// A scratch folder whose kustodian has a service-account key for the token stand-in and
/// reaches drongo's Cloud KMS through a recording proxy (`rule` may answer itself).
struct Env {
    dir: tempfile::TempDir,
    vars: Vec<(String, String)>,
    api: Proxy,
    _keep: Option<Proxy>,
}

impl Env {
    fn new(rule: Rule) -> Env {
        let dir = tempfile::Builder::new().prefix("gk").tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        let key = rsa_key(dir.path(), "sa");
        let tokens = token_server(Google {
            service_account: Some((EMAIL.into(), key.public_der.clone())),
            token: TOKEN.into(),
            ..Default::default()
        });
        let file = dir.path().join("sa.json");
        std::fs::write(&file, service_account_json(&key, EMAIL, &tokens.url)).unwrap();
        let api = Proxy::start(Some(&drongo().url), rule);
        let vars = vec![
            (
                "GOOGLE_APPLICATION_CREDENTIALS".into(),
                file.display().to_string(),
            ),
            (
                "CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDKMS".into(),
                format!("{}/", api.url),
            ),
            ("KUSTODIAN_GCP_TOKEN_CACHE".into(), "off".into()),
        ];
        Env {
            dir,
            vars,
            api,
            _keep: Some(tokens),
        }
    }

    /// A scratch folder whose kustodian logs in to the Entra ID stand-in with a client secret
    /// and reaches the Key Vault stand-in (at `KUSTODIAN_AZURE_KEYVAULT_ENDPOINT`), which knows
    /// the key `sops` version `v1`, refuses the key `denied`, and has no other key.
    fn azure() -> Env {
        let dir = tempfile::Builder::new().prefix("ak").tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        let pki = azure::pki(dir.path());
        let stand = azure::start(
            azure::Azure {
                tenant: AZ_TENANT.into(),
                client_id: AZ_CLIENT.into(),
                login: azure::Login::Secret(AZ_SECRET.into()),
                token: TOKEN.into(),
                secrets: Default::default(),
                locked: vec!["denied".into()],
                busy: Vec::new(),
                keys: vec![("sops".into(), "v1".into()), ("denied".into(), "v1".into())],
                rsa_key: Some(pki.key.clone()),
            },
            &pki,
        );
        let vars = [
            ("AZURE_CA_BUNDLE", pki.ca.display().to_string()),
            ("AZURE_AUTHORITY_HOST", stand.url.clone()),
            ("KUSTODIAN_AZURE_KEYVAULT_ENDPOINT", stand.url.clone()),
            ("AZURE_TENANT_ID", AZ_TENANT.into()),
            ("AZURE_CLIENT_ID", AZ_CLIENT.into()),
            ("AZURE_CLIENT_SECRET", AZ_SECRET.into()),
            ("KUSTODIAN_AZURE_TOKEN_CACHE", "off".into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        Env {
            dir,
            vars,
            api: stand.proxy,
            _keep: None,
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    fn kustodian(&self) -> Command {
        let mut c = Command::new(assert_cmd::cargo::cargo_bin("kustodian"));
        c.current_dir(self.dir.path())
            .env("HOME", self.path("home"))
            .env("XDG_CONFIG_HOME", self.path("home"))
            .env("NO_COLOR", "1");
        for (k, _) in std::env::vars() {
            if ["SOPS_", "GOOGLE_", "CLOUDSDK_", "AZURE_", "KUSTODIAN_"]
                .iter()
                .any(|p| k.starts_with(p))
            {
                c.env_remove(k);
            }
        }
        c.envs(self.vars.iter().map(|(k, v)| (k, v)));
        c
    }

    /// Requests to Cloud KMS for `op` (`encrypt`, `decrypt`) on `id`, each checked to carry
    /// the operator's token.
    fn calls(&self, id: &str, op: &str) -> usize {
        let path = format!("/v1/{id}:{op}");
        let seen: Vec<_> = self
            .api
            .seen()
            .into_iter()
            .filter(|s| s.path == path)
            .collect();
        for s in &seen {
            assert_eq!(s.header("authorization"), Some(&*format!("Bearer {TOKEN}")));
        }
        seen.len()
    }
}

fn run(c: &mut Command) -> Output {
    let out = c.output().expect("running kustodian");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{c:?} failed:\n{err}");
    assert!(!leaks(&err), "{err}");
    out
}

fn leaks(text: &str) -> bool {
    [CANARY, TOKEN, AZ_SECRET].iter().any(|c| text.contains(c))
}

fn fails(c: &mut Command) -> String {
    let out = c.output().unwrap();
    assert!(!out.status.success(), "{c:?} should fail");
    assert!(out.stdout.is_empty(), "a failure printed on stdout");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!leaks(&err), "{err}");
    err
}

fn stdout(out: Output) -> String {
    String::from_utf8(out.stdout).unwrap()
}

/// The `gcp_kms` entries of a file, in order: (resource_id, created_at, enc).
fn gcp_entries(text: &str) -> Vec<(String, String, String)> {
    entries(text, "resource_id")
}

/// Entries whose first field is `first`, followed by `created_at` and `enc` (`gcp_kms`), or by
/// `name`, `version`, `created_at` and `enc` (`azure_kv`, joined as `URL/keys/NAME/VERSION`).
fn entries(text: &str, first: &str) -> Vec<(String, String, String)> {
    let field = |line: &str, k: &str| {
        let t = line.trim().trim_start_matches("- ");
        t.strip_prefix(&format!("{k}: "))
            .map(|v| v.trim_matches(['"', '\'']).to_string())
    };
    let lines: Vec<&str> = text.lines().collect();
    lines
        .iter()
        .enumerate()
        .filter_map(|(i, l)| {
            let mut id = field(l, first)?;
            let mut next = i + 1;
            if first == "vault_url" {
                let name = field(lines.get(next)?, "name")?;
                let version = field(lines.get(next + 1)?, "version")?;
                id = format!("{id}/keys/{name}/{version}");
                next += 2;
            }
            let created = field(lines.get(next)?, "created_at")?;
            let enc = field(lines.get(next + 1)?, "enc")?;
            Some((id, created, enc))
        })
        .collect()
}

#[test]
fn gcp_kms_files_round_trip_through_cloud_kms_and_render() {
    let id = kms_key("proj", "ring", "sops");
    let env = Env::new(Box::new(|_, _| None));
    env.write("p.yaml", &plain());
    let text = stdout(run(env.kustodian().args([
        "encrypt",
        "--gcp-kms",
        &id,
        "p.yaml",
    ])));
    assert!(!text.contains(CANARY), "{text}");
    assert_eq!(env.calls(&id, "encrypt"), 1);
    // sops's layout: resource_id, created_at (RFC 3339), enc = base64 of KMS's ciphertext
    // bytes (drongo's ciphertext is itself base64 of a JSON token naming the key).
    let entries = gcp_entries(&text);
    assert_eq!(entries.len(), 1, "{text}");
    let (rid, created, enc) = &entries[0];
    assert_eq!(rid, &id);
    assert!(created.ends_with('Z') && created.len() == 20, "{created}");
    let b64 = base64::engine::general_purpose::STANDARD;
    let raw = b64.decode(enc).expect("enc is base64");
    let token: Value = serde_json::from_slice(&b64.decode(raw).unwrap()).unwrap();
    assert_eq!(token["k"], json!(id));
    env.write("store/app.enc.yaml", &text);

    let out = stdout(run(env.kustodian().args(["decrypt", "store/app.enc.yaml"])));
    assert!(out.contains(CANARY), "{out}");
    assert_eq!(env.calls(&id, "decrypt"), 1);

    run(Command::new("git").arg("init").arg("-q").arg(env.path("")));
    env.write(
        "app/secret.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nstringData:\n  a: <path:../store/app.enc.yaml#db.password>\n  b: ref+sops://../store/app.enc.yaml#/db/password\n",
    );
    let out = stdout(run(env.kustodian().args(["render", "app"])));
    assert_eq!(out.matches(CANARY).count(), 2, "{out}");
    // An Application's plugin env cannot move the endpoint or the credentials.
    let before = env.calls(&id, "decrypt");
    let out = stdout(run(env
        .kustodian()
        .env(
            "ARGOCD_ENV_CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDKMS",
            "http://127.0.0.1:9",
        )
        .env(
            "ARGOCD_ENV_GOOGLE_APPLICATION_CREDENTIALS",
            "/nonexistent/app.json",
        )
        .args(["render", "app"])));
    assert_eq!(out.matches(CANARY).count(), 2, "{out}");
    assert_eq!(env.calls(&id, "decrypt"), before + 1);
}

#[test]
fn gcp_kms_keys_come_from_rules_key_groups_the_variable_and_rotate() {
    let a = kms_key("proj", "rules", "a");
    let b = kms_key("proj", "rules", "b");
    let c = kms_key("proj", "rules", "c");
    let env = Env::new(Box::new(|_, _| None));
    env.write(
        ".sops.yaml",
        &format!(
            "creation_rules:\n  - path_regex: flat/.*\n    gcp_kms: '{a}, {b}'\n  - path_regex: groups/.*\n    shamir_threshold: 2\n    key_groups:\n      - gcp_kms:\n          - resource_id: {a}\n      - gcp_kms:\n          - resource_id: {b}\n      - gcp_kms:\n          - resource_id: {c}\n"
        ),
    );
    env.write("flat/p.yaml", &plain());
    let text = stdout(run(env.kustodian().args(["encrypt", "flat/p.yaml"])));
    let ids: Vec<String> = gcp_entries(&text).into_iter().map(|e| e.0).collect();
    assert_eq!(ids, [a.clone(), b.clone()], "{text}");
    env.write("flat/p.enc.yaml", &text);

    env.write("groups/p.yaml", &plain());
    let text = stdout(run(env.kustodian().args(["encrypt", "groups/p.yaml"])));
    assert!(text.contains("shamir_threshold: 2"), "{text}");
    assert_eq!(gcp_entries(&text).len(), 3, "{text}");
    env.write("groups/p.enc.yaml", &text);
    let out = stdout(run(env.kustodian().args(["decrypt", "groups/p.enc.yaml"])));
    assert!(out.contains(CANARY));

    // SOPS_GCP_KMS_IDS, as sops reads it.
    let text = stdout(run(env
        .kustodian()
        .env("SOPS_GCP_KMS_IDS", &c)
        .args(["encrypt", "flat/p.yaml"])));
    let ids: Vec<String> = gcp_entries(&text).into_iter().map(|e| e.0).collect();
    assert_eq!(ids, [c.as_str()], "{text}");

    // rotate: add c, remove a; the new file opens with c alone.
    let text = stdout(run(env.kustodian().args([
        "rotate",
        "--add-gcp-kms",
        &c,
        "--rm-gcp-kms",
        &a,
        "flat/p.enc.yaml",
    ])));
    let ids: Vec<String> = gcp_entries(&text).into_iter().map(|e| e.0).collect();
    assert_eq!(ids, [b.clone(), c.clone()], "{text}");
    let only_c = text.replace(
        &b,
        "projects/proj/locations/global/keyRings/rules/cryptoKeys/gone",
    );
    env.write("flat/rotated.yaml", &only_c);
    let out = stdout(run(env.kustodian().args(["decrypt", "flat/rotated.yaml"])));
    assert!(out.contains(CANARY));
}

#[test]
fn gcp_kms_errors_name_the_key_and_why() {
    let id = kms_key("proj", "errs", "k");
    let denied = kms_key("proj", "errs", "denied");
    let denied_path = format!("/v1/{denied}:decrypt");
    let env = Env::new(Box::new(move |s, _| {
        (s.path == denied_path).then(|| {
            json_response(
                403,
                &json!({"error": {"code": 403, "status": "PERMISSION_DENIED",
                    "message": "Permission 'cloudkms.cryptoKeyVersions.useToDecrypt' denied"}}),
            )
        })
    }));
    env.write("p.yaml", &plain());
    let list = format!("{id},{denied}");
    let text = stdout(run(env.kustodian().args([
        "encrypt",
        "--gcp-kms",
        &list,
        "p.yaml",
    ])));

    // The first key is gone from KMS, the second refuses: each named with why.
    let missing = "projects/proj/locations/global/keyRings/errs/cryptoKeys/missing";
    env.write("two.yaml", &text.replace(&id, missing));
    let err = fails(env.kustodian().args(["decrypt", "two.yaml"]));
    assert!(
        err.contains(&format!("gcp_kms {missing}")) && err.contains("no key"),
        "{err}"
    );
    assert!(
        err.contains(&format!("gcp_kms {denied}"))
            && err.contains("roles/cloudkms.cryptoKeyEncrypterDecrypter")
            && err.contains(EMAIL),
        "{err}"
    );
    // A resource id that is not a key's: refused before any request.
    let before = env.api.seen().len();
    env.write(
        "bad.yaml",
        &text.replace(&id, "projects/proj/../../v1/other"),
    );
    let err = fails(env.kustodian().args(["decrypt", "bad.yaml"]));
    assert!(err.contains("is not a Cloud KMS key"), "{err}");
    assert_eq!(
        env.api.seen().len(),
        before + 1,
        "only the denied key was asked"
    );
    // The endpoint is the operator's and only over https (or loopback http).
    let err = fails(
        env.kustodian()
            .env(
                "CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDKMS",
                "http://kms.example.test",
            )
            .args(["decrypt", "two.yaml"]),
    );
    assert!(
        err.contains("CLOUDSDK_API_ENDPOINT_OVERRIDES_CLOUDKMS must be an https://"),
        "{err}"
    );
    // Without Google credentials the token cannot be had: said, per key.
    let err = fails(
        env.kustodian()
            .env("GOOGLE_APPLICATION_CREDENTIALS", env.path("none.json"))
            .args(["decrypt", "two.yaml"]),
    );
    assert!(err.contains("none.json"), "{err}");
}

const KV: &str = "https://sopsvault.vault.azure.net";

fn kv_ids(text: &str) -> Vec<String> {
    entries(text, "vault_url")
        .into_iter()
        .map(|e| e.0)
        .collect()
}

#[test]
fn azure_kv_files_round_trip_through_key_vault_and_render() {
    let env = Env::azure();
    let key = format!("{KV}/keys/sops/v1");
    env.write("p.yaml", &plain());
    let text = stdout(run(env.kustodian().args([
        "encrypt",
        "--azure-kv",
        &key,
        "p.yaml",
    ])));
    assert!(!text.contains(CANARY), "{text}");
    let found = entries(&text, "vault_url");
    assert_eq!(found.len(), 1, "{text}");
    assert_eq!(found[0].0, key);
    // sops's enc: unpadded base64url of the 256-byte RSA-OAEP ciphertext.
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&found[0].2)
        .expect("enc is unpadded base64url");
    assert_eq!(raw.len(), 256);
    let seen = env.api.seen();
    let enc_call = seen
        .iter()
        .find(|s| s.path == "/keys/sops/v1/encrypt?api-version=7.4")
        .expect("an encrypt call");
    assert_eq!(enc_call.field("alg").as_deref(), Some("RSA-OAEP-256"));
    env.write("store/app.enc.yaml", &text);
    let out = stdout(run(env.kustodian().args(["decrypt", "store/app.enc.yaml"])));
    assert!(out.contains(CANARY), "{out}");

    run(Command::new("git").arg("init").arg("-q").arg(env.path("")));
    env.write(
        "app/secret.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nstringData:\n  a: <path:../store/app.enc.yaml#db.password>\n",
    );
    let out = stdout(run(env.kustodian().args(["render", "app"])));
    assert_eq!(out.matches(CANARY).count(), 1, "{out}");

    // .sops.yaml rules and key groups, SOPS_AZURE_KEYVAULT_URLS, rotate.
    env.write(
        ".sops.yaml",
        &format!("creation_rules:\n  - path_regex: flat/.*\n    azure_keyvault: {key}\n  - path_regex: groups/.*\n    key_groups:\n      - azure_keyvault:\n          - vaultUrl: {KV}\n            key: sops\n            version: v1\n"),
    );
    for dir in ["flat", "groups"] {
        env.write(&format!("{dir}/p.yaml"), &plain());
        let text = stdout(run(env
            .kustodian()
            .args(["encrypt", &format!("{dir}/p.yaml")])));
        assert_eq!(kv_ids(&text), [key.as_str()], "{text}");
    }
    let by_var = stdout(run(env
        .kustodian()
        .env("SOPS_AZURE_KEYVAULT_URLS", &key)
        .args(["encrypt", "p.yaml"])));
    assert_eq!(kv_ids(&by_var), [key.as_str()]);
    let (fp, recipient) = age_key(&env);
    let rotated = stdout(run(env.kustodian().env("SOPS_AGE_KEY_FILE", &fp).args([
        "rotate",
        "--add-age",
        &recipient,
        "--rm-azure-kv",
        &key,
        "store/app.enc.yaml",
    ])));
    assert!(
        kv_ids(&rotated).is_empty() && rotated.contains(&recipient),
        "{rotated}"
    );
}

/// An age key file written by `kustodian keygen`: (file, recipient).
fn age_key(env: &Env) -> (PathBuf, String) {
    let file = env.path("age.txt");
    let out = run(env.kustodian().args(["keygen", "-o"]).arg(&file));
    let public = String::from_utf8(out.stderr).unwrap();
    let recipient = public
        .trim()
        .strip_prefix("Public key: ")
        .unwrap()
        .to_string();
    (file, recipient)
}

#[test]
fn azure_kv_vault_urls_outside_key_vault_get_no_token_and_errors_name_the_key() {
    let env = Env::azure();
    let good = format!("{KV}/keys/sops/v1");
    let denied = format!("{KV}/keys/denied/v1");
    env.write("p.yaml", &plain());
    let text = stdout(run(env.kustodian().args([
        "encrypt",
        "--azure-kv",
        &format!("{good},{denied}"),
        "p.yaml",
    ])));
    assert_eq!(kv_ids(&text), [good.clone(), denied.clone()]);
    // The first key is gone (404), the second refuses (403): both named with why.
    env.write(
        "two.yaml",
        &text
            .replace("/sops/v1", "/gone/v1")
            .replace("name: sops", "name: gone"),
    );
    let err = fails(env.kustodian().args(["decrypt", "two.yaml"]));
    assert!(
        err.contains(&format!("azure_kv {KV}/keys/gone/v1")) && err.contains("no key gone"),
        "{err}"
    );
    assert!(
        err.contains(&format!("azure_kv {denied}")) && err.contains("Key Vault Crypto User"),
        "{err}"
    );
    // A vault URL outside Key Vault: refused before any request, naming the file.
    let before = env.api.seen().len();
    let evil = text.replace(KV, "https://attacker.example.com");
    env.write("evil.yaml", &evil);
    let err = fails(env.kustodian().args(["decrypt", "evil.yaml"]));
    assert!(
        err.contains("evil.yaml names the Key Vault https://attacker.example.com")
            && err.contains("not a Key Vault host"),
        "{err}"
    );
    assert_eq!(
        env.api.seen().len(),
        before,
        "no request for a foreign vault"
    );
    let err = fails(env.kustodian().args([
        "encrypt",
        "--azure-kv",
        "https://x.vault.azure.net/keys/k",
        "p.yaml",
    ]));
    assert!(
        err.contains("https://VAULT.vault.azure.net/keys/NAME/VERSION"),
        "{err}"
    );
}
