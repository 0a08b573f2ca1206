//! End-to-end tests of the GCP Secret Manager store: the built `kustodian render` against
//! drongo's server (the real Secret Manager REST API) through a recording proxy, with Google's
//! token endpoints (JWT grant, STS token exchange, the metadata server) played by a loopback
//! stand-in that checks the signed assertion with the service account's public key.
//!
//! Every value and token holds `canary`; every run checks that stderr holds none of them and
//! that a failed render prints nothing on stdout.

#[path = "fixtures/example/support.rs"]
mod example;
#[path = "support/google.rs"]
mod google;
#[path = "support/moto.rs"]
mod moto;
#[path = "support/rendered.rs"]
mod rendered;
#[path = "support/sidecar.rs"]
mod sidecar;

use google::{drongo, json_response, rsa_key, service_account_json, token_server, Google};
use moto::{response, Proxy, Rule, Seen};
use serde_json::json;
use sidecar::{secret_doc, unique, Sidecar};

const TOKEN: &str = "canary-access-token-gcp";
const EMAIL: &str = "kustodian@proj.iam.gserviceaccount.com";

/// A sidecar with a service-account key, the token stand-in and a proxy in front of drongo
/// (`rule` may answer some requests itself).
struct Gcp {
    side: Sidecar,
    tokens: Proxy,
    api: Proxy,
}

fn with_service_account(rule: Rule) -> Gcp {
    let mut side = Sidecar::new("gcpsecretmanager");
    let key = rsa_key(side.home.path(), "sa");
    let tokens = token_server(Google {
        service_account: Some((EMAIL.into(), key.public_der.clone())),
        token: TOKEN.into(),
        ..Default::default()
    });
    let creds = service_account_json(&key, EMAIL, &tokens.url);
    let file = side.file("sa.json", &creds);
    side.set("GOOGLE_APPLICATION_CREDENTIALS", file.to_str().unwrap());
    let api = Proxy::start(Some(&drongo().url), rule);
    side.set(
        "CLOUDSDK_API_ENDPOINT_OVERRIDES_SECRETMANAGER",
        &format!("{}/", api.url),
    );
    side.secrets.push(TOKEN.into());
    side.secrets
        .extend(key.pem.lines().nth(3).map(str::to_string));
    Gcp { side, tokens, api }
}

fn pass() -> Rule {
    Box::new(|_, _| None)
}

/// Requests to the Secret Manager API for one secret and version.
fn accesses(api: &Proxy, project: &str, secret: &str, version: &str) -> usize {
    let path = format!("/v1/projects/{project}/secrets/{secret}/versions/{version}:access");
    api.seen().iter().filter(|s| s.path == path).count()
}

fn google_error(status: u16, code: &str, message: &str) -> String {
    json_response(
        status,
        &json!({"error": {"code": status, "message": message, "status": code}}),
    )
}

#[test]
fn service_account_key_reads_secrets_once_per_secret_and_version() {
    let p = unique("proj");
    drongo().secret(
        &p,
        "db",
        &[
            r#"{"username":"canary-user","password":"canary-pw-1"}"#,
            r#"{"username":"canary-user","password":"canary-pw-2"}"#,
        ],
    );
    drongo().secret(&p, "plain", &["canary-plain-text"]);
    let g = with_service_account(pass());
    let doc = secret_doc(&[
        ("a", &format!("<path:projects/{p}/secrets/db#password>")),
        (
            "b",
            &format!("<path:projects/{p}/secrets/db/versions/1#password>"),
        ),
        ("c", &format!("<path:projects/{p}/secrets/db#password#1>")),
        ("d", &format!("ref+gcpsecrets://{p}/db#/username")),
        ("e", &format!("ref+gcpsecrets://{p}/plain")),
        ("f", &format!("ref+gcpsecrets://{p}/db?version=1#/password")),
        ("g", &format!("<path:projects/{p}/secrets/plain#plain>")),
    ]);
    g.side
        .render(&doc)
        .expect_ok()
        .has("a", "canary-pw-2")
        .has("b", "canary-pw-1")
        .has("c", "canary-pw-1")
        .has("d", "canary-user")
        .has("e", "canary-plain-text")
        .has("f", "canary-pw-1")
        .has("g", "canary-plain-text");
    assert_eq!(accesses(&g.api, &p, "db", "latest"), 1);
    assert_eq!(accesses(&g.api, &p, "db", "1"), 1);
    assert_eq!(accesses(&g.api, &p, "plain", "latest"), 1);
    assert_eq!(g.api.seen().len(), 3, "{:?}", g.api.seen());
    for s in g.api.seen() {
        assert_eq!(s.header("authorization"), Some(&*format!("Bearer {TOKEN}")));
    }
    // One signed JWT grant; the next render reuses the cached token (a 0600 file).
    assert_eq!(g.tokens.seen().len(), 1);
    g.side.render(&doc).expect_ok();
    assert_eq!(g.tokens.seen().len(), 1, "the token was not reused");
    assert_eq!(g.side.cache_files("gcp-tokens").len(), 1);
}

