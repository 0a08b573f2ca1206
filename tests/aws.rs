//! End-to-end tests of the AWS stores: the built `kustodian render` against moto's server (the
//! real Secrets Manager, SSM and STS APIs), through a loopback proxy that counts requests and
//! can inject AWS's throttling and access-denied answers.
//!
//! Every secret value holds `canary`; every run checks that stderr holds no value and no
//! credential, and that a failed render prints nothing on stdout.

#[path = "fixtures/example/support.rs"]
mod example;
#[path = "support/k8s.rs"]
mod k8s;
#[path = "support/moto.rs"]
mod moto;
#[path = "support/rendered.rs"]
mod rendered;
#[path = "support/sidecar.rs"]
mod sidecar;

use std::path::PathBuf;

use base64::Engine as _;
use moto::{aws_error, moto, response, Moto, Proxy, Seen};
use serde_json::{json, Value};
use sidecar::{secret_doc, unique, Sidecar};

/// The static test credentials; the secret key is a canary.
const SECRET_KEY: &str = "canary-secret-access-key";

/// A sidecar with static credentials in the environment, every endpoint on `proxy`.
fn with_keys(proxy: &Proxy) -> Sidecar {
    let mut s = bare(proxy);
    s.set("AWS_ACCESS_KEY_ID", "AKIDKUSTODIANTEST");
    s.set("AWS_SECRET_ACCESS_KEY", SECRET_KEY);
    s
}

/// A sidecar for the AWS stores on `proxy`, no credentials yet; the keys and tokens it
/// caches must never be printed either.
fn bare(proxy: &Proxy) -> Sidecar {
    let mut s = Sidecar::with_secrets(&[SECRET_KEY]);
    s.also_secret = Some(cached_secrets);
    s.set("AWS_REGION", "us-east-1");
    s.set("AWS_ENDPOINT_URL", &proxy.url);
    s.set("AVP_TYPE", "awssecretsmanager");
    s.set("AWS_MAX_ATTEMPTS", "3");
    s
}

/// The keys and tokens in the credential cache.
fn cached_secrets(side: &Sidecar) -> Vec<String> {
    let mut out = Vec::new();
    for f in side.cache_files(CACHE) {
        let v: Value = serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap();
        let creds: Value = serde_json::from_str(v["token"].as_str().unwrap()).unwrap();
        for k in ["SecretAccessKey", "SessionToken"] {
            if let Some(s) = creds[k].as_str() {
                out.push(s.to_string());
            }
        }
    }
    out
}

/// The credential cache's folder under `~/.cache/kustodian`.
const CACHE: &str = "aws-credentials";

fn secret(name: &str, value: Value) -> Value {
    json!(["secretsmanager", "create_secret", {"Name": name, "SecretString": value}])
}

/// A secret `{"k": value}` under a fresh name, and a counting proxy in front of moto.
fn one_secret(prefix: &str, value: &str) -> (String, Proxy) {
    let m = moto();
    let app = unique(prefix);
    m.aws(json!([secret(
        &app,
        json!({ "k": value }).to_string().into()
    )]));
    (app, Proxy::pass(&m.url))
}

/// The access key id a request was signed with.
fn key_id(s: &Seen) -> String {
    let auth = s.header("authorization").expect("a signed request");
    let rest = auth.split("Credential=").nth(1).unwrap_or("");
    rest.split('/').next().unwrap_or("").to_string()
}

/// The first request the proxy saw for `action`.
fn first(proxy: &Proxy, action: &str) -> Seen {
    proxy
        .seen()
        .into_iter()
        .find(|s| s.action() == action)
        .unwrap_or_else(|| panic!("no {action} request"))
}

