//! End-to-end tests of the Kubernetes Secrets store: the built `kustodian` against a loopback
//! stand-in of the Kubernetes API over HTTPS with a test CA made by openssl
//! (tests/support/kube_api.rs). vals' `ref+k8s://v1/Secret/NS/NAME/KEY` and
//! argocd-vault-plugin's `kubernetessecret` placeholders `<path:NS:NAME#KEY>`; kubeconfig
//! (token, client certificate, CA data or files), the in-cluster service account; the
//! operator's namespace allow-list; one request per Secret; 401/403/404/429 answers.
//!
//! Every value holds `canary`, and so do the tokens: no output but a successful render's stdout
//! may hold either.

#[path = "fixtures/example/support.rs"]
mod example;
#[path = "support/kube_api.rs"]
mod kube_api;
#[path = "support/rendered.rs"]
mod rendered;
#[path = "support/sidecar.rs"]
mod sidecar;
#[path = "support/standin.rs"]
mod standin;

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use kube_api::{Identity, KubeApi};
use sidecar::{secret_doc, Sidecar};

const TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.canary-k8s-sa-token.c2ln";

/// The repo-server's identity may read team-a and team-b; the Secrets live in team-a, team-b and
/// team-c (which RBAC does not grant).
fn api() -> KubeApi {
    KubeApi::start(
        vec![Identity {
            token: Some(TOKEN.into()),
            cn: Some("kustodian-client".into()),
            user: "system:serviceaccount:argocd:argocd-repo-server".into(),
            namespaces: vec!["team-a".into(), "team-b".into()],
        }],
        vec![
            (
                "team-a",
                "db",
                vec![("password", "canary-k8s-pass"), ("user", "canary-k8s-user")],
            ),
            ("team-b", "api", vec![("key", "canary-k8s-key")]),
            (
                "team-c",
                "db",
                vec![("password", "canary-k8s-other-tenant")],
            ),
        ],
    )
}

/// A kubeconfig whose current context uses the API with `user` (YAML of the user entry).
fn kubeconfig(api: &KubeApi, cluster_extra: &str, user: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: test\nclusters:\n- name: stand-in\n  cluster:\n    server: {}\n{cluster_extra}\
         contexts:\n- name: test\n  context:\n    cluster: stand-in\n    user: repo-server\n    namespace: default\n\
         users:\n- name: repo-server\n  user:\n{user}",
        api.front.url
    )
}

/// A sidecar with a kubeconfig using the token and the CA as data, allowed team-a and team-b.
fn sidecar(api: &KubeApi) -> Sidecar {
    let mut s = Sidecar::with_secrets(&[TOKEN]);
    let cfg = kubeconfig(
        api,
        &format!("    certificate-authority-data: {}\n", api.ca_data()),
        &format!("    token: {TOKEN}\n"),
    );
    let path = s.file(".kube/sidecar-config", &cfg);
    s.set("KUBECONFIG", path.to_str().unwrap());
    s.set("KUSTODIAN_K8S_ALLOWED_NAMESPACES", "team-a, team-b");
    s
}

#[test]
fn vals_and_avp_references_read_each_secret_once_with_a_kubeconfig_token() {
    let api = api();
    let mut side = sidecar(&api);
    side.set("AVP_TYPE", "kubernetessecret");
    side.render(&secret_doc(&[
        ("password", "ref+k8s://v1/Secret/team-a/db/password"),
        ("user", "ref+k8s://v1/Secret/team-a/db/user"),
        ("avp", "<path:team-a:db#password>"),
        (
            "dsn",
            "postgres://<path:team-a:db#user>:ref+k8s://v1/Secret/team-a/db/password+@db",
        ),
        ("key", "<path:team-b:api#key | base64encode>"),
    ]))
    .expect_ok()
    .has("password", "canary-k8s-pass")
    .has("user", "canary-k8s-user")
    .has("avp", "canary-k8s-pass")
    .has("dsn", "postgres://canary-k8s-user:canary-k8s-pass@db")
    .has("key", "Y2FuYXJ5LWs4cy1rZXk=");
    assert_eq!(api.count("team-a", "db"), 1, "one GET per Secret");
    assert_eq!(api.count("team-b", "api"), 1);
    for r in api.server.seen() {
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {TOKEN}").as_str())
        );
        assert_eq!(
            r.header("x-remote-user"),
            None,
            "no client certificate was configured"
        );
    }
}

