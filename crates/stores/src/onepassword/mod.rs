//! 1Password through a 1Password Connect server: `op://VAULT/ITEM[/SECTION]/FIELD` references
//! (the 1Password CLI's secret-reference syntax, which `op inject` resolves) and
//! argocd-vault-plugin's `1passwordconnect` placeholders, `<path:vaults/VAULT/items/ITEM#FIELD>`.
//!
//! The Connect server and its token come only from the operator (`OP_CONNECT_HOST`,
//! `OP_CONNECT_TOKEN`). Vaults and items are named by ID or by name/title, as the CLI and the
//! Connect SDKs allow: a name costs one lookup (`GET /v1/vaults?filter=name eq "X"`,
//! `GET /v1/vaults/{id}/items?filter=title eq "Y"`), made once per render; each distinct item is
//! read once (`GET /v1/vaults/{id}/items/{id}`) whatever the number of fields used from it.
//! Messages name references and Connect's status and message, never a value or the token.

use std::sync::Arc;

use serde_json::Value;
use zeroize::Zeroizing;

use crate::http::encode_segment;
use crate::kubernetes::connect;
use crate::rest::{seconds_setting, Endpoint, Memo, Reply, Rest};
use crate::{Config, Request, SecretValue, Store, StoreError};

/// The store name of `<path:...>` placeholders (`AVP_TYPE=1passwordconnect`).
pub const STORE: &str = "onepassword";
/// The store name of `op://` references.
pub const OP_STORE: &str = "op";

/// How the store reads a request's path.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    /// `vaults/VAULT/items/ITEM`: the item's fields by label.
    Avp,
    /// `VAULT/ITEM[/SECTION]/FIELD`: one field's value.
    Op,
}

/// A 1Password Connect store.
pub struct OnePassword {
    form: Form,
    api: Rest,
    /// Vault name -> ID.
    vaults: Memo<String, String>,
    /// (vault ID, item title) -> item ID.
    titles: Memo<(String, String), String>,
    /// (vault ID, item ID) -> item.
    items: Memo<(String, String), Arc<SecretValue>>,
}

impl OnePassword {
    /// The store for argocd-vault-plugin's `1passwordconnect` placeholders.
    pub fn factory(config: &Config) -> Result<Arc<dyn Store>, StoreError> {
        Ok(Arc::new(Self::new(config, Form::Avp)?))
    }

    /// The store for `op://` references.
    pub fn op_factory(config: &Config) -> Result<Arc<dyn Store>, StoreError> {
        Ok(Arc::new(Self::new(config, Form::Op)?))
    }

    fn new(c: &Config, form: Form) -> Result<Self, StoreError> {
        let missing = |name: &str| {
            StoreError::Config(format!(
                "{name} is not set: 1Password references are read through a 1Password Connect server; \
                 set OP_CONNECT_HOST (its URL) and OP_CONNECT_TOKEN (a Connect access token) in the \
                 sidecar's environment (docs/onepassword.md)"
            ))
        };
        let host = c
            .var("OP_CONNECT_HOST")
            .ok_or_else(|| missing("OP_CONNECT_HOST"))?;
        let token = c
            .var("OP_CONNECT_TOKEN")
            .ok_or_else(|| missing("OP_CONNECT_TOKEN"))?;
        let host = host.trim().trim_end_matches('/');
        if !(host.starts_with("http://") || host.starts_with("https://")) {
            return Err(StoreError::Config(
                "OP_CONNECT_HOST must be an http:// or https:// URL (such as http://onepassword-connect:8080)".into(),
            ));
        }
        // A Connect server behind a private CA: the operator's CA bundle, as OpenSSL names it.
        let tls = match c.var("SSL_CERT_FILE") {
            Some(f) => {
                let ca = connect::read(std::path::Path::new(f), "SSL_CERT_FILE")?;
                connect::tls(Some(&ca), None, false, "SSL_CERT_FILE")?
            }
            None => ureq::tls::TlsConfig::default(),
        };
        Ok(OnePassword {
            form,
            api: Rest::new(Endpoint {
                base: host.to_string(),
                token: Some(Zeroizing::new(token.trim().to_string())),
                tls,
                setting: "OP_CONNECT_HOST",
                budget: seconds_setting(c, "KUSTODIAN_OP_CONNECT_TIMEOUT", 30)?,
                attempts: 4,
            }),
            vaults: Memo::default(),
            titles: Memo::default(),
            items: Memo::default(),
        })
    }

    /// A reference as written, for messages.
    fn shown(&self, req: &Request) -> String {
        match self.form {
            Form::Op => format!("op://{}", req.path),
            Form::Avp => req.path.clone(),
        }
    }

