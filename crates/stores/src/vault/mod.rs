//! HashiCorp Vault and OpenBao: KV v1 and v2 secrets, read with a token obtained by
//! Kubernetes, AppRole or userpass login (or given directly).
//!
//! The flow is the one argocd-vault-plugin users know: in the Argo CD sidecar the pod's
//! service-account JWT is posted to `auth/kubernetes/login`; Vault checks it with the
//! Kubernetes TokenReview API against the role's bound service account and namespace and
//! answers with a token; the store reads each distinct path once with that token.
//!
//! - Configuration: [`settings`] (kustodian's names, argocd-vault-plugin's `AVP_*`, the Vault
//!   CLI's `VAULT_*`).
//! - Login and renewal: [`auth`]; the token cache on disk: [`cache`].
//! - Paths and KV versions: [`kv`]; HTTP, timeouts and retries: [`http`].
//!
//! One store logs in at most once per render, however many threads fetch at once; a token
//! from the cache that Vault refuses (403) is replaced by a fresh login once. Messages name
//! paths and statuses, never values, tokens or credentials.

mod auth;
pub(crate) mod cache;
pub(crate) mod files;
pub(crate) mod http;
mod kv;
mod settings;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use zeroize::Zeroizing;

use self::auth::{Lease, Login};
use self::cache::{now_ms, Entry, Refused, Slot};
pub(crate) use self::http::Reply;
use self::http::{Http, Method};
use self::kv::{Engine, Mount, Syntax};
use self::settings::{Auth, KvVersion, Secret, Settings};
pub(crate) use crate::http::encode_path;
use crate::{Config, Request, SecretValue, Store, StoreError};

const STORE: &str = "vault";

/// The Vault/OpenBao store.
pub struct Vault {
    settings: Settings,
    http: Http,
    state: Mutex<State>,
    mounts: Mutex<Mounts>,
    /// Reads by API path and version: `<path:kv/data/app#k>` and `ref+vault://kv/app#/k` are
    /// one read, each unwrapping the answer its own way.
    reads: Mutex<HashMap<ReadKey, ReadCell>>,
    warned_cache: AtomicBool,
}

/// API path and version.
type ReadKey = (String, Option<String>);
/// One read's outcome, filled by the first fetch that needs it.
type ReadCell = Arc<OnceLock<Result<SecretValue, StoreError>>>;

#[derive(Default)]
struct State {
    session: Option<Arc<Session>>,
    /// Why the first login failed; later fetches fail the same way without retrying.
    failed: Option<StoreError>,
    /// Whether the one re-login after a 403 has happened.
    relogged: bool,
    login: Option<Arc<Login>>,
}

/// The token in use.
struct Session {
    token: Secret,
    /// Whether it came from the disk cache (and so may have been revoked or had its
    /// policies changed since).
    from_cache: bool,
}

#[derive(Default)]
struct Mounts {
    known: Vec<Mount>,
    /// First path segments whose mount could not be looked up.
    unknown: Vec<String>,
}

impl Vault {
    /// A store from the configuration. Does not touch the network; warns on stderr when
    /// certificate checks are turned off.
    pub fn new(config: &Config) -> Result<Self, StoreError> {
        let settings = Settings::from_config(config)?;
        if crate::http::has_userinfo(&settings.addr) {
            return Err(StoreError::Config(
                "VAULT_ADDR holds a user name or password (scheme://user:password@host); Vault does not use them \
                 and kustodian neither sends nor prints them: remove them from VAULT_ADDR and authenticate with \
                 VAULT_TOKEN or AVP_AUTH_TYPE"
                    .into(),
            ));
        }
        let addr_unset = config.var_any(&["VAULT_ADDR", "BAO_ADDR"]).is_none();
        let http = Http::new(&settings)?.with_default_addr(addr_unset);
        if settings.tls.skip_verify {
            eprintln!(
                "kustodian: warning: VAULT_SKIP_VERIFY is set: the TLS certificate of {} is not checked, so anyone on the \
                 network path can pose as Vault and receive your token and secrets; set VAULT_CACERT instead",
                settings.addr
            );
        }
        Ok(Vault {
            settings,
            http,
            state: Mutex::default(),
            mounts: Mutex::default(),
            reads: Mutex::default(),
            warned_cache: AtomicBool::new(false),
        })
    }

