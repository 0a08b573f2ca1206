//! SOPS `gcp_kms` master keys against drongo's Cloud KMS (the real REST API:
//! `POST /v1/{resource_id}:encrypt|decrypt`), through a recording proxy, with Google's token
//! endpoint played by the loopback stand-in of tests/support/google.rs (it checks the service
//! account's signed JWT). kustodian encrypts, decrypts, renders, follows `.sops.yaml` rules and
//! key groups, and rotates; errors name the key and why.
//!
//! The real sops 3.11 is not used here: it reaches Cloud KMS through Google's Go client
//! (gRPC by default, REST with `SOPS_GCP_KMS_CLIENT_TYPE=rest`) at `cloudkms.googleapis.com`
//! over TLS, with no endpoint setting, so it cannot be pointed at a loopback server. The `enc`
//! format is checked by hand instead: sops stores `base64(ciphertext bytes)`, which is REST's
//! `ciphertext` field as it is.
//!
//! Every value and the token hold `canary`; no stderr may show them.

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
    _tokens: Proxy,
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
            _tokens: tokens,
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
            if k.starts_with("SOPS_") || k.starts_with("GOOGLE_") || k.starts_with("CLOUDSDK_") {
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
    assert!(!err.contains(CANARY) && !err.contains(TOKEN), "{err}");
    out
}

fn fails(c: &mut Command) -> String {
    let out = c.output().unwrap();
    assert!(!out.status.success(), "{c:?} should fail");
    assert!(out.stdout.is_empty(), "a failure printed on stdout");
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!err.contains(CANARY) && !err.contains(TOKEN), "{err}");
    err
}

fn stdout(out: Output) -> String {
    String::from_utf8(out.stdout).unwrap()
}

/// The `gcp_kms` entries of a file, in order: (resource_id, created_at, enc).
fn gcp_entries(text: &str) -> Vec<(String, String, String)> {
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
            let id = field(l, "resource_id")?;
            let created = field(lines.get(i + 1)?, "created_at")?;
            let enc = field(lines.get(i + 2)?, "enc")?;
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
    assert_eq!(ids, [c.clone()], "{text}");

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
