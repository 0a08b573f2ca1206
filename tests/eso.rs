//! End-to-end tests of the External Secrets Operator modes of `kustodian render` against a real
//! OpenBao dev server:
//!
//! - `--emit external-secrets` writes objects that validate against ESO's own CRDs
//!   (tests/fixtures/interop/crds/external-secrets, through Python's `jsonschema`);
//! - the round trip: rendering references directly == rendering the emitted ExternalSecrets
//!   offline with `--resolve external-secrets` (KV v1 and v2, pinned versions, templates);
//! - a store object that names another server is refused before any request is sent;
//! - no value reaches stderr or the emitted objects.

#[path = "support/bao.rs"]
mod bao;
mod common;

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use bao::{count, Bao, ROOT_TOKEN};
use base64::Engine as _;
use serde_json::{json, Value};

fn fixtures() -> PathBuf {
    common::repo_root().join("tests/fixtures/eso")
}

/// OpenBao with the round-trip data: `kv` (v2, two versions of `db`) and `kv1` (v1).
fn seeded() -> Bao {
    let bao = Bao::start();
    bao.enable_kv("kv", 2);
    bao.enable_kv("kv1", 1);
    let pem = "-----BEGIN CERTIFICATE-----\ncanary-pem-line\n-----END CERTIFICATE-----";
    bao.put_kv2(
        "kv",
        "db",
        json!({"username": "canary-user", "password": "canary-pw-one"}),
    );
    bao.put_kv2(
        "kv",
        "db",
        json!({
            "username": "canary-user",
            "password": "canary-pw-two",
            "config": {"host": "canary-host.internal"},
            "pem": pem,
            "api": {"token": "canary-api-token"},
        }),
    );
    bao.put_kv1("kv1", "legacy", json!({"token": "canary-legacy-token"}));
    bao
}

/// kustodian against `bao` with the root token, in `dir`, with nothing of the caller's
/// environment that could pick another store.
fn kustodian(bao: &Bao, dir: &Path) -> Command {
    let mut cmd = common::kustodian(dir);
    for (k, _) in std::env::vars() {
        if ["VAULT_", "BAO_", "AVP_", "KUSTODIAN_", "ARGOCD_ENV_"]
            .iter()
            .any(|p| k.starts_with(p))
        {
            cmd.env_remove(k);
        }
    }
    cmd.env("VAULT_ADDR", &bao.addr)
        .env("VAULT_TOKEN", ROOT_TOKEN)
        .env("AVP_TYPE", "vault")
        .env("HOME", bao.path())
        .env("XDG_CACHE_HOME", bao.path().join("cache"))
        .env(
            "SOPS_AGE_KEY_FILE",
            common::repo_root().join("tests/fixtures/render/store/keys.txt"),
        );
    cmd
}

/// Checks that neither stream holds a value of the store.
fn no_canary(bao: &Bao, what: &str, out: &Output) {
    let mut canaries = bao.canaries();
    canaries.push(ROOT_TOKEN.to_string());
    let canaries: Vec<&str> = canaries.iter().map(String::as_str).collect();
    common::assert_no_canary_in(
        &format!("{what}: stderr"),
        &common::text(&out.stderr),
        &canaries,
    );
}

#[track_caller]
fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed:\n{}",
        common::text(&out.stderr)
    );
    common::text(&out.stdout)
}

/// The stderr of a run that must have failed with nothing on stdout.
#[track_caller]
fn failed(out: &Output) -> String {
    let err = common::text(&out.stderr);
    assert!(!out.status.success() && out.stdout.is_empty(), "{err}");
    err
}

/// `kustodian render FILE --emit EMIT --secret-store vault` in `dir`.
fn emit(bao: &Bao, dir: &Path, file: &str, emit: &str) -> Output {
    kustodian(bao, dir)
        .args(["render", file, "--emit", emit, "--secret-store", "vault"])
        .output()
        .unwrap()
}

/// `kustodian render - --resolve external-secrets` of `input`, in `dir`.
fn resolve(bao: &Bao, dir: &Path, input: String) -> Output {
    kustodian(bao, dir)
        .args(["render", "-", "--resolve", "external-secrets"])
        .write_stdin(input)
        .output()
        .unwrap()
}

/// Checks that no request since `mark` read a KV path.
fn no_kv_reads(bao: &Bao, mark: usize) {
    assert!(bao
        .audit_since(mark)
        .iter()
        .all(|a| !a.path.starts_with("kv")));
}

