//! AWS credentials in the standard order: the environment (`AWS_ACCESS_KEY_ID`, ...), the
//! shared `config`/`credentials` files (`AWS_PROFILE`, `default`; static keys, or `role_arn`
//! with `source_profile`, `web_identity_token_file` or `credential_source = Environment`),
//! web identity (IRSA: `AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN`, exchanged with STS
//! `AssumeRoleWithWebIdentity`), and container credentials (EKS Pod Identity:
//! `AWS_CONTAINER_CREDENTIALS_FULL_URI` with `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`).
//!
//! Temporary credentials are cached on disk like Vault tokens (the Vault store's cache slots:
//! mode 0600, locked, keyed by role, endpoint and a fingerprint of the source identity) and
//! used until five minutes before they expire. Nothing here prints a key or token.

use std::collections::HashMap;
use std::path::Path;

use serde_json::json;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::http::{xml_tag, Call, Http};
use super::settings::{Service, Settings};
use super::Failure;
use crate::vault::cache::{now_ms, Entry, Refused, Slot};

/// Temporary credentials are replaced this long before they expire.
const REFRESH_MS: u64 = 5 * 60 * 1000;
/// Longest token or credentials file read.
const FILE_LIMIT: u64 = 64 * 1024;

/// A key pair, and a session token for temporary credentials. Wiped on drop.
pub(crate) struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: Zeroizing<String>,
    pub session_token: Option<Zeroizing<String>>,
    /// When temporary credentials expire (Unix ms).
    pub expires_at_ms: Option<u64>,
}

/// Credentials and who they are, for messages (`the role arn:... (web identity)`).
pub(crate) struct Identity {
    pub creds: Credentials,
    pub who: String,
}

/// Finds the operator's credentials; `region` is where STS is called.
pub(crate) fn resolve(s: &Settings, http: &Http, region: &str) -> Result<Identity, Failure> {
    let v = &s.vars;
    match (&v.access_key_id, &v.secret_access_key) {
        (Some(id), Some(secret)) => {
            return Ok(Identity {
                creds: Credentials {
                    access_key_id: id.clone(),
                    secret_access_key: Zeroizing::new(secret.clone()),
                    session_token: v.session_token.clone().map(Zeroizing::new),
                    expires_at_ms: None,
                },
                who: "the access key in AWS_ACCESS_KEY_ID".into(),
            })
        }
        (Some(_), None) | (None, Some(_)) => {
            return Err(Failure::Config(
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together".into(),
            ))
        }
        (None, None) => {}
    }
    let files = Profiles::read(s)?;
    if let Some(name) = &v.profile {
        return from_profile(s, http, region, &files, name, 0);
    }
    if let (Some(file), Some(role)) = (&v.web_identity_token_file, &v.role_arn) {
        return web_identity(s, http, region, file, role, v.role_session_name.as_deref());
    }
    if v.web_identity_token_file.is_some() != v.role_arn.is_some() {
        return Err(Failure::Config(
            "AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN must be set together (IRSA sets both)"
                .into(),
        ));
    }
    if v.container_full_uri.is_some() || v.container_relative_uri.is_some() {
        return container(s, http);
    }
    if files.get("default").is_some() {
        return from_profile(s, http, region, &files, "default", 0);
    }
    Err(Failure::Config(
        "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, \
         AWS_WEB_IDENTITY_TOKEN_FILE with AWS_ROLE_ARN (IRSA), or AWS_CONTAINER_CREDENTIALS_FULL_URI \
         (EKS Pod Identity) in the environment of kustodian"
            .into(),
    ))
}

/// Credentials for `role` assumed with `source` (STS `AssumeRole`), cached.
pub(crate) fn assume_role(
    s: &Settings,
    http: &Http,
    region: &str,
    source: &Identity,
    role: &str,
    session: Option<&str>,
) -> Result<Identity, Failure> {
    let session = session_name(session);
    let source_key = fingerprint(&format!(
        "{}\n{}",
        source.creds.access_key_id,
        source.creds.secret_access_key.as_str()
    ));
    let endpoint = sts_endpoint(s, region);
    let creds = cached(
        s,
        &["assume-role", &endpoint, role, &session, &source_key],
        || {
            let body = form(&[
                ("Action", "AssumeRole"),
                ("Version", "2011-06-15"),
                ("RoleArn", role),
                ("RoleSessionName", &session),
            ]);
            sts(
                http,
                &endpoint,
                region,
                body,
                Some(&source.creds),
                role,
                "sts:AssumeRole",
                &source.who,
            )
        },
    )?;
    Ok(Identity {
        creds,
        who: format!("the role {role} (assumed with {})", source.who),
    })
}

