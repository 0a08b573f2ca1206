//! End-to-end tests of `kustodian check` against a real OpenBao dev server: present references
//! pass; a missing path, key or version and a refused read are reported with file:line and the
//! object in every scanner format, for placeholders, vals URIs, ExternalSecrets, Vault agent
//! annotations, SecretProviderClass objects and VaultStaticSecrets; one request per distinct path (from the audit log); no value
//! in any output. `--offline` checks grammar and store objects without a request.

#[path = "support/bao.rs"]
mod bao;
mod common;

use std::path::Path;
use std::process::Output;

use assert_cmd::Command;
use bao::{count, Bao};
use serde_json::{json, Value};

/// A git repository holding the fixture tree, with the store objects pointed at `server`.
fn tree(fixture: &str, server: &str) -> tempfile::TempDir {
    let dir = common::new_repo();
    let from = common::repo_root()
        .join("tests/fixtures/check")
        .join(fixture);
    for e in std::fs::read_dir(&from).unwrap() {
        let e = e.unwrap();
        let text = std::fs::read_to_string(e.path())
            .unwrap()
            .replace("SERVER", server);
        common::write(
            dir.path(),
            &format!("manifests/{}", e.file_name().to_string_lossy()),
            &text,
        );
    }
    dir
}

fn seeded() -> (Bao, String) {
    let bao = Bao::start();
    bao.enable_kv("kv", 2);
    bao.put_kv2("kv", "app", json!({"password": "canary-check-one"}));
    bao.put_kv2("kv", "app", json!({"password": "canary-check-two"}));
    bao.put_kv2("kv", "private", json!({"password": "canary-check-private"}));
    bao.policy(
        "reader",
        "path \"kv/data/app\" { capabilities = [\"read\"] }\npath \"kv/data/gone\" { capabilities = [\"read\"] }\n",
    );
    let token = bao.token(&["reader"], "1h");
    (bao, token)
}

fn kustodian(dir: &Path, addr: &str, token: &str) -> Command {
    let mut cmd = common::kustodian(dir);
    for (k, _) in std::env::vars() {
        if ["VAULT_", "BAO_", "AVP_", "KUSTODIAN_", "ARGOCD_ENV_"]
            .iter()
            .any(|p| k.starts_with(p))
        {
            cmd.env_remove(k);
        }
    }
    cmd.env("VAULT_ADDR", addr)
        .env("VAULT_TOKEN", token)
        .env("AVP_TYPE", "vault")
        .env("HOME", dir)
        .env("XDG_CACHE_HOME", dir.join(".cache"));
    cmd
}

fn no_canary(bao: &Bao, token: &str, what: &str, out: &Output) {
    let mut c = bao.canaries();
    c.push(token.to_string());
    c.push(bao::ROOT_TOKEN.to_string());
    let c: Vec<&str> = c.iter().map(String::as_str).collect();
    common::assert_no_canary_in(what, &common::output_text(out), &c);
}