/// OpenBao with `kv/shop`, and `resolve-features/NAME` pointed at it.
fn shop(name: &str) -> (Bao, PathBuf, String) {
    let bao = Bao::start();
    bao.enable_kv("kv", 2);
    bao.put_kv2(
        "kv",
        "shop",
        json!({"user": "canary-shop-user", "encoded": "Y2FuYXJ5LWRlY29kZWQ="}),
    );
    let dir = fixtures().join("resolve-features");
    let input = std::fs::read_to_string(dir.join(name))
        .unwrap()
        .replace("SERVER", &bao.addr);
    (bao, dir, input)
}

/// Validates every ESO object of `yaml` against the CRDs; returns how many were checked.
fn validate_against_crds(yaml: &str) -> String {
    let script = common::repo_root().join("tests/support/eso_schema.py");
    // python3 on PATH: tests/run puts the venv of tests/setup-tools.sh (with jsonschema) first.
    let out = Command::new("python3")
        .arg(&script)
        .write_stdin(yaml)
        .output()
        .expect("python3 runs");
    let text = common::text(&out.stdout);
    assert!(
        out.status.success(),
        "CRD validation failed:\n{text}\n{yaml}"
    );
    text
}

/// The Secrets of a YAML stream, as ESO would leave them in the cluster: name -> (type, labels,
/// annotations without kustodian's and avp's, data ∪ stringData as text).
fn secrets(yaml: &str) -> BTreeMap<String, Value> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut out = BTreeMap::new();
    for d in kustodian_manifest::parse_stream(yaml).unwrap() {
        let v = d.root.to_json();
        if v["kind"] != "Secret" {
            continue;
        }
        let mut data = BTreeMap::new();
        for (k, x) in v["data"].as_object().into_iter().flatten() {
            let bytes = b64.decode(x.as_str().unwrap()).unwrap();
            data.insert(k.clone(), String::from_utf8(bytes).unwrap());
        }
        for (k, x) in v["stringData"].as_object().into_iter().flatten() {
            data.insert(k.clone(), x.as_str().unwrap().to_string());
        }
        let annotations: BTreeMap<String, Value> = v["metadata"]["annotations"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| {
                !k.starts_with("kustodian.io/") && !k.starts_with("avp.kubernetes.io/")
            })
            .map(|(k, x)| (k.clone(), x.clone()))
            .collect();
        let name = format!(
            "{}/{}",
            v["metadata"]["namespace"].as_str().unwrap_or(""),
            v["metadata"]["name"].as_str().unwrap()
        );
        out.insert(
            name,
            json!({
                "type": v["type"].as_str().unwrap_or("Opaque"),
                "labels": v["metadata"]["labels"],
                "annotations": annotations,
                "data": data,
            }),
        );
    }
    out
}

fn stores_for(bao: &Bao, server: &str) -> String {
    let _ = bao;
    std::fs::read_to_string(fixtures().join("round-trip/stores.yaml"))
        .unwrap()
        .replace("SERVER", server)
}

#[test]
fn emitted_external_secrets_render_back_to_the_same_secrets() {
    let bao = seeded();
    let dir = fixtures().join("round-trip");

    let direct = kustodian(&bao, &dir)
        .args(["render", "secrets.yaml"])
        .output()
        .unwrap();
    no_canary(&bao, "direct render", &direct);
    let direct = ok(&direct);

    let mark = bao.mark();
    let emitted = emit(&bao, &dir, "secrets.yaml", "external-secrets");
    no_canary(&bao, "emit", &emitted);
    let emitted = ok(&emitted);
    // Emitting reads nothing from the store and prints no value.
    no_kv_reads(&bao, mark);
    let mut canaries = bao.canaries();
    canaries.push("Y2FuYXJ5".into());
    let canaries: Vec<&str> = canaries.iter().map(String::as_str).collect();
    common::assert_no_canary_in("emitted objects", &emitted, &canaries);
    assert!(emitted.contains("kind: ExternalSecret") && emitted.contains("kind: ConfigMap"));
    assert!(!emitted.contains("kind: Secret\n"), "{emitted}");

    let stores = stores_for(&bao, &bao.addr);
    let checked = validate_against_crds(&format!("{emitted}---\n{stores}"));
    assert!(checked.contains("4 objects valid"), "{checked}");

    let mark = bao.mark();
    let offline = resolve(&bao, &dir, format!("{emitted}---\n{stores}"));
    no_canary(&bao, "resolve", &offline);
    let offline = ok(&offline);
    assert!(!offline.contains("ExternalSecret") && !offline.contains("SecretStore"));
    assert_eq!(
        secrets(&offline),
        secrets(&direct),
        "offline:\n{offline}\ndirect:\n{direct}"
    );
    assert_eq!(secrets(&direct).len(), 2);
    // One read per distinct path and version.
    let seen = bao.audit_since(mark);
    assert_eq!(count(&seen, "kv/data/db"), 2, "{seen:?}"); // latest and version 1
    assert_eq!(count(&seen, "kv1/legacy"), 1, "{seen:?}");
}