#[test]
fn secrets_manager_values_in_both_grammars_with_one_request_per_secret() {
    let m = moto();
    let app = unique("app/db");
    let plain = unique("plain");
    m.aws(json!([
        secret(
            &app,
            json!(json!({"username": "canary-user", "password": "canary-pw-1"}).to_string())
        ),
        secret(&plain, json!("canary-plain-text")),
    ]));
    let proxy = Proxy::pass(&m.url);
    let side = with_keys(&proxy);
    let input = format!(
        "{}---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: generic\n  annotations:\n    avp.kubernetes.io/path: {app}\nstringData:\n  user: <username>\n",
        secret_doc(&[
            ("a", &format!("<path:{app}#username>")),
            ("b", &format!("<path:{app}#password>")),
            ("c", &format!("ref+awssecrets://{app}#/password")),
            ("d", &format!("<path:{plain}#SecretString>")),
            ("e", &format!("ref+awssecrets://{plain}")),
            ("f", &format!("x-<path:{app}#password>-<path:{app}#username>")),
        ])
    );
    side.render(&input)
        .expect_ok()
        .has("a", "canary-user")
        .has("b", "canary-pw-1")
        .has("c", "canary-pw-1")
        .has("d", "canary-plain-text")
        .has("e", "canary-plain-text")
        .has("f", "x-canary-pw-1-canary-user")
        .has("user", "canary-user");
    assert_eq!(proxy.count("secretsmanager.GetSecretValue", Some(&app)), 1);
    assert_eq!(
        proxy.count("secretsmanager.GetSecretValue", Some(&plain)),
        1
    );
    assert_eq!(proxy.seen().len(), 2, "{:?}", proxy.seen());
    // Requests are signed with SigV4 for secretsmanager in the region.
    let auth = proxy.seen()[0].header("authorization").unwrap().to_string();
    assert!(
        auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDKUSTODIANTEST/")
            && auth.contains("/us-east-1/secretsmanager/aws4_request"),
        "{auth}"
    );
}

