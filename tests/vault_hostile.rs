//! The Vault client against servers that misbehave or attack: loopback HTTP servers written
//! here with `std::net::TcpListener` (a real Vault does not redirect to a stranger, quote
//! tokens back, answer HTML or hang on purpose), and credential files that are not files.
//!
//! Every run greps stdout and stderr for the canary tokens, credentials and bodies.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TOKEN: &str = "canary-hostile-token-7d41c9a2";
const SECRET_ID: &str = "canary-hostile-secret-id-90b3e";
const PASSWORD: &str = "canary-hostile-password-4e12";
const CANARIES: &[&str] = &[
    TOKEN,
    SECRET_ID,
    PASSWORD,
    "canary-body",
    "hostile-token-7d41",
    "secret-id-90b3",
    "canary-hostile-jwt",
];

/// One request as the server saw it: request line, headers and body.
type Seen = Arc<Mutex<Vec<String>>>;

/// A loopback HTTP/1.1 server answering each request with `respond(request text)`.
struct Server {
    addr: String,
    seen: Seen,
}

impl Server {
    fn start(respond: impl Fn(&str) -> String + Send + Sync + 'static) -> Server {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = format!("http://{}", l.local_addr().unwrap());
        let seen: Seen = Arc::default();
        let log = seen.clone();
        let respond = Arc::new(respond);
        std::thread::spawn(move || {
            for stream in l.incoming().flatten() {
                let (log, respond) = (log.clone(), respond.clone());
                std::thread::spawn(move || {
                    if let Some(req) = read_request(&stream) {
                        log.lock().unwrap().push(req.clone());
                        let _ = (&stream).write_all(respond(&req).as_bytes());
                    }
                });
            }
        });
        Server { addr, seen }
    }

    fn requests(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

fn read_request(stream: &TcpStream) -> Option<String> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let mut r = BufReader::new(stream);
    let mut head = String::new();
    let mut len = 0;
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return None;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().ok()?;
        }
        head.push_str(&line);
        if line == "\r\n" {
            break;
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some(head + &String::from_utf8_lossy(&body))
}

/// An HTTP response with a JSON or other body.
fn response(status: &str, content_type: &str, extra: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n{body}",
        body.len()
    )
}

/// The path of a request (`/v1/secret/data/app`).
fn path_of(req: &str) -> &str {
    req.split_whitespace().nth(1).unwrap_or("")
}

/// What a render did.
struct Run {
    ok: bool,
    stdout: String,
    stderr: String,
    took: Duration,
}