#[test]
fn a_store_object_naming_another_server_is_refused_before_any_request() {
    let bao = seeded();
    let dir = fixtures().join("round-trip");
    let emitted = ok(&emit(&bao, &dir, "secrets.yaml", "external-secrets"));
    let elsewhere = TcpListener::bind("127.0.0.1:0").unwrap();
    elsewhere.set_nonblocking(true).unwrap();
    let server = format!("http://{}", elsewhere.local_addr().unwrap());
    let mark = bao.mark();
    let out = resolve(
        &bao,
        &dir,
        format!("{emitted}---\n{}", stores_for(&bao, &server)),
    );
    no_canary(&bao, "refused store", &out);
    let err = failed(&out);
    assert!(
        err.contains("SecretStore/vault (namespace app)") && err.contains("VAULT_ADDR"),
        "{err}"
    );
    assert!(
        elsewhere.accept().is_err(),
        "kustodian connected to the manifest's server"
    );
    no_kv_reads(&bao, mark);
}

#[test]
fn emit_refuses_references_outside_secrets_and_values_eso_cannot_express() {
    let bao = Bao::start();
    let dir = fixtures().join("errors");
    for (file, wants) in [
        (
            "configmap-with-reference.yaml",
            &[
                "ConfigMap/settings",
                "<path:kv/data/db#password>",
                "Argo CD's cache",
            ][..],
        ),
        (
            "unexpressible-modifier.yaml",
            &["Secret/parsed", "jsonParse", "no form in ESO"][..],
        ),
        (
            "mixed-stores.yaml",
            &["Secret/mixed", "split it into two Secrets"][..],
        ),
    ] {
        let out = emit(&bao, &dir, file, "external-secrets");
        let err = common::text(&out.stderr);
        assert!(
            !out.status.success() && out.stdout.is_empty(),
            "{file}: {err}"
        );
        for w in wants {
            assert!(err.contains(w), "{file}: stderr lacks {w:?}:\n{err}");
        }
    }
}

#[test]
fn sops_references_are_resolved_at_render_time_unless_strict() {
    let bao = Bao::start();
    let dir = fixtures().join("sops-only");
    let text = ok(&emit(&bao, &dir, "secret.yaml", "external-secrets"));
    assert!(
        text.contains("kind: Secret") && text.contains("username: admin"),
        "{text}"
    );
    let err = failed(&emit(&bao, &dir, "secret.yaml", "external-secrets,strict"));
    assert!(
        err.contains("Secret/from-sops") && err.contains("strict"),
        "{err}"
    );
    assert!(!err.contains("admin"), "{err}");
}

#[test]
fn emit_without_a_store_name_says_how_to_give_one() {
    let bao = Bao::start();
    let out = kustodian(&bao, &fixtures().join("round-trip"))
        .args(["render", "secrets.yaml", "--emit", "external-secrets"])
        .output()
        .unwrap();
    let err = failed(&out);
    assert!(
        err.contains("--secret-store") && err.contains("Secret/db"),
        "{err}"
    );
}

