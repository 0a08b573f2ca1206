//! KV paths: which API path to read for a reference, and which part of the answer is the
//! secret document.
//!
//! Two spellings arrive here. argocd-vault-plugin's `<path:kv/data/app#key>` is the API path
//! itself (KV v2 paths carry `data/`); vals' `ref+vault://kv/app#/key` leaves `data/` out and
//! the store inserts it after the mount. Whether a mount is KV v1 or v2 comes from
//! configuration (`AVP_KV_VERSION`, the `kv-version` annotation) or from Vault's
//! `sys/internal/ui/mounts/<path>`, the same preflight request the Vault CLI makes.

use serde_json::Value;

use super::settings::KvVersion;

/// What is mounted at a path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Engine {
    Kv(KvVersion),
    /// Any other secrets engine: the document is the answer's `data`.
    Other,
}

/// A mount as reported by Vault: its path (`secret/`) and engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Mount {
    pub path: String,
    pub engine: Engine,
}

impl Mount {
    /// Reads the answer of `sys/internal/ui/mounts/<path>`.
    pub(crate) fn from_preflight(data: &Value) -> Option<Mount> {
        let path = data.get("path")?.as_str()?.to_string();
        let engine = match data.get("type").and_then(Value::as_str) {
            Some("kv") | Some("generic") => {
                let version = data
                    .get("options")
                    .and_then(|o| o.get("version"))
                    .and_then(Value::as_str)
                    .unwrap_or("1");
                Engine::Kv(if version == "2" {
                    KvVersion::V2
                } else {
                    KvVersion::V1
                })
            }
            _ => Engine::Other,
        };
        let path = if path.ends_with('/') {
            path
        } else {
            format!("{path}/")
        };
        Some(Mount { path, engine })
    }

    /// Whether `path` lies under this mount.
    pub(crate) fn contains(&self, path: &str) -> bool {
        format!("{path}/").starts_with(&self.path)
    }
}

/// How the reference spelled the path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Syntax {
    /// argocd-vault-plugin: the API path as written.
    Avp,
    /// vals: KV v2's `data/` left out.
    Vals,
}

/// Which part of the answer is the document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Unwrap {
    /// `data` (KV v1, other engines, KV v2 metadata).
    Data,
    /// `data.data` (KV v2 reads).
    Kv2,
    /// The engine is unknown: `data.data` when the answer looks like a KV v2 read.
    Guess,
}

/// The read to make for one reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Read {
    /// The API path after `/v1/`, not yet encoded.
    pub api_path: String,
    /// `?version=N` for KV v2.
    pub version: Option<String>,
    pub unwrap: Unwrap,
}

