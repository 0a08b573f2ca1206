//! (not yet built)

use std::process::ExitCode;

/// Arguments.
#[derive(clap::Args)]
pub struct Args {}

/// Arguments of install-kustomize-plugin.
#[derive(clap::Args)]
pub struct InstallArgs {}

/// Runs the verb.
pub fn run(_args: Args) -> miette::Result<ExitCode> {
    Err(miette::miette!("not yet built"))
}

/// Installs the legacy plugin.
pub fn install(_args: InstallArgs) -> miette::Result<ExitCode> {
    Err(miette::miette!("not yet built"))
}

/// When invoked as a legacy kustomize exec plugin, handles it and returns the exit code.
pub fn run_as_legacy_plugin() -> Option<ExitCode> {
    None
}
