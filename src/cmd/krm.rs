//! `kustodian krm`, `install-kustomize-plugin` and the legacy exec-plugin hand-over: argument
//! parsing only; the work is in `kustodian-plugin`.

use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `krm` (it reads a ResourceList on stdin and takes no other input).
#[derive(clap::Args)]
pub struct Args {}

/// Arguments of `install-kustomize-plugin`.
#[derive(clap::Args)]
pub struct InstallArgs {
    /// Plugin home to install into (default: $KUSTOMIZE_PLUGIN_HOME, else
    /// $XDG_CONFIG_HOME/kustomize/plugin, else ~/.config/kustomize/plugin).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Copy the binary instead of linking to it (for images and read-only build trees).
    #[arg(long)]
    pub copy: bool,
    /// Replace plugin files that are another program (such as a KSOPS binary).
    #[arg(long)]
    pub force: bool,
    /// Do not install the KSOPS-compatible `viaduct.ai/v1/ksops/ksops`.
    #[arg(long)]
    pub no_ksops: bool,
}

/// Runs `krm`: a ResourceList from stdin to stdout; exit 1 when the results hold an error.
pub fn run(_args: Args) -> miette::Result<ExitCode> {
    Ok(kustodian_plugin::run_function())
}

/// Runs `install-kustomize-plugin`.
pub fn install(args: InstallArgs) -> miette::Result<ExitCode> {
    kustodian_plugin::install(args.dir.as_deref(), args.copy, args.force, !args.no_ksops)
}

/// When invoked as a legacy kustomize exec plugin (`<plugin dir>/<Kind> CONFIG_FILE`, or as a
/// KRM function under a plugin's name), handles it and returns the exit code.
pub fn run_as_legacy_plugin() -> Option<ExitCode> {
    kustodian_plugin::run_as_legacy_plugin()
}