/// Plans the read of `path` (trimmed of slashes) given what is known about its mount.
///
/// `engine` is the KV version from configuration, else what the mount reported, else `None`.
/// `mount` is the mount's path (`secret/`) when known; vals paths without it use the first
/// segment.
pub(crate) fn plan(
    path: &str,
    version: Option<&str>,
    syntax: Syntax,
    engine: Option<&Engine>,
    mount: Option<&str>,
) -> Result<Read, String> {
    if path.is_empty() {
        return Err("empty path; write <mount>/<path>, for example secret/data/app".into());
    }
    if path.split('/').any(|s| s == ".." || s == ".") {
        return Err("`.` and `..` are not allowed in Vault paths".into());
    }
    let version = version
        .map(str::trim)
        .filter(|v| !v.is_empty() && *v != "latest");
    match engine {
        Some(Engine::Kv(KvVersion::V2)) => {
            if let Some(v) = version {
                if v.parse::<u64>().is_err() {
                    return Err(format!(
                        "version {v:?} is not a number; KV v2 versions are 1, 2, 3, ..."
                    ));
                }
            }
            let fallback_mount = path.split('/').next().map(|m| format!("{m}/"));
            let mount = mount.map(str::to_string).or(if syntax == Syntax::Vals {
                fallback_mount
            } else {
                None
            });
            let (api_path, unwrap) = match (syntax, mount) {
                (Syntax::Vals, Some(m)) => {
                    let rest = path.strip_prefix(&m).unwrap_or("");
                    if rest.is_empty() {
                        return Err(format!(
                            "the path names the mount {m} itself; add the secret's path after it"
                        ));
                    }
                    (format!("{m}data/{rest}"), Unwrap::Kv2)
                }
                (Syntax::Avp, Some(m)) => {
                    let rest = path.strip_prefix(&m).unwrap_or("");
                    if rest.is_empty() {
                        return Err(format!(
                            "the path names the mount {m} itself; write {m}data/<path>"
                        ));
                    }
                    if rest.starts_with("metadata/") {
                        (path.to_string(), Unwrap::Data)
                    } else if rest.starts_with("data/") {
                        (path.to_string(), Unwrap::Kv2)
                    } else {
                        // argocd-vault-plugin fails here; the intent is plain.
                        (format!("{m}data/{rest}"), Unwrap::Kv2)
                    }
                }
                _ => {
                    let unwrap = if path.split('/').nth(1) == Some("metadata") {
                        Unwrap::Data
                    } else {
                        Unwrap::Kv2
                    };
                    (path.to_string(), unwrap)
                }
            };
            let version = if unwrap == Unwrap::Kv2 {
                version.map(str::to_string)
            } else {
                None
            };
            Ok(Read {
                api_path,
                version,
                unwrap,
            })
        }
        // KV v1 has no versions; argocd-vault-plugin ignores them there, and so do we.
        Some(Engine::Kv(KvVersion::V1)) | Some(Engine::Other) => Ok(Read {
            api_path: path.to_string(),
            version: None,
            unwrap: Unwrap::Data,
        }),
        None => match syntax {
            Syntax::Avp => Ok(Read {
                api_path: path.to_string(),
                version: version.map(str::to_string),
                unwrap: Unwrap::Guess,
            }),
            Syntax::Vals => Ok(Read {
                api_path: path.to_string(),
                version: None,
                unwrap: Unwrap::Data,
            }),
        },
    }
}

