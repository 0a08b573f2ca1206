//! End-to-end tests of the Vault/OpenBao store: the built `kustodian render` against a real
//! OpenBao dev server (one per test), with the settings argocd-vault-plugin users already have
//! (`AVP_TYPE=vault`, `AVP_AUTH_TYPE`, `AVP_K8S_ROLE`, `VAULT_ADDR`, ...).
//!
//! Request discipline is proven from the server's own audit log. Every run checks that no
//! secret value, token or credential reaches stderr.

#[path = "support/bao.rs"]
mod bao;
#[path = "support/k8s.rs"]
mod k8s;
#[path = "support/rendered.rs"]
mod rendered;

use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;

use assert_cmd::Command;
use bao::{count, logins, Bao};
use k8s::ServiceAccount;
use rendered::Render;
use serde_json::json;

/// A client machine: its own HOME (token cache, ~/.vault-token) and variables.
struct Client {
    home: tempfile::TempDir,
    vars: Vec<(String, String)>,
}

impl Client {
    fn new(vars: &[(&str, &str)]) -> Client {
        Client {
            home: tempfile::tempdir().unwrap(),
            vars: vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    fn home(&self) -> &Path {
        self.home.path()
    }

    /// The value of one of its variables.
    fn var(&self, name: &str) -> &str {
        let (_, v) = self.vars.iter().find(|(k, _)| k == name).expect("set");
        v
    }

    /// Writes a file under HOME and returns its path.
    fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.home().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    fn command(&self, bao: &Bao, extra: &[(&str, &str)]) -> Command {
        Command::from_std(self.std_command(bao, extra))
    }

    fn std_command(&self, bao: &Bao, extra: &[(&str, &str)]) -> StdCommand {
        let mut cmd = StdCommand::new(assert_cmd::cargo::cargo_bin("kustodian"));
        for (k, _) in std::env::vars() {
            let foreign = ["VAULT_", "BAO_", "AVP_", "KUSTODIAN_", "ARGOCD_ENV_"]
                .iter()
                .any(|p| k.starts_with(p));
            if foreign || k == "XDG_CACHE_HOME" || k == "SSL_CERT_FILE" {
                cmd.env_remove(k);
            }
        }
        cmd.current_dir(self.home())
            .env("HOME", self.home())
            .env("VAULT_ADDR", &bao.addr)
            .env("AVP_TYPE", "vault");
        for (k, v) in &self.vars {
            cmd.env(k, v);
        }
        for (k, v) in extra {
            cmd.env(k, v);
        }
        cmd
    }

    /// `render -` running in the background with `input` on its stdin.
    fn spawn_render(&self, bao: &Bao, input: &str) -> std::process::Child {
        let mut cmd = self.std_command(bao, &[]);
        cmd.args(["render", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        std::io::Write::write_all(child.stdin.as_mut().unwrap(), input.as_bytes()).unwrap();
        drop(child.stdin.take());
        child
    }

    fn render(&self, bao: &Bao, input: &str) -> Render {
        self.render_with(bao, &[], input)
    }

    fn render_with(&self, bao: &Bao, extra: &[(&str, &str)], input: &str) -> Render {
        let out = self
            .command(bao, extra)
            .args(["render", "-"])
            .write_stdin(input.to_string())
            .output()
            .unwrap();
        self.checked(bao, out)
    }

    fn checked(&self, bao: &Bao, out: std::process::Output) -> Render {
        let r = Render {
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        // Tokens and credentials reach neither stdout nor stderr; secret values only stdout.
        let mut credentials = vec![bao::ROOT_TOKEN.to_string()];
        credentials.extend(self.cached_tokens());
        credentials.extend(
            self.vars
                .iter()
                .filter(|(k, _)| is_credential(k))
                .map(|(_, v)| v.clone()),
        );
        for c in &credentials {
            assert!(!r.stdout.contains(c), "stdout leaks the credential {c:?}");
        }
        for s in bao.canaries().iter().chain(&credentials) {
            assert!(
                !r.stderr.contains(s),
                "stderr leaks the secret {s:?}:\n{}",
                r.stderr
            );
        }
        r
    }

    /// The token cache files.
    fn cache_files(&self) -> Vec<PathBuf> {
        let dir = self.home().join(".cache/kustodian/vault-tokens");
        let mut v: Vec<_> = std::fs::read_dir(dir)
            .map(|d| {
                d.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|e| e == "json"))
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    }

    fn cached_tokens(&self) -> Vec<String> {
        self.cache_files()
            .iter()
            .filter(|f| std::fs::symlink_metadata(f).is_ok_and(|m| m.is_file()))
            .filter_map(|f| std::fs::read_to_string(f).ok())
            .filter_map(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .filter_map(|v| v["token"].as_str().map(str::to_string))
            .collect()
    }
}

fn is_credential(var: &str) -> bool {
    matches!(var, "VAULT_TOKEN" | "AVP_SECRET_ID" | "AVP_PASSWORD")
}

/// A Secret with these stringData entries.
fn secret(name: &str, entries: &[(&str, &str)]) -> String {
    let mut s = format!("apiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\nstringData:\n");
    for (k, v) in entries {
        s.push_str(&format!("  {k}: '{v}'\n"));
    }
    s
}

fn kubernetes_ca() -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/vault/kubernetes-ca.pem"),
    )
    .unwrap()
}

/// The Argo CD repo server's service account (`n` makes its uid).
fn repo_server(n: u64) -> ServiceAccount {
    ServiceAccount::new(
        "argocd",
        "argocd-repo-server",
        &format!("9a1c1f7e-0000-4000-8000-{n:012x}"),
    )
}

/// Kubernetes auth at `auth/<mount>` checking JWTs with the TokenReview stand-in, the
/// `policies` (name, HCL), and a role bound to `sa` with those policies.
fn setup_kubernetes(
    bao: &Bao,
    mount: &str,
    role: &str,
    sa: &ServiceAccount,
    policies: &[(&str, &str)],
) -> k8s::TokenReviewer {
    for (name, hcl) in policies {
        bao.policy(name, hcl);
    }
    let policies: Vec<&str> = policies.iter().map(|(name, _)| *name).collect();
    let reviewer = k8s::serve(vec![sa.clone()]);
    bao.enable_auth(mount, "kubernetes");
    bao.api(
        "POST",
        &format!("auth/{mount}/config"),
        json!({"kubernetes_host": reviewer.url, "disable_local_ca_jwt": true, "kubernetes_ca_cert": kubernetes_ca()}),
    );
    bao.api(
        "POST",
        &format!("auth/{mount}/role/{role}"),
        json!({
            "bound_service_account_names": [sa.name],
            "bound_service_account_namespaces": [sa.namespace],
            "token_policies": policies,
            "token_ttl": "1h",
        }),
    );
    reviewer
}

const READ_APP: &str = r#"path "secret/data/app" { capabilities = ["read"] }"#;

/// A Secret `s` whose key `p` references `secret/app`'s `password`.
fn app_secret() -> String {
    secret("s", &[("p", "<path:secret/data/app#password>")])
}

/// A client that logs in with AppRole (role `ci`, policy [`READ_APP`]), and `password` stored
/// at `secret/app`.
fn approle_client(bao: &Bao, password: &str) -> Client {
    bao.enable_auth("approle", "approle");
    bao.policy("app", READ_APP);
    let (role_id, secret_id) = bao.approle("ci", &["app"], "1h");
    bao.put_kv2("secret", "app", json!({ "password": password }));
    Client::new(&[
        ("AVP_AUTH_TYPE", "approle"),
        ("AVP_ROLE_ID", &role_id),
        ("AVP_SECRET_ID", &secret_id),
    ])
}

#[test]
fn kv2_latest_and_old_versions_nested_keys_and_vals_uris() {
    let bao = Bao::start();
    bao.put_kv2(
        "secret",
        "app",
        json!({"password": "canary-pass-v1", "user": "canary-user"}),
    );
    bao.put_kv2("secret", "app", json!({"password": "canary-pass-v2", "user": "canary-user", "db": {"host": "canary-db-host"}}));
    bao.policy("app", READ_APP);
    let token = bao.token(&["app"], "1h");
    let client = Client::new(&[("VAULT_TOKEN", &token)]);
    let input = secret(
        "app",
        &[
            ("latest", "<path:secret/data/app#password>"),
            ("old", "<path:secret/data/app#password#1>"),
            ("host", "<path:secret/data/app#db.host>"),
            ("vals", "ref+vault://secret/app#/password"),
            ("valsOld", "ref+vault://secret/app?version=1#/password"),
            ("bao", "ref+openbao://secret/app#/db/host"),
        ],
    ) + "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: generic\n  annotations:\n    avp.kubernetes.io/path: secret/data/app\n    \
         avp.kubernetes.io/secret-version: \"1\"\nstringData:\n  password: <password>\n";
    let mark = bao.mark();
    client
        .render(&bao, &input)
        .expect_ok()
        .has("latest", "canary-pass-v2")
        .has("old", "canary-pass-v1")
        .has("host", "canary-db-host")
        .has("vals", "canary-pass-v2")
        .has("valsOld", "canary-pass-v1")
        .has("bao", "canary-db-host")
        .has("password", "canary-pass-v1");
    let audit = bao.audit_since(mark);
    // Two versions of one path: two reads, whatever the syntax; one mount lookup.
    assert_eq!(count(&audit, "secret/data/app"), 2, "{audit:?}");
    assert_eq!(
        count(&audit, "sys/internal/ui/mounts/secret/data/app")
            + count(&audit, "sys/internal/ui/mounts/secret/app"),
        1,
        "{audit:?}"
    );
    assert_eq!(logins(&audit), 0);
    assert!(
        client.cache_files().is_empty(),
        "a token given in VAULT_TOKEN must never be cached"
    );
}

#[test]
fn kv1_mount_is_detected_and_versions_are_ignored() {
    let bao = Bao::start();
    bao.enable_kv("kv1", 1);
    bao.put_kv1(
        "kv1",
        "team/app",
        json!({"api-key": "canary-kv1-key", "conf": {"region": "canary-region"}}),
    );
    let client = Client::new(&[("VAULT_TOKEN", bao::ROOT_TOKEN)]);
    let input = secret(
        "kv1",
        &[
            ("key", "<path:kv1/team/app#api-key>"),
            ("keyV3", "<path:kv1/team/app#api-key#3>"),
            ("region", "<path:kv1/team/app#conf.region>"),
            ("vals", "ref+vault://kv1/team/app#/conf/region"),
        ],
    );
    let mark = bao.mark();
    client
        .render(&bao, &input)
        .expect_ok()
        .has("key", "canary-kv1-key")
        .has("keyV3", "canary-kv1-key")
        .has("region", "canary-region")
        .has("vals", "canary-region");
    let audit = bao.audit_since(mark);
    assert_eq!(count(&audit, "kv1/team/app"), 1, "{audit:?}");
}

#[test]
fn kv_version_from_settings_or_annotation_skips_the_mount_lookup() {
    let bao = Bao::start();
    bao.enable_kv("kv1", 1);
    bao.put_kv1("kv1", "app", json!({"k": "canary-forced-v1"}));
    bao.put_kv2("secret", "app", json!({"k": "canary-forced-v2"}));
    let client = Client::new(&[("VAULT_TOKEN", bao::ROOT_TOKEN), ("AVP_KV_VERSION", "1")]);
    let input = secret("v1", &[("k", "<path:kv1/app#k>")])
        + "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: v2\n  annotations:\n    avp.kubernetes.io/kv-version: \"2\"\n\
           stringData:\n  k: <path:secret/data/app#k>\n";
    let mark = bao.mark();
    client
        .render(&bao, &input)
        .expect_ok()
        .has("k", "canary-forced-v1")
        .has("k", "canary-forced-v2");
    let audit = bao.audit_since(mark);
    assert!(
        !audit
            .iter()
            .any(|e| e.path.starts_with("sys/internal/ui/mounts")),
        "{audit:?}"
    );
    assert_eq!(audit.len(), 2, "{audit:?}");
}

#[test]
fn approle_login_with_avp_variables() {
    let bao = Bao::start();
    let client = approle_client(&bao, "canary-approle-pass");
    let mark = bao.mark();
    client
        .render(&bao, &app_secret())
        .expect_ok()
        .has("p", "canary-approle-pass");
    let audit = bao.audit_since(mark);
    assert_eq!(count(&audit, "auth/approle/login"), 1, "{audit:?}");
    assert_eq!(client.cache_files().len(), 1);
    // A wrong secret_id is refused, and says which login failed.
    let role_id = client.var("AVP_ROLE_ID");
    let wrong = Client::new(&[
        ("AVP_AUTH_TYPE", "approle"),
        ("AVP_ROLE_ID", role_id),
        ("AVP_SECRET_ID", "canary-wrong-secret-id"),
    ]);
    wrong.render(&bao, &app_secret()).expect_failure(&[
        "login to the vault store failed: approle login at auth/approle was refused",
        "AVP_SECRET_ID",
    ]);
}

#[test]
fn userpass_login_with_avp_variables() {
    let bao = Bao::start();
    bao.enable_auth("userpass", "userpass");
    bao.policy("app", READ_APP);
    bao.api(
        "POST",
        "auth/userpass/users/deployer",
        json!({"password": "canary-userpass-pw", "token_policies": ["app"]}),
    );
    bao.put_kv2(
        "secret",
        "app",
        json!({"password": "canary-userpass-secret"}),
    );
    let client = Client::new(&[
        ("AVP_AUTH_TYPE", "userpass"),
        ("AVP_USERNAME", "deployer"),
        ("AVP_PASSWORD", "canary-userpass-pw"),
    ]);
    let mark = bao.mark();
    client
        .render(&bao, &app_secret())
        .expect_ok()
        .has("p", "canary-userpass-secret");
    assert_eq!(
        count(&bao.audit_since(mark), "auth/userpass/login/deployer"),
        1
    );
    let wrong = Client::new(&[
        ("AVP_AUTH_TYPE", "userpass"),
        ("AVP_USERNAME", "deployer"),
        ("AVP_PASSWORD", "canary-bad-pw"),
    ]);
    wrong
        .render(&bao, &app_secret())
        .expect_failure(&["userpass login as \"deployer\"", "refused"]);
}

#[test]
fn kubernetes_login_through_tokenreview_renders_a_folder() {
    let bao = Bao::start();
    let sa = repo_server(0x1);
    let reviewer = setup_kubernetes(&bao, "k8s-prod", "argocd", &sa, &[("app", READ_APP)]);
    bao.put_kv2(
        "secret",
        "app",
        json!({"password": "canary-k8s-pass", "user": "canary-k8s-user"}),
    );
    let client = Client::new(&[]);
    let jwt = client.file("sa/token", &sa.jwt());
    bao.canary(sa.jwt());
    client.file("app/deploy.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  user: <path:secret/data/app#user>\n");
    client.file(
        "app/secret.yaml",
        &secret("s", &[("password", "<path:secret/data/app#password>")]),
    );
    let out = client
        .command(
            &bao,
            &[
                ("AVP_AUTH_TYPE", "k8s"),
                ("AVP_K8S_ROLE", "argocd"),
                ("AVP_K8S_MOUNT_PATH", "auth/k8s-prod"),
                ("AVP_K8S_TOKEN_PATH", jwt.to_str().unwrap()),
            ],
        )
        .args(["render", "app"])
        .output()
        .unwrap();
    client
        .checked(&bao, out)
        .expect_ok()
        .has("user", "canary-k8s-user")
        .has("password", "canary-k8s-pass");
    assert_eq!(
        reviewer.reviews.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "one login, one TokenReview"
    );
}

#[test]
fn kubernetes_login_refuses_another_service_account() {
    let bao = Bao::start();
    let sa = repo_server(0x2);
    setup_kubernetes(&bao, "kubernetes", "argocd", &sa, &[("app", READ_APP)]);
    bao.put_kv2("secret", "app", json!({"password": "canary-k8s-refused"}));
    let input = app_secret();
    let vars = |jwt: &Path| {
        vec![
            ("AVP_AUTH_TYPE", "k8s".to_string()),
            ("AVP_K8S_ROLE", "argocd".into()),
            ("AVP_K8S_TOKEN_PATH", jwt.display().to_string()),
        ]
    };

    // A service account the role is not bound to.
    let intruder = ServiceAccount::new(
        "default",
        "intruder",
        "9a1c1f7e-0000-4000-8000-00000000000f",
    );
    bao.canary(intruder.jwt());
    let client = Client::new(&[]);
    let jwt = client.file("token", &intruder.jwt());
    let v = vars(&jwt);
    let v: Vec<(&str, &str)> = v.iter().map(|(k, v)| (*k, v.as_str())).collect();
    client.render_with(&bao, &v, &input).expect_failure(&[
        "login to the vault store failed: kubernetes login as role \"argocd\" at auth/kubernetes was refused (403",
        "service account name not authorized",
        "bound_service_account_names",
    ]);
    assert!(client.cache_files().is_empty());

    // The right names, but a token the cluster does not know (TokenReview says no).
    let forged = repo_server(0xff);
    bao.canary(forged.jwt());
    let jwt = client.file("forged", &forged.jwt());
    let v = vars(&jwt);
    let v: Vec<(&str, &str)> = v.iter().map(|(k, v)| (*k, v.as_str())).collect();
    client.render_with(&bao, &v, &input).expect_failure(&["kubernetes login as role \"argocd\" at auth/kubernetes was refused (403: permission denied"]);

    // A missing JWT file names the variable to set.
    client
        .render_with(
            &bao,
            &[
                ("AVP_AUTH_TYPE", "k8s"),
                ("AVP_K8S_ROLE", "argocd"),
                ("AVP_K8S_TOKEN_PATH", "/nonexistent/token"),
            ],
            &input,
        )
        .expect_failure(&["/nonexistent/token", "AVP_K8S_TOKEN_PATH"]);
}

#[test]
fn denied_and_missing_paths_say_so() {
    let bao = Bao::start();
    bao.put_kv2("secret", "app", json!({"password": "canary-allowed"}));
    bao.put_kv2("secret", "admin", json!({"password": "canary-admin-only"}));
    bao.policy("app", READ_APP);
    let token = bao.token(&["app"], "1h");
    let client = Client::new(&[("VAULT_TOKEN", &token)]);
    client
        .render(
            &bao,
            &secret(
                "s",
                &[
                    ("ok", "<path:secret/data/app#password>"),
                    ("no", "<path:secret/data/admin#password>"),
                ],
            ),
        )
        .expect_failure(&[
            "secret/data/admin: permission denied by the vault store (403: permission denied",
        ]);
    client
        .render(
            &bao,
            &secret("s", &[("gone", "<path:secret/data/app#password#7>")]),
        )
        .expect_failure(&["secret/data/app (version 7): not found in the vault store"]);
    client
        .render(
            &bao,
            &secret("s", &[("key", "<path:secret/data/app#nope>")]),
        )
        .expect_failure(&["key \"nope\" not found"]);
}

#[test]
fn audit_log_shows_one_login_and_one_read_per_distinct_path_and_the_token_is_reused() {
    let bao = Bao::start();
    let sa = repo_server(0x3);
    let apps = r#"path "secret/data/apps/*" { capabilities = ["read"] }"#;
    setup_kubernetes(&bao, "kubernetes", "argocd", &sa, &[("apps", apps)]);
    let paths = 12;
    for i in 0..paths {
        bao.put_kv2(
            "secret",
            &format!("apps/app{i}"),
            json!({"user": format!("canary-user-{i}"), "pass": format!("canary-pass-{i}")}),
        );
    }
    // 60 documents, 5 references each, over 12 paths; vals URIs share reads with placeholders.
    let mut input = String::new();
    for d in 0..60 {
        let a = d % paths;
        let b = (d * 7 + 3) % paths;
        input += &secret(
            &format!("s{d}"),
            &[
                ("u", &format!("<path:secret/data/apps/app{a}#user>")),
                ("p", &format!("<path:secret/data/apps/app{a}#pass>")),
                ("u2", &format!("<path:secret/data/apps/app{b}#user>")),
                ("p2", &format!("ref+vault://secret/apps/app{b}#/pass")),
                (
                    "both",
                    &format!(
                        "<path:secret/data/apps/app{a}#user>:<path:secret/data/apps/app{b}#pass>"
                    ),
                ),
            ],
        );
        input += "---\n";
    }
    let client = Client::new(&[("AVP_AUTH_TYPE", "k8s"), ("AVP_K8S_ROLE", "argocd")]);
    let jwt = client.file("sa/token", &sa.jwt());
    bao.canary(sa.jwt());
    let vars = [("AVP_K8S_TOKEN_PATH", jwt.to_str().unwrap())];

    let mark = bao.mark();
    client
        .render_with(&bao, &vars, &input)
        .expect_ok()
        .has("u", "canary-user-0")
        .has("p2", "canary-pass-3");
    let first = bao.audit_since(mark);
    assert_eq!(logins(&first), 1, "{first:?}");
    for i in 0..paths {
        assert_eq!(
            count(&first, &format!("secret/data/apps/app{i}")),
            1,
            "app{i}: {first:?}"
        );
    }
    let lookups = first
        .iter()
        .filter(|e| e.path.starts_with("sys/internal/ui/mounts/"))
        .count();
    assert_eq!(lookups, 1, "one mount lookup for the one mount: {first:?}");
    assert_eq!(first.len(), 1 + paths + lookups, "nothing else: {first:?}");

    // The cache: one private file.
    let files = client.cache_files();
    assert_eq!(files.len(), 1);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(
            std::fs::metadata(&files[0]).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::metadata(files[0].parent().unwrap())
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o700
        );
    }

    // A second render within the TTL reuses the cached token: no login at all.
    let mark = bao.mark();
    client.render_with(&bao, &vars, &input).expect_ok();
    let second = bao.audit_since(mark);
    assert_eq!(logins(&second), 0, "{second:?}");
    for i in 0..paths {
        assert_eq!(
            count(&second, &format!("secret/data/apps/app{i}")),
            1,
            "app{i}: {second:?}"
        );
    }
}

#[test]
fn a_revoked_cached_token_is_replaced_by_one_new_login() {
    let bao = Bao::start();
    let client = approle_client(&bao, "canary-revoked");
    let input = app_secret();
    client.render(&bao, &input).expect_ok();
    let cached = client.cached_tokens();
    assert_eq!(cached.len(), 1);
    bao.api("POST", "auth/token/revoke", json!({"token": cached[0]}));

    let mark = bao.mark();
    client
        .render(&bao, &input)
        .expect_ok()
        .has("p", "canary-revoked");
    let audit = bao.audit_since(mark);
    assert_eq!(logins(&audit), 1, "{audit:?}");
    let fresh = client.cached_tokens();
    assert_ne!(fresh, cached, "the cache holds the new token");
}

#[test]
fn tokens_are_renewed_past_half_their_lease_and_replaced_once_expired() {
    let bao = Bao::start();
    bao.enable_auth("userpass", "userpass");
    bao.policy("app", READ_APP);
    bao.api(
        "POST",
        "auth/userpass/users/renewable",
        json!({"password": "canary-pw-renew", "token_policies": ["app"], "token_ttl": "6s"}),
    );
    bao.api(
        "POST",
        "auth/userpass/users/short",
        json!({"password": "canary-pw-short", "token_policies": ["app"], "token_ttl": "2s", "token_max_ttl": "2s"}),
    );
    bao.put_kv2("secret", "app", json!({"password": "canary-renew"}));
    let input = app_secret();
    let renewable = Client::new(&[
        ("AVP_AUTH_TYPE", "userpass"),
        ("AVP_USERNAME", "renewable"),
        ("AVP_PASSWORD", "canary-pw-renew"),
    ]);
    let short = Client::new(&[
        ("AVP_AUTH_TYPE", "userpass"),
        ("AVP_USERNAME", "short"),
        ("AVP_PASSWORD", "canary-pw-short"),
    ]);
    renewable.render(&bao, &input).expect_ok();
    short.render(&bao, &input).expect_ok();
    std::thread::sleep(std::time::Duration::from_millis(3600));

    let mark = bao.mark();
    renewable.render(&bao, &input).expect_ok();
    let audit = bao.audit_since(mark);
    assert_eq!(count(&audit, "auth/token/renew-self"), 1, "{audit:?}");
    assert_eq!(logins(&audit), 0, "{audit:?}");

    let mark = bao.mark();
    short.render(&bao, &input).expect_ok();
    let audit = bao.audit_since(mark);
    assert_eq!(count(&audit, "auth/userpass/login/short"), 1, "{audit:?}");
}

#[test]
fn parallel_renders_share_one_login() {
    let bao = Bao::start();
    let client = approle_client(&bao, "canary-parallel");
    let input = app_secret();
    let mark = bao.mark();
    let children: Vec<_> = (0..4).map(|_| client.spawn_render(&bao, &input)).collect();
    for child in children {
        client
            .checked(&bao, child.wait_with_output().unwrap())
            .expect_ok()
            .has("p", "canary-parallel");
    }
    let audit = bao.audit_since(mark);
    assert_eq!(
        logins(&audit),
        1,
        "four renders at once, one login: {audit:?}"
    );
}

#[test]
fn two_roles_never_share_a_token() {
    let bao = Bao::start();
    bao.enable_auth("approle", "approle");
    bao.policy("a", r#"path "secret/data/a" { capabilities = ["read"] }"#);
    bao.policy("b", r#"path "secret/data/b" { capabilities = ["read"] }"#);
    let (a_id, a_secret) = bao.approle("role-a", &["a"], "1h");
    let (b_id, b_secret) = bao.approle("role-b", &["b"], "1h");
    bao.put_kv2("secret", "a", json!({"v": "canary-role-a"}));
    bao.put_kv2("secret", "b", json!({"v": "canary-role-b"}));
    // One machine, one cache folder, two roles.
    let client = Client::new(&[("AVP_AUTH_TYPE", "approle")]);
    let a = [
        ("AVP_ROLE_ID", a_id.as_str()),
        ("AVP_SECRET_ID", a_secret.as_str()),
    ];
    let b = [
        ("AVP_ROLE_ID", b_id.as_str()),
        ("AVP_SECRET_ID", b_secret.as_str()),
    ];
    let mark = bao.mark();
    client
        .render_with(&bao, &a, &secret("s", &[("v", "<path:secret/data/a#v>")]))
        .expect_ok()
        .has("v", "canary-role-a");
    client
        .render_with(&bao, &b, &secret("s", &[("v", "<path:secret/data/b#v>")]))
        .expect_ok()
        .has("v", "canary-role-b");
    client
        .render_with(&bao, &b, &secret("s", &[("v", "<path:secret/data/a#v>")]))
        .expect_failure(&["secret/data/a: permission denied by the vault store (403"]);
    assert_eq!(
        count(&bao.audit_since(mark), "auth/approle/login"),
        3,
        "role b logs in on its own (and once more after a 403)"
    );
    assert_eq!(client.cache_files().len(), 2);
}

#[test]
fn vault_namespace_is_sent_as_a_header() {
    let bao = Bao::start();
    bao.api("POST", "sys/namespaces/team-a", json!({}));
    bao.api_ns(
        Some("team-a"),
        "POST",
        "sys/mounts/kv",
        json!({"type": "kv", "options": {"version": "2"}}),
    );
    bao.canary("canary-namespaced");
    bao.api_ns(
        Some("team-a"),
        "POST",
        "kv/data/app",
        json!({"data": {"password": "canary-namespaced"}}),
    );
    let client = Client::new(&[("VAULT_TOKEN", bao::ROOT_TOKEN)]);
    let input = secret(
        "s",
        &[
            ("p", "<path:kv/data/app#password>"),
            ("v", "ref+vault://kv/app#/password"),
        ],
    );
    client
        .render_with(&bao, &[("VAULT_NAMESPACE", "team-a")], &input)
        .expect_ok()
        .has("p", "canary-namespaced")
        .has("v", "canary-namespaced");
    client.render(&bao, &input).expect_failure(&["kv/data/app"]);
}

#[test]
fn tls_needs_the_ca_or_skip_verify_with_a_warning() {
    let bao = Bao::start_tls();
    let (ok, out) = bao.cli(&[
        "kv",
        "put",
        "-mount=secret",
        "app",
        "password=canary-tls-pass",
    ]);
    assert!(ok, "{out}");
    bao.canary("canary-tls-pass");
    let ca = bao.ca.clone().unwrap();
    let client = Client::new(&[
        ("VAULT_TOKEN", bao::ROOT_TOKEN),
        ("SSL_CERT_FILE", "/nonexistent"),
    ]);
    let input = app_secret();
    client
        .render_with(&bao, &[("VAULT_CACERT", ca.to_str().unwrap())], &input)
        .expect_ok()
        .has("p", "canary-tls-pass");
    client
        .render(&bao, &input)
        .expect_failure(&["cannot reach https://127.0.0.1", "VAULT_CACERT"]);
    let r = client.render_with(&bao, &[("VAULT_SKIP_VERIFY", "true")], &input);
    r.expect_ok().has("p", "canary-tls-pass");
    assert!(
        r.stderr.contains("warning: VAULT_SKIP_VERIFY is set"),
        "{}",
        r.stderr
    );
}

#[test]
fn token_files_are_read_and_never_cached() {
    let bao = Bao::start();
    bao.put_kv2("secret", "app", json!({"password": "canary-token-file"}));
    bao.policy("app", READ_APP);
    let token = bao.token(&["app"], "1h");
    let input = app_secret();
    let client = Client::new(&[]);
    let file = client.file("vault/token", &format!("{token}\n"));
    client
        .render_with(
            &bao,
            &[("KUSTODIAN_VAULT_TOKEN_FILE", file.to_str().unwrap())],
            &input,
        )
        .expect_ok()
        .has("p", "canary-token-file");
    // The Vault CLI's ~/.vault-token, when nothing else is set.
    client.file(".vault-token", &token);
    client
        .render(&bao, &input)
        .expect_ok()
        .has("p", "canary-token-file");
    assert!(client.cache_files().is_empty());
    // No credentials at all: say what to set.
    Client::new(&[]).render(&bao, &input).expect_failure(&[
        "no Vault credentials",
        "VAULT_TOKEN",
        "AVP_AUTH_TYPE",
    ]);
}

#[test]
fn an_unreachable_server_is_named_and_retried_a_bounded_number_of_times() {
    let bao = Bao::start();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = Client::new(&[("VAULT_TOKEN", bao::ROOT_TOKEN)]);
    let addr = format!("http://127.0.0.1:{port}");
    let started = std::time::Instant::now();
    client
        .render_with(
            &bao,
            &[("VAULT_ADDR", &addr), ("VAULT_MAX_RETRIES", "2")],
            &app_secret(),
        )
        .expect_failure(&[&format!(
            "cannot reach {addr}: connection refused (after 3 attempts)"
        )]);
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

/// argocd-vault-plugin references that spell out KV v2's `data/` need no mount lookup: a render
/// is one login and one read per distinct path, nothing else (the answer's shape tells v1 from
/// v2). The KV v1 mount beside it is read the same way.
#[test]
fn avp_references_make_one_request_per_path_and_nothing_else() {
    let bao = Bao::start();
    let client = approle_client(&bao, "canary-one-request");
    bao.api(
        "POST",
        "sys/mounts/kv1",
        json!({"type": "kv", "options": {"version": "1"}}),
    );
    bao.policy("kv1", r#"path "kv1/data/*" { capabilities = ["read"] }"#);
    bao.api(
        "POST",
        "auth/approle/role/ci",
        json!({"token_policies": ["app", "kv1"], "token_ttl": "1h"}),
    );
    bao.api(
        "POST",
        "kv1/data/old",
        json!({"password": "canary-kv1-value"}),
    );
    let mut input = String::new();
    for d in 0..20 {
        input += &secret(
            &format!("s{d}"),
            &[
                ("p", "<path:secret/data/app#password>"),
                ("old", "<path:kv1/data/old#password>"),
            ],
        );
        input += "---\n";
    }
    let mark = bao.mark();
    client
        .render(&bao, &input)
        .expect_ok()
        .has("p", "canary-one-request")
        .has("old", "canary-kv1-value");
    let audit = bao.audit_since(mark);
    assert_eq!(logins(&audit), 1, "{audit:?}");
    assert_eq!(count(&audit, "secret/data/app"), 1, "{audit:?}");
    assert_eq!(count(&audit, "kv1/data/old"), 1, "{audit:?}");
    assert_eq!(audit.len(), 3, "nothing else: {audit:?}");
}

/// A token obtained by login that stops working mid-render (here: used up, `token_num_uses`;
/// an expired TTL or a revocation look the same to Vault) is replaced by one new login; a
/// second failure ends the render with "invalid or expired token", not a policy guess.
#[test]
fn a_login_token_that_stops_working_mid_render_is_replaced_once() {
    let bao = Bao::start();
    bao.enable_auth("userpass", "userpass");
    bao.policy("all", r#"path "secret/data/*" { capabilities = ["read"] }"#);
    bao.api(
        "POST",
        "auth/userpass/users/once",
        json!({"password": "canary-pw-once", "token_policies": ["all"], "token_num_uses": 1}),
    );
    for p in ["a", "b", "c"] {
        bao.put_kv2(
            "secret",
            p,
            json!({ "password": format!("canary-once-{p}") }),
        );
    }
    let client = Client::new(&[
        ("AVP_AUTH_TYPE", "userpass"),
        ("AVP_USERNAME", "once"),
        ("AVP_PASSWORD", "canary-pw-once"),
        ("KUSTODIAN_VAULT_TOKEN_CACHE", "off"),
        ("KUSTODIAN_CONCURRENCY", "1"),
    ]);
    let refs = |names: &[&str]| {
        let entries: Vec<(String, String)> = names
            .iter()
            .map(|n| (n.to_string(), format!("<path:secret/data/{n}#password>")))
            .collect();
        let entries: Vec<(&str, &str)> = entries
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        secret("s", &entries)
    };
    let mark = bao.mark();
    client
        .render(&bao, &refs(&["a", "b"]))
        .expect_ok()
        .has("a", "canary-once-a")
        .has("b", "canary-once-b");
    assert_eq!(
        logins(&bao.audit_since(mark)),
        2,
        "one login and one re-login"
    );

    let mark = bao.mark();
    let r = client.render(&bao, &refs(&["a", "b", "c"]));
    r.expect_failure(&[
        "invalid or expired token",
        "userpass login as \"once\"",
        "token_num_uses",
    ]);
    assert!(!r.stderr.contains("policies do not allow"), "{}", r.stderr);
    assert_eq!(
        logins(&bao.audit_since(mark)),
        2,
        "re-login once, then fail"
    );
}

/// A bad VAULT_TOKEN said "permission denied ... the token's policies do not allow reading
/// this path" once per reference; now "invalid or expired token" once, with the count.
#[test]
fn a_bad_token_is_invalid_or_expired_and_reported_once() {
    let bao = Bao::start();
    bao.put_kv2(
        "secret",
        "a",
        json!({"password": "canary-bad-a", "user": "canary-bad-u"}),
    );
    bao.put_kv2("secret", "b", json!({"password": "canary-bad-b"}));
    let client = Client::new(&[("VAULT_TOKEN", "canary-not-a-real-token-0042")]);
    let r = client.render(
        &bao,
        &secret(
            "s",
            &[
                ("a", "<path:secret/data/a#password>"),
                ("b", "<path:secret/data/b#password>"),
                ("u", "<path:secret/data/a#user>"),
            ],
        ),
    );
    r.expect_failure(&[
        "invalid or expired token",
        "set VAULT_TOKEN",
        "3 references to the vault store left unresolved",
        "the store itself could not be used",
    ]);
    assert_eq!(
        r.stderr.matches("invalid or expired token").count(),
        1,
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("policies"), "{}", r.stderr);
    assert!(
        !r.stderr.contains("check that the path and key exist"),
        "a per-reference help line under a store-wide failure:\n{}",
        r.stderr
    );
}

/// A refused login is one message for all references, not one per reference.
#[test]
fn a_refused_login_is_reported_once_for_all_references() {
    let bao = Bao::start();
    let client = approle_client(&bao, "canary-refused-once");
    let wrong = Client::new(&[
        ("AVP_AUTH_TYPE", "approle"),
        ("AVP_ROLE_ID", client.var("AVP_ROLE_ID")),
        ("AVP_SECRET_ID", "canary-wrong-secret-id-77"),
    ]);
    let mut input = String::new();
    for d in 0..4 {
        input += &secret(
            &format!("s{d}"),
            &[("p", "<path:secret/data/app#password>")],
        );
        input += "---\n";
    }
    let r = wrong.render(&bao, &input);
    r.expect_failure(&[
        "approle login at auth/approle was refused",
        "4 references to the vault store",
    ]);
    assert_eq!(r.stderr.matches("was refused").count(), 1, "{}", r.stderr);
}

/// A missing key lists the key names that do exist at that path (never their values).
#[test]
fn a_missing_key_lists_the_key_names_at_the_path() {
    let bao = Bao::start();
    bao.put_kv2(
        "secret",
        "app",
        json!({"password": "canary-keys-pw", "user": "canary-keys-user"}),
    );
    let client = Client::new(&[("VAULT_TOKEN", bao::ROOT_TOKEN)]);
    client
        .render(
            &bao,
            &secret("s", &[("p", "<path:secret/data/app#passwd>")]),
        )
        .expect_failure(&[r#"key "passwd" not found; the keys there are: password, user"#]);
}

/// An AppRole client that has rendered [`app_secret`] once, and its one cache entry.
fn cached_client(bao: &Bao, password: &str) -> (Client, String, PathBuf) {
    let client = approle_client(bao, password);
    let input = app_secret();
    client.render(bao, &input).expect_ok();
    let file = client.cache_files()[0].clone();
    (client, input, file)
}

/// ssh's rule for the token cache: an entry others can read (or owned by someone else) may be
/// planted, so it is not used, with a warning naming it; the planted token never reaches
/// Vault (the audit log holds the HMAC of every token used).
#[test]
fn a_token_cache_entry_others_can_read_or_another_user_owns_is_not_used() {
    use std::os::unix::fs::PermissionsExt as _;
    let bao = Bao::start();
    let (client, input, file) = cached_client(&bao, "canary-cache-perm");
    let planted = bao.token(&["app"], "1h");
    let plant = |mode: u32| {
        std::fs::write(
            &file,
            json!({"token": planted, "expires_at_ms": null, "lease_ms": 0, "renewable": false})
                .to_string(),
        )
        .unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    let planted_hash = bao.audit_hash(&planted);

    plant(0o644);
    let mark = bao.mark();
    let r = client.render(&bao, &input);
    r.expect_ok().has("p", "canary-cache-perm");
    for part in [
        "not using the Vault token cache",
        &file.display().to_string(),
        "mode 0644",
    ] {
        assert!(
            r.stderr.contains(part),
            "stderr lacks {part:?}:\n{}",
            r.stderr
        );
    }
    let audit = bao.audit_since(mark);
    assert_eq!(logins(&audit), 1, "{audit:?}");
    assert!(
        audit.iter().any(|e| e.token.starts_with("hmac-sha256:")),
        "{audit:?}"
    );
    assert!(
        !audit.iter().any(|e| e.token == planted_hash),
        "the planted token was sent: {audit:?}"
    );

    // Another user's file, even with mode 0600 (only root can hand a file to someone else).
    plant(0o600);
    if std::os::unix::fs::chown(&file, Some(4242), Some(4242)).is_ok() {
        let mark = bao.mark();
        let r = client.render(&bao, &input);
        r.expect_ok();
        assert!(r.stderr.contains("owned by another user"), "{}", r.stderr);
        let audit = bao.audit_since(mark);
        assert!(!audit.iter().any(|e| e.token == planted_hash), "{audit:?}");
    }
}

/// A FIFO in place of the cache entry hung the render (a blocking open and read); it is
/// refused at once and the render logs in without the cache.
#[test]
fn a_fifo_in_place_of_the_token_cache_entry_does_not_hang_the_render() {
    let bao = Bao::start();
    let (client, input, file) = cached_client(&bao, "canary-cache-fifo");
    std::fs::remove_file(&file).unwrap();
    assert!(StdCommand::new("mkfifo")
        .arg(&file)
        .status()
        .unwrap()
        .success());
    let mut child = client.spawn_render(&bao, &input);
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > std::time::Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the render hangs on a FIFO in the token cache");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let r = client.checked(&bao, child.wait_with_output().unwrap());
    r.expect_ok().has("p", "canary-cache-fifo");
    assert!(r.stderr.contains("FIFO"), "{}", r.stderr);
}