/// Runs `kustodian render -` on `input` with only these variables (and a private HOME),
/// killing it after `limit`.
fn render(vars: &[(&str, &str)], input: &str, limit: Duration) -> Run {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kustodian"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .env("AVP_TYPE", "vault")
        .current_dir(home.path())
        .args(["render", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let started = Instant::now();
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("render still running after {limit:?}: it hangs");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let took = started.elapsed();
    let out = child.wait_with_output().unwrap();
    let run = Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        took,
    };
    for c in CANARIES {
        assert!(
            !run.stderr.contains(c) && !run.stdout.contains(c),
            "output leaks {c:?}:\n{}{}",
            run.stdout,
            run.stderr
        );
    }
    run
}

impl Run {
    #[track_caller]
    fn failed_with(&self, parts: &[&str]) -> &Self {
        assert!(!self.ok, "expected a failure:\n{}", self.stdout);
        assert!(self.stdout.is_empty(), "stdout: {}", self.stdout);
        for p in parts {
            assert!(
                self.stderr.contains(p),
                "stderr lacks {p:?}:\n{}",
                self.stderr
            );
        }
        self
    }
}

/// A Secret whose keys reference these Vault paths' `password`.
fn secret(paths: &[&str]) -> String {
    let mut s = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nstringData:\n".to_string();
    for (i, p) in paths.iter().enumerate() {
        s.push_str(&format!("  k{i}: <path:{p}#password>\n"));
    }
    s
}

const SECS: Duration = Duration::from_secs(30);

/// A service-account JWT file holding a canary.
struct JwtFile {
    _dir: tempfile::TempDir,
    path: String,
}

impl JwtFile {
    fn new() -> JwtFile {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token");
        std::fs::write(&path, "eyJhbGciOiJSUzI1NiJ9.canary-hostile-jwt.sig").unwrap();
        JwtFile {
            path: path.to_str().unwrap().to_string(),
            _dir: dir,
        }
    }
}

/// The variables of each login method (and of a token, with `token`), all canaries.
fn credentials(jwt: &str, token: bool) -> Vec<Vec<(&'static str, &str)>> {
    let mut v = vec![
        vec![
            ("AVP_AUTH_TYPE", "approle"),
            ("AVP_ROLE_ID", "r"),
            ("AVP_SECRET_ID", SECRET_ID),
        ],
        vec![
            ("AVP_AUTH_TYPE", "userpass"),
            ("AVP_USERNAME", "u"),
            ("AVP_PASSWORD", PASSWORD),
        ],
        vec![
            ("AVP_AUTH_TYPE", "k8s"),
            ("AVP_K8S_ROLE", "r"),
            ("AVP_K8S_TOKEN_PATH", jwt),
        ],
    ];
    if token {
        v.push(vec![("VAULT_TOKEN", TOKEN)]);
    }
    v
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/vault-hostile")
        .join(name)
}

/// Item: a redirect to another origin would resend `X-Vault-Token` (ureq keeps custom
/// headers). The second server must see nothing: no token, no JWT, no secret_id, no password.
#[test]
fn a_redirect_to_another_origin_never_receives_the_token_or_login_credentials() {
    let stranger = Server::start(|_| response("200 OK", "application/json", "", "{}"));
    let target = stranger.addr.clone();
    let vault = Server::start(move |req| {
        let location = format!("{target}{}", path_of(req));
        response(
            "307 Temporary Redirect",
            "application/json",
            &format!("Location: {location}\r\n"),
            "",
        )
    });
    let jwt = JwtFile::new();
    for vars in credentials(&jwt.path, true) {
        let mut vars = vars.clone();
        vars.push(("VAULT_ADDR", &vault.addr));
        vars.push(("KUSTODIAN_VAULT_TOKEN_CACHE", "off"));
        let run = render(&vars, &secret(&["secret/data/app"]), SECS);
        run.failed_with(&["redirected to another server", "set VAULT_ADDR"]);
        assert!(!run.stderr.contains("canary-hostile-jwt"), "{}", run.stderr);
    }
    assert!(
        stranger.requests().is_empty(),
        "the other origin received: {:?}",
        stranger.requests()
    );
    assert!(!vault.requests().is_empty());
}

/// A redirect within VAULT_ADDR's origin (same scheme, host and port) is followed.
#[test]
fn a_redirect_within_the_same_origin_is_followed() {
    let vault = Server::start(|req| {
        if path_of(req).starts_with("/v1/secret/data/app") {
            response(
                "307 Temporary Redirect",
                "application/json",
                "Location: /v1/secret/data/moved\r\n",
                "",
            )
        } else {
            response(
                "200 OK",
                "application/json",
                "",
                r#"{"data":{"data":{"password":"moved-value"},"metadata":{"version":1}}}"#,
            )
        }
    });
    let run = render(
        &[("VAULT_ADDR", &vault.addr), ("VAULT_TOKEN", TOKEN)],
        &secret(&["secret/data/app"]),
        SECS,
    );
    assert!(run.ok, "{}", run.stderr);
    assert!(run.stdout.contains("moved-value"), "{}", run.stdout);
    let seen = vault.requests();
    assert!(
        seen.iter().any(|r| path_of(r) == "/v1/secret/data/moved"),
        "{seen:?}"
    );
}

/// A 200 answer that is not JSON (a proxy's HTML page) was reported as "not found"; it is a
/// malformed answer, named by status and content type, its body never printed.
#[test]
fn a_non_json_answer_is_malformed_not_missing() {
    let page = std::fs::read_to_string(fixture("proxy-login-page.html")).unwrap();
    let vault = Server::start(move |_| response("200 OK", "text/html; charset=utf-8", "", &page));
    let run = render(
        &[("VAULT_ADDR", &vault.addr), ("VAULT_TOKEN", TOKEN)],
        &secret(&["secret/data/app"]),
        SECS,
    );
    run.failed_with(&["not JSON (status 200, content type text/html; charset=utf-8)"]);
    assert!(!run.stderr.contains("not found"), "{}", run.stderr);
    assert!(!run.stderr.contains("<html"), "{}", run.stderr);
}

/// Vault's `errors` are shown, but a server quoting the token (or part of it), the secret_id
/// or the password back has them redacted, and a long error is cut short.
#[test]
fn server_errors_quoting_credentials_are_redacted_and_capped() {
    // The server quotes back what it received: the login body, or the token header.
    let vault = Server::start(|req| {
        let text = if path_of(req).contains("/login") {
            let body = req.split("\r\n\r\n").nth(1).unwrap_or("");
            format!("cannot parse {body}")
        } else {
            let token = req
                .lines()
                .find_map(|l| {
                    l.strip_prefix("x-vault-token: ")
                        .or(l.strip_prefix("X-Vault-Token: "))
                })
                .unwrap_or("");
            format!(
                "bad request for token {token} (prefix {}), {}",
                &token[..token.len().min(18)],
                "x".repeat(2000)
            )
        };
        let body = serde_json::json!({ "errors": [text] }).to_string();
        response("400 Bad Request", "application/json", "", &body)
    });
    let run = render(
        &[("VAULT_ADDR", &vault.addr), ("VAULT_TOKEN", TOKEN)],
        &secret(&["secret/data/app"]),
        SECS,
    );
    run.failed_with(&["bad request for token [redacted] (prefix [redacted])"]);
    assert!(!run.stderr.contains(&"x".repeat(400)), "{}", run.stderr);
    let jwt = JwtFile::new();
    for vars in credentials(&jwt.path, false) {
        let mut vars = vars.clone();
        vars.push(("VAULT_ADDR", &vault.addr));
        vars.push(("KUSTODIAN_VAULT_TOKEN_CACHE", "off"));
        render(&vars, &secret(&["secret/data/app"]), SECS).failed_with(&["[redacted]"]);
    }
}

/// `http://user:pw@host` printed the password in "cannot reach ..."; user info in
/// VAULT_ADDR is refused without being shown.
#[test]
fn user_info_in_vault_addr_is_refused_and_never_printed() {
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("http://admin:{PASSWORD}@127.0.0.1:{closed}");
    render(
        &[("VAULT_ADDR", &addr), ("VAULT_TOKEN", TOKEN)],
        &secret(&["secret/data/app"]),
        SECS,
    )
    .failed_with(&["VAULT_ADDR holds a user name or password"]);
    let bad = format!("admin:{PASSWORD}@vault:8200");
    render(
        &[("VAULT_ADDR", &bad), ("VAULT_TOKEN", TOKEN)],
        &secret(&["secret/data/app"]),
        SECS,
    )
    .failed_with(&["VAULT_ADDR must start with http:// or https://"]);
}

/// A server that accepts connections and never answers took retries x references x the
/// per-request timeout (93 s with the defaults). Now VAULT_CLIENT_TIMEOUT is one budget for
/// the whole render, and the failure is reported once for all references.
#[test]
fn a_blackhole_server_costs_one_timeout_for_the_whole_render() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("http://{}", l.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in l.incoming().flatten() {
            held.push(s); // never answered, never closed
        }
    });
    let paths = [
        "kv/data/a",
        "kv/data/b",
        "kv/data/c",
        "kv/data/d",
        "kv/data/e",
    ];
    let run = render(
        &[
            ("VAULT_ADDR", &addr),
            ("VAULT_TOKEN", TOKEN),
            ("VAULT_CLIENT_TIMEOUT", "2s"),
            ("VAULT_MAX_RETRIES", "2"),
        ],
        &secret(&paths),
        SECS,
    );
    run.failed_with(&[
        "within VAULT_CLIENT_TIMEOUT (2s)",
        "5 references to the vault store",
    ]);
    assert!(
        run.took < Duration::from_millis(3500),
        "took {:?}, more than the 2 s budget",
        run.took
    );
    assert_eq!(
        run.stderr.matches("VAULT_CLIENT_TIMEOUT").count(),
        1,
        "{}",
        run.stderr
    );
}

