//! The `kustodian` binary: argument parsing, wiring and exit codes. The work lives in the
//! crates under `crates/`; each verb's glue is one file under `src/cmd/`.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;

/// Keep Kubernetes secrets out of Git and put them back at render time.
#[derive(Parser)]
#[command(name = "kustodian", version = env!("KUSTODIAN_VERSION"), about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Block Secrets whose data is plaintext or only base64 (commit time).
    Scan(cmd::scan::Args),
    /// Resolve references and print the finished manifests (render time).
    Render(cmd::render::Args),
    /// Ask the stores whether every reference resolves (never printing a value).
    Check(cmd::check::Args),
    /// Run as a KRM function (ResourceList on stdin and stdout) or a legacy kustomize exec plugin.
    Krm(cmd::krm::Args),
    /// Encrypt a file in the SOPS format (age, PGP, AWS KMS, GCP KMS, Azure Key Vault, Vault
    /// transit; key groups).
    Encrypt(cmd::sops::EncryptArgs),
    /// Decrypt a SOPS file.
    Decrypt(cmd::sops::DecryptArgs),
    /// Decrypt a SOPS file into $EDITOR and encrypt it again.
    Edit(cmd::sops::EditArgs),
    /// Generate an age identity.
    Keygen(cmd::sops::KeygenArgs),
    /// Re-wrap SOPS files' data keys for the keys their .sops.yaml rule now names.
    Updatekeys(cmd::sops::UpdatekeysArgs),
    /// Give SOPS files a new data key, adding or removing master keys.
    Rotate(cmd::sops::RotateArgs),
    /// Install the plain git pre-commit hook into this repository.
    InstallHook(cmd::install_hook::Args),
    /// Install kustodian where kustomize looks for legacy exec plugins.
    InstallKustomizePlugin(cmd::krm::InstallArgs),
    /// Print the shell completion script for bash, zsh, fish, elvish or powershell.
    Completions(cmd::completions::Args),
    /// Print the manual page (or write one per verb with --dir).
    Man(cmd::completions::ManArgs),
}

fn main() -> ExitCode {
    // A legacy kustomize exec plugin is run as `<plugin dir>/<Kind> CONFIG_FILE`.
    if let Some(code) = cmd::krm::run_as_legacy_plugin() {
        return code;
    }
    // Unwrapped lines: diagnostics end up in CI logs, hook output and the Argo CD UI, where
    // wrapping at a guessed width breaks messages apart.
    let _ = miette::set_hook(Box::new(|_| {
        Box::new(miette::MietteHandlerOpts::new().wrap_lines(false).build())
    }));
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Scan(a) => cmd::scan::run(a),
        Command::Render(a) => cmd::render::run(a),
        Command::Check(a) => cmd::check::run(a),
        Command::Krm(a) => cmd::krm::run(a),
        Command::Encrypt(a) => cmd::sops::encrypt(a),
        Command::Decrypt(a) => cmd::sops::decrypt(a),
        Command::Edit(a) => cmd::sops::edit(a),
        Command::Keygen(a) => cmd::sops::keygen(a),
        Command::Updatekeys(a) => cmd::sops::updatekeys(a),
        Command::Rotate(a) => cmd::sops::rotate(a),
        Command::InstallHook(a) => cmd::install_hook::run(a),
        Command::InstallKustomizePlugin(a) => cmd::krm::install(a),
        Command::Completions(a) => cmd::completions::run(a),
        Command::Man(a) => cmd::completions::man(a),
    };
    match result {
        Ok(code) => code,
        Err(report) => {
            eprintln!("{report:?}");
            ExitCode::from(2)
        }
    }
}