    /// The factory registered under the name `vault` (also `openbao`).
    pub fn factory(config: &Config) -> Result<Arc<dyn Store>, StoreError> {
        Ok(Arc::new(Self::new(config)?))
    }

    /// The token for this render: logs in (or reads the cache) on first use only.
    fn session(&self) -> Result<Arc<Session>, StoreError> {
        let mut st = lock(&self.state);
        if let Some(e) = &st.failed {
            return Err(copy(e));
        }
        if let Some(s) = &st.session {
            return Ok(s.clone());
        }
        match self.start(&mut st) {
            Ok(s) => {
                st.session = Some(s.clone());
                Ok(s)
            }
            Err(e) => {
                st.failed = Some(copy(&e));
                Err(e)
            }
        }
    }

    fn start(&self, st: &mut State) -> Result<Arc<Session>, StoreError> {
        if let Auth::Token { given, file } = &self.settings.auth {
            let token = match (given, file) {
                (Some(t), _) => t.clone(),
                (None, Some(f)) => auth::read_secret_file(f, "the Vault token file")?,
                (None, None) => {
                    return Err(StoreError::Config("no Vault token: set VAULT_TOKEN".into()))
                }
            };
            return Ok(self.session_for(token, false));
        }
        let login = Arc::new(
            Login::prepare(&self.settings.auth)?
                .ok_or_else(|| StoreError::Config("no login method".into()))?,
        );
        for secret in &login.secrets {
            self.http.protect(secret);
        }
        st.login = Some(login.clone());
        self.cached_or_login(&login, None)
    }

    /// After a 403 with `stale`: the token another thread already got, or (once per store) a
    /// fresh login. `None` for a token given directly, or when the one re-login is used up.
    fn relogin(&self, stale: &Arc<Session>) -> Result<Option<Arc<Session>>, StoreError> {
        let mut st = lock(&self.state);
        if let Some(cur) = &st.session {
            if !Arc::ptr_eq(cur, stale) {
                return Ok(Some(cur.clone()));
            }
        }
        let Some(login) = st.login.clone() else {
            return Ok(None);
        };
        if st.relogged {
            return Ok(None);
        }
        st.relogged = true;
        let s = self.cached_or_login(&login, Some(&stale.token))?;
        st.session = Some(s.clone());
        Ok(Some(s))
    }

    fn slot(&self, login: &Login) -> Option<Slot> {
        let dir = self.settings.cache_dir.as_ref()?;
        let ns = self.settings.namespace.as_deref().unwrap_or("");
        let [method, mount, identity, credential] = &login.key;
        Some(Slot::new(
            dir,
            &[&self.settings.addr, ns, method, mount, identity, credential],
        ))
    }

    /// A token from the cache (renewed when past half its lease), or a new login written to
    /// the cache; all under the cache slot's lock so that parallel renders log in once.
    /// `stale` is a token Vault just refused: it is never reused.
    fn cached_or_login(
        &self,
        login: &Login,
        stale: Option<&str>,
    ) -> Result<Arc<Session>, StoreError> {
        let Some(slot) = self.slot(login) else {
            return Ok(self.session_for(login.login(&self.http)?.token, false));
        };
        let outcome = slot.locked(
            |slot| -> Result<Result<Arc<Session>, StoreError>, Refused> {
                let from_cache = stale.is_none();
                let entry = slot.read()?;
                if let Some(entry) = entry.filter(|e| stale != Some(e.token.as_str())) {
                    match judge(&entry, now_ms()) {
                        Verdict::Use => {
                            return Ok(Ok(
                                self.session_for(Zeroizing::new(entry.token.clone()), from_cache)
                            ))
                        }
                        Verdict::Renew => {
                            if let Some(lease) = auth::renew(&self.http, &entry.token) {
                                let renewed = entry_for(&lease);
                                if matches!(judge(&renewed, now_ms()), Verdict::Use)
                                    && lease.lease_ms.saturating_mul(4) >= entry.lease_ms
                                {
                                    self.keep(slot, &renewed);
                                    return Ok(Ok(self.session_for(lease.token, from_cache)));
                                }
                            }
                        }
                        Verdict::Login => {}
                    }
                }
                Ok(login.login(&self.http).map(|lease| {
                    self.keep(slot, &entry_for(&lease));
                    self.session_for(lease.token, false)
                }))
            },
        );
        match outcome.and_then(|r| r) {
            Ok(result) => result,
            Err(refused) => {
                self.warn_cache(&refused.to_string());
                Ok(self.session_for(login.login(&self.http)?.token, false))
            }
        }
    }