#[test]
fn check_reports_missing_paths_keys_versions_and_refusals_with_one_request_per_path() {
    let (bao, token) = seeded();
    let dir = tree("tree", &bao.addr);
    let mark = bao.mark();
    let out = kustodian(dir.path(), &bao.addr, &token)
        .args(["check", "--format", "json"])
        .output()
        .unwrap();
    no_canary(&bao, &token, "json", &out);
    assert_eq!(out.status.code(), Some(1), "{}", common::output_text(&out));
    let findings = common::findings(&out);
    let got: Vec<(String, u64, String, String)> = findings
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().to_string(),
                f["line"].as_u64().unwrap(),
                f["rule"].as_str().unwrap().to_string(),
                f["key"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want = [
        (
            "manifests/app.yaml",
            11,
            "reference-key-missing",
            "stringData.missing-key",
        ),
        (
            "manifests/app.yaml",
            12,
            "reference-path-missing",
            "stringData.missing-path",
        ),
        (
            "manifests/app.yaml",
            13,
            "reference-version-missing",
            "stringData.missing-version",
        ),
        (
            "manifests/app.yaml",
            14,
            "reference-denied",
            "stringData.denied",
        ),
        (
            "manifests/external-secret.yaml",
            35,
            "reference-key-missing",
            "spec.data[1].remoteRef",
        ),
        (
            "manifests/operators.yaml",
            14,
            "reference-path-missing",
            "spec.template.metadata.annotations.vault.hashicorp.com/agent-inject-secret-gone",
        ),
        (
            "manifests/operators.yaml",
            31,
            "reference-key-missing",
            "spec.parameters.objects[1]",
        ),
        (
            "manifests/operators.yaml",
            46,
            "reference-path-missing",
            "spec.path",
        ),
    ];
    let want: Vec<(String, u64, String, String)> = want
        .iter()
        .map(|(p, l, r, k)| (p.to_string(), *l, r.to_string(), k.to_string()))
        .collect();
    assert_eq!(got, want, "{findings:#?}");
    assert!(findings
        .iter()
        .all(|f| f["name"] == "app" && f["namespace"] == "shop"));
    // One read per distinct path and version: kv/data/app latest and version 9, the others once.
    let seen = bao.audit_since(mark);
    assert_eq!(count(&seen, "kv/data/app"), 2, "{seen:?}");
    assert_eq!(count(&seen, "kv/data/gone"), 1, "{seen:?}");
    assert_eq!(count(&seen, "kv/data/private"), 1, "{seen:?}");

    for (format, expect) in [
        ("human", "reference-denied"),
        ("sarif", "\"ruleId\": \"reference-version-missing\""),
        ("github", "::error file=manifests/app.yaml,line=12"),
    ] {
        let out = kustodian(dir.path(), &bao.addr, &token)
            .args(["check", "--format", format])
            .output()
            .unwrap();
        no_canary(&bao, &token, format, &out);
        assert_eq!(out.status.code(), Some(1), "{format}");
        let text = common::text(&out.stdout);
        assert!(text.contains(expect), "{format}: lacks {expect:?}:\n{text}");
    }
    let sarif: Value = serde_json::from_slice(
        &kustodian(dir.path(), &bao.addr, &token)
            .args(["check", "--format", "sarif"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert_eq!(sarif["runs"][0]["results"].as_array().unwrap().len(), 8);
}

#[test]
fn check_passes_when_every_reference_resolves() {
    let (bao, token) = seeded();
    let dir = tree("tree", &bao.addr);
    // Keep only what resolves.
    let app = dir.path().join("manifests/app.yaml");
    let text: String = std::fs::read_to_string(&app)
        .unwrap()
        .lines()
        .filter(|l| !l.contains("missing") && !l.contains("denied"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&app, text).unwrap();
    std::fs::remove_file(dir.path().join("manifests/external-secret.yaml")).unwrap();
    std::fs::remove_file(dir.path().join("manifests/operators.yaml")).unwrap();
    let out = kustodian(dir.path(), &bao.addr, &token)
        .arg("check")
        .output()
        .unwrap();
    no_canary(&bao, &token, "clean", &out);
    assert!(out.status.success(), "{}", common::output_text(&out));
}

#[test]
fn offline_check_reports_grammar_and_store_objects_without_a_request() {
    let dir = tree("offline", "unused");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    closed.set_nonblocking(true).unwrap();
    let addr = format!("http://{}", closed.local_addr().unwrap());
    let out = kustodian(dir.path(), &addr, "canary-offline-token")
        .args(["check", "--offline", "--format", "json"])
        .output()
        .unwrap();
    common::assert_no_canary_in(
        "offline",
        &common::output_text(&out),
        &["canary-offline-token"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", common::output_text(&out));
    let rules: Vec<String> = common::findings(&out)
        .iter()
        .map(|f| f["rule"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        rules,
        ["reference-invalid", "reference-store-object"],
        "{}",
        common::output_text(&out)
    );
    assert!(
        closed.accept().is_err(),
        "an offline check connected to a store"
    );
    assert!(common::text(&out.stderr).contains("0 store request(s) (offline)"));
}

#[test]
fn a_store_that_cannot_be_used_is_an_error_not_a_finding() {
    let dir = tree("tree", "unused");
    // Offline: the configuration alone is wrong (no scheme in VAULT_ADDR).
    let out = kustodian(dir.path(), "vault.example:8200", "canary-bad-config-token")
        .args(["check", "--offline"])
        .output()
        .unwrap();
    let all = common::output_text(&out);
    common::assert_no_canary_in("bad config", &all, &["canary-bad-config-token"]);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(
        all.contains("VAULT_ADDR") && all.contains("vault store cannot be used"),
        "{all}"
    );
    // Online: nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let out = kustodian(dir.path(), &addr, "canary-bad-config-token")
        .env("VAULT_MAX_RETRIES", "0")
        .arg("check")
        .output()
        .unwrap();
    let all = common::output_text(&out);
    common::assert_no_canary_in("unreachable", &all, &["canary-bad-config-token"]);
    assert_eq!(out.status.code(), Some(2), "{all}");
}