#[test]
fn missing_forbidden_and_throttled_secrets() {
    let p = unique("errs");
    drongo().secret(&p, "there", &["canary-there"]);
    drongo().secret(&p, "busy", &["canary-busy"]);
    let throttled = std::sync::atomic::AtomicUsize::new(0);
    let g = with_service_account(Box::new(move |s: &Seen, _| {
        if s.path.contains("/secrets/locked/") {
            return Some(google_error(
                403,
                "PERMISSION_DENIED",
                "Permission 'secretmanager.versions.access' denied for resource",
            ));
        }
        if s.path.contains("/secrets/busy/")
            && throttled.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0
        {
            let body = json!({"error": {"code": 429, "message": "Quota exceeded", "status": "RESOURCE_EXHAUSTED"}}).to_string();
            return Some(format!(
                "HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\nRetry-After: 1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            ));
        }
        None
    }));
    g.side
        .render(&secret_doc(&[("a", &format!("ref+gcpsecrets://{p}/gone"))]))
        .expect_failure(&[
            &format!("projects/{p}/secrets/gone/versions/latest"),
            "not found",
        ]);
    g.side
        .render(&secret_doc(&[(
            "a",
            &format!("ref+gcpsecrets://{p}/there?version=9"),
        )]))
        .expect_failure(&["versions/9", "not found"]);
    g.side
        .render(&secret_doc(&[(
            "a",
            &format!("ref+gcpsecrets://{p}/locked"),
        )]))
        .expect_failure(&[
            "permission denied",
            "PERMISSION_DENIED",
            "roles/secretmanager.secretAccessor",
            EMAIL,
        ]);
    // Throttled once with Retry-After: waited for, retried, rendered.
    let started = std::time::Instant::now();
    g.side
        .render(&secret_doc(&[("a", &format!("ref+gcpsecrets://{p}/busy"))]))
        .expect_ok()
        .has("a", "canary-busy");
    assert!(started.elapsed() >= std::time::Duration::from_secs(1));
    assert_eq!(accesses(&g.api, &p, "busy", "latest"), 2);
}

#[test]
fn a_key_the_token_endpoint_does_not_know_fails_the_login_closed() {
    let mut g = with_service_account(pass());
    // A second key: well formed, signed, but not the service account's.
    let other = rsa_key(g.side.home.path(), "other");
    let creds = json!({
        "type": "service_account", "private_key_id": "key-2", "private_key": other.pem,
        "client_email": EMAIL, "token_uri": format!("{}/token", g.tokens.url),
    });
    let file = g.side.file("other.json", &creds.to_string());
    g.side
        .set("GOOGLE_APPLICATION_CREDENTIALS", file.to_str().unwrap());
    g.side
        .secrets
        .extend(other.pem.lines().nth(3).map(str::to_string));
    g.side
        .render(&secret_doc(&[
            ("a", "ref+gcpsecrets://proj/db"),
            ("b", "ref+gcpsecrets://proj/other"),
        ]))
        .expect_failure(&["invalid_grant", "Invalid JWT Signature", EMAIL]);
    assert!(g.api.seen().is_empty());
    assert_eq!(g.tokens.seen().len(), 1, "the failed login is made once");
}

#[test]
fn credential_files_are_checked_before_any_request() {
    let mut g = with_service_account(pass());
    let doc = secret_doc(&[("a", "ref+gcpsecrets://proj/db")]);
    let f = g.side.file(
        "plain-http.json",
        &json!({
            "type": "service_account", "private_key": "x", "client_email": EMAIL,
            "token_uri": "http://oauth.example.com/token",
        })
        .to_string(),
    );
    g.side
        .set("GOOGLE_APPLICATION_CREDENTIALS", f.to_str().unwrap());
    g.side
        .render(&doc)
        .expect_failure(&["token_uri", "https://"]);
    let f = g.side.file(
        "user.json",
        r#"{"type": "authorized_user", "refresh_token": "canary-refresh"}"#,
    );
    g.side
        .set("GOOGLE_APPLICATION_CREDENTIALS", f.to_str().unwrap());
    g.side
        .render(&doc)
        .expect_failure(&["authorized_user", "service_account"]);
    let f = g.side.file(
        "broken.json",
        "{\n  \"type\": \"service_account\",\n  oops\n}",
    );
    g.side
        .set("GOOGLE_APPLICATION_CREDENTIALS", f.to_str().unwrap());
    g.side
        .render(&doc)
        .expect_failure(&["broken.json", "line 3"]);
    assert!(g.api.seen().is_empty() && g.tokens.seen().is_empty());
}

#[test]
fn workload_identity_federation_exchanges_the_projected_token_at_sts() {
    let p = unique("wif");
    drongo().secret(&p, "app", &[r#"{"password":"canary-wif"}"#]);
    let audience = "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/argocd/providers/gke";
    let projected = "canary-projected-sa-token";
    let tokens = token_server(Google {
        federation: Some((audience.into(), projected.into())),
        token: TOKEN.into(),
        ..Default::default()
    });
    let api = Proxy::pass(&drongo().url);
    let mut side = Sidecar::new("gcpsecretmanager");
    side.secrets
        .extend([TOKEN.to_string(), projected.to_string()]);
    let token_file = side.file("var/run/secrets/tokens/gcp-token", projected);
    let creds = json!({
        "type": "external_account", "audience": audience,
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "token_url": format!("{}/v1/token", tokens.url),
        "credential_source": {"file": token_file},
    });
    let f = side.file("wif.json", &creds.to_string());
    side.set("GOOGLE_APPLICATION_CREDENTIALS", f.to_str().unwrap());
    side.set("CLOUDSDK_API_ENDPOINT_OVERRIDES_SECRETMANAGER", &api.url);
    side.render(&secret_doc(&[(
        "a",
        &format!("<path:projects/{p}/secrets/app#password>"),
    )]))
    .expect_ok()
    .has("a", "canary-wif");
    assert_eq!(tokens.seen().len(), 1);
    assert_eq!(tokens.seen()[0].path, "/v1/token");
    assert_eq!(
        api.seen()[0].header("authorization"),
        Some(&*format!("Bearer {TOKEN}"))
    );
    // With service_account_impersonation_url, the federated token generates the service
    // account's token, which reads the secret.
    let mut creds = creds;
    creds["service_account_impersonation_url"] = json!(format!(
        "{}/v1/projects/-/serviceAccounts/{EMAIL}:generateAccessToken",
        tokens.url
    ));
    let f = side.file("wif-impersonate.json", &creds.to_string());
    side.set("GOOGLE_APPLICATION_CREDENTIALS", f.to_str().unwrap());
    side.render(&secret_doc(&[(
        "a",
        &format!("ref+gcpsecrets://{p}/app#/password"),
    )]))
    .expect_ok()
    .has("a", "canary-wif");
    let last = api.seen().pop().unwrap();
    assert_eq!(
        last.header("authorization"),
        Some(&*format!("Bearer {TOKEN}-impersonated"))
    );
    assert_eq!(tokens.seen().len(), 3, "{:?}", tokens.seen());
    // A projected token the pool does not accept: the exchange's refusal, no value.
    side.file("var/run/secrets/tokens/gcp-token", "canary-stale-token");
    side.set("KUSTODIAN_GCP_TOKEN_CACHE", "off");
    side.render(&secret_doc(&[("a", &format!("ref+gcpsecrets://{p}/app"))]))
        .expect_failure(&["STS token exchange", "invalid_grant"]);
}

#[test]
fn gke_metadata_server_gives_the_token_when_no_credentials_file_is_set() {
    let p = unique("gke");
    drongo().secret(&p, "app", &["canary-gke"]);
    let tokens = token_server(Google {
        token: TOKEN.into(),
        ..Default::default()
    });
    let api = Proxy::pass(&drongo().url);
    let mut side = Sidecar::new("gcpsecretmanager");
    side.secrets.push(TOKEN.into());
    side.set(
        "GCE_METADATA_HOST",
        tokens.url.trim_start_matches("http://"),
    );
    side.set("CLOUDSDK_API_ENDPOINT_OVERRIDES_SECRETMANAGER", &api.url);
    side.render(&secret_doc(&[
        ("a", &format!("ref+gcpsecrets://{p}/app")),
        ("b", &format!("<path:projects/{p}/secrets/app#app>")),
    ]))
    .expect_ok()
    .has("a", "canary-gke")
    .has("b", "canary-gke");
    assert_eq!(api.seen().len(), 1);
    let md = &tokens.seen()[0];
    assert_eq!(
        md.path,
        "/computeMetadata/v1/instance/service-accounts/default/token"
    );
    assert_eq!(md.header("metadata-flavor"), Some("Google"));
}

/// An Application may pick the gcp store once the operator configured it, and never move its
/// endpoint or credentials.
#[test]
fn application_picks_the_store_but_not_its_endpoint_or_credentials() {
    let p = unique("app");
    drongo().secret(&p, "app", &["canary-app-choice"]);
    let attacker = Proxy::start(None, Box::new(|_, _| Some(response(500, "text/plain", ""))));
    let mut g = with_service_account(pass());
    g.side.unset("AVP_TYPE");
    g.side.set("ARGOCD_ENV_AVP_TYPE", "gcpsecretmanager");
    g.side.set(
        "ARGOCD_ENV_CLOUDSDK_API_ENDPOINT_OVERRIDES_SECRETMANAGER",
        &attacker.url,
    );
    g.side.set(
        "ARGOCD_ENV_GCE_METADATA_HOST",
        attacker.url.trim_start_matches("http://"),
    );
    g.side
        .set("ARGOCD_ENV_GOOGLE_APPLICATION_CREDENTIALS", "/etc/passwd");
    let doc = secret_doc(&[("a", &format!("<path:projects/{p}/secrets/app#app>"))]);
    let r = g.side.render(&doc);
    r.expect_ok().has("a", "canary-app-choice");
    assert!(
        r.stderr
            .contains("ARGOCD_ENV_GOOGLE_APPLICATION_CREDENTIALS")
            || r.stderr
                .contains("GOOGLE_APPLICATION_CREDENTIALS was ignored"),
        "{}",
        r.stderr
    );
    assert!(attacker.seen().is_empty());
    // Without the operator's Google settings, the Application cannot pick gcp.
    g.side.unset("GOOGLE_APPLICATION_CREDENTIALS");
    g.side
        .render(&doc)
        .expect_failure(&["gcp store", "not configured"]);
}

/// The same references through `render DIR`, the KRM function, the legacy kustomize plugin and
/// the Argo CD plugin.
#[test]
fn every_render_path_resolves_gcp_references() {
    drongo().secret(
        "fixture-proj",
        "app",
        &[r#"{"password":"canary-paths-pw","url":"https://canary.example"}"#],
    );
    let g = with_service_account(pass());
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/gcp/every-render-path");
    sidecar::every_render_path(
        &g.side,
        &dir,
        "gcpsecretmanager",
        &[
            ("password", "canary-paths-pw"),
            ("url", "https://canary.example"),
        ],
    );
    // Four processes with one HOME share the cached token; the plugin has a HOME of its own.
    assert_eq!(g.tokens.seen().len(), 2);
}

/// A Secret Manager that cannot be reached fails the store once, for every reference to it.
#[test]
fn an_unreachable_endpoint_fails_the_store_once() {
    let mut g = with_service_account(pass());
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    g.side.set(
        "CLOUDSDK_API_ENDPOINT_OVERRIDES_SECRETMANAGER",
        &format!("http://{closed}"),
    );
    g.side.set("KUSTODIAN_CLOUD_MAX_ATTEMPTS", "1");
    let r = g.side.render(&secret_doc(&[
        ("a", "ref+gcpsecrets://proj/one"),
        ("b", "ref+gcpsecrets://proj/two"),
    ]));
    r.expect_failure(&[
        "gcp store cannot be used",
        "connection refused",
        "CLOUDSDK_API_ENDPOINT_OVERRIDES_SECRETMANAGER",
        "2 references",
    ]);
}

/// A token Secret Manager refuses (revoked) is dropped from the cache: the next render logs in
/// anew instead of failing until the token expires.
#[test]
fn a_refused_token_is_dropped_from_the_cache() {
    let p = unique("revoked");
    drongo().secret(&p, "app", &["canary-after-login"]);
    let g = with_service_account(Box::new(|s: &Seen, _| {
        s.path.contains("/secrets/revoked/").then(|| {
            google_error(
                401,
                "UNAUTHENTICATED",
                "Request had invalid authentication credentials.",
            )
        })
    }));
    g.side
        .render(&secret_doc(&[(
            "a",
            &format!("ref+gcpsecrets://{p}/revoked"),
        )]))
        .expect_failure(&["refused the token", "UNAUTHENTICATED", "log in anew"]);
    assert!(g.side.cache_files("gcp-tokens").is_empty());
    g.side
        .render(&secret_doc(&[("a", &format!("ref+gcpsecrets://{p}/app"))]))
        .expect_ok()
        .has("a", "canary-after-login");
    assert_eq!(g.tokens.seen().len(), 2);
}
