//! Failures of a whole store (unreachable, login refused, invalid token, no age identity) are
//! reported once with the number of references they left unresolved, and a help line about
//! the store, not once per reference with "check that the path and key exist". Fixtures under
//! tests/fixtures/store-wide/<behaviour>/: `input.yaml` and `expected-error.txt`.

#[macro_use]
mod common;

use std::path::{Path, PathBuf};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/store-wide")
}

fn render(case: &Path, vars: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = common::kustodian(case);
    for v in [
        "SOPS_AGE_KEY",
        "SOPS_AGE_KEY_FILE",
        "AVP_TYPE",
        "KUSTODIAN_STORE",
        "VAULT_ADDR",
        "VAULT_TOKEN",
    ] {
        cmd.env_remove(v);
    }
    cmd.env("XDG_CONFIG_HOME", case.join("no-such-config"))
        .env("HOME", case.join("no-such-home"));
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let input = std::fs::read(case.join("input.yaml")).unwrap();
    cmd.args(["render", "-"])
        .write_stdin(input)
        .output()
        .unwrap()
}

#[track_caller]
fn check(case: &Path, out: &std::process::Output, once: &str) {
    common::assert_no_canary("render", out, &common::CANARIES);
    assert!(common::expected_failure(case, out));
    let stderr = common::text(&out.stderr);
    assert_eq!(
        stderr.matches(once).count(),
        1,
        "reported more than once:\n{stderr}"
    );
    assert!(
        !stderr.contains("check that the path and key exist"),
        "{stderr}"
    );
}

#[test]
fn sops_without_any_age_identity() {
    let case = fixtures().join("sops-without-any-age-identity");
    let out = render(&case, &[]);
    check(&case, &out, "no age identity");
}

#[test]
fn unreachable_vault_is_one_message() {
    let case = fixtures().join("unreachable-vault-is-one-message");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("http://127.0.0.1:{port}");
    let out = render(
        &case,
        &[
            ("AVP_TYPE", "vault"),
            ("VAULT_ADDR", &addr),
            ("VAULT_TOKEN", "canary-store-wide-token"),
            ("VAULT_MAX_RETRIES", "0"),
            ("KUSTODIAN_VAULT_TOKEN_CACHE", "off"),
        ],
    );
    check(&case, &out, "cannot reach");
}
