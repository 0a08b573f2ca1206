//! End-to-end tests of the 1Password Connect store: the built `kustodian` against a loopback
//! stand-in of the Connect REST API (tests/support/op_connect.rs). `op://` references (whole
//! values, `{{ op://... }}` templates, `ref+op://`) and argocd-vault-plugin's
//! `1passwordconnect` placeholders; one request per distinct vault name, item title and item;
//! the bearer token on every request; missing, refused, forbidden and throttled answers.
//!
//! Every value holds `canary`, and so does the Connect token: no output but a successful
//! render's stdout may hold either.

#[path = "fixtures/example/support.rs"]
mod example;
#[path = "support/op_connect.rs"]
mod op_connect;
#[path = "support/rendered.rs"]
mod rendered;
#[path = "support/sidecar.rs"]
mod sidecar;
#[path = "support/standin.rs"]
mod standin;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use op_connect::{Connect, Vault};
use serde_json::json;
use sidecar::{secret_doc, Sidecar};
use standin::{Reply, Server};

const TOKEN: &str = "eyJhbGciOiJFUzI1NiJ9.canary-op-connect-token.c2lnbmF0dXJl";
const PROD: &str = "prodvault0000000000000000a";
const SHARED: &str = "sharedvault000000000000000";
const DB: &str = "dbitem00000000000000000000";

fn db_item() -> serde_json::Value {
    json!({
        "id": DB, "title": "db", "vault": {"id": PROD}, "category": "LOGIN",
        "sections": [{"id": "adminsection", "label": "admin"}],
        "fields": [
            {"id": "username", "type": "STRING", "purpose": "USERNAME", "label": "username", "value": "canary-op-user"},
            {"id": "password", "type": "CONCEALED", "purpose": "PASSWORD", "label": "password", "value": "canary-op-pass"},
            {"id": "tokfield", "section": {"id": "adminsection"}, "type": "CONCEALED", "label": "token", "value": "canary-op-admin"}
        ]
    })
}

/// Connect with a `Prod` vault (item `db`) and a `Shared` vault the token may not use.
fn connect() -> Connect {
    Connect::start(
        TOKEN,
        vec![
            Vault {
                id: PROD.into(),
                name: "Prod".into(),
                granted: true,
                items: vec![db_item()],
            },
            Vault {
                id: SHARED.into(),
                name: "Shared".into(),
                granted: false,
                items: vec![json!({"id": "x", "title": "x", "fields": []})],
            },
        ],
    )
}

fn sidecar(c: &Connect) -> Sidecar {
    let mut s = Sidecar::with_secrets(&[TOKEN]);
    s.set("OP_CONNECT_HOST", &c.server.url);
    s.set("OP_CONNECT_TOKEN", TOKEN);
    s
}

const ITEM: &str = "/v1/vaults/prodvault0000000000000000a/items/dbitem00000000000000000000";

#[test]
fn op_references_resolve_with_one_request_per_vault_item_and_the_bearer_token() {
    let c = connect();
    let side = sidecar(&c);
    side.render(&secret_doc(&[
        ("password", "op://Prod/db/password"),
        ("user", "op://Prod/db/username"),
        ("admin", "op://Prod/db/admin/token"),
        ("by_id", "op://prodvault0000000000000000a/db/tokfield"),
        (
            "dsn",
            "postgres://{{ op://Prod/db/username }}:{{op://Prod/db/password}}@db:5432",
        ),
        ("vals", "ref+op://Prod/db/password"),
    ]))
    .expect_ok()
    .has("password", "canary-op-pass")
    .has("user", "canary-op-user")
    .has("admin", "canary-op-admin")
    .has("by_id", "canary-op-admin")
    .has("dsn", "postgres://canary-op-user:canary-op-pass@db:5432")
    .has("vals", "canary-op-pass");
    assert_eq!(c.count("/v1/vaults"), 1, "one vault lookup by name");
    assert_eq!(
        c.count(&format!("/v1/vaults/{PROD}/items")),
        1,
        "one title lookup"
    );
    assert_eq!(
        c.count(ITEM),
        1,
        "one read of the item for every field used"
    );
    let seen = c.server.seen();
    assert!(seen
        .iter()
        .all(|r| r.header("authorization") == Some(&format!("Bearer {TOKEN}"))));
    let lookup = seen.iter().find(|r| r.path() == "/v1/vaults").unwrap();
    assert_eq!(lookup.query("filter").as_deref(), Some("name eq \"Prod\""));
}

