//! `kustodian install-hook`: writes hooks/pre-commit into this repository's hooks folder.

use std::path::PathBuf;
use std::process::{Command, ExitCode};

/// The plain git hook, as shipped in hooks/pre-commit.
const HOOK: &str = include_str!("../../hooks/pre-commit");

/// Arguments of `install-hook`.
#[derive(clap::Args)]
pub struct Args {
    /// Replace an existing, different pre-commit hook (it is kept as pre-commit.bak).
    #[arg(long)]
    pub force: bool,
}

/// Where git runs hooks from (honours `core.hooksPath` and worktrees).
fn hook_path() -> miette::Result<PathBuf> {
    let out = Command::new("git")
        .args(["rev-parse", "--git-path", "hooks/pre-commit"])
        .output()
        .map_err(|e| miette::miette!(help = "install git", "could not run git: {e}"))?;
    if !out.status.success() {
        return Err(miette::miette!(
            help = "run `kustodian install-hook` inside a git repository",
            "not a git repository: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// Runs `install-hook`.
pub fn run(args: Args) -> miette::Result<ExitCode> {
    let path = hook_path()?;
    match std::fs::read_to_string(&path) {
        Ok(existing) if existing == HOOK => {
            eprintln!(
                "kustodian: {} is already the kustodian hook; nothing to do",
                path.display()
            );
            return Ok(ExitCode::SUCCESS);
        }
        Ok(_) if !args.force => {
            return Err(miette::miette!(
                help = "add `kustodian scan --staged` to your hook yourself, or run `kustodian install-hook --force` to replace it (the old one is kept as pre-commit.bak)",
                "{} already exists and is not the kustodian hook; left it alone",
                path.display()
            ));
        }
        Ok(_) => {
            let bak = path.with_extension("bak");
            std::fs::rename(&path, &bak)
                .map_err(|e| miette::miette!("could not move the old hook aside: {e}"))?;
            eprintln!("kustodian: moved the existing hook to {}", bak.display());
        }
        Err(_) => {}
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| miette::miette!("could not create {}: {e}", dir.display()))?;
    }
    std::fs::write(&path, HOOK)
        .map_err(|e| miette::miette!("could not write {}: {e}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| miette::miette!("could not make {} executable: {e}", path.display()))?;
    }
    eprintln!(
        "kustodian: installed the pre-commit hook at {}; commits now run `kustodian scan --staged` (kustodian must be on PATH, or set KUSTODIAN)",
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}