#[test]
fn client_certificate_and_ca_files_relative_to_the_kubeconfig() {
    let api = api();
    let mut side = Sidecar::with_secrets(&[TOKEN]);
    for f in ["ca.crt", "client.crt", "client.key"] {
        side.file(&format!("kube/certs/{f}"), &api.pki.read(f));
    }
    let cfg = kubeconfig(
        &api,
        "    certificate-authority: certs/ca.crt\n",
        "    client-certificate: certs/client.crt\n    client-key: certs/client.key\n",
    );
    let path = side.file("kube/config", &cfg);
    side.set("KUBECONFIG", path.to_str().unwrap());
    side.set("KUSTODIAN_K8S_ALLOWED_NAMESPACES", "team-*");
    side.render(&secret_doc(&[(
        "a",
        "ref+k8s://v1/Secret/team-a/db/password",
    )]))
    .expect_ok()
    .has("a", "canary-k8s-pass");
    let seen = api.server.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].header("x-remote-user"), Some("kustodian-client"));
    assert_eq!(seen[0].header("authorization"), None);
}

#[test]
fn in_cluster_service_account_token_and_ca() {
    let api = api();
    let mut side = Sidecar::with_secrets(&[TOKEN]);
    side.file("sa/token", &format!("{TOKEN}\n"));
    side.file("sa/ca.crt", &api.pki.read("ca.crt"));
    side.set("KUBERNETES_SERVICE_HOST", "127.0.0.1");
    side.set("KUBERNETES_SERVICE_PORT", &api.front.port.to_string());
    let dir = side.home.path().join("sa");
    side.set("KUSTODIAN_K8S_SERVICE_ACCOUNT_DIR", dir.to_str().unwrap());
    side.set("KUSTODIAN_K8S_ALLOWED_NAMESPACES", "team-a");
    side.render(&secret_doc(&[("a", "ref+k8s://v1/Secret/team-a/db/user")]))
        .expect_ok()
        .has("a", "canary-k8s-user");
    assert_eq!(
        api.server.seen()[0].header("authorization"),
        Some(format!("Bearer {TOKEN}").as_str())
    );
}

/// A repository writer names the namespace; the operator's allow-list decides, before any
/// request is made with the sidecar's identity. Without a list, nothing is read.
#[test]
fn namespaces_outside_the_operator_allow_list_are_refused_before_any_request() {
    let api = api();
    let mut side = sidecar(&api);
    side.set("KUSTODIAN_K8S_ALLOWED_NAMESPACES", "team-a");
    side.render(&secret_doc(&[
        ("a", "ref+k8s://v1/Secret/team-b/api/key"),
        ("b", "ref+k8s://v1/Secret/kube-system/bootstrap/token"),
    ]))
    .expect_failure(&[
        "team-b/api/key",
        "namespace team-b is not in KUSTODIAN_K8S_ALLOWED_NAMESPACES",
        "namespace kube-system is not in",
    ]);
    side.unset("KUSTODIAN_K8S_ALLOWED_NAMESPACES");
    side.set("ARGOCD_ENV_KUSTODIAN_K8S_ALLOWED_NAMESPACES", "*");
    side.render(&secret_doc(&[(
        "a",
        "ref+k8s://v1/Secret/team-a/db/password",
    )]))
    .expect_failure(&["KUSTODIAN_K8S_ALLOWED_NAMESPACES is not set"]);
    // Names cannot smuggle another path into the request.
    side.set("KUSTODIAN_K8S_ALLOWED_NAMESPACES", "*");
    side.set("AVP_TYPE", "kubernetessecret");
    side.render(&secret_doc(&[(
        "a",
        "<path:team-a:db/../../../apis#password>",
    )]))
    .expect_failure(&["is not a Kubernetes name"]);
    assert!(api.server.seen().is_empty(), "{:?}", api.server.seen());
}