/// `/dev/zero` as the JWT path grew without bound; a FIFO hung. Credential files are regular
/// files of at most 64 KiB, refused quickly with the file named.
#[test]
fn credential_files_that_are_devices_fifos_or_huge_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let huge = dir.path().join("huge");
    std::fs::write(&huge, vec![b'a'; 1024 * 1024]).unwrap();
    let cases = [
        ("/dev/zero".to_string(), "character device"),
        (fifo.display().to_string(), "FIFO"),
        (huge.display().to_string(), "larger than 64 KiB"),
    ];
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("http://127.0.0.1:{closed}");
    for (path, why) in &cases {
        let k8s = [
            ("VAULT_ADDR", addr.as_str()),
            ("AVP_AUTH_TYPE", "k8s"),
            ("AVP_K8S_ROLE", "r"),
            ("AVP_K8S_TOKEN_PATH", path),
        ];
        render(&k8s, &secret(&["secret/data/app"]), Duration::from_secs(10)).failed_with(&[
            path,
            why,
            "AVP_K8S_TOKEN_PATH",
        ]);
        // (A token file that is not a regular file counts as no token file at all.)
        let token_file = [
            ("VAULT_ADDR", addr.as_str()),
            ("KUSTODIAN_VAULT_TOKEN_FILE", path),
        ];
        let run = render(
            &token_file,
            &secret(&["secret/data/app"]),
            Duration::from_secs(10),
        );
        if *why == "larger than 64 KiB" {
            run.failed_with(&[path, why]);
        } else {
            run.failed_with(&["KUSTODIAN_VAULT_TOKEN_FILE"]);
        }
    }
}

/// With VAULT_ADDR unset the default https://127.0.0.1:8200 is tried, and the message says
/// that VAULT_ADDR is unset rather than only "connection refused".
#[test]
fn an_unset_vault_addr_is_named_when_the_default_is_unreachable() {
    if TcpStream::connect("127.0.0.1:8200").is_ok() {
        eprintln!("something listens on 127.0.0.1:8200; skipped");
        return;
    }
    render(
        &[("VAULT_TOKEN", TOKEN)],
        &secret(&["secret/data/app"]),
        SECS,
    )
    .failed_with(&[
        "cannot reach https://127.0.0.1:8200",
        "VAULT_ADDR (or BAO_ADDR) is not set",
    ]);
}
