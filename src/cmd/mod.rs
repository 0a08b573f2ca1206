//! One module per verb: turn parsed arguments into calls on the crates and an exit code.

pub mod check;
pub mod completions;
pub mod install_hook;
pub mod krm;
pub mod render;
pub mod scan;
pub mod sops;

/// The stores every render path (CLI, KRM function, exec plugin, Argo CD) uses.
pub fn stores_for(config: kustodian_stores::Config) -> kustodian_stores::Stores {
    kustodian_stores::Stores::new(config)
}