#[test]
fn forbidden_missing_and_unauthorized_answers() {
    let api = api();
    let mut side = sidecar(&api);
    side.set("KUSTODIAN_K8S_ALLOWED_NAMESPACES", "team-*");
    side.render(&secret_doc(&[
        ("a", "ref+k8s://v1/Secret/team-c/db/password"),
        ("b", "ref+k8s://v1/Secret/team-a/nothing/password"),
        ("c", "ref+k8s://v1/Secret/team-a/db/nokey"),
    ]))
    .expect_failure(&[
        "team-c/db/password: permission denied",
        "cannot get resource \"secrets\" in API group \"\" in the namespace \"team-c\"",
        "grant `get`",
        "team-a/nothing/password: not found",
        "has no key \"nokey\"",
    ]);
    let cfg = kubeconfig(
        &api,
        &format!("    certificate-authority-data: {}\n", api.ca_data()),
        "    token: canary-revoked-token-0123456789\n",
    );
    side.secrets.push("canary-revoked-token-0123456789".into());
    let path = side.file(".kube/revoked", &cfg);
    side.set("KUBECONFIG", path.to_str().unwrap());
    let r = side.render(&secret_doc(&[
        ("a", "ref+k8s://v1/Secret/team-a/db/password"),
        ("b", "ref+k8s://v1/Secret/team-b/api/key"),
    ]));
    r.expect_failure(&["refused the credentials", "401: Unauthorized"]);
    assert_eq!(
        r.stderr.matches("refused the credentials").count(),
        1,
        "{}",
        r.stderr
    );
}

#[test]
fn throttling_honours_retry_after() {
    let api = api();
    let side = sidecar(&api);
    api.throttle.store(1, Ordering::SeqCst);
    let started = Instant::now();
    side.render(&secret_doc(&[(
        "a",
        "ref+k8s://v1/Secret/team-a/db/password",
    )]))
    .expect_ok()
    .has("a", "canary-k8s-pass");
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert_eq!(api.count("team-a", "db"), 2);
    api.throttle.store(100, Ordering::SeqCst);
    side.render(&secret_doc(&[(
        "a",
        "ref+k8s://v1/Secret/team-a/db/password",
    )]))
    .expect_failure(&["429", "Too many requests"]);
}

#[test]
fn a_server_certificate_from_another_ca_is_refused() {
    let api = api();
    let other = standin::Pki::new("someone");
    let mut side = sidecar(&api);
    let cfg = kubeconfig(
        &api,
        &format!(
            "    certificate-authority: {}\n",
            other.path("ca.crt").display()
        ),
        &format!("    token: {TOKEN}\n"),
    );
    let path = side.file(".kube/other-ca", &cfg);
    side.set("KUBECONFIG", path.to_str().unwrap());
    side.render(&secret_doc(&[(
        "a",
        "ref+k8s://v1/Secret/team-a/db/password",
    )]))
    .expect_failure(&["cannot reach https://127.0.0.1", "TLS"]);
    assert!(
        api.server.seen().is_empty(),
        "the token never reached the server"
    );
}

#[test]
fn exec_plugins_and_a_missing_connection_are_clear_configuration_errors() {
    let api = api();
    let mut side = sidecar(&api);
    let good = side
        .vars
        .iter()
        .find(|(k, _)| k == "KUBECONFIG")
        .unwrap()
        .1
        .clone();
    let cfg = kubeconfig(
        &api,
        "",
        "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: aws\n      args: [eks, get-token]\n",
    );
    let path = side.file(".kube/exec", &cfg);
    side.set("KUBECONFIG", path.to_str().unwrap());
    side.render(&secret_doc(&[(
        "a",
        "ref+k8s://v1/Secret/team-a/db/password",
    )]))
    .expect_failure(&[
        "exec credential plugins",
        "token, a tokenFile or a client certificate",
    ]);
    side.unset("KUBECONFIG");
    side.render(&secret_doc(&[(
        "a",
        "ref+k8s://v1/Secret/team-a/db/password",
    )]))
    .expect_failure(&["no Kubernetes connection", "KUBECONFIG"]);
    side.set("ARGOCD_ENV_KUBECONFIG", path.to_str().unwrap());
    side.render(&secret_doc(&[(
        "a",
        "ref+k8s://v1/Secret/team-a/db/password",
    )]))
    .expect_failure(&["KUBECONFIG was ignored", "no Kubernetes connection"]);
    side.set("KUBECONFIG", &good);
    side.render(&secret_doc(&[(
        "a",
        "ref+k8s://v1/Secret/team-a/db/password?kubeContext=admin",
    )]))
    .expect_failure(&["?kubeContext="]);
    assert!(api.server.seen().is_empty());
}

/// `out` holds the team-a and team-b values, each Secret read once.
fn resolved_team_a_and_b_once(api: &KubeApi, out: &rendered::Render) {
    out.expect_ok()
        .has("password", "canary-k8s-pass")
        .has("key", "canary-k8s-key");
    assert_eq!(
        (api.count("team-a", "db"), api.count("team-b", "api")),
        (1, 1)
    );
}