#[test]
fn the_argo_cd_plugin_and_the_krm_function_emit_from_their_settings() {
    // No server at all: emitting reads nothing.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    closed.set_nonblocking(true).unwrap();
    let addr = format!("http://{}", closed.local_addr().unwrap());
    let dir = fixtures().join("round-trip");
    let run = |vars: &[(&str, &str)]| {
        let mut cmd = common::kustodian(&dir);
        cmd.env("VAULT_ADDR", &addr)
            .env("VAULT_TOKEN", "canary-unused-token")
            .env("AVP_TYPE", "vault")
            .env_remove("KUSTODIAN_EMIT")
            .env_remove("KUSTODIAN_ESO_STORE");
        for (k, v) in vars {
            cmd.env(k, v);
        }
        cmd.args(["render", "secrets.yaml"]).output().unwrap()
    };
    // The CMP runs `kustodian render .`; an Application sets ARGOCD_ENV_ twins.
    let out = run(&[
        ("ARGOCD_ENV_KUSTODIAN_EMIT", "external-secrets"),
        ("ARGOCD_ENV_KUSTODIAN_ESO_STORE", "vault"),
    ]);
    let text = ok(&out);
    assert!(
        text.contains("kind: ExternalSecret") && !text.contains("kind: Secret\n"),
        "{text}"
    );
    // An operator's setting wins: an Application cannot turn emitting off.
    let out = run(&[
        ("KUSTODIAN_EMIT", "external-secrets"),
        ("KUSTODIAN_ESO_STORE", "vault"),
        ("ARGOCD_ENV_KUSTODIAN_EMIT", "off"),
    ]);
    assert!(ok(&out).contains("kind: ExternalSecret"));
    assert!(closed.accept().is_err(), "emitting contacted the store");

    let krm = fixtures().join("krm-resolver-emits");
    let out = common::kustodian(&krm)
        .env("AVP_TYPE", "vault")
        .env("VAULT_ADDR", &addr)
        .env_remove("KUSTODIAN_EMIT")
        .arg("krm")
        .write_stdin(std::fs::read(krm.join("resource-list.yaml")).unwrap())
        .output()
        .unwrap();
    let text = ok(&out);
    assert!(
        text.contains("kind: ExternalSecret") && text.contains("property: password"),
        "{text}"
    );
}

#[test]
fn the_example_eso_overlay_emits_valid_objects_that_render_back_on_openbao() {
    let overlay = "examples/apps/guestbook/overlays/eso";
    let bao = Bao::start();
    bao.enable_kv("kv", 2);
    bao.put_kv2(
        "kv",
        "guestbook",
        json!({"database": {"user": "canary-gb-user"}, "db_password": "canary-gb-pw", "api_token": "canary-gb-token"}),
    );
    // Emitting needs no store: no VAULT_ADDR of the test's server either.
    let out = common::kustodian(&common::repo_root())
        .env_remove("VAULT_ADDR")
        .env_remove("KUSTODIAN_EMIT")
        .args([
            "render",
            overlay,
            "--emit",
            "external-secrets",
            "--secret-store",
            "vault",
        ])
        .output()
        .unwrap();
    let emitted = ok(&out);
    let golden = common::repo_root().join("tests/golden/example-eso.yaml");
    if std::env::var_os("KUSTODIAN_BLESS").is_some() {
        std::fs::write(&golden, &emitted).unwrap();
    }
    assert_eq!(
        emitted,
        std::fs::read_to_string(&golden).unwrap(),
        "differs from {golden:?}"
    );
    assert!(validate_against_crds(&emitted).contains("2 objects valid"));

    // The cluster's view, rendered offline against the test's Vault.
    let pointed = emitted.replace("https://vault.vault.svc:8200", &bao.addr);
    let out = resolve(&bao, &common::repo_root(), pointed);
    no_canary(&bao, "example resolve", &out);
    let secrets = secrets(&ok(&out));
    let data = &secrets["guestbook-eso/guestbook-db"]["data"];
    assert_eq!(data["DB_USER"], "canary-gb-user");
    assert_eq!(
        data["DATABASE_URL"],
        "postgres://canary-gb-user:canary-gb-pw@db.guestbook.svc/guestbook"
    );
    assert_eq!(data["API_TOKEN"], "canary-gb-token");
}

#[path = "support/moto.rs"]
mod moto;

