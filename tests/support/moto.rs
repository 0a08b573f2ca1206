//! moto's server, the real AWS API for the tests (Secrets Manager, SSM, STS, KMS), one per test
//! binary on a free 127.0.0.1 port; and a loopback proxy in front of it that records every
//! request and can answer some of them itself with AWS's error shapes (throttling, access
//! denied) before passing the rest through.
//!
//! moto runs inside a small Python process that stops when its stdin closes, so the server
//! goes away with the test binary. Test data is created through boto3 (installed with
//! `moto[server]` in .venv), one call list per Python run.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The python of the tools' virtualenv (tests/setup-tools.sh makes it).
pub fn python() -> PathBuf {
    let venv = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|d| d.join("moto_server"))
        .find(|p| p.is_file())
        .and_then(|p| p.parent().map(|d| d.join("python")))
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"));
    assert!(
        venv.is_file(),
        "moto is not installed: run tests/setup-tools.sh (pip install 'moto[server]')"
    );
    venv
}

/// A running moto server.
pub struct Moto {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    _server: PyServer,
}

/// A server run by the venv's Python, stopped when its stdin closes (that is, with the test
/// binary).
pub struct PyServer {
    _child: Mutex<Child>,
    _stdin: Mutex<ChildStdin>,
}

/// Starts `python -c SCRIPT ARGS...` (`args` given the free port it should listen on) and waits
/// up to `wait` for the port to answer; returns its URL. A second try takes another port.
pub fn serve_python(
    what: &str,
    script: &str,
    args: impl Fn(u16) -> Vec<String>,
    env: &[(&str, &str)],
    wait: Duration,
) -> (String, PyServer) {
    for _ in 0..4 {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Command::new(python())
            .arg("-c")
            .arg(script)
            .args(args(port))
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {what}: {e}"));
        let stdin = child.stdin.take().unwrap();
        let deadline = Instant::now() + wait;
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                let server = PyServer {
                    _child: Mutex::new(child),
                    _stdin: Mutex::new(stdin),
                };
                return (format!("http://127.0.0.1:{port}"), server);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!("{what} did not start");
}

/// The test binary's moto server, started on first use.
pub fn moto() -> &'static Moto {
    static MOTO: OnceLock<Moto> = OnceLock::new();
    MOTO.get_or_init(|| Moto::start(&[]))
}

const SERVE: &str = "import sys\nfrom moto.server import ThreadedMotoServer\n\
s = ThreadedMotoServer(ip_address='127.0.0.1', port=int(sys.argv[1]), verbose=False)\n\
s.start()\nprint('ready', flush=True)\nsys.stdin.read()\ns.stop()\n";

impl Moto {
    /// A server of its own, with moto settings in `env` (such as `INITIAL_NO_AUTH_ACTION_COUNT`,
    /// after which moto checks signatures and IAM policies).
    pub fn start(env: &[(&str, &str)]) -> Moto {
        let (url, server) = serve_python(
            "moto",
            SERVE,
            |port| vec![port.to_string()],
            env,
            Duration::from_secs(15),
        );
        Moto {
            url,
            _server: server,
        }
    }