/// argocd-vault-plugin's `AVP_TYPE=1passwordconnect`: `<path:vaults/VAULT/items/ITEM#FIELD>`,
/// the item's fields by label.
#[test]
fn avp_1passwordconnect_placeholders_read_fields_by_label() {
    let c = connect();
    let mut side = sidecar(&c);
    side.set("AVP_TYPE", "1passwordconnect");
    side.render(&secret_doc(&[
        ("p", &format!("<path:vaults/{PROD}/items/{DB}#password>")),
        (
            "u",
            &format!("<path:vaults/{PROD}/items/{DB}#username | base64encode>"),
        ),
        ("t", "<path:vaults/Prod/items/db#token>"),
    ]))
    .expect_ok()
    .has("p", "canary-op-pass")
    .has("u", "Y2FuYXJ5LW9wLXVzZXI=")
    .has("t", "canary-op-admin");
    assert_eq!(
        c.count(ITEM),
        1,
        "named by ID or by name, the item is read once"
    );
    side.render(&secret_doc(&[("p", "<path:Prod/db#password>")]))
        .expect_failure(&["<path:vaults/VAULT/items/ITEM#FIELD>"]);
}

#[test]
fn missing_vault_item_and_field_fail_closed_naming_the_reference() {
    let c = connect();
    let side = sidecar(&c);
    side.render(&secret_doc(&[
        ("a", "op://Nope/db/password"),
        ("b", "op://Prod/nothing/password"),
        ("c", "op://Prod/db/nofield"),
        ("d", "op://Prod/db/nosection/token"),
    ]))
    .expect_failure(&[
        "op://Nope/db/password",
        "no vault \"Nope\"",
        "op://Prod/nothing/password",
        "no item \"nothing\"",
        "op://Prod/db/nofield",
        "no field \"nofield\"",
        "section \"nosection\"",
    ]);
    side.render(&secret_doc(&[("a", "op://Prod/db")]))
        .expect_failure(&["op://VAULT/ITEM/FIELD"]);
    side.render(&secret_doc(&[("a", "op://Prod/db/password?attribute=otp")]))
        .expect_failure(&["?attribute="]);
}

#[test]
fn a_refused_token_is_one_store_wide_error_without_the_token() {
    let c = connect();
    let mut side = sidecar(&c);
    side.set("OP_CONNECT_TOKEN", "canary-wrong-token-1234567890");
    side.secrets.push("canary-wrong-token-1234567890".into());
    let r = side.render(&secret_doc(&[
        ("a", "op://Prod/db/password"),
        ("b", "op://Prod/other/password"),
    ]));
    r.expect_failure(&["refused OP_CONNECT_TOKEN", "401", "Invalid token signature"]);
    assert_eq!(
        r.stderr.matches("refused OP_CONNECT_TOKEN").count(),
        1,
        "{}",
        r.stderr
    );
}

#[test]
fn a_vault_the_token_may_not_use_is_denied() {
    let c = connect();
    let side = sidecar(&c);
    side.render(&secret_doc(&[("a", &format!("op://{SHARED}/x/f"))]))
        .expect_failure(&["permission denied", "403", "access to this vault"]);
}

#[test]
fn throttling_is_retried_after_retry_after_then_given_up() {
    let c = connect();
    let side = sidecar(&c);
    c.throttle.store(2, Ordering::SeqCst);
    let started = Instant::now();
    side.render(&secret_doc(&[("a", &format!("op://{PROD}/{DB}/password"))]))
        .expect_ok()
        .has("a", "canary-op-pass");
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "Retry-After: 1 was not honoured"
    );
    assert_eq!(c.count(ITEM), 3);
    c.throttle.store(100, Ordering::SeqCst);
    side.render(&secret_doc(&[("a", &format!("op://{PROD}/{DB}/password"))]))
        .expect_failure(&["429", "Too Many Requests"]);
    assert_eq!(c.count(ITEM), 3 + 4, "four attempts, then the error");
}