/// The document in an answer's body, or `None` when the answer holds none (a deleted KV v2
/// version, an empty read).
pub(crate) fn document(body: &Value, unwrap: Unwrap) -> Option<Value> {
    let data = body.get("data")?;
    let inner = match unwrap {
        Unwrap::Data => data,
        Unwrap::Kv2 => data.get("data")?,
        Unwrap::Guess => {
            let looks_v2 = data.get("metadata").is_some_and(Value::is_object)
                && data
                    .get("data")
                    .is_some_and(|d| d.is_object() || d.is_null())
                && data.as_object().is_some_and(|o| o.len() == 2);
            if looks_v2 {
                data.get("data")?
            } else {
                data
            }
        }
    };
    (!inner.is_null()).then(|| inner.clone())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const V2: Engine = Engine::Kv(KvVersion::V2);
    const V1: Engine = Engine::Kv(KvVersion::V1);

    fn read(api_path: &str, version: Option<&str>, unwrap: Unwrap) -> Read {
        Read {
            api_path: api_path.into(),
            version: version.map(Into::into),
            unwrap,
        }
    }

    #[test]
    fn avp_paths_are_api_paths() {
        assert_eq!(
            plan(
                "secret/data/app",
                None,
                Syntax::Avp,
                Some(&V2),
                Some("secret/")
            ),
            Ok(read("secret/data/app", None, Unwrap::Kv2))
        );
        assert_eq!(
            plan("secret/data/app", Some("3"), Syntax::Avp, Some(&V2), None),
            Ok(read("secret/data/app", Some("3"), Unwrap::Kv2))
        );
        assert_eq!(
            plan(
                "secret/metadata/app",
                Some("3"),
                Syntax::Avp,
                Some(&V2),
                Some("secret/")
            ),
            Ok(read("secret/metadata/app", None, Unwrap::Data))
        );
        // A KV v2 path written without `data/` gets it when the mount is known.
        assert_eq!(
            plan("secret/app", None, Syntax::Avp, Some(&V2), Some("secret/")),
            Ok(read("secret/data/app", None, Unwrap::Kv2))
        );
        assert_eq!(
            plan(
                "team/kv/data/x",
                None,
                Syntax::Avp,
                Some(&V2),
                Some("team/kv/")
            ),
            Ok(read("team/kv/data/x", None, Unwrap::Kv2))
        );
    }

    #[test]
    fn vals_paths_get_data_after_the_mount() {
        assert_eq!(
            plan(
                "secret/app",
                Some("2"),
                Syntax::Vals,
                Some(&V2),
                Some("secret/")
            ),
            Ok(read("secret/data/app", Some("2"), Unwrap::Kv2))
        );
        assert_eq!(
            plan(
                "team/kv/a/b",
                None,
                Syntax::Vals,
                Some(&V2),
                Some("team/kv/")
            ),
            Ok(read("team/kv/data/a/b", None, Unwrap::Kv2))
        );
        // Mount unknown but KV v2 forced: the first segment is the mount.
        assert_eq!(
            plan("secret/app", None, Syntax::Vals, Some(&V2), None),
            Ok(read("secret/data/app", None, Unwrap::Kv2))
        );
        assert!(plan("secret", None, Syntax::Vals, Some(&V2), Some("secret/")).is_err());
    }

    #[test]
    fn kv1_ignores_versions() {
        assert_eq!(
            plan("kv1/app", Some("4"), Syntax::Avp, Some(&V1), Some("kv1/")),
            Ok(read("kv1/app", None, Unwrap::Data))
        );
        assert_eq!(
            plan("kv1/app", None, Syntax::Vals, Some(&V1), Some("kv1/")),
            Ok(read("kv1/app", None, Unwrap::Data))
        );
    }

    #[test]
    fn bad_input_is_refused() {
        assert!(
            plan("secret/data/app", Some("two"), Syntax::Avp, Some(&V2), None)
                .unwrap_err()
                .contains("not a number")
        );
        assert!(plan("secret/../sys/x", None, Syntax::Avp, None, None).is_err());
        assert!(plan("", None, Syntax::Avp, None, None).is_err());
    }

    #[test]
    fn documents_are_unwrapped() {
        let v2 = json!({"data": {"data": {"k": "v"}, "metadata": {"version": 1}}});
        assert_eq!(document(&v2, Unwrap::Kv2), Some(json!({"k": "v"})));
        assert_eq!(document(&v2, Unwrap::Guess), Some(json!({"k": "v"})));
        let v1 = json!({"data": {"k": "v", "metadata": {"a": 1}}});
        assert_eq!(
            document(&v1, Unwrap::Guess),
            Some(json!({"k": "v", "metadata": {"a": 1}}))
        );
        let deleted = json!({"data": {"data": null, "metadata": {"deletion_time": "x"}}});
        assert_eq!(document(&deleted, Unwrap::Kv2), None);
        assert_eq!(document(&json!({"data": null}), Unwrap::Data), None);
    }

    #[test]
    fn preflight_answers() {
        let m = Mount::from_preflight(
            &json!({"path": "secret/", "type": "kv", "options": {"version": "2"}}),
        )
        .unwrap();
        assert_eq!(m.engine, V2);
        assert!(m.contains("secret/data/app") && m.contains("secret") && !m.contains("secretx/a"));
        let m =
            Mount::from_preflight(&json!({"path": "kv1/", "type": "kv", "options": null})).unwrap();
        assert_eq!(m.engine, V1);
        let m = Mount::from_preflight(&json!({"path": "db/", "type": "database"})).unwrap();
        assert_eq!(m.engine, Engine::Other);
    }
}