fn web_identity(
    s: &Settings,
    http: &Http,
    region: &str,
    file: &Path,
    role: &str,
    session: Option<&str>,
) -> Result<Identity, Failure> {
    let token = read_small(
        file,
        "the web identity token file (AWS_WEB_IDENTITY_TOKEN_FILE)",
    )?;
    let session = session_name(session);
    let endpoint = sts_endpoint(s, region);
    let creds = cached(
        s,
        &[
            "web-identity",
            &endpoint,
            role,
            &session,
            &fingerprint(&token),
        ],
        || {
            let body = form(&[
                ("Action", "AssumeRoleWithWebIdentity"),
                ("Version", "2011-06-15"),
                ("RoleArn", role),
                ("RoleSessionName", &session),
                ("WebIdentityToken", &token),
            ]);
            sts(
                http,
                &endpoint,
                region,
                body,
                None,
                role,
                "sts:AssumeRoleWithWebIdentity",
                "the service-account token",
            )
        },
    )?;
    Ok(Identity {
        creds,
        who: format!("the role {role} (web identity)"),
    })
}

/// One STS call and its credentials.
#[allow(clippy::too_many_arguments)]
fn sts(
    http: &Http,
    endpoint: &str,
    region: &str,
    body: Zeroizing<String>,
    signer: Option<&Credentials>,
    role: &str,
    action: &str,
    who: &str,
) -> Result<Credentials, Failure> {
    let call = Call {
        method: "POST",
        url: endpoint.to_string(),
        query: Vec::new(),
        headers: vec![(
            "content-type",
            "application/x-www-form-urlencoded; charset=utf-8".to_string(),
        )],
        body: Zeroizing::new(body.as_bytes().to_vec()),
        sign: signer.map(|c| (c, Service::Sts, region)),
    };
    let a = http.send(&call).map_err(Failure::Auth)?;
    if let Some(e) = &a.error {
        let hint = match e.code.as_str() {
            "AccessDenied" if signer.is_some() => format!(
                "; the role's trust policy must allow {action} for {who}, and {who}'s own IAM \
                 policy must allow {action} on the role"
            ),
            "AccessDenied" => format!("; the role's trust policy must allow {action} for {who}"),
            "InvalidIdentityToken" | "ExpiredTokenException" => {
                "; check the projected service-account token and the role's OIDC provider".into()
            }
            _ => String::new(),
        };
        return Err(Failure::Auth(format!(
            "STS {} for {role} failed: {e}{hint}",
            action.trim_start_matches("sts:")
        )));
    }
    let field = |t: &str| xml_tag(&a.body, t).filter(|v| !v.is_empty());
    match (field("AccessKeyId"), field("SecretAccessKey")) {
        (Some(id), Some(secret)) => Ok(Credentials {
            access_key_id: id,
            secret_access_key: Zeroizing::new(secret),
            session_token: field("SessionToken").map(Zeroizing::new),
            expires_at_ms: field("Expiration").and_then(|e| parse_time_ms(&e)),
        }),
        _ => Err(Failure::Auth(format!(
            "STS answered {action} for {role} without credentials"
        ))),
    }
}

/// EKS Pod Identity (and ECS task roles): the agent's endpoint with the pod's token.
fn container(s: &Settings, http: &Http) -> Result<Identity, Failure> {
    let v = &s.vars;
    let uri = match (&v.container_full_uri, &v.container_relative_uri) {
        (Some(full), _) => full.clone(),
        (None, Some(rel)) => format!("http://169.254.170.2{rel}"),
        (None, None) => unreachable!("checked by the caller"),
    };
    if !container_uri_allowed(&uri) {
        return Err(Failure::Config(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI must be https, or http to a loopback address or \
             the EKS/ECS agent (169.254.170.23, 169.254.170.2)"
                .into(),
        ));
    }
    let token = match (&v.container_token_file, &v.container_token) {
        (Some(f), _) => Some(read_small(
            f,
            "the container authorization token file (AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE)",
        )?),
        (None, Some(t)) => Some(Zeroizing::new(t.clone())),
        (None, None) => None,
    };
    let key = fingerprint(token.as_deref().map(|t| t.as_str()).unwrap_or(""));
    let creds = cached(s, &["container", &uri, &key], || {
        let mut headers = vec![("accept", "application/json".to_string())];
        if let Some(t) = &token {
            headers.push(("authorization", t.to_string()));
        }
        let call = Call {
            method: "GET",
            url: uri.clone(),
            query: Vec::new(),
            headers,
            body: Zeroizing::new(Vec::new()),
            sign: None,
        };
        let a = http.send(&call).map_err(Failure::Auth)?;
        if let Some(e) = &a.error {
            return Err(Failure::Auth(format!(
                "the container credentials endpoint refused the pod's token ({e}); check the \
                 Pod Identity association of the service account"
            )));
        }
        let j: serde_json::Value = serde_json::from_str(&a.body).unwrap_or_default();
        let field = |k: &str| j.get(k).and_then(|v| v.as_str()).map(str::to_string);
        match (field("AccessKeyId"), field("SecretAccessKey")) {
            (Some(id), Some(secret)) => Ok(Credentials {
                access_key_id: id,
                secret_access_key: Zeroizing::new(secret),
                session_token: field("Token").map(Zeroizing::new),
                expires_at_ms: field("Expiration").and_then(|e| parse_time_ms(&e)),
            }),
            _ => Err(Failure::Auth(
                "the container credentials endpoint answered without credentials".into(),
            )),
        }
    })?;
    Ok(Identity {
        creds,
        who: "the pod's container credentials (EKS Pod Identity)".into(),
    })
}

