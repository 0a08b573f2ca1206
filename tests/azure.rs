//! End-to-end tests of the Azure Key Vault store: the built `kustodian render` against a
//! loopback stand-in for Key Vault and Microsoft Entra ID over HTTPS (a test CA the sidecar
//! trusts through `AZURE_CA_BUNDLE`), and IMDS over HTTP. Logins with a client secret, a client
//! certificate (a JWT assertion the stand-in verifies with the certificate's key), a federated
//! token (Azure Workload Identity) and a managed identity.
//!
//! Every value, secret and token holds `canary`; every run checks that stderr holds none of
//! them and that a failed render prints nothing on stdout.

#[path = "support/azure.rs"]
mod azure;
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

use std::collections::BTreeMap;

use azure::{Azure, Login, Stand};
use sidecar::{secret_doc, Sidecar};

const TOKEN: &str = "canary-access-token-azure";
const CLIENT_SECRET: &str = "canary-client-secret";
const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const CLIENT: &str = "0a1b2c3d-1111-2222-3333-444455556666";

fn vault_data() -> BTreeMap<String, Vec<(String, String)>> {
    let mut m = BTreeMap::new();
    m.insert(
        "db".to_string(),
        vec![
            (
                "0f1e2d3c4b5a69788796a5b4c3d2e1f0".to_string(),
                r#"{"password":"canary-pw-old"}"#.to_string(),
            ),
            (
                "a1b2c3d4e5f60718293a4b5c6d7e8f90".to_string(),
                r#"{"password":"canary-pw-new","user":"canary-user"}"#.to_string(),
            ),
        ],
    );
    m.insert(
        "busy".to_string(),
        vec![(
            "99998888777766665555444433332222".to_string(),
            "canary-busy".to_string(),
        )],
    );
    m.insert(
        "api-key".to_string(),
        vec![(
            "11112222333344445555666677778888".to_string(),
            "canary-api-key".to_string(),
        )],
    );
    m
}

fn azure(login: Login) -> Azure {
    Azure {
        tenant: TENANT.into(),
        client_id: CLIENT.into(),
        login,
        token: TOKEN.into(),
        secrets: vault_data(),
        locked: vec!["locked".into()],
        busy: vec!["busy".into()],
        keys: Vec::new(),
        rsa_key: None,
    }
}