/// The legacy kustomize exec plugin (`kind: Resolver`), run by `kubectl kustomize
/// --enable-alpha-plugins`, resolves Kubernetes references with the sidecar's settings.
#[test]
fn legacy_kustomize_resolver_resolves_k8s_references() {
    let api = api();
    let mut side = sidecar(&api);
    side.set("AVP_TYPE", "kubernetessecret");
    side.run(&["install-kustomize-plugin"], "").expect_ok();
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/kubernetes/legacy-resolver-resolves-k8s-references");
    let out = side.run_program(
        Path::new("kubectl"),
        &["kustomize", "--enable-alpha-plugins", dir.to_str().unwrap()],
        "",
    );
    // kubectl itself asks for /version with the same kubeconfig; kustodian reads each Secret once.
    resolved_team_a_and_b_once(&api, &out);
}

/// `kustodian krm` run by `kpt fn eval --exec` resolves Kubernetes references with the
/// sidecar's settings, and a namespace outside the allow-list fails the function without a value.
#[test]
fn krm_function_via_kpt_fn_eval_resolves_k8s_references() {
    let api = api();
    let mut side = sidecar(&api);
    side.set("AVP_TYPE", "kubernetessecret");
    let pkg = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/kubernetes/krm-function-via-kpt-fn-eval");
    let bins = example::bin_dir();
    let krm = bins.path().join("kustodian-krm");
    let eval = |side: &Sidecar| {
        side.run_program(
            Path::new("kpt"),
            &[
                "fn",
                "eval",
                "--exec",
                krm.to_str().unwrap(),
                pkg.to_str().unwrap(),
                "-o",
                "stdout",
            ],
            "",
        )
    };
    resolved_team_a_and_b_once(&api, &eval(&side));
    side.set("KUSTODIAN_K8S_ALLOWED_NAMESPACES", "team-a");
    let r = eval(&side);
    assert!(!r.ok, "{}", r.stdout);
    assert!(
        r.stderr.contains("team-b") && r.stderr.contains("KUSTODIAN_K8S_ALLOWED_NAMESPACES"),
        "{}",
        r.stderr
    );
    assert_eq!(
        api.count("team-b", "api"),
        1,
        "no request outside the allow-list"
    );
}

/// The Argo CD plugin as argocd-cmp-server runs it, with the operator's allow-list
/// `$ARGOCD_APP_NAMESPACE`: an Application reads the Secrets of the namespace it deploys to,
/// and a reference to another namespace fails before any request.
#[test]
fn argocd_plugin_reads_only_the_applications_own_namespace() {
    let api = api();
    let side = sidecar(&api);
    let repo = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/kubernetes/argocd-app-reads-its-own-namespace");
    example::copy_dir(&fixture, &repo.path().join("apps/app"));
    let bins = example::bin_dir();
    let kubeconfig = side
        .vars
        .iter()
        .find(|(k, _)| k == "KUBECONFIG")
        .unwrap()
        .1
        .clone();
    let sidecar_env = [
        ("KUBECONFIG", kubeconfig.as_str()),
        ("KUSTODIAN_K8S_ALLOWED_NAMESPACES", "$ARGOCD_APP_NAMESPACE"),
    ];
    let run = |namespace: &str| {
        let app = example::AppInput {
            name: "app".into(),
            namespace: namespace.into(),
            source_path: "apps/app".into(),
            env: vec![("AVP_TYPE".into(), "kubernetessecret".into())],
            ..Default::default()
        };
        let r = example::run_cmp(
            &example::plugin("kustodian"),
            repo.path(),
            &app,
            bins.path(),
            &sidecar_env,
        );
        assert!(
            !r.stderr().contains("canary") && !r.stderr().contains(TOKEN),
            "{}",
            r.stderr()
        );
        r
    };
    let ok = run("team-a");
    assert!(ok.output.status.success(), "{}", ok.stderr());
    assert!(ok.stdout().contains("canary-k8s-pass") && ok.stdout().contains("canary-k8s-user"));
    assert_eq!(api.count("team-a", "db"), 1);
    let other = run("team-b");
    assert!(!other.output.status.success() && other.stdout().is_empty());
    assert!(
        other
            .stderr()
            .contains("namespace team-a is not in KUSTODIAN_K8S_ALLOWED_NAMESPACES"),
        "{}",
        other.stderr()
    );
    assert_eq!(
        api.count("team-a", "db"),
        1,
        "no request for another namespace"
    );
}