    /// Runs boto3 calls `[[service, method, {kwargs}], ...]` in us-east-1 (or a call's
    /// `"region"` kwarg) and returns their answers. `{"__bytes__": "BASE64"}` passes bytes.
    pub fn aws(&self, calls: Value) -> Vec<Value> {
        let script = r#"
import sys, json, base64, boto3
def unbytes(v):
    if isinstance(v, dict):
        if set(v) == {"__bytes__"}:
            return base64.b64decode(v["__bytes__"])
        return {k: unbytes(x) for k, x in v.items()}
    if isinstance(v, list):
        return [unbytes(x) for x in v]
    return v
out = []
for service, method, kwargs in json.load(sys.stdin):
    kwargs = unbytes(kwargs)
    region = kwargs.pop("region", "us-east-1")
    c = boto3.client(service, endpoint_url=sys.argv[1], region_name=region,
                     aws_access_key_id="AKIDSETUP", aws_secret_access_key="setup")
    r = getattr(c, method)(**kwargs)
    r.pop("ResponseMetadata", None)
    out.append(r)
print(json.dumps(out, default=str))
"#;
        let mut child = Command::new(python())
            .args(["-c", script, &self.url])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(calls.to_string().as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "boto3 setup failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

impl Drop for PyServer {
    fn drop(&mut self) {
        let mut child = self._child.lock().unwrap_or_else(|e| e.into_inner());
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// One request as the proxy saw it.
#[derive(Clone, Debug, Default)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// Lower-cased header names.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// `secretsmanager.GetSecretValue`, `AmazonSSM.GetParameter`, or the STS `Action`.
    pub fn action(&self) -> String {
        if let Some(t) = self.header("x-amz-target") {
            return t.to_string();
        }
        self.body
            .split('&')
            .find_map(|p| p.strip_prefix("Action="))
            .unwrap_or("")
            .to_string()
    }

    /// The JSON body's field (`SecretId`, `Name`, ...).
    pub fn field(&self, name: &str) -> Option<String> {
        let v: Value = serde_json::from_str(&self.body).ok()?;
        v.get(name).and_then(|v| v.as_str()).map(str::to_string)
    }
}

/// What the proxy does with a request: `None` passes it on; `Some(response)` answers it.
pub type Rule = Box<dyn Fn(&Seen, usize) -> Option<String> + Send + Sync>;

/// A recording proxy in front of an upstream HTTP server (or, with no upstream, a stand-in
/// that answers everything through its rule).
pub struct Proxy {
    pub url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Proxy {
    /// Passes everything to `upstream` unless `rule` answers; the rule gets the request and
    /// how many requests came before it.
    pub fn start(upstream: Option<&str>, rule: Rule) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let log = seen.clone();
        let upstream = upstream.map(|u| u.trim_start_matches("http://").to_string());
        let rule = Arc::new(rule);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (log, rule, upstream) = (log.clone(), rule.clone(), upstream.clone());
                std::thread::spawn(move || serve(stream, &log, &rule, upstream.as_deref()));
            }
        });
        Proxy { url, seen }
    }

    /// A pass-through proxy.
    pub fn pass(upstream: &str) -> Proxy {
        Self::start(Some(upstream), Box::new(|_, _| None))
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Requests for one action (and, if given, one `SecretId`/`Name`).
    pub fn count(&self, action: &str, id: Option<&str>) -> usize {
        self.seen()
            .iter()
            .filter(|s| s.action() == action)
            .filter(|s| {
                id.is_none_or(|id| {
                    s.field("SecretId").as_deref() == Some(id)
                        || s.field("Name").as_deref() == Some(id)
                })
            })
            .count()
    }
}

fn serve(stream: TcpStream, log: &Mutex<Vec<Seen>>, rule: &Rule, upstream: Option<&str>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut out = stream;
    let Some((seen, raw)) = read_request(&mut reader) else {
        return;
    };
    let n = {
        let mut l = log.lock().unwrap();
        l.push(seen.clone());
        l.len() - 1
    };
    let answer = match (rule(&seen, n), upstream) {
        (Some(r), _) => r.into_bytes(),
        (None, Some(up)) => forward(up, &raw),
        (None, None) => response(404, "application/json", "{}").into_bytes(),
    };
    // Every answer closes the connection: one request per connection.
    let _ = out.write_all(&answer);
}

fn read_request(r: &mut BufReader<TcpStream>) -> Option<(Seen, Vec<u8>)> {
    let mut line = String::new();
    if r.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_string(), parts.next()?.to_string());
    let mut raw = line.clone().into_bytes();
    let mut headers = Vec::new();
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        if r.read_line(&mut h).ok()? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            let k = k.trim().to_ascii_lowercase();
            if k == "content-length" {
                len = v.trim().parse().unwrap_or(0);
            }
            if k == "connection" {
                continue;
            }
            headers.push((k, v.trim().to_string()));
        }
        raw.extend_from_slice(h.as_bytes());
    }
    raw.extend_from_slice(b"Connection: close\r\n\r\n");
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    raw.extend_from_slice(&body);
    let seen = Seen {
        method,
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    Some((seen, raw))
}

/// Sends a request upstream and returns the whole answer (upstream closes the connection).
fn forward(upstream: &str, raw: &[u8]) -> Vec<u8> {
    let mut s = TcpStream::connect(upstream).unwrap();
    s.write_all(raw).unwrap();
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    answer
}

/// An HTTP answer that closes the connection.
pub fn response(status: u16, content_type: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// An AWS JSON-protocol error (`{"__type": CODE, "message": ...}` with `x-amzn-ErrorType`).
pub fn aws_error(status: u16, code: &str, message: &str) -> String {
    let body = serde_json::json!({"__type": code, "message": message}).to_string();
    format!(
        "HTTP/1.1 {status} X\r\nContent-Type: application/x-amz-json-1.1\r\nx-amzn-ErrorType: {code}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}