    /// A session for a token; the token is redacted from every message from now on.
    fn session_for(&self, token: Secret, from_cache: bool) -> Arc<Session> {
        self.http.protect(&token);
        Arc::new(Session { token, from_cache })
    }

    fn keep(&self, slot: &Slot, e: &Entry) {
        if let Err(err) = slot.write(e) {
            slot.remove();
            let dir = self
                .settings
                .cache_dir
                .as_ref()
                .map(|d| d.display().to_string())
                .unwrap_or_default();
            self.warn_cache(&format!(
                "{dir}: {}",
                kustodian_manifest::read::describe_io(&err)
            ));
        }
    }

    /// Says once per render why the token cache is not used (`what`: the path and the reason).
    fn warn_cache(&self, what: &str) {
        if !self.warned_cache.swap(true, Ordering::Relaxed) {
            eprintln!(
                "kustodian: warning: not using the Vault token cache: {what}; logging in without it"
            );
        }
    }

    /// A GET with the session's token. On 401/403: a token from the cache is replaced by one
    /// new login (it may have been revoked, or hold old policies); any other token is checked
    /// with `auth/token/lookup-self`, and one that Vault no longer knows (expired mid-render,
    /// revoked, used up) is replaced by one new login, or, given directly, fails the whole
    /// store as "invalid or expired". A valid token's 403 is the path's policy.
    fn get(&self, api_path: &str, query: &[(&str, &str)]) -> Result<Reply, StoreError> {
        let s = self.session()?;
        let reply = self.send(api_path, query, &s)?;
        if !matches!(reply.status, 401 | 403) {
            return Ok(reply);
        }
        let valid = if s.from_cache {
            None
        } else {
            Some(self.token_valid(&s))
        };
        if valid == Some(true) {
            return Ok(reply);
        }
        if let Some(fresh) = self.relogin(&s)? {
            let again = self.send(api_path, query, &fresh)?;
            if matches!(again.status, 401 | 403) && !self.token_valid(&fresh) {
                return Err(self.invalid_token(&fresh));
            }
            return Ok(again);
        }
        if valid == Some(false) || !self.token_valid(&s) {
            return Err(self.invalid_token(&s));
        }
        Ok(reply)
    }

    /// One call with a session's token; a transport failure fails the whole store, and is
    /// remembered so that later fetches do not wait for it again.
    fn send(
        &self,
        api_path: &str,
        query: &[(&str, &str)],
        s: &Session,
    ) -> Result<Reply, StoreError> {
        self.http
            .call(Method::Get, api_path, query, Some(&s.token), None)
            .map_err(|e| {
                self.fail_store(StoreError::Unavailable {
                    store: STORE.into(),
                    reason: e.0,
                })
            })
    }

    /// The Vault address in use (the operator's `VAULT_ADDR`, or Vault's default).
    pub(crate) fn addr(&self) -> &str {
        &self.settings.addr
    }