/// Where Connect is and its token are the operator's: an Application's `ARGOCD_ENV_OP_*` is
/// ignored with a warning, and never reached.
#[test]
fn connect_settings_come_only_from_the_operator() {
    let attacker = Server::start(|_| Reply::json(500, json!({})));
    let mut side = Sidecar::with_secrets(&[]);
    side.set("ARGOCD_ENV_OP_CONNECT_HOST", &attacker.url);
    side.set("ARGOCD_ENV_OP_CONNECT_TOKEN", "canary-app-token");
    side.render(&secret_doc(&[("a", "op://Prod/db/password")]))
        .expect_failure(&["OP_CONNECT_HOST is not set", "OP_CONNECT_HOST was ignored"]);
    assert!(attacker.seen().is_empty());
    // An Application may pick the store only when the operator configured it.
    side.set("ARGOCD_ENV_AVP_TYPE", "1passwordconnect");
    side.render(&secret_doc(&[(
        "a",
        "<path:vaults/Prod/items/db#password>",
    )]))
    .expect_failure(&["onepassword store, which the operator has not configured"]);
    let c = connect();
    let mut side = sidecar(&c);
    side.set("ARGOCD_ENV_AVP_TYPE", "1passwordconnect");
    side.render(&secret_doc(&[(
        "a",
        "<path:vaults/Prod/items/db#password>",
    )]))
    .expect_ok()
    .has("a", "canary-op-pass");
}

#[test]
fn an_unreachable_connect_server_is_one_clear_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut side = Sidecar::with_secrets(&[TOKEN]);
    side.set("OP_CONNECT_HOST", &format!("http://127.0.0.1:{port}"));
    side.set("OP_CONNECT_TOKEN", TOKEN);
    side.set("KUSTODIAN_OP_CONNECT_TIMEOUT", "3");
    side.render(&secret_doc(&[
        ("a", "op://Prod/db/password"),
        ("b", "op://Prod/db/username"),
    ]))
    .expect_failure(&["cannot reach http://127.0.0.1", "OP_CONNECT_HOST"]);
}

/// `kustodian krm`: the KRM function resolves `op://` references in a ResourceList.
#[test]
fn krm_function_resolves_op_references() {
    let c = connect();
    let side = sidecar(&c);
    let input = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/onepassword/krm-function-resolves-op-references/input.yaml"),
    )
    .unwrap();
    side.run(&["krm"], &input)
        .expect_ok()
        .has("password", "canary-op-pass")
        .has("token", "canary-op-admin");
    assert_eq!(c.count(ITEM), 1);
}

/// A Connect server over HTTPS with a private CA: trusted through the operator's
/// `SSL_CERT_FILE`, refused without it (before the token is sent).
#[test]
fn https_connect_with_the_operators_ca_bundle() {
    let c = connect();
    let pki = standin::Pki::new("unused");
    let front = standin::TlsFront::start(&pki, &c.server);
    let mut side = sidecar(&c);
    side.set("OP_CONNECT_HOST", &front.url);
    side.set("KUSTODIAN_OP_CONNECT_TIMEOUT", "5");
    side.render(&secret_doc(&[("a", "op://Prod/db/password")]))
        .expect_failure(&["cannot reach https://127.0.0.1", "TLS"]);
    assert!(c.server.seen().is_empty());
    side.set("SSL_CERT_FILE", pki.path("ca.crt").to_str().unwrap());
    side.render(&secret_doc(&[("a", "op://Prod/db/password")]))
        .expect_ok()
        .has("a", "canary-op-pass");
}

/// The same references through `render DIR`, the KRM function, the legacy kustomize plugin
/// (`kubectl kustomize --enable-alpha-plugins` with the Resolver) and the Argo CD plugin as
/// argocd-cmp-server runs it; no canary and no Connect token on any stderr.
#[test]
fn every_render_path_resolves_op_references() {
    let c = connect();
    let mut side = sidecar::Sidecar::new("1passwordconnect");
    side.set("OP_CONNECT_HOST", &c.server.url);
    side.set("OP_CONNECT_TOKEN", TOKEN);
    side.secrets.push(TOKEN.into());
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/onepassword/every-render-path");
    sidecar::every_render_path(
        &side,
        &dir,
        "1passwordconnect",
        &[("password", "canary-op-pass"), ("token", "canary-op-admin")],
    );
    // Every path reached Connect. Today a render reads the item once per grammar (`op://` and
    // the AVP placeholder are looked up apart), so two reads per path, at most.
    let reads = c.count(ITEM);
    assert!((4..=8).contains(&reads), "{reads} reads of the item");
}
