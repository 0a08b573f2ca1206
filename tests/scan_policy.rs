//! Policies for `kustodian scan`: `.kustodian.yaml` discovery, `--policy`, the shipped
//! `policies/default.yaml` and `policies/strict.yaml`, and every knob of the schema. Values in
//! the manifests contain `canary`, which no output may hold.

mod common;

use std::path::Path;
use std::process::Output;

use common::{repo_root, tree};

const SECRETS: &str = "\
apiVersion: v1
kind: Secret
metadata:
  name: db
  namespace: prod
type: Opaque
stringData:
  password: hunter2-canary-value-long
  url: '%DATABASE_URL%'
---
apiVersion: v1
kind: Secret
metadata:
  name: tls
  namespace: dev
type: kubernetes.io/tls
stringData:
  tls.key: acme-internal-canary-0042
";

const CONFIGMAP: &str = "\
apiVersion: v1
kind: ConfigMap
metadata:
  name: app
data:
  github: ghp_canary0123456789abcdefghijklmnopqrstuvwxyz
  id: |
    -----BEGIN OPENSSH PRIVATE KEY-----
    b3BlbnNzaC1rZXktdjEAAAAAcanary
    -----END OPENSSH PRIVATE KEY-----
";

fn scan(dir: &Path, extra: &[&str]) -> Output {
    let out = common::kustodian(dir)
        .arg("scan")
        .args(extra)
        .output()
        .unwrap();
    common::assert_no_canary("scan", &out, &["canary"]);
    out
}

/// `(rule, name, key, severity)` of each finding, and the exit code, with `--only secrets`
/// (the ConfigMap's tokens are `known-credential` findings otherwise; tests/scan_credentials.rs
/// covers those).
fn findings(dir: &Path, extra: &[&str]) -> (Vec<(String, String, String, String)>, i32) {
    let mut args = vec!["--format", "json", "--only", "secrets"];
    args.extend_from_slice(extra);
    let out = scan(dir, &args);
    let code = out.status.code().unwrap();
    assert!(code != 2, "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = |f: &serde_json::Value, k: &str| f[k].as_str().unwrap_or("").to_string();
    let list = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (s(f, "rule"), s(f, "name"), s(f, "key"), s(f, "severity")))
        .collect();
    (list, code)
}

fn with_policy(policy: &str) -> tempfile::TempDir {
    tree(&[
        ("secrets.yaml", SECRETS),
        ("config.yaml", CONFIGMAP),
        (".kustodian.yaml", policy),
    ])
}

fn keys(f: &[(String, String, String, String)]) -> Vec<&str> {
    f.iter().map(|f| f.2.as_str()).collect()
}

#[test]
fn default_policy_file_equals_built_in_behaviour() {
    let bare = tree(&[("secrets.yaml", SECRETS), ("config.yaml", CONFIGMAP)]);
    let built_in = findings(bare.path(), &[]);
    assert_eq!(built_in.0.len(), 3, "{built_in:?}");
    assert_eq!(built_in.1, 1);
    let default = repo_root().join("policies/default.yaml");
    assert_eq!(
        findings(bare.path(), &["--policy", default.to_str().unwrap()]),
        built_in
    );
}

