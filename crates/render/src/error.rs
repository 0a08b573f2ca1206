//! One error per failed reference or document.

use std::fmt;

/// Something that kept a render from finishing. Never holds a secret value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderError {
    /// The document, as `Kind/name` (with the namespace when it has one).
    pub document: String,
    /// The reference as written (references are not secrets), if the error is about one.
    pub reference: Option<String>,
    /// What went wrong and, where we know it, how to fix it.
    pub reason: String,
}

impl fmt::Display for RenderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.reference {
            Some(r) => write!(f, "{}: {}: {}", self.document, r, self.reason),
            None => write!(f, "{}: {}", self.document, self.reason),
        }
    }
}

impl std::error::Error for RenderError {}
