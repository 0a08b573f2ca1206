//! A stand-in for the 1Password Connect server's REST API (the calls kustodian makes), following
//! its documentation: `GET /v1/vaults?filter=name eq "X"`, `GET /v1/vaults/{id}/items?filter=title
//! eq "Y"`, `GET /v1/vaults/{id}/items/{id}`, `Authorization: Bearer TOKEN`, errors as
//! `{"status": N, "message": "..."}`. Vaults the token may not use answer 403; the next
//! `throttle` requests answer 429 with `Retry-After: 1`.

#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};

use super::standin::{Reply, Req, Server};

/// A vault: its id, name, whether the token may use it, and its items (full item JSON).
#[derive(Clone)]
pub struct Vault {
    pub id: String,
    pub name: String,
    pub granted: bool,
    pub items: Vec<Value>,
}

/// A running stand-in.
pub struct Connect {
    pub server: Server,
    /// Requests still to answer with 429.
    pub throttle: Arc<AtomicUsize>,
}

impl Connect {
    pub fn start(token: &str, vaults: Vec<Vault>) -> Connect {
        let throttle = Arc::new(AtomicUsize::new(0));
        let left = throttle.clone();
        let token = format!("Bearer {token}");
        let server = Server::start(move |req| {
            if req.header("authorization") != Some(token.as_str()) {
                return error(401, "Invalid token signature");
            }
            if left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                return error(429, "Too Many Requests").with_header("Retry-After", "1");
            }
            answer(req, &vaults)
        });
        Connect { server, throttle }
    }

    /// Requests whose decoded path is `path`.
    pub fn count(&self, path: &str) -> usize {
        self.server.count(path)
    }
}

fn error(status: u16, message: &str) -> Reply {
    Reply::json(status, json!({"status": status, "message": message}))
}

/// `name eq "X"` -> `X`.
fn filter_value(req: &Req, field: &str) -> Option<String> {
    let f = req.query("filter")?;
    let v = f
        .strip_prefix(&format!("{field} eq \""))?
        .strip_suffix('"')?;
    Some(v.replace("\\\"", "\"").replace("\\\\", "\\"))
}

fn answer(req: &Req, vaults: &[Vault]) -> Reply {
    if req.method != "GET" {
        return error(405, "Method not allowed");
    }
    let path = req.path();
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["v1", "vaults"] => {
            let name = filter_value(req, "name");
            let list: Vec<Value> = vaults
                .iter()
                .filter(|v| v.granted && name.as_deref().is_none_or(|n| n == v.name))
                .map(|v| json!({"id": v.id, "name": v.name, "type": "USER_CREATED", "items": v.items.len()}))
                .collect();
            Reply::json(200, Value::Array(list))
        }
        ["v1", "vaults", vid, "items", rest @ ..] => {
            let Some(vault) = vaults.iter().find(|v| v.id == *vid) else {
                return error(404, "Invalid Vault UUID");
            };
            if !vault.granted {
                return error(
                    403,
                    "Authorization: token does not have access to this vault",
                );
            }
            match rest {
                [] => {
                    let title = filter_value(req, "title");
                    let list: Vec<Value> = vault
                        .items
                        .iter()
                        .filter(|i| title.as_deref().is_none_or(|t| i["title"] == t))
                        .map(|i| json!({"id": i["id"], "title": i["title"], "vault": {"id": vault.id}, "category": i["category"]}))
                        .collect();
                    Reply::json(200, Value::Array(list))
                }
                [iid] => match vault.items.iter().find(|i| i["id"] == *iid) {
                    Some(item) => Reply::json(200, item.clone()),
                    None => error(404, "Item not found"),
                },
                _ => error(404, "Not found"),
            }
        }
        _ => error(404, "Not found"),
    }
}
