//! `kustodian install-hook [--pre-push]`: writes hooks/pre-commit (or hooks/pre-push) into this
//! repository's hooks folder.

use std::path::PathBuf;
use std::process::{Command, ExitCode};

/// A plain git hook, as shipped in hooks/.
struct Hook {
    /// Its name in the hooks folder.
    name: &'static str,
    /// The script.
    text: &'static str,
    /// What it runs, and when.
    runs: &'static str,
}

const PRE_COMMIT: Hook = Hook {
    name: "pre-commit",
    text: include_str!("../../hooks/pre-commit"),
    runs: "commits now run `kustodian scan --staged`",
};

const PRE_PUSH: Hook = Hook {
    name: "pre-push",
    text: include_str!("../../hooks/pre-push"),
    runs: "pushes now run `kustodian scan --pushed` on the commits the remote does not have",
};

/// Arguments of `install-hook`.
#[derive(clap::Args)]
pub struct Args {
    /// Replace an existing, different hook (it is kept with a .bak ending).
    #[arg(long)]
    pub force: bool,
    /// Install the pre-push hook (scans the commits being pushed) instead of the pre-commit one.
    #[arg(long)]
    pub pre_push: bool,
}

/// Where git runs hooks from (honours `core.hooksPath` and worktrees).
fn hook_path(name: &str) -> miette::Result<PathBuf> {
    let out = Command::new("git")
        .args(["rev-parse", "--git-path", &format!("hooks/{name}")])
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
    let hook = if args.pre_push { PRE_PUSH } else { PRE_COMMIT };
    let path = hook_path(hook.name)?;
    match std::fs::read_to_string(&path) {
        Ok(existing) if existing == hook.text => {
            eprintln!(
                "kustodian: {} is already the kustodian hook; nothing to do",
                path.display()
            );
            return Ok(ExitCode::SUCCESS);
        }
        Ok(_) if !args.force => {
            return Err(miette::miette!(
                help = "add kustodian to your hook yourself (see hooks/ in the kustodian repository), or run `kustodian install-hook --force` to replace it (the old one is kept with a .bak ending)",
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
    std::fs::write(&path, hook.text)
        .map_err(|e| miette::miette!("could not write {}: {e}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| miette::miette!("could not make {} executable: {e}", path.display()))?;
    }
    eprintln!(
        "kustodian: installed the {} hook at {}; {} (kustodian must be on PATH, or set KUSTODIAN)",
        hook.name,
        path.display(),
        hook.runs
    );
    Ok(ExitCode::SUCCESS)
}