/// A sidecar trusting the test CA, with Entra ID and every vault at the stand-in.
fn sidecar(
    stand_of: impl FnOnce(&std::path::Path, &azure::Pki) -> (Stand, Vec<(&'static str, String)>),
) -> (Sidecar, Stand) {
    let mut side = Sidecar::new("azurekeyvault");
    let pki = azure::pki(side.home.path());
    let (stand, vars) = stand_of(side.home.path(), &pki);
    side.set("AZURE_CA_BUNDLE", pki.ca.to_str().unwrap());
    side.set("AZURE_AUTHORITY_HOST", &stand.url);
    side.set("KUSTODIAN_AZURE_KEYVAULT_ENDPOINT", &stand.url);
    side.set("AZURE_TENANT_ID", TENANT);
    side.set("AZURE_CLIENT_ID", CLIENT);
    for (k, v) in vars {
        side.set(k, &v);
    }
    side.secrets
        .extend([TOKEN.to_string(), CLIENT_SECRET.to_string()]);
    (side, stand)
}

fn with_secret() -> (Sidecar, Stand) {
    sidecar(|_, pki| {
        (
            azure::start(azure(Login::Secret(CLIENT_SECRET.into())), pki),
            vec![("AZURE_CLIENT_SECRET", CLIENT_SECRET.to_string())],
        )
    })
}

#[test]
fn client_secret_reads_key_vault_over_tls_once_per_secret_and_version() {
    let (side, stand) = with_secret();
    let old = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";
    let doc = secret_doc(&[
        ("a", "ref+azurekeyvault://kustodian-kv/db#/password"),
        ("b", "ref+azurekeyvault://kustodian-kv/db#/user"),
        (
            "c",
            &format!("ref+azurekeyvault://kustodian-kv/db/{old}#/password"),
        ),
        ("d", "ref+azurekeyvault://kustodian-kv/api-key"),
        ("e", &format!("x-<path:kustodian-kv/db/{old}#password>")),
    ]);
    side.render(&doc)
        .expect_ok()
        .has("a", "canary-pw-new")
        .has("b", "canary-user")
        .has("c", "canary-pw-old")
        .has("d", "canary-api-key")
        .has("e", "x-canary-pw-old");
    assert_eq!(stand.reads("db"), 2, "{:?}", stand.seen());
    assert_eq!(stand.reads("api-key"), 1);
    assert_eq!(stand.logins(), 1);
    let paths: Vec<String> = stand.seen().iter().map(|s| s.path.clone()).collect();
    assert!(
        paths.contains(&"/secrets/db/?api-version=7.4".to_string()),
        "{paths:?}"
    );
    assert!(
        paths.contains(&format!("/secrets/db/{old}?api-version=7.4")),
        "{paths:?}"
    );
    for s in stand
        .seen()
        .iter()
        .filter(|s| s.path.starts_with("/secrets"))
    {
        assert_eq!(s.header("authorization"), Some(&*format!("Bearer {TOKEN}")));
    }
    // The next render reuses the cached token (a 0600 file).
    side.render(&doc).expect_ok();
    assert_eq!(stand.logins(), 1, "the token was not reused");
    assert_eq!(side.cache_files("azure-tokens").len(), 1);
}

/// argocd-vault-plugin's form `<path:VAULT#SECRET>`: the vault's secrets are listed, then each
/// read once, whatever the number of placeholders.
#[test]
fn avp_placeholders_name_the_vault_and_the_secret() {
    let (side, stand) = with_secret();
    side.render(&secret_doc(&[
        ("a", "<path:kustodian-kv#api-key>"),
        ("b", "<path:kustodian-kv#db>"),
        ("c", "<path:kustodian-kv#api-key>"),
    ]))
    .expect_ok()
    .has("a", "canary-api-key")
    .has("c", "canary-api-key");
    assert_eq!(stand.reads("api-key"), 1);
    assert_eq!(stand.reads("db"), 1);
    // With a version: each listed secret is read at that version; those without it are skipped.
    side.render(&secret_doc(&[(
        "old",
        "<path:kustodian-kv#db#0f1e2d3c4b5a69788796a5b4c3d2e1f0>",
    )]))
    .expect_ok()
    .has("old", r#"{\"password\":\"canary-pw-old\"}"#);
    assert_eq!(
        stand
            .seen()
            .iter()
            .filter(|s| s.path == "/secrets?api-version=7.4")
            .count(),
        2,
        "one list per render"
    );
}

#[test]
fn missing_forbidden_and_throttled_secrets() {
    let (side, stand) = with_secret();
    side.render(&secret_doc(&[(
        "a",
        "ref+azurekeyvault://kustodian-kv/gone",
    )]))
    .expect_failure(&["kustodian-kv/gone", "SecretNotFound", "not found"]);
    side.render(&secret_doc(&[(
        "a",
        "ref+azurekeyvault://kustodian-kv/locked",
    )]))
    .expect_failure(&[
        "permission denied",
        "Forbidden/ForbiddenByRbac",
        "Key Vault Secrets User",
        CLIENT,
    ]);
    // Throttled once (429, Retry-After: 1): waited for, retried.
    let started = std::time::Instant::now();
    side.render(&secret_doc(&[(
        "a",
        "ref+azurekeyvault://kustodian-kv/busy",
    )]))
    .expect_ok()
    .has("a", "canary-busy");
    assert!(started.elapsed() >= std::time::Duration::from_secs(1));
    assert_eq!(stand.reads("busy"), 2);
    // A vault host outside Key Vault's domains is refused before any request.
    let before = stand.seen().len();
    side.render(&secret_doc(&[(
        "a",
        "ref+azurekeyvault://evil.example.com/db",
    )]))
    .expect_failure(&["is not a Key Vault host"]);
    assert_eq!(stand.seen().len(), before);
}

#[test]
fn a_wrong_client_secret_fails_the_login_closed() {
    let (mut side, stand) = with_secret();
    side.set("AZURE_CLIENT_SECRET", "canary-wrong-secret");
    side.secrets.push("canary-wrong-secret".into());
    side.render(&secret_doc(&[
        ("a", "ref+azurekeyvault://kustodian-kv/db"),
        ("b", "ref+azurekeyvault://kustodian-kv/api-key"),
    ]))
    .expect_failure(&["invalid_client", "AADSTS7000215", CLIENT, TENANT]);
    assert_eq!(stand.logins(), 1, "the failed login is made once");
    assert_eq!(stand.reads("db"), 0);
}

#[test]
fn the_vault_certificate_must_chain_to_a_trusted_ca() {
    let (mut side, stand) = with_secret();
    side.unset("AZURE_CA_BUNDLE");
    side.render(&secret_doc(&[("a", "ref+azurekeyvault://kustodian-kv/db")]))
        .expect_failure(&["login", "TLS", "AZURE_CA_BUNDLE"]);
    assert!(
        stand.seen().is_empty(),
        "a request got through an untrusted TLS connection"
    );
}

#[test]
fn client_certificate_signs_the_assertion() {
    let (side, stand) = sidecar(|home, pki| {
        let cert = azure::client_cert(home);
        let stand = azure::start(
            azure(Login::Certificate {
                public_der: cert.public_der.clone(),
                x5t: cert.x5t.clone(),
            }),
            pki,
        );
        (
            stand,
            vec![(
                "AZURE_CLIENT_CERTIFICATE_PATH",
                cert.pem_file.to_str().unwrap().to_string(),
            )],
        )
    });
    side.render(&secret_doc(&[(
        "a",
        "ref+azurekeyvault://kustodian-kv/api-key",
    )]))
    .expect_ok()
    .has("a", "canary-api-key");
    assert_eq!(stand.logins(), 1);
}

#[test]
fn workload_identity_sends_the_projected_token_as_client_assertion() {
    let projected = "canary-projected-azure-token";
    let (mut side, stand) = sidecar(|home, pki| {
        let stand = azure::start(azure(Login::Federated(projected.into())), pki);
        let file = home.join("azure-identity-token");
        std::fs::write(&file, projected).unwrap();
        (
            stand,
            vec![(
                "AZURE_FEDERATED_TOKEN_FILE",
                file.to_str().unwrap().to_string(),
            )],
        )
    });
    side.secrets.push(projected.into());
    side.render(&secret_doc(&[(
        "a",
        "ref+azurekeyvault://kustodian-kv/db#/password",
    )]))
    .expect_ok()
    .has("a", "canary-pw-new");
    assert_eq!(stand.logins(), 1);
}

#[test]
fn managed_identity_from_imds_when_no_credential_is_set() {
    let (mut side, stand) = sidecar(|_, pki| {
        (
            azure::start(azure(Login::Secret("unused".into())), pki),
            vec![],
        )
    });
    side.unset("AZURE_TENANT_ID");
    side.unset("AZURE_CLIENT_ID");
    side.set("AZURE_POD_IDENTITY_AUTHORITY_HOST", &stand.proxy.url);
    side.render(&secret_doc(&[(
        "a",
        "ref+azurekeyvault://kustodian-kv/api-key",
    )]))
    .expect_ok()
    .has("a", "canary-api-key");
    let imds: Vec<_> = stand
        .seen()
        .into_iter()
        .filter(|s| s.path.starts_with("/metadata/"))
        .collect();
    assert_eq!(imds.len(), 1);
    assert_eq!(imds[0].header("metadata"), Some("true"));
}

/// An Application may pick the azure store once the operator configured it, never its
/// endpoint, authority or credentials.
#[test]
fn application_picks_the_store_but_not_its_endpoint_or_credentials() {
    let (mut side, stand) = with_secret();
    let attacker = moto::Proxy::start(
        None,
        Box::new(|_, _| Some(moto::response(500, "text/plain", ""))),
    );
    side.unset("AVP_TYPE");
    side.set("ARGOCD_ENV_AVP_TYPE", "azurekeyvault");
    side.set(
        "ARGOCD_ENV_KUSTODIAN_AZURE_KEYVAULT_ENDPOINT",
        &attacker.url,
    );
    side.set("ARGOCD_ENV_AZURE_AUTHORITY_HOST", &attacker.url);
    side.set(
        "ARGOCD_ENV_AZURE_POD_IDENTITY_AUTHORITY_HOST",
        &attacker.url,
    );
    let doc = secret_doc(&[("a", "<path:kustodian-kv#api-key>")]);
    side.render(&doc).expect_ok().has("a", "canary-api-key");
    assert!(attacker.seen().is_empty());
    assert!(stand.logins() == 1);
    side.unset("AZURE_CLIENT_ID");
    side.render(&doc)
        .expect_failure(&["azure store", "not configured"]);
}

/// The same references through `render DIR`, the KRM function, the legacy kustomize plugin and
/// the Argo CD plugin.
#[test]
fn every_render_path_resolves_azure_references() {
    let (side, stand) = with_secret();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/azure/every-render-path");
    sidecar::every_render_path(
        &side,
        &dir,
        "azurekeyvault",
        &[("password", "canary-pw-new"), ("url", "canary-api-key")],
    );
    // Four processes with one HOME share the cached token; the plugin has a HOME of its own.
    assert_eq!(stand.logins(), 2);
}