    /// One Connect call; statuses other than 200 become the matching error.
    fn call(&self, url: &str, what: &str) -> Result<Value, StoreError> {
        let reply = self
            .api
            .get(url)
            .map_err(|reason| StoreError::Unavailable {
                store: STORE.into(),
                reason,
            })?;
        if reply.status == 200 {
            return Ok(reply.body.expose().clone());
        }
        Err(self.refusal(&reply, what))
    }

    fn refusal(&self, reply: &Reply, what: &str) -> StoreError {
        let msg = self.api.message(reply);
        match reply.status {
            401 => StoreError::Unavailable {
                store: STORE.into(),
                reason: format!(
                    "the Connect server at {} refused OP_CONNECT_TOKEN ({msg}); issue a new Connect token \
                     and set it in the sidecar's environment",
                    self.api.address()
                ),
            },
            403 => StoreError::Denied {
                store: STORE.into(),
                path: what.into(),
                detail: Some(format!(
                    "{msg}; give the Connect token access to this vault"
                )),
            },
            404 => StoreError::NotFound {
                store: STORE.into(),
                path: what.into(),
            },
            _ => StoreError::Backend {
                store: STORE.into(),
                path: what.into(),
                reason: format!("1Password Connect answered {msg}"),
            },
        }
    }

    /// The ID of a vault named by ID or by name.
    fn vault_id(&self, vault: &str, what: &str) -> Result<String, StoreError> {
        if is_id(vault) {
            return Ok(vault.to_string());
        }
        self.vaults.get(vault.to_string(), || {
            let url = format!("/v1/vaults?filter={}", filter("name", vault));
            let list = self.call(&url, what)?;
            self.only(&list, "name", vault, "vault", what)
        })
    }

    /// The one entry of a filtered list whose `field` is `name`, by ID.
    fn only(
        &self,
        list: &Value,
        field: &str,
        name: &str,
        kind: &str,
        what: &str,
    ) -> Result<String, StoreError> {
        let ids: Vec<&str> = list
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e.get(field).and_then(Value::as_str) == Some(name))
            .filter_map(|e| e.get("id").and_then(Value::as_str))
            .collect();
        match ids.as_slice() {
            [id] => Ok(id.to_string()),
            [] => Err(StoreError::NotFound {
                store: STORE.into(),
                path: format!("{what} (no {kind} {name:?} the Connect token can see)"),
            }),
            _ => Err(StoreError::Invalid {
                path: what.into(),
                reason: format!(
                    "{} {kind}s are called {name:?}; name the {kind} by its ID instead",
                    ids.len()
                ),
            }),
        }
    }

    /// An item, named by ID or title in a vault named by ID or name: each lookup and each
    /// distinct item read once per render, so that naming it both ways costs one read.
    fn item(&self, vault: &str, item: &str, what: &str) -> Result<Arc<SecretValue>, StoreError> {
        let vid = self.vault_id(vault, what)?;
        let iid = if is_id(item) {
            item.to_string()
        } else {
            self.titles.get((vid.clone(), item.to_string()), || {
                let url = format!(
                    "/v1/vaults/{}/items?filter={}",
                    encode_segment(&vid),
                    filter("title", item)
                );
                let list = self.call(&url, what)?;
                self.only(&list, "title", item, "item", what)
            })?
        };
        self.items.get((vid.clone(), iid.clone()), || {
            let url = format!(
                "/v1/vaults/{}/items/{}",
                encode_segment(&vid),
                encode_segment(&iid)
            );
            Ok(Arc::new(SecretValue::new(self.call(&url, what)?)))
        })
    }
}

impl Store for OnePassword {
    fn name(&self) -> &str {
        match self.form {
            Form::Avp => STORE,
            Form::Op => OP_STORE,
        }
    }

    fn fetch(&self, req: &Request) -> Result<SecretValue, StoreError> {
        let what = self.shown(req);
        let invalid = |reason: String| StoreError::Invalid {
            path: what.clone(),
            reason,
        };
        if req.version.is_some() {
            return Err(invalid(
                "1Password Connect serves the current value of an item; remove the version".into(),
            ));
        }
        if let Some((k, _)) = req.params.iter().find(|(k, _)| k != "kv-version") {
            return Err(invalid(format!(
                "1Password references take no ?{k}= here (field attributes such as ?attribute=otp are not \
                 supported); name the field itself"
            )));
        }
        let parts: Vec<&str> = req.path.trim_matches('/').split('/').collect();
        if parts.iter().any(|p| p.trim().is_empty()) {
            return Err(invalid("a part of the path is empty".into()));
        }
        match (self.form, parts.as_slice()) {
            (Form::Avp, ["vaults", vault, "items", item]) => {
                let doc = self.item(vault, item, &what)?;
                Ok(SecretValue::new(fields_by_label(doc.expose())))
            }
            (Form::Avp, _) => Err(invalid(
                "a 1passwordconnect placeholder reads <path:vaults/VAULT/items/ITEM#FIELD> (VAULT and ITEM by ID or name)"
                    .into(),
            )),
            (Form::Op, [vault, item, field]) => {
                let doc = self.item(vault, item, &what)?;
                field_value(doc.expose(), None, field, &what)
            }
            (Form::Op, [vault, item, section, field]) => {
                let doc = self.item(vault, item, &what)?;
                field_value(doc.expose(), Some(section), field, &what)
            }
            (Form::Op, _) => Err(invalid(
                "a 1Password secret reference reads op://VAULT/ITEM/FIELD or op://VAULT/ITEM/SECTION/FIELD".into(),
            )),
        }
    }
}

