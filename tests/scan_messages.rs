//! What the scanner's messages tell a user to do: the encrypt command that keeps a Secret's
//! apiVersion, kind and metadata readable, a reference example for the store in use, and, for
//! a value already committed, that the credential must be rotated.

mod common;

use std::path::Path;
use std::process::Output;

use common::{commit_all, git, kustodian, new_repo, text, CANARIES};

const SECRET: &str = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\nstringData:\n  password: canary-message-password\n";

fn scan(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = kustodian(dir);
    cmd.env_remove("VAULT_ADDR")
        .env_remove("AVP_TYPE")
        .env_remove("ARGOCD_ENV_VAULT_ADDR")
        .env_remove("ARGOCD_ENV_AVP_TYPE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.arg("scan").args(args).output().unwrap();
    common::assert_no_canary(&format!("{args:?}"), &out, &CANARIES);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    out
}

#[test]
fn plaintext_help_encrypts_only_data_and_names_the_store_in_use() {
    let tmp = new_repo();
    std::fs::create_dir_all(tmp.path().join("apps")).unwrap();
    std::fs::write(tmp.path().join("apps/db.yaml"), SECRET).unwrap();
    let sops = text(&scan(tmp.path(), &[], &[]).stdout);
    assert!(
        sops.contains(
            "`kustodian encrypt --in-place --encrypted-regex '^(data|stringData)$' apps/db.yaml`"
        ),
        "{sops}"
    );
    assert!(sops.contains("<path:secrets.enc.yaml#key>"), "{sops}");
    for env in [
        ("VAULT_ADDR", "https://vault.example:8200"),
        ("AVP_TYPE", "vault"),
    ] {
        let vault = text(&scan(tmp.path(), &[], &[env]).stdout);
        assert!(
            vault.contains("<path:secret/data/app#key>"),
            "{env:?}: {vault}"
        );
        assert!(!vault.contains("secrets.enc.yaml"), "{env:?}: {vault}");
    }
}

#[test]
fn a_finding_from_history_says_to_rotate_the_credential_in_every_format() {
    let tmp = new_repo();
    let dir = tmp.path();
    commit_all(dir, "empty");
    std::fs::write(dir.join("db.yaml"), SECRET).unwrap();
    commit_all(dir, "add a secret");
    // Removing the line afterwards does not help: the value is in history.
    std::fs::write(dir.join("db.yaml"), "kind: ConfigMap\n").unwrap();
    commit_all(dir, "remove it");
    let first = git(dir, &["rev-list", "--max-parents=0", "HEAD"]);
    const ADVICE: &str =
        "rotate the credential and rewrite or revert the commit; replacing the line is not enough";
    for format in ["human", "json", "sarif", "github"] {
        let out = scan(dir, &["--since", &first, "--format", format], &[]);
        let s = text(&out.stdout);
        assert!(s.contains("already in Git history"), "{format}: {s}");
        assert!(s.contains(ADVICE), "{format}: {s}");
    }
    // A finding of the working tree does not say so.
    std::fs::write(dir.join("db.yaml"), SECRET).unwrap();
    let out = scan(dir, &["--format", "json"], &[]);
    assert!(!text(&out.stdout).contains("Git history"));
}