fn container_uri_allowed(uri: &str) -> bool {
    if uri.starts_with("https://") {
        return true;
    }
    let Some(rest) = uri.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let host = match authority.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h,
        _ => authority,
    };
    host == "localhost"
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
        || matches!(
            host,
            "[::1]" | "169.254.170.2" | "169.254.170.23" | "[fd00:ec2::23]"
        )
}

/// The shared config and credentials files, by profile name.
struct Profiles(HashMap<String, HashMap<String, String>>);

impl Profiles {
    fn read(s: &Settings) -> Result<Self, Failure> {
        let mut all: HashMap<String, HashMap<String, String>> = HashMap::new();
        // The config file first; the credentials file's keys win.
        for (file, is_config) in [
            (&s.vars.config_file, true),
            (&s.vars.credentials_file, false),
        ] {
            let Some(file) = file else { continue };
            if !file.is_file() {
                continue;
            }
            let text = read_small(file, "the AWS shared config file")?;
            for (section, key, value) in ini(&text) {
                let name = if is_config {
                    match section.strip_prefix("profile ") {
                        Some(n) => n.trim().to_string(),
                        None if section == "default" => section,
                        None => continue,
                    }
                } else {
                    section
                };
                all.entry(name).or_default().insert(key, value);
            }
        }
        Ok(Profiles(all))
    }

    fn get(&self, name: &str) -> Option<&HashMap<String, String>> {
        self.0.get(name)
    }
}

/// `(section, key, value)` of an INI text; `#` and `;` start comments.
fn ini(text: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let mut section = String::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = s.trim().to_string();
        } else if let Some((k, v)) = line.split_once('=') {
            out.push((
                section.clone(),
                k.trim().to_ascii_lowercase(),
                v.trim().to_string(),
            ));
        }
    }
    out
}

/// The region a profile names, if any.
pub(crate) fn profile_region(s: &Settings) -> Option<String> {
    let name = s.vars.profile.clone().unwrap_or_else(|| "default".into());
    Profiles::read(s).ok()?.get(&name)?.get("region").cloned()
}

fn from_profile(
    s: &Settings,
    http: &Http,
    region: &str,
    files: &Profiles,
    name: &str,
    depth: usize,
) -> Result<Identity, Failure> {
    let p = files.get(name).ok_or_else(|| {
        Failure::Config(format!(
            "the AWS profile {name:?} is in neither the config nor the credentials file; \
             set AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE or fix AWS_PROFILE"
        ))
    })?;
    if depth > 4 {
        return Err(Failure::Config(format!(
            "the AWS profile {name:?}: source_profile chain is too long (a loop?)"
        )));
    }
    let Some(role) = p.get("role_arn") else {
        return match (p.get("aws_access_key_id"), p.get("aws_secret_access_key")) {
            (Some(id), Some(secret)) => Ok(Identity {
                creds: Credentials {
                    access_key_id: id.clone(),
                    secret_access_key: Zeroizing::new(secret.clone()),
                    session_token: p.get("aws_session_token").cloned().map(Zeroizing::new),
                    expires_at_ms: None,
                },
                who: format!("the AWS profile {name:?}"),
            }),
            _ => Err(Failure::Config(format!(
                "the AWS profile {name:?} has neither aws_access_key_id/aws_secret_access_key \
                 nor role_arn"
            ))),
        };
    };
    let session = p.get("role_session_name").map(String::as_str);
    if let Some(file) = p.get("web_identity_token_file") {
        return web_identity(s, http, region, Path::new(file), role, session);
    }
    let source = match (p.get("source_profile"), p.get("credential_source")) {
        (Some(src), _) if src == name && p.contains_key("aws_access_key_id") => {
            let mut q = p.clone();
            q.remove("role_arn");
            let one = Profiles(HashMap::from([(name.to_string(), q)]));
            from_profile(s, http, region, &one, name, depth + 1)?
        }
        (Some(src), _) => from_profile(s, http, region, files, src, depth + 1)?,
        (None, Some(cs)) if cs.eq_ignore_ascii_case("Environment") => {
            return Err(Failure::Config(format!(
                "the AWS profile {name:?}: credential_source = Environment needs \
                 AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, which are not set"
            )))
        }
        _ => {
            return Err(Failure::Config(format!(
                "the AWS profile {name:?} has role_arn but no source_profile or \
                 web_identity_token_file"
            )))
        }
    };
    assume_role(s, http, region, &source, role, session)
}