#[test]
fn strict_flags_tokens_and_private_keys_in_a_configmap() {
    let dir = tree(&[("config.yaml", CONFIGMAP)]);
    assert_eq!(findings(dir.path(), &[]).0, vec![]);
    let strict = repo_root().join("policies/strict.yaml");
    let (f, code) = findings(dir.path(), &["--policy", strict.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert_eq!(f.len(), 2, "{f:?}");
    assert!(f
        .iter()
        .all(|f| f.0 == "token-outside-secret" && f.3 == "critical"));
    assert_eq!(keys(&f), ["data.github", "data.id"]);
}

#[test]
fn allow_by_path_namespace_name_type_and_key() {
    let base = findings(with_policy("version: 1\n").path(), &[]).0;
    assert_eq!(keys(&base), ["password", "url", "tls.key"]);
    let cases = [
        ("paths: ['*.yaml']", vec![]),
        ("paths: ['other/**']", vec!["password", "url", "tls.key"]),
        ("namespaces: [dev]", vec!["password", "url"]),
        ("names: [db]", vec!["tls.key"]),
        ("types: [kubernetes.io/tls]", vec!["password", "url"]),
        ("keys: [password, url]", vec!["tls.key"]),
        ("names: [db]\n    keys: [url]", vec!["password", "tls.key"]),
    ];
    for (entry, want) in cases {
        let policy = format!("version: 1\nallow:\n  - {entry}\n    reason: test data\n");
        let (f, _) = findings(with_policy(&policy).path(), &[]);
        assert_eq!(keys(&f), want, "{policy}");
    }
}

#[test]
fn safe_values_let_other_variable_forms_through() {
    // `${VAR}` is a reference everywhere (tests/scan_credentials.rs); `%VAR%` needs the policy.
    let dir = with_policy("version: 1\nsafe_values: ['^%[A-Z_]+%$']\n");
    assert_eq!(keys(&findings(dir.path(), &[]).0), ["password", "tls.key"]);
}

#[test]
fn custom_rule_reports_its_id_severity_and_message() {
    let dir = with_policy(
        "version: 1\ncustom_rules:\n  - id: acme-internal\n    regex: '^acme-internal-'\n    severity: critical\n    message: internal ACME credential\n",
    );
    let out = scan(dir.path(), &["--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let f = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["key"] == "tls.key")
        .unwrap()
        .clone();
    assert_eq!(f["rule"], "acme-internal");
    assert_eq!(f["severity"], "critical");
    let msg = f["message"].as_str().unwrap();
    assert!(msg.contains("internal ACME credential"), "{msg}");

    // SARIF: the result's ruleId has its own entry in tool.driver.rules.
    let out = scan(dir.path(), &["--format", "sarif"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let run = &v["runs"][0];
    let result = run["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["ruleId"] == "acme-internal")
        .expect("a result under the custom rule's id");
    let index = result["ruleIndex"].as_u64().unwrap() as usize;
    assert_eq!(run["tool"]["driver"]["rules"][index]["id"], "acme-internal");

    // Annotations use it as the title.
    let out = scan(dir.path(), &["--format", "github"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("title=acme-internal::"));
}

#[test]
fn custom_rule_ids_are_unique_and_not_built_in_codes() {
    for (policy, what) in [
        (
            "version: 1\ncustom_rules:\n  - {id: plaintext-secret-data, regex: x, severity: low, message: m}\n",
            "built-in rule",
        ),
        (
            "version: 1\ncustom_rules:\n  - {id: a, regex: x, severity: low, message: m}\n  - {id: a, regex: y, severity: low, message: m}\n",
            "a second custom rule",
        ),
    ] {
        let dir = with_policy(policy);
        let out = scan(dir.path(), &[]);
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(what) && regex_like_line_col(&err), "{err}");
    }
}

#[test]
fn rule_off() {
    let dir = with_policy("version: 1\nrules:\n  plaintext-secret-data: off\n");
    assert_eq!(findings(dir.path(), &[]), (vec![], 0));
}

#[test]
fn block_at_turns_lower_findings_into_warnings() {
    let dir = with_policy("version: 1\nblock_at: critical\n");
    let (f, code) = findings(dir.path(), &[]);
    assert_eq!((f.len(), code), (3, 0));
    let dir = with_policy("version: 1\nblock_at: medium\n");
    assert_eq!(findings(dir.path(), &[]).1, 1);
}

#[test]
fn broken_policy_is_an_error_with_line_and_column() {
    let dir = with_policy("version: 1\nallow:\n  - paths: [a\n    reason: x\n");
    let out = scan(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(".kustodian.yaml:"), "{err}");
    assert!(regex_like_line_col(&err), "no line:column in stderr: {err}");
    let dir = with_policy("version: 1\nblock_at: huge\n");
    let err = String::from_utf8_lossy(&scan(dir.path(), &[]).stderr).to_string();
    assert!(err.contains(".kustodian.yaml:2:11"), "{err}");
}

fn regex_like_line_col(s: &str) -> bool {
    s.split(".kustodian.yaml:").skip(1).any(|rest| {
        let mut parts = rest.splitn(3, ':');
        let a = parts.next().unwrap_or("");
        let b = parts.next().unwrap_or("");
        !a.is_empty()
            && a.bytes().all(|c| c.is_ascii_digit())
            && !b.is_empty()
            && b.bytes().all(|c| c.is_ascii_digit())
    })
}

#[test]
fn unknown_key_is_an_error() {
    for policy in [
        "version: 1\nblock-at: low\n",
        "version: 1\nallow:\n  - path: ['*']\n",
        "version: 1\nrules: {no-such-rule: off}\n",
    ] {
        let dir = with_policy(policy);
        let out = scan(dir.path(), &[]);
        assert_eq!(out.status.code(), Some(2), "{policy}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(".kustodian.yaml:") && err.contains("help"),
            "{err}"
        );
    }
}

#[test]
fn policy_is_discovered_at_the_repository_root() {
    let dir = with_policy("version: 1\nrules: {plaintext-secret-data: off}\n");
    let status = std::process::Command::new("git")
        .args(["init", "-q"])
        .current_dir(dir.path())
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(dir.path().join("sub/s.yaml"), SECRETS).unwrap();
    assert_eq!(findings(&dir.path().join("sub"), &[]), (vec![], 0));
    assert_eq!(findings(dir.path(), &[]), (vec![], 0));
}

#[test]
fn policy_flag_overrides_the_discovered_file() {
    let dir = with_policy("version: 1\nrules: {plaintext-secret-data: off}\n");
    std::fs::write(
        dir.path().join("other.yml"),
        "version: 1\nblock_at: critical\n",
    )
    .unwrap();
    let (f, code) = findings(dir.path(), &["--policy", "other.yml"]);
    assert_eq!((f.len(), code), (3, 0));
}

#[test]
fn human_output_never_prints_the_value() {
    let dir = with_policy("version: 1\nscan_everywhere: true\nblock_at: high\n");
    let out = scan(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("[REDACTED]"));
}