    /// A POST with the session's token (the SOPS transit master keys); a 401/403 with a
    /// token from the cache is retried once with a fresh login.
    pub(crate) fn post(
        &self,
        api_path: &str,
        body: &serde_json::Value,
    ) -> Result<Reply, StoreError> {
        let call = |s: &Session| {
            self.http
                .call(Method::Post, api_path, &[], Some(&s.token), Some(body))
                .map_err(|e| {
                    self.fail_store(StoreError::Unavailable {
                        store: STORE.into(),
                        reason: e.0,
                    })
                })
        };
        let s = self.session()?;
        let reply = call(&s)?;
        if matches!(reply.status, 401 | 403) && s.from_cache {
            if let Some(fresh) = self.relogin(&s)? {
                return call(&fresh);
            }
        }
        Ok(reply)
    }

    /// Whether Vault still knows the token (`auth/token/lookup-self`, which every token's
    /// default policy allows). When that cannot be told, the token is taken as valid.
    fn token_valid(&self, s: &Session) -> bool {
        match self.http.call(
            Method::Get,
            "auth/token/lookup-self",
            &[],
            Some(&s.token),
            None,
        ) {
            Ok(r) => !matches!(r.status, 401 | 403),
            Err(_) => true,
        }
    }

    /// The store-wide error for a token Vault no longer accepts, remembered for the render.
    fn invalid_token(&self, s: &Session) -> StoreError {
        let login = lock(&self.state).login.clone();
        let reason = match login {
            Some(l) if !s.from_cache => format!(
                "invalid or expired token: Vault refused the token from {} (403) and auth/token/lookup-self \
                 does not know it, even after logging in again; check the role's token_ttl, token_num_uses \
                 and token_max_ttl",
                l.what
            ),
            Some(l) => format!(
                "invalid or expired token: Vault refused the cached token from {} (403) and \
                 auth/token/lookup-self does not know it",
                l.what
            ),
            None => "invalid or expired token: Vault refused the token (403) and auth/token/lookup-self does not \
                     know it, so it has expired, been revoked or used up, or belongs to another Vault or \
                     namespace; set VAULT_TOKEN (or the token file) to a valid token"
                .into(),
        };
        self.fail_store(StoreError::Unavailable {
            store: STORE.into(),
            reason,
        })
    }

    /// Remembers a store-wide failure: later fetches fail the same way without requests.
    fn fail_store(&self, e: StoreError) -> StoreError {
        let mut st = lock(&self.state);
        if st.failed.is_none() {
            st.failed = Some(copy(&e));
        }
        e
    }

    /// One read and its answer turned into a document or an error naming `shown`.
    /// Reads an API path; the whole answer, which [`kv::document`] unwraps per reference.
    fn read(&self, read: &kv::Read, shown: String) -> Result<SecretValue, StoreError> {
        let query: Vec<(&str, &str)> = read
            .version
            .iter()
            .map(|v| ("version", v.as_str()))
            .collect();
        let reply = self.get(&encode_path(&read.api_path), &query)?;
        if let Some(why) = reply.malformed_text().filter(|_| reply.status != 204) {
            return Err(StoreError::Backend {
                store: STORE.into(),
                path: shown,
                reason: why,
            });
        }
        match reply.status {
            200 => Ok(reply.body),
            204 | 404 => Err(StoreError::NotFound {
                store: STORE.into(),
                path: shown,
            }),
            401 | 403 => Err(StoreError::Denied {
                store: STORE.into(),
                path: shown,
                detail: Some(format!(
                    "{}; the token's policies do not allow reading this path",
                    reply.status_and_error()
                )),
            }),
            503 => Err(self.fail_store(StoreError::Unavailable {
                store: STORE.into(),
                reason: format!(
                    "{} answered {} (after retries); wait until it is unsealed and active",
                    crate::http::display_url(&self.settings.addr),
                    reply.status_and_error()
                ),
            })),
            400 => Err(StoreError::Invalid {
                path: shown,
                reason: format!(
                    "the vault store refused the request ({})",
                    reply.status_and_error()
                ),
            }),
            _ => Err(StoreError::Backend {
                store: STORE.into(),
                path: shown,
                reason: reply.status_and_error(),
            }),
        }
    }