/// The cached credentials under `parts`, or `fetch`'s, written to the cache (mode 0600).
fn cached(
    s: &Settings,
    parts: &[&str],
    fetch: impl FnOnce() -> Result<Credentials, Failure>,
) -> Result<Credentials, Failure> {
    let Some(dir) = &s.cache_dir else {
        return fetch();
    };
    let mut key = vec!["aws-credentials-v1"];
    key.extend_from_slice(parts);
    let slot = Slot::new(dir, &key);
    let mut fetch = Some(fetch);
    let mut fresh = || {
        fetch.take().map_or_else(
            || Err(Failure::Auth("internal: credentials fetched twice".into())),
            |f| f(),
        )
    };
    let outcome = slot.locked(|slot| -> Result<Result<Credentials, Failure>, Refused> {
        if let Some(c) = slot.read()?.as_ref().and_then(from_entry) {
            if c.expires_at_ms.is_some_and(|at| at > now_ms() + REFRESH_MS) {
                return Ok(Ok(c));
            }
        }
        let c = match fresh() {
            Ok(c) => c,
            Err(e) => return Ok(Err(e)),
        };
        if let Some(entry) = to_entry(&c) {
            if slot.write(&entry).is_err() {
                slot.remove();
            }
        }
        Ok(Ok(c))
    });
    match outcome.and_then(|r| r) {
        Ok(r) => r,
        Err(refused) => {
            eprintln!(
                "kustodian: warning: the AWS credential cache cannot be used ({refused}); continuing without it"
            );
            fresh()
        }
    }
}

fn to_entry(c: &Credentials) -> Option<Entry> {
    let at = c.expires_at_ms?;
    let token = json!({
        "AccessKeyId": c.access_key_id,
        "SecretAccessKey": c.secret_access_key.as_str(),
        "SessionToken": c.session_token.as_deref().map(|t| t.as_str()),
    })
    .to_string();
    Some(Entry {
        token,
        expires_at_ms: Some(at),
        lease_ms: at.saturating_sub(now_ms()),
        renewable: false,
    })
}

fn from_entry(e: &Entry) -> Option<Credentials> {
    let j: serde_json::Value = serde_json::from_str(&e.token).ok()?;
    let field = |k: &str| j.get(k).and_then(|v| v.as_str()).map(str::to_string);
    Some(Credentials {
        access_key_id: field("AccessKeyId")?,
        secret_access_key: Zeroizing::new(field("SecretAccessKey")?),
        session_token: field("SessionToken").map(Zeroizing::new),
        expires_at_ms: e.expires_at_ms,
    })
}

fn sts_endpoint(s: &Settings, region: &str) -> String {
    s.endpoint(Service::Sts, region)
}

/// The session name given, or a fixed one: it is part of the cache key, so it must not change
/// from one render to the next.
fn session_name(given: Option<&str>) -> String {
    given.unwrap_or("kustodian").to_string()
}

fn form(pairs: &[(&str, &str)]) -> Zeroizing<String> {
    Zeroizing::new(
        pairs
            .iter()
            .map(|(k, v)| format!("{}={}", super::sigv4::encode(k), super::sigv4::encode(v)))
            .collect::<Vec<_>>()
            .join("&"),
    )
}

fn read_small(path: &Path, what: &str) -> Result<Zeroizing<String>, Failure> {
    use std::io::Read as _;
    let cant = |e: std::io::Error| {
        Failure::Config(format!(
            "cannot read {what} at {}: {}",
            path.display(),
            e.kind()
        ))
    };
    let f = std::fs::File::open(path).map_err(cant)?;
    let mut text = Zeroizing::new(String::new());
    f.take(FILE_LIMIT).read_to_string(&mut text).map_err(cant)?;
    let trimmed = Zeroizing::new(text.trim().to_string());
    if trimmed.is_empty() {
        return Err(Failure::Config(format!(
            "{what} at {} is empty",
            path.display()
        )));
    }
    Ok(trimmed)
}

