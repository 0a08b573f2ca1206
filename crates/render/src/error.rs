//! One error per failed reference or document, or one per store that could not be used.

use std::fmt;

/// Something that kept a render from finishing. Never holds a secret value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderError {
    /// The document, as `Kind/name` (with the namespace when it has one); for a store-wide
    /// failure, the first document that needed the store.
    pub document: String,
    /// The reference as written (references are not secrets), if the error is about one.
    pub reference: Option<String>,
    /// What went wrong and, where we know it, how to fix it.
    pub reason: String,
    /// Set when a whole store could not be used (unreachable, login refused, invalid token,
    /// no identity): the store and how many references it left unresolved. Such a failure
    /// is reported once, not once per reference.
    pub store_wide: Option<StoreWide>,
}

/// A failure of a whole store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreWide {
    /// The store's name (`vault`, `sops`, ...).
    pub store: String,
    /// References that needed it.
    pub references: usize,
}

impl fmt::Display for RenderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(w) = &self.store_wide {
            let s = if w.references == 1 { "" } else { "s" };
            return write!(
                f,
                "{} ({} reference{s} to the {} store left unresolved)",
                self.reason, w.references, w.store
            );
        }
        match &self.reference {
            Some(r) => write!(f, "{}: {}: {}", self.document, r, self.reason),
            None => write!(f, "{}: {}", self.document, self.reason),
        }
    }
}

impl std::error::Error for RenderError {}