#[test]
fn secrets_manager_versions_by_stage_and_id() {
    let m = moto();
    let app = unique("versioned");
    let out = m.aws(json!([
        secret(&app, json!(r#"{"password":"canary-old"}"#)),
        ["secretsmanager", "put_secret_value", {"SecretId": app, "SecretString": r#"{"password":"canary-new"}"#}],
    ]));
    let old_id = out[0]["VersionId"].as_str().unwrap().to_string();
    let proxy = Proxy::pass(&m.url);
    let side = with_keys(&proxy);
    side.render(&secret_doc(&[
        ("current", &format!("<path:{app}#password>")),
        ("stage", &format!("<path:{app}#password#AWSPREVIOUS>")),
        ("id", &format!("<path:{app}#password#{old_id}>")),
        (
            "vals_stage",
            &format!("ref+awssecrets://{app}?version_stage=AWSPREVIOUS#/password"),
        ),
        (
            "vals_id",
            &format!("ref+awssecrets://{app}?version_id={old_id}#/password"),
        ),
        (
            "vals_current",
            &format!("ref+awssecrets://{app}?version_stage=AWSCURRENT#/password"),
        ),
    ]))
    .expect_ok()
    .has("current", "canary-new")
    .has("stage", "canary-old")
    .has("id", "canary-old")
    .has("vals_stage", "canary-old")
    .has("vals_id", "canary-old")
    .has("vals_current", "canary-new");
    // current, AWSPREVIOUS (both grammars), the id (both grammars), AWSCURRENT.
    assert_eq!(proxy.count("secretsmanager.GetSecretValue", Some(&app)), 4);
}

#[test]
fn binary_secrets_and_secret_data_encoding() {
    let m = moto();
    let text = unique("bin-text");
    let raw = unique("bin-raw");
    let b64 = base64::engine::general_purpose::STANDARD;
    m.aws(json!([
        ["secretsmanager", "create_secret", {"Name": text, "SecretBinary": {"__bytes__": b64.encode("canary-binary-text")}}],
        ["secretsmanager", "create_secret", {"Name": raw, "SecretBinary": {"__bytes__": b64.encode([0xff, 0xfe, 0x00, 0x01])}}],
    ]));
    let proxy = Proxy::pass(&m.url);
    let side = with_keys(&proxy);
    let input = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\ndata:\n  bin: <path:{text}#SecretBinary>\nstringData:\n  vals: ref+awssecrets://{text}\n  raw64: <path:{raw}#SecretBinaryBase64>\n"
    );
    side.render(&input)
        .expect_ok()
        .has("bin", &b64.encode("canary-binary-text"))
        .has("vals", "canary-binary-text")
        .has("raw64", "//4AAQ==");
    side.render(&secret_doc(&[("x", &format!("<path:{raw}#SecretBinary>"))]))
        .expect_failure(&[&raw, "SecretBinary"]);
}

#[test]
fn missing_secret_key_and_version_fail_closed_naming_the_reference() {
    let m = moto();
    let app = unique("present");
    m.aws(json!([secret(
        &app,
        json!(r#"{"password":"canary-there"}"#)
    )]));
    let proxy = Proxy::pass(&m.url);
    let side = with_keys(&proxy);
    let gone = unique("absent");
    side.render(&secret_doc(&[("a", &format!("<path:{gone}#password>"))]))
        .expect_failure(&[
            &format!("<path:{gone}#password>"),
            &format!("secret {gone}"),
            "not found",
        ]);
    side.render(&secret_doc(&[("a", &format!("<path:{app}#nokey>"))]))
        .expect_failure(&["\"nokey\" not found"]);
    side.render(&secret_doc(&[(
        "a",
        &format!("<path:{app}#password#AWSNOSUCHSTAGE>"),
    )]))
    .expect_failure(&["version stage AWSNOSUCHSTAGE", "no such secret or version"]);
    side.render(&secret_doc(&[(
        "a",
        &format!(
            "ref+awssecrets://{app}?version_id=00000000-0000-0000-0000-000000000000#/password"
        ),
    )]))
    .expect_failure(&["version id 00000000-0000-0000-0000-000000000000"]);
    // All or nothing: one good and one missing reference print nothing.
    side.render(&secret_doc(&[
        ("good", &format!("<path:{app}#password>")),
        ("bad", &format!("<path:{gone}#password>")),
    ]))
    .expect_failure(&[&gone]);
}

#[test]
fn access_denied_names_the_action_to_grant() {
    let m = moto();
    let app = unique("denied");
    let proxy = Proxy::start(
        Some(&m.url),
        Box::new(|s: &Seen, _| {
            (s.action() == "secretsmanager.GetSecretValue").then(|| {
                aws_error(400, "AccessDeniedException", "User: arn:aws:iam::123456789012:user/ci is not authorized to perform: secretsmanager:GetSecretValue")
            })
        }),
    );
    let side = with_keys(&proxy);
    side.render(&secret_doc(&[("a", &format!("<path:{app}#password>"))]))
        .expect_failure(&[
            &format!("secret {app}"),
            "permission denied",
            "AccessDeniedException",
            "grant secretsmanager:GetSecretValue",
            "AWS_ACCESS_KEY_ID",
        ]);
}

/// moto with IAM enforcement: it checks every signature and the user's policy, as AWS does.
#[test]
fn real_signature_checks_and_iam_denials() {
    let policy = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]});
    let setup = json!([
        ["iam", "create_user", {"UserName": "reader"}],
        ["iam", "create_access_key", {"UserName": "reader"}],
        ["iam", "put_user_policy", {"UserName": "reader", "PolicyName": "read", "PolicyDocument": policy.to_string()}],
        ["iam", "create_user", {"UserName": "nobody"}],
        ["iam", "create_access_key", {"UserName": "nobody"}],
        secret("enforced", json!(r#"{"k":"canary-enforced"}"#)),
        ["iam", "create_role", {"RoleName": "secret-reader", "AssumeRolePolicyDocument": json!({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
            "Principal": {"AWS": "arn:aws:iam::123456789012:root"}}]}).to_string()}],
    ]);
    let count = setup.as_array().unwrap().len().to_string();
    let m = Moto::start(&[("INITIAL_NO_AUTH_ACTION_COUNT", &count)]);
    let out = m.aws(setup);
    let key = |i: usize| {
        let k = &out[i]["AccessKey"];
        (
            k["AccessKeyId"].as_str().unwrap().to_string(),
            k["SecretAccessKey"].as_str().unwrap().to_string(),
        )
    };
    let proxy = Proxy::pass(&m.url);
    let doc = secret_doc(&[
        ("a", "<path:enforced#k>"),
        ("b", "ref+awssecrets://enforced#/k"),
    ]);
    let as_user = |(id, secret): (String, String)| {
        let mut side = with_keys(&proxy);
        side.set("AWS_ACCESS_KEY_ID", &id);
        side.set("AWS_SECRET_ACCESS_KEY", &secret);
        side.secrets.push(secret);
        side.render(&doc)
    };
    as_user(key(1))
        .expect_ok()
        .has("a", "canary-enforced")
        .has("b", "canary-enforced");
    as_user(key(4)).expect_failure(&[
        "secret enforced",
        "permission denied",
        "AccessDenied",
        "grant secretsmanager:GetSecretValue",
    ]);
    as_user((key(1).0, "wrong-secret-key".into()))
        .expect_failure(&["SignatureDoesNotMatch", "check the key pair"]);
    // AssumeRole for a role the operator allows, signed with the user's key: moto checks the
    // signature (a bad one says SignatureDoesNotMatch) and then IAM, which refuses this user.
    let (id, secret) = key(4);
    let mut side = with_keys(&proxy);
    side.set("AWS_ACCESS_KEY_ID", &id);
    side.set("AWS_SECRET_ACCESS_KEY", &secret);
    side.set(
        "KUSTODIAN_AWS_ALLOWED_ROLE_ARNS",
        "arn:aws:iam::123456789012:role/secret-reader",
    );
    side.secrets.push(secret);
    side.render(&secret_doc(&[(
        "a",
        "ref+awssecrets://enforced?role_arn=arn:aws:iam::123456789012:role/secret-reader#/k",
    )]))
    .expect_failure(&[
        "STS AssumeRole for arn:aws:iam::123456789012:role/secret-reader failed",
        "AccessDenied",
        "trust policy must allow sts:AssumeRole",
    ]);
}

#[test]
fn throttling_is_retried_then_gives_up_with_a_clear_message() {
    let m = moto();
    let app = unique("throttled");
    m.aws(json!([secret(
        &app,
        json!(r#"{"k":"canary-after-throttle"}"#)
    )]));
    let proxy = Proxy::start(
        Some(&m.url),
        Box::new(|_, n| match n {
            0 => Some(aws_error(400, "ThrottlingException", "Rate exceeded")),
            1 => Some(response(429, "application/json", "{}")),
            _ => None,
        }),
    );
    let side = with_keys(&proxy);
    side.render(&secret_doc(&[("a", &format!("<path:{app}#k>"))]))
        .expect_ok()
        .has("a", "canary-after-throttle");
    assert_eq!(proxy.seen().len(), 3);

    let always = Proxy::start(
        Some(&m.url),
        Box::new(|_, _| Some(aws_error(400, "ThrottlingException", "Rate exceeded"))),
    );
    let side = with_keys(&always);
    side.render(&secret_doc(&[("a", &format!("<path:{app}#k>"))]))
        .expect_failure(&["ThrottlingException", "AWS_MAX_ATTEMPTS"]);
    assert_eq!(
        always.seen().len(),
        3,
        "AWS_MAX_ATTEMPTS=3 bounds the attempts"
    );
}

#[test]
fn ssm_parameters_of_every_type_with_pointers_and_versions() {
    let m = moto();
    let p = unique("/team");
    m.aws(json!([
        ["ssm", "put_parameter", {"Name": format!("{p}/plain"), "Value": "canary-string", "Type": "String"}],
        ["ssm", "put_parameter", {"Name": format!("{p}/secure"), "Value": "canary-secure", "Type": "SecureString"}],
        ["ssm", "put_parameter", {"Name": format!("{p}/list"), "Value": "canary-a,canary-b", "Type": "StringList"}],
        ["ssm", "put_parameter", {"Name": format!("{p}/json"), "Value": r#"{"db":{"password":"canary-json"}}"#, "Type": "SecureString"}],
        ["ssm", "put_parameter", {"Name": format!("{p}/yaml"), "Value": "db:\n  password: canary-yaml\n", "Type": "String"}],
        ["ssm", "put_parameter", {"Name": format!("{p}/plain"), "Value": "canary-string-v2", "Type": "String", "Overwrite": true}],
    ]));
    let proxy = Proxy::pass(&m.url);
    let side = with_keys(&proxy);
    let q = p.trim_start_matches('/');
    side.render(&secret_doc(&[
        ("plain", &format!("ref+awsssm://{q}/plain")),
        ("again", &format!("ref+awsssm:///{q}/plain")),
        ("v1", &format!("ref+awsssm://{q}/plain?version=1")),
        ("secure", &format!("ref+awsssm://{q}/secure")),
        ("list", &format!("ref+awsssm://{q}/list")),
        ("json", &format!("ref+awsssm://{q}/json#/db/password")),
        ("yaml", &format!("ref+awsssm://{q}/yaml#/db/password")),
    ]))
    .expect_ok()
    .has("plain", "canary-string-v2")
    .has("again", "canary-string-v2")
    .has("v1", "canary-string")
    .has("secure", "canary-secure")
    .has("list", "canary-a,canary-b")
    .has("json", "canary-json")
    .has("yaml", "canary-yaml");
    assert_eq!(
        proxy.count("AmazonSSM.GetParameter", Some(&format!("{p}/plain"))),
        1
    );
    assert_eq!(proxy.count("AmazonSSM.GetParameter", None), 6);
    let sent: Value = serde_json::from_str(&proxy.seen()[0].body).unwrap();
    assert_eq!(sent["WithDecryption"], true);

    side.render(&secret_doc(&[("x", &format!("ref+awsssm://{q}/nothing"))]))
        .expect_failure(&[&format!("parameter {p}/nothing"), "not found"]);
}

#[test]
fn irsa_web_identity_token_is_exchanged_with_sts_and_cached() {
    let (app, proxy) = one_secret("irsa", "canary-irsa");
    let mut side = bare(&proxy);
    let jwt = k8s::ServiceAccount::new("argocd", "argocd-repo-server", "uid-1").jwt();
    let token = side.file("token", &jwt);
    side.set("AWS_WEB_IDENTITY_TOKEN_FILE", token.to_str().unwrap());
    side.set("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/kustodian");
    side.secrets.push(jwt.clone());
    let doc = secret_doc(&[("a", &format!("<path:{app}#k>"))]);
    side.render(&doc).expect_ok().has("a", "canary-irsa");
    let sts: Vec<Seen> = proxy
        .seen()
        .into_iter()
        .filter(|s| s.action() == "AssumeRoleWithWebIdentity")
        .collect();
    assert_eq!(sts.len(), 1);
    assert!(sts[0]
        .body
        .contains("RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fkustodian"));
    assert!(
        sts[0].header("authorization").is_none(),
        "AssumeRoleWithWebIdentity is unsigned"
    );
    // The secret was read with the role's temporary credentials (a session token).
    let read = first(&proxy, "secretsmanager.GetSecretValue");
    assert!(read.header("x-amz-security-token").is_some());
    // Cached 0600: the second render asks STS nothing.
    let files = side.cache_files(CACHE);
    assert_eq!(files.len(), 1);
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(
        std::fs::metadata(&files[0]).unwrap().permissions().mode() & 0o777,
        0o600
    );
    side.render(&doc).expect_ok().has("a", "canary-irsa");
    assert_eq!(proxy.count("AssumeRoleWithWebIdentity", None), 1);
}

/// A stand-in for the EKS Pod Identity agent: answers with credentials only when the
/// `Authorization` header is the token file's content, like the agent does.
fn pod_identity_agent(token: &'static str) -> Proxy {
    Proxy::start(
        None,
        Box::new(move |s: &Seen, _| {
            Some(if s.header("authorization") == Some(token) {
                response(
                    200,
                    "application/json",
                    &json!({
                        "AccessKeyId": "ASIAPODIDENTITY",
                        "SecretAccessKey": "canary-pod-secret-key",
                        "Token": "canary-pod-session-token",
                        "AccountId": "123456789012",
                        "Expiration": "2099-01-01T00:00:00Z",
                    })
                    .to_string(),
                )
            } else {
                response(400, "application/json", r#"{"Message":"invalid token"}"#)
            })
        }),
    )
}

#[test]
fn pod_identity_container_credentials_with_the_token_file() {
    let (app, proxy) = one_secret("podid", "canary-pod");
    let agent = pod_identity_agent("eks-pod-identity-token-value");
    let mut side = bare(&proxy);
    let token = side.file("eks-pod-identity-token", "eks-pod-identity-token-value");
    side.set(
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        &format!("{}/v1/credentials", agent.url),
    );
    side.set(
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
        token.to_str().unwrap(),
    );
    side.secrets.extend(["eks-pod-identity-token-value".into()]);
    let doc = secret_doc(&[("a", &format!("<path:{app}#k>"))]);
    side.render(&doc).expect_ok().has("a", "canary-pod");
    let read = first(&proxy, "secretsmanager.GetSecretValue");
    assert_eq!(key_id(&read), "ASIAPODIDENTITY");
    assert_eq!(
        read.header("x-amz-security-token"),
        Some("canary-pod-session-token")
    );

    // A wrong token: the agent refuses, the render fails and says what to check.
    let wrong = side.file("other-token", "wrong-token");
    side.set(
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
        wrong.to_str().unwrap(),
    );
    side.set("KUSTODIAN_AWS_CREDENTIAL_CACHE", "off");
    side.render(&doc)
        .expect_failure(&["container credentials endpoint refused", "Pod Identity"]);
}

#[test]
fn shared_profiles_with_role_arn_and_source_profile() {
    let (app, proxy) = one_secret("profile", "canary-profile");
    let mut side = bare(&proxy);
    side.file(
        ".aws/credentials",
        &format!(
            "[base]\naws_access_key_id = AKIDPROFILEBASE\naws_secret_access_key = {SECRET_KEY}\n"
        ),
    );
    side.file(
        ".aws/config",
        "[profile deploy]\nrole_arn = arn:aws:iam::123456789012:role/deploy\nsource_profile = base\nregion = us-east-1\n",
    );
    side.set("AWS_PROFILE", "deploy");
    side.unset("AWS_REGION");
    let doc = secret_doc(&[("a", &format!("<path:{app}#k>"))]);
    side.render(&doc).expect_ok().has("a", "canary-profile");
    let assume = first(&proxy, "AssumeRole");
    assert_eq!(key_id(&assume), "AKIDPROFILEBASE");
    assert!(assume.body.contains("role%2Fdeploy"));

    side.set("AWS_PROFILE", "nosuch");
    side.set("AWS_REGION", "us-east-1");
    side.render(&doc).expect_failure(&["profile \"nosuch\""]);
}

#[test]
fn per_reference_role_arn_only_when_the_operator_allows_it() {
    let (app, proxy) = one_secret("role", "canary-role");
    let mut side = with_keys(&proxy);
    let role = "arn:aws:iam::123456789012:role/team-a";
    let doc = secret_doc(&[("a", &format!("ref+awssecrets://{app}?role_arn={role}#/k"))]);
    side.render(&doc)
        .expect_failure(&["?role_arn=", "KUSTODIAN_AWS_ALLOWED_ROLE_ARNS"]);
    assert!(
        proxy.seen().is_empty(),
        "nothing is asked of AWS for a refused role"
    );
    side.set(
        "KUSTODIAN_AWS_ALLOWED_ROLE_ARNS",
        "arn:aws:iam::123456789012:role/team-*",
    );
    side.render(&doc).expect_ok().has("a", "canary-role");
    assert_eq!(proxy.count("AssumeRole", None), 1);
}

#[test]
fn region_comes_from_the_reference_the_arn_or_the_environment() {
    let m = moto();
    let name = unique("regional");
    let out = m.aws(json!([
        ["secretsmanager", "create_secret", {"Name": name, "SecretString": r#"{"k":"canary-west"}"#, "region": "eu-west-1"}],
    ]));
    let arn = out[0]["ARN"].as_str().unwrap().to_string();
    let proxy = Proxy::pass(&m.url);
    let side = with_keys(&proxy);
    side.render(&secret_doc(&[
        (
            "by_param",
            &format!("ref+awssecrets://{name}?region=eu-west-1#/k"),
        ),
        ("by_arn", &format!("<path:{arn}#k>")),
    ]))
    .expect_ok()
    .has("by_param", "canary-west")
    .has("by_arn", "canary-west");
    for s in proxy.seen() {
        assert!(s
            .header("authorization")
            .unwrap()
            .contains("/eu-west-1/secretsmanager/"));
    }
    // us-east-1 (AWS_REGION) has no such secret.
    side.render(&secret_doc(&[("a", &format!("<path:{name}#k>"))]))
        .expect_failure(&["in us-east-1", "not found"]);
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/aws")
        .join(name)
}

/// The Argo CD plugin's generate command (`kustodian render .` on a kustomize app): AWS and
/// SOPS references in one Secret, each from its own store.
#[test]
fn render_dir_mixes_aws_ssm_and_sops_stores() {
    let m = mixed_fixture_data();
    let proxy = Proxy::pass(&m.url);
    let mut side = with_keys(&proxy);
    let keys = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/krm/keys.txt");
    side.set("SOPS_AGE_KEY_FILE", keys.to_str().unwrap());
    let dir = fixture("render-mixes-sops-and-aws");
    let b64 = base64::engine::general_purpose::STANDARD;
    side.run(&["render", dir.to_str().unwrap()], "")
        .expect_ok()
        .has("password", "canary-mixed-aws")
        .has("flag", "canary-mixed-ssm")
        .has("token", &b64.encode("canary-sops-token"));
    assert_eq!(proxy.seen().len(), 2);
}

/// The secret and parameter the `render-mixes-sops-and-aws` fixture names, created once.
fn mixed_fixture_data() -> &'static moto::Moto {
    static ONCE: std::sync::Once = std::sync::Once::new();
    let m = moto();
    ONCE.call_once(|| {
        m.aws(json!([
            secret("mixed/app", json!(r#"{"password":"canary-mixed-aws"}"#)),
            ["ssm", "put_parameter", {"Name": "/mixed/flag", "Value": "canary-mixed-ssm", "Type": "SecureString"}],
        ]));
    });
    m
}

/// The Argo CD plugin as argocd-cmp-server runs it: the Application picks the store
/// (`ARGOCD_ENV_AVP_TYPE`); credentials and endpoints are the sidecar's.
#[test]
fn argocd_plugin_renders_aws_references_with_the_sidecars_credentials() {
    let m = mixed_fixture_data();
    let proxy = Proxy::pass(&m.url);
    let repo = tempfile::tempdir().unwrap();
    example::copy_dir(
        &fixture("render-mixes-sops-and-aws"),
        &repo.path().join("apps/mixed"),
    );
    let app = example::AppInput {
        name: "mixed".into(),
        namespace: "team-a".into(),
        source_path: "apps/mixed".into(),
        env: vec![("AVP_TYPE".into(), "awssecretsmanager".into())],
        ..Default::default()
    };
    let keys = example::root().join("tests/fixtures/krm/keys.txt");
    let bins = example::bin_dir();
    let sidecar = [
        ("AWS_ACCESS_KEY_ID", "AKIDSIDECAR"),
        ("AWS_SECRET_ACCESS_KEY", SECRET_KEY),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ENDPOINT_URL", proxy.url.as_str()),
        ("SOPS_AGE_KEY_FILE", keys.to_str().unwrap()),
    ];
    let run = example::run_cmp(
        &example::plugin("kustodian"),
        repo.path(),
        &app,
        bins.path(),
        &sidecar,
    );
    assert!(run.output.status.success(), "{}", run.stderr());
    assert!(run.stdout().contains("canary-mixed-aws") && run.stdout().contains("canary-mixed-ssm"));
    assert!(!run.stderr().contains("canary") && !run.stderr().contains(SECRET_KEY));
    assert_eq!(
        key_id(&first(&proxy, "secretsmanager.GetSecretValue")),
        "AKIDSIDECAR"
    );
}

/// An Application's plugin env (`ARGOCD_ENV_*`) cannot move the endpoint, widen the role
/// allow-list or bring credentials: those are the operator's.
#[test]
fn application_env_cannot_redirect_endpoints_or_allow_roles() {
    let m = mixed_fixture_data();
    let proxy = Proxy::pass(&m.url);
    let attacker = Proxy::start(None, Box::new(|_, _| Some(response(500, "text/plain", ""))));
    let mut side = with_keys(&proxy);
    side.set("ARGOCD_ENV_AWS_ENDPOINT_URL_SECRETS_MANAGER", &attacker.url);
    side.set("ARGOCD_ENV_AWS_ENDPOINT_URL_STS", &attacker.url);
    side.set("ARGOCD_ENV_KUSTODIAN_AWS_ALLOWED_ROLE_ARNS", "*");
    side.render(&secret_doc(&[("a", "<path:mixed/app#password>")]))
        .expect_ok()
        .has("a", "canary-mixed-aws");
    side.render(&secret_doc(&[(
        "a",
        "ref+awssecrets://mixed/app?role_arn=arn:aws:iam::123456789012:role/admin#/password",
    )]))
    .expect_failure(&["KUSTODIAN_AWS_ALLOWED_ROLE_ARNS"]);
    assert!(attacker.seen().is_empty(), "{:?}", attacker.seen());
}

/// The legacy kustomize exec plugin (`kind: Resolver`), installed by its own verb and run by
/// `kubectl kustomize --enable-alpha-plugins`.
#[test]
fn legacy_kustomize_resolver_resolves_aws_references() {
    let m = mixed_fixture_data();
    let proxy = Proxy::pass(&m.url);
    let side = with_keys(&proxy);
    side.run(&["install-kustomize-plugin"], "").expect_ok();
    let dir = fixture("legacy-resolver-resolves-aws-references");
    let kubectl = std::path::Path::new("kubectl");
    side.run_program(
        kubectl,
        &["kustomize", "--enable-alpha-plugins", dir.to_str().unwrap()],
        "",
    )
    .expect_ok()
    .has("password", "canary-mixed-aws")
    .has("flag", "canary-mixed-ssm");
    assert_eq!(proxy.seen().len(), 2);
}

/// `kustodian krm`: the KRM function resolves AWS references in a ResourceList.
#[test]
fn krm_function_resolves_aws_references() {
    let m = moto();
    m.aws(json!([
        secret("krm/app", json!(r#"{"password":"canary-krm","url":"https://canary.example"}"#)),
        ["ssm", "put_parameter", {"Name": "/krm/flag", "Value": "canary-krm-flag", "Type": "String"}],
    ]));
    let proxy = Proxy::pass(&m.url);
    let side = with_keys(&proxy);
    let input = std::fs::read_to_string(fixture("krm-function-resolves-aws-references/input.yaml"))
        .unwrap();
    side.run(&["krm"], &input)
        .expect_ok()
        .has("password", "canary-krm")
        .has("url", "https://canary.example")
        .has("flag", "canary-krm-flag");
    assert_eq!(
        proxy.count("secretsmanager.GetSecretValue", Some("krm/app")),
        1
    );
    // A missing secret: the function fails and says which reference.
    let bad = input.replace("krm/app#password", "krm/nothing#password");
    let r = side.run(&["krm"], &bad);
    assert!(
        !r.ok && r.stdout.contains("krm/nothing") && !r.stdout.contains("canary"),
        "{}",
        r.stdout
    );
}

#[test]
fn missing_credentials_and_region_are_configuration_errors() {
    let proxy = Proxy::start(None, Box::new(|_, _| None));
    let mut side = bare(&proxy);
    let doc = secret_doc(&[("a", "<path:app#k>")]);
    side.render(&doc)
        .expect_failure(&["no AWS credentials", "AWS_WEB_IDENTITY_TOKEN_FILE"]);
    side.set("AWS_ACCESS_KEY_ID", "AKIDX");
    side.set("AWS_SECRET_ACCESS_KEY", SECRET_KEY);
    side.unset("AWS_REGION");
    side.render(&doc)
        .expect_failure(&["no AWS region", "AWS_REGION"]);
    assert!(proxy.seen().is_empty());
}