fn fingerprint(s: &str) -> String {
    hex::encode(&Sha256::digest(s.as_bytes())[..16])
}

/// `2026-11-30T03:28:11.381202Z` (or with `+00:00`) to Unix ms.
pub(crate) fn parse_time_ms(t: &str) -> Option<u64> {
    let t = t.trim();
    let (date, time) = t.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let time = time.trim_end_matches('Z').trim_end_matches("+00:00");
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut h = hms.split(':').map(|p| p.parse::<i64>().ok());
    let (hh, mm, ss) = (h.next()??, h.next()??, h.next()??);
    let ms: u64 = frac
        .chars()
        .chain(std::iter::repeat('0'))
        .take(3)
        .collect::<String>()
        .parse()
        .ok()?;
    // Days from civil (Howard Hinnant's algorithm).
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from(((days * 24 + hh) * 60 + mm) * 60 + ss)
        .ok()
        .map(|s| s * 1000 + ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse() {
        assert_eq!(parse_time_ms("1970-01-01T00:00:01Z"), Some(1000));
        assert_eq!(
            parse_time_ms("2015-08-30T12:36:00.5Z"),
            Some(1_440_938_160_500)
        );
        assert_eq!(parse_time_ms("garbage"), None);
        assert_eq!(parse_time_ms("2015-08-30T12:36:00.éé"), None);
    }

    #[test]
    fn ini_sections() {
        let v = ini("[default]\nregion = eu-west-1\n# c\n[profile a]\nrole_arn=arn\n");
        assert_eq!(
            v[0],
            ("default".into(), "region".into(), "eu-west-1".into())
        );
        assert_eq!(v[1], ("profile a".into(), "role_arn".into(), "arn".into()));
    }

    fn settings(cache: &Path) -> Settings {
        let c = crate::Config::from_vars(
            Path::new("/"),
            Path::new("/"),
            [("KUSTODIAN_CACHE_DIR", cache.to_str().unwrap())]
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        Settings::from_config(&c).unwrap()
    }

    fn creds(expires_in_ms: u64) -> Credentials {
        Credentials {
            access_key_id: "ASIATEST".into(),
            secret_access_key: Zeroizing::new("s".into()),
            session_token: Some(Zeroizing::new("t".into())),
            expires_at_ms: Some(now_ms() + expires_in_ms),
        }
    }

    #[test]
    fn cached_credentials_are_reused_until_five_minutes_before_expiry() {
        let tmp = tempfile::tempdir().unwrap();
        let s = settings(tmp.path());
        let calls = std::cell::Cell::new(0);
        let get = |ttl: u64| {
            cached(&s, &["k"], || {
                calls.set(calls.get() + 1);
                Ok(creds(ttl))
            })
            .unwrap()
        };
        get(3_600_000);
        get(3_600_000);
        assert_eq!(calls.get(), 1, "an hour left: reused");
        let other = cached(&s, &["other"], || Ok(creds(60_000))).unwrap();
        assert_eq!(other.access_key_id, "ASIATEST");
        let again = std::cell::Cell::new(0);
        for _ in 0..2 {
            cached(&s, &["other"], || {
                again.set(again.get() + 1);
                Ok(creds(60_000))
            })
            .unwrap();
        }
        assert_eq!(again.get(), 2, "a minute left: fetched again every time");
        let file = std::fs::read_dir(tmp.path().join("aws-credentials"))
            .unwrap()
            .flatten()
            .find(|e| e.path().extension().is_some_and(|x| x == "json"))
            .unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        assert_eq!(file.metadata().unwrap().permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn an_unusable_cache_folder_is_skipped() {
        let tmp = tempfile::tempdir().unwrap();
        let blocker = tmp.path().join("file");
        std::fs::write(&blocker, "").unwrap();
        let s = settings(&blocker);
        assert!(cached(&s, &["k"], || Ok(creds(3_600_000))).is_ok());
    }

    #[test]
    fn container_uris() {
        assert!(container_uri_allowed(
            "http://127.0.0.1:8080/v1/credentials"
        ));
        assert!(container_uri_allowed(
            "http://169.254.170.23/v1/credentials"
        ));
        assert!(container_uri_allowed("https://creds.example"));
        assert!(!container_uri_allowed("http://evil.example/creds"));
        assert!(!container_uri_allowed("http://127.0.0.1.evil.example/"));
    }
}