/// Whether a name is a 1Password ID (26 lower-case letters and digits), which is used as it is.
fn is_id(s: &str) -> bool {
    s.len() == 26
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

/// `field eq "value"`, a Connect (SCIM) filter, percent-encoded for a query.
fn filter(field: &str, value: &str) -> String {
    let quoted = value.replace('\\', "\\\\").replace('"', "\\\"");
    encode_segment(&format!("{field} eq \"{quoted}\""))
}

/// argocd-vault-plugin's answer for an item: each field's label and value.
fn fields_by_label(item: &Value) -> Value {
    let mut map = serde_json::Map::new();
    for f in item["fields"].as_array().into_iter().flatten() {
        if let Some(label) = f.get("label").and_then(Value::as_str) {
            let v = f
                .get("value")
                .cloned()
                .unwrap_or(Value::String(String::new()));
            map.insert(label.to_string(), v);
        }
    }
    Value::Object(map)
}

/// The value of the one field called `field` (label or ID), in `section` (label or ID) when
/// one is named.
fn field_value(
    item: &Value,
    section: Option<&str>,
    field: &str,
    what: &str,
) -> Result<SecretValue, StoreError> {
    let named = |v: &Value, name: &str| {
        v.get("label").and_then(Value::as_str) == Some(name)
            || v.get("id").and_then(Value::as_str) == Some(name)
    };
    let section_ids: Option<Vec<&str>> = section.map(|s| {
        item["sections"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|sec| named(sec, s))
            .filter_map(|sec| sec.get("id").and_then(Value::as_str))
            .collect()
    });
    let found: Vec<&Value> = item["fields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| named(f, field))
        .filter(|f| match &section_ids {
            None => true,
            Some(ids) => f["section"]["id"]
                .as_str()
                .is_some_and(|id| ids.contains(&id)),
        })
        .collect();
    match found.as_slice() {
        [f] => Ok(SecretValue::new(
            f.get("value")
                .cloned()
                .filter(|v| !v.is_null())
                .unwrap_or(Value::String(String::new())),
        )),
        [] => Err(StoreError::NotFound {
            store: STORE.into(),
            path: match section {
                Some(s) => format!("{what} (the item has no field {field:?} in a section {s:?})"),
                None => format!("{what} (the item has no field {field:?})"),
            },
        }),
        _ => Err(StoreError::Invalid {
            path: what.into(),
            reason: format!(
                "the item has {} fields called {field:?}; add the section (op://VAULT/ITEM/SECTION/FIELD) or name \
                 the field by its ID",
                found.len()
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item() -> Value {
        json!({
            "id": "itemid", "title": "db",
            "sections": [{"id": "s1", "label": "prod"}, {"id": "s2", "label": "staging"}],
            "fields": [
                {"id": "username", "label": "username", "value": "app", "purpose": "USERNAME"},
                {"id": "f1", "label": "password", "value": "p1", "section": {"id": "s1"}},
                {"id": "f2", "label": "password", "value": "p2", "section": {"id": "s2"}},
                {"id": "f3", "label": "notes"}
            ]
        })
    }

    #[test]
    fn fields_are_found_by_label_or_id_and_section() {
        let v = |s, f| field_value(&item(), s, f, "op://v/i/x").map(|v| v.expose().clone());
        assert_eq!(v(None, "username").unwrap(), "app");
        assert_eq!(v(Some("prod"), "password").unwrap(), "p1");
        assert_eq!(v(Some("s2"), "password").unwrap(), "p2");
        assert_eq!(v(None, "f2").unwrap(), "p2");
        assert_eq!(v(None, "notes").unwrap(), "");
        let e = v(None, "password").unwrap_err().to_string();
        assert!(e.contains("2 fields") && !e.contains("p1"), "{e}");
        assert!(matches!(
            v(Some("prod"), "nope"),
            Err(StoreError::NotFound { .. })
        ));
    }

    #[test]
    fn avp_items_are_maps_of_labels() {
        let m = fields_by_label(&item());
        assert_eq!(m["username"], "app");
        assert_eq!(m["notes"], "");
    }

    #[test]
    fn ids_and_filters() {
        assert!(is_id("abcdefghijklmnopqrstuvwxyz"));
        assert!(!is_id("Prod"));
        assert_eq!(filter("name", "a\"b"), "name%20eq%20%22a%5C%22b%22");
    }
}