    /// The mount holding `path`, asked of Vault once per mount and render.
    fn mount_for(&self, path: &str) -> Result<Option<Mount>, StoreError> {
        let mut mounts = lock(&self.mounts);
        if let Some(m) = mounts.known.iter().find(|m| m.contains(path)) {
            return Ok(Some(m.clone()));
        }
        let first = format!("{}/", path.split('/').next().unwrap_or(""));
        if mounts.unknown.contains(&first) {
            return Ok(None);
        }
        let reply = self.get(
            &format!("sys/internal/ui/mounts/{}", encode_path(path)),
            &[],
        )?;
        if reply.status == 200 {
            if let Some(m) = reply
                .body
                .expose()
                .get("data")
                .and_then(Mount::from_preflight)
            {
                mounts.known.push(m.clone());
                return Ok(Some(m));
            }
        }
        mounts.unknown.push(first);
        Ok(None)
    }
}

impl Store for Vault {
    fn name(&self) -> &str {
        STORE
    }

    fn list(&self, path: &str) -> Result<Vec<String>, StoreError> {
        let path = path.trim().trim_matches('/');
        let reply = self.get(&encode_path(path), &[("list", "true")])?;
        match reply.status {
            200 => Ok(reply.body.expose()["data"]["keys"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|k| k.as_str().map(str::to_string))
                .collect()),
            404 => Ok(Vec::new()),
            401 | 403 => Err(StoreError::Denied {
                store: STORE.into(),
                path: path.to_string(),
                detail: Some(format!(
                    "{}; the token's policies do not allow listing this path",
                    reply.status_and_error()
                )),
            }),
            _ => Err(StoreError::Backend {
                store: STORE.into(),
                path: path.to_string(),
                reason: reply.status_and_error(),
            }),
        }
    }

    fn fetch(&self, req: &Request) -> Result<SecretValue, StoreError> {
        let path = req.path.trim().trim_matches('/');
        let invalid = |reason: String| StoreError::Invalid {
            path: req.path.clone(),
            reason,
        };
        let syntax = if req.param("syntax") == Some("vals") {
            Syntax::Vals
        } else {
            Syntax::Avp
        };
        let forced = match req.param("kv-version") {
            Some(v) => Some(KvVersion::parse(v, "the kv-version annotation").map_err(invalid)?),
            None => self.settings.kv_version,
        };
        // An argocd-vault-plugin path that spells out KV v2's `data/` (or `metadata/`) is read
        // as written and the answer's shape tells v1 from v2: no mount lookup, so a render makes
        // one request per path plus logins. Other paths ask Vault what is mounted there.
        let spelled_out =
            syntax == Syntax::Avp && matches!(path.split('/').nth(1), Some("data" | "metadata"));
        let need_mount = match forced {
            None => !spelled_out,
            Some(KvVersion::V2) => syntax == Syntax::Vals,
            Some(KvVersion::V1) => false,
        };
        let mount = if need_mount && !path.is_empty() {
            self.mount_for(path)?
        } else {
            None
        };
        let engine = forced
            .map(Engine::Kv)
            .or_else(|| mount.as_ref().map(|m| m.engine.clone()));
        let mount_path = mount
            .as_ref()
            .filter(|m| m.contains(path))
            .map(|m| m.path.as_str());
        let read = kv::plan(
            path,
            req.version.as_deref(),
            syntax,
            engine.as_ref(),
            mount_path,
        )
        .map_err(invalid)?;

        let mut shown = read.api_path.clone();
        if let Some(v) = &read.version {
            shown.push_str(&format!(" (version {v})"));
        }
        if read.api_path != path {
            shown = format!("{} (read as {shown})", req.path);
        }
        // One request per (path, version), whichever way its references unwrap the answer.
        let key = (read.api_path.clone(), read.version.clone());
        let cell = lock(&self.reads).entry(key).or_default().clone();
        match cell.get_or_init(|| self.read(&read, shown.clone())) {
            Ok(body) => kv::document(body.expose(), read.unwrap)
                .map(SecretValue::new)
                .ok_or(StoreError::NotFound {
                    store: STORE.into(),
                    path: shown,
                }),
            Err(e) => Err(copy(e)),
        }
    }
}

