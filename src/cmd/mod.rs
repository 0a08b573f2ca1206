//! One module per verb: turn parsed arguments into calls on the crates and an exit code.

pub mod install_hook;
pub mod krm;
pub mod render;
pub mod scan;
pub mod sops;