#[test]
fn aws_secrets_manager_references_round_trip_through_moto_and_the_region_is_checked() {
    let m = moto::moto();
    let name = "kustodian-eso/billing";
    m.aws(json!([
        ["secretsmanager", "create_secret", {"Name": name, "SecretString": "{\"user\":\"canary-aws-user\",\"password\":\"canary-aws-old\"}"}],
        ["secretsmanager", "put_secret_value", {"SecretId": name, "SecretString": "{\"user\":\"canary-aws-user\",\"password\":\"canary-aws-new\"}"}],
    ]));
    let dir = fixtures().join("aws-round-trip");
    let run = |args: &[&str], stdin: Option<String>| {
        let mut cmd = common::kustodian(&dir);
        for (k, _) in std::env::vars() {
            if ["AWS_", "VAULT_", "AVP_", "KUSTODIAN_", "ARGOCD_ENV_"]
                .iter()
                .any(|p| k.starts_with(p))
            {
                cmd.env_remove(k);
            }
        }
        cmd.env("AWS_REGION", "us-east-1")
            .env("AWS_ENDPOINT_URL", &m.url)
            .env("AWS_ACCESS_KEY_ID", "AKIDKUSTODIANTEST")
            .env("AWS_SECRET_ACCESS_KEY", "canary-aws-secret-key")
            .env("AVP_TYPE", "awssecretsmanager")
            .args(args);
        if let Some(s) = stdin {
            cmd.write_stdin(s);
        }
        let out = cmd.output().unwrap();
        common::assert_no_canary_in(
            &format!("{args:?}"),
            &common::text(&out.stderr),
            &["canary"],
        );
        out
    };
    let direct = ok(&run(&["render", "secret.yaml"], None));
    let emitted = ok(&run(
        &[
            "render",
            "secret.yaml",
            "--emit",
            "external-secrets",
            "--secret-store",
            "aws",
        ],
        None,
    ));
    common::assert_no_canary_in("emitted", &emitted, &["canary"]);
    assert!(emitted.contains("version: AWSPREVIOUS"), "{emitted}");
    let store = std::fs::read_to_string(dir.join("store.yaml")).unwrap();
    validate_against_crds(&format!(
        "{emitted}---\n{}",
        store.replace("REGION", "us-east-1")
    ));
    let offline = ok(&run(
        &["render", "-", "--resolve", "external-secrets"],
        Some(format!(
            "{emitted}---\n{}",
            store.replace("REGION", "us-east-1")
        )),
    ));
    assert_eq!(
        secrets(&offline),
        secrets(&direct),
        "offline:\n{offline}\ndirect:\n{direct}"
    );
    assert_eq!(
        secrets(&direct)["shop/billing"]["data"]["previous"],
        "canary-aws-old"
    );

    // A store object in another region is refused, naming it.
    let err = failed(&run(
        &["render", "-", "--resolve", "external-secrets"],
        Some(format!(
            "{emitted}---\n{}",
            store.replace("REGION", "eu-west-1")
        )),
    ));
    assert!(
        err.contains("SecretStore/aws (namespace shop)") && err.contains("AWS_REGION"),
        "{err}"
    );
}

#[test]
fn hand_written_external_secrets_render_offline_with_data_from_templates_and_policies() {
    let (bao, dir, input) = shop("external-secrets.yaml");
    validate_against_crds(&input);
    let out = resolve(&bao, &dir, input);
    no_canary(&bao, "resolve", &out);
    let secrets = secrets(&ok(&out));
    assert_eq!(
        secrets.len(),
        1,
        "creationPolicy None makes no Secret: {secrets:?}"
    );
    let s = &secrets["shop/shop-config"];
    assert_eq!(s["type"], "kubernetes.io/tls");
    assert_eq!(s["labels"], json!({"app": "shop"}));
    assert_eq!(
        s["data"],
        json!({
            "user": "canary-shop-user",
            "encoded": "Y2FuYXJ5LWRlY29kZWQ=",
            "decoded": "canary-decoded",
            "greeting": "hello CANARY-SHOP-USER",
        })
    );
}

#[test]
fn an_unknown_template_function_fails_naming_it_and_no_value() {
    let (bao, dir, input) = shop("external-secrets.yaml");
    let out = resolve(&bao, &dir, input.replace("| upper", "| pkcs12key"));
    no_canary(&bao, "unknown function", &out);
    let err = failed(&out);
    assert!(
        err.contains("ExternalSecret/everything") && err.contains("pkcs12key"),
        "{err}"
    );
}

#[test]
fn data_from_find_lists_vault_and_reads_each_match_once() {
    let bao = Bao::start();
    bao.enable_kv("kv", 2);
    bao.put_kv2("kv", "team/db", json!({"password": "canary-find-db"}));
    bao.put_kv2("kv", "team/apps/web", json!({"token": "canary-find-web"}));
    bao.put_kv2("kv", "team/unmatched", json!({"x": "canary-find-other"}));
    let dir = fixtures().join("resolve-features");
    let input = std::fs::read_to_string(dir.join("find.yaml"))
        .unwrap()
        .replace("SERVER", &bao.addr);
    validate_against_crds(&input);
    let mark = bao.mark();
    let out = resolve(&bao, &dir, input);
    no_canary(&bao, "find", &out);
    let secrets = secrets(&ok(&out));
    assert_eq!(
        secrets["shop/team"]["data"],
        json!({
            "team_apps_web": "{\"token\":\"canary-find-web\"}",
            "team_db": "{\"password\":\"canary-find-db\"}",
        })
    );
    let seen = bao.audit_since(mark);
    assert_eq!(count(&seen, "kv/data/team/unmatched"), 0, "{seen:?}");
    assert_eq!(count(&seen, "kv/data/team/db"), 1, "{seen:?}");
}