/// What to do with a cached token.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Use,
    Renew,
    Login,
}

/// Use a token with comfortable time left; renew a renewable one past half its lease; log in
/// again when it is (nearly) expired.
fn judge(e: &Entry, now: u64) -> Verdict {
    let Some(at) = e.expires_at_ms else {
        return Verdict::Use;
    };
    let remaining = at.saturating_sub(now);
    let safety = (e.lease_ms / 5).min(10_000);
    if remaining <= 500 {
        Verdict::Login
    } else if e.renewable && remaining <= e.lease_ms / 2 {
        Verdict::Renew
    } else if remaining > safety {
        Verdict::Use
    } else {
        Verdict::Login
    }
}

fn entry_for(l: &Lease) -> Entry {
    Entry {
        token: l.token.to_string(),
        expires_at_ms: (l.lease_ms > 0).then(|| now_ms() + l.lease_ms),
        lease_ms: l.lease_ms,
        renewable: l.renewable,
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A copy of an error (they hold only strings).
fn copy(e: &StoreError) -> StoreError {
    match e {
        StoreError::NotFound { store, path } => StoreError::NotFound {
            store: store.clone(),
            path: path.clone(),
        },
        StoreError::Denied {
            store,
            path,
            detail,
        } => StoreError::Denied {
            store: store.clone(),
            path: path.clone(),
            detail: detail.clone(),
        },
        StoreError::Auth { store, reason } => StoreError::Auth {
            store: store.clone(),
            reason: reason.clone(),
        },
        StoreError::Invalid { path, reason } => StoreError::Invalid {
            path: path.clone(),
            reason: reason.clone(),
        },
        StoreError::Backend {
            store,
            path,
            reason,
        } => StoreError::Backend {
            store: store.clone(),
            path: path.clone(),
            reason: reason.clone(),
        },
        StoreError::Config(m) => StoreError::Config(m.clone()),
        StoreError::Unavailable { store, reason } => StoreError::Unavailable {
            store: store.clone(),
            reason: reason.clone(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_000_000;

    fn entry(expires_in: Option<u64>, lease_ms: u64, renewable: bool) -> Entry {
        Entry {
            token: "t".into(),
            expires_at_ms: expires_in.map(|d| NOW + d),
            lease_ms,
            renewable,
        }
    }

    #[test]
    fn cached_tokens_are_judged_by_time_left() {
        let now = NOW;
        assert_eq!(judge(&entry(None, 0, false), now), Verdict::Use);
        assert_eq!(
            judge(&entry(Some(3_000_000), 3_600_000, true), now),
            Verdict::Use
        );
        assert_eq!(
            judge(&entry(Some(1_000_000), 3_600_000, true), now),
            Verdict::Renew
        );
        assert_eq!(
            judge(&entry(Some(1_000_000), 3_600_000, false), now),
            Verdict::Use
        );
        assert_eq!(
            judge(&entry(Some(5_000), 3_600_000, false), now),
            Verdict::Login
        );
        assert_eq!(
            judge(&entry(Some(100), 3_600_000, true), now),
            Verdict::Login
        );
        assert_eq!(
            judge(&entry(Some(0), 6_000, true), now + 10),
            Verdict::Login
        );
    }

    #[test]
    fn no_network_until_first_fetch() {
        let c = Config::from_vars(
            std::path::Path::new("/"),
            std::path::Path::new("/"),
            [
                ("VAULT_ADDR", "http://127.0.0.1:9"),
                ("AVP_AUTH_TYPE", "k8s"),
                ("AVP_K8S_ROLE", "r"),
                ("AVP_K8S_TOKEN_PATH", "/nonexistent"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        let v = Vault::new(&c).unwrap();
        let e = v
            .fetch(&Request::new("secret/data/app"))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("/nonexistent"), "{e}");
        // The failure is remembered: the second fetch does not try again.
        assert_eq!(
            v.fetch(&Request::new("secret/data/other"))
                .err()
                .unwrap()
                .to_string(),
            e
        );
    }
}
