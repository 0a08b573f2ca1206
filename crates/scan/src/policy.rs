//! What blocks. Today one knob, the lowest blocking severity; policy files (rules on or off,
//! allowlists, custom rules) will extend [`Policy`] without changing its users.

use crate::finding::{Finding, Severity};

/// Decides which findings block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Findings at or above this severity block. The default, [`Severity::Low`], blocks every
    /// plaintext Secret value.
    pub block_at: Severity,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            block_at: Severity::Low,
        }
    }
}

impl Policy {
    /// Whether the finding blocks the commit.
    pub fn blocks(&self, f: &Finding) -> bool {
        f.severity >= self.block_at
    }
}
