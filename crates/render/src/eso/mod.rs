//! External Secrets Operator, both ways: [`emit`] turns Secrets of remote references into
//! `ExternalSecret` objects (so Argo CD never sees a value), [`resolve`] renders
//! `ExternalSecret` objects into Secrets offline. Both speak the part of ESO's template engine
//! in [`template`].

pub mod emit;
pub mod resolve;
pub mod template;

use std::collections::BTreeMap;

use kustodian_manifest::{Node, Object};
use kustodian_stores::Stores;

use crate::RenderError;

pub use emit::Emit;

/// Replaces every ExternalSecret in `docs` with the Secret ESO would create, and drops the
/// SecretStore/ClusterSecretStore objects (they are the operator's, not the cluster's
/// Secrets). Errors name the ExternalSecret and never hold a value.
pub fn resolve_external_secrets(
    docs: Vec<Node>,
    stores: &Stores,
) -> Result<Vec<Node>, Vec<RenderError>> {
    let in_input = resolve::store_objects(&docs);
    let mut out = Vec::with_capacity(docs.len());
    let mut errors = Vec::new();
    for doc in docs {
        let o = Object::new(&doc);
        if resolve::is_eso(&o, "SecretStore") || resolve::is_eso(&o, "ClusterSecretStore") {
            continue;
        }
        if !resolve::is_eso(&o, "ExternalSecret") {
            out.push(doc);
            continue;
        }
        let mut name = o.display_name();
        if let Some(ns) = o.namespace() {
            name = format!("{name} (namespace {ns})");
        }
        match resolve::resolve_one(&doc, &in_input, stores) {
            Ok(Some(secret)) => out.push(secret),
            Ok(None) => {}
            Err(reason) => errors.push(RenderError {
                document: name,
                reference: None,
                reason,
                store_wide: None,
            }),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// Names of the ESO objects, for messages and `check`.
pub fn store_objects(docs: &[Node]) -> BTreeMap<(String, Option<String>, String), Node> {
    resolve::store_objects(docs)
}
