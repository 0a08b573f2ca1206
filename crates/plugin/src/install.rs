//! `kustodian install-kustomize-plugin`: put the binary where kustomize looks for legacy exec
//! plugins, `<plugin home>/<apiVersion>/<lowercase kind>/<Kind>`:
//!
//! - `kustodian.io/v1/resolver/Resolver`
//! - `kustodian.io/v1/secretgenerator/SecretGenerator`
//! - `viaduct.ai/v1/ksops/ksops` (KSOPS compatibility; left alone when it is another program)
//!
//! The plugin home is `--dir`, else `$KUSTOMIZE_PLUGIN_HOME`, else
//! `$XDG_CONFIG_HOME/kustomize/plugin`, else `$HOME/.config/kustomize/plugin`, as kustomize
//! decides it.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The plugin files, relative to the plugin home.
pub const TARGETS: &[(&str, &str, &str)] = &[
    ("kustodian.io/v1", "resolver", "Resolver"),
    ("kustodian.io/v1", "secretgenerator", "SecretGenerator"),
    ("viaduct.ai/v1", "ksops", "ksops"),
];

/// Where kustomize looks for plugins.
pub fn plugin_home(dir: Option<&Path>) -> miette::Result<PathBuf> {
    if let Some(d) = dir {
        return Ok(d.to_path_buf());
    }
    let var = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(h) = var("KUSTOMIZE_PLUGIN_HOME") {
        return Ok(h);
    }
    if let Some(x) = var("XDG_CONFIG_HOME") {
        return Ok(x.join("kustomize").join("plugin"));
    }
    if let Some(h) = var("HOME") {
        return Ok(h.join(".config").join("kustomize").join("plugin"));
    }
    Err(miette::miette!(
        help = "set XDG_CONFIG_HOME or KUSTOMIZE_PLUGIN_HOME, or pass --dir",
        "cannot tell where kustomize looks for plugins"
    ))
}

/// Whether `target` already is this binary (a link to it, or the same bytes).
fn is_ours(target: &Path, exe: &Path) -> bool {
    if let Ok(real) = target.canonicalize() {
        if real == exe {
            return true;
        }
    }
    match (std::fs::metadata(target), std::fs::metadata(exe)) {
        (Ok(a), Ok(b)) if a.len() == b.len() => {
            std::fs::read(target).ok() == std::fs::read(exe).ok()
        }
        _ => false,
    }
}

fn place(exe: &Path, target: &Path, copy: bool) -> std::io::Result<&'static str> {
    if let Some(dir) = target.parent() {
        std::fs::create_dir_all(dir)?;
    }
    if target.symlink_metadata().is_ok() {
        std::fs::remove_file(target)?;
    }
    #[cfg(unix)]
    if !copy {
        std::os::unix::fs::symlink(exe, target)?;
        return Ok("linked");
    }
    let _ = copy;
    std::fs::copy(exe, target)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(target, std::fs::Permissions::from_mode(0o755))?;
    }
    Ok("copied")
}

/// Installs the plugin files; says what it did for each.
pub fn install(
    dir: Option<&Path>,
    copy: bool,
    force: bool,
    ksops: bool,
) -> miette::Result<ExitCode> {
    let home = plugin_home(dir)?;
    let exe = std::env::current_exe()
        .and_then(|e| e.canonicalize())
        .map_err(|e| miette::miette!("cannot find the kustodian binary itself: {e}"))?;
    let mut skipped = 0;
    for (api, dir, kind) in TARGETS {
        if *kind == "ksops" && !ksops {
            continue;
        }
        let target = home.join(api).join(dir).join(kind);
        let exists = target.symlink_metadata().is_ok();
        if exists
            && is_ours(&target, &exe)
            && !(copy
                && target
                    .symlink_metadata()
                    .is_ok_and(|m| m.file_type().is_symlink()))
        {
            println!("up to date  {}", target.display());
            continue;
        }
        if exists && !is_ours(&target, &exe) && !force {
            println!(
                "skipped     {} (another program is installed there; --force replaces it)",
                target.display()
            );
            skipped += 1;
            continue;
        }
        let verb = place(&exe, &target, copy).map_err(|e| {
            miette::miette!(
                help = "check the folder's permissions, or pass --dir",
                "{}: {e}",
                target.display()
            )
        })?;
        match verb {
            "linked" => println!("linked      {} -> {}", target.display(), exe.display()),
            _ => println!("copied      {} (from {})", target.display(), exe.display()),
        }
    }
    println!("kustomize runs these with `kustomize build --enable-alpha-plugins` (or `kubectl kustomize --enable-alpha-plugins`);");
    println!("list a kustodian.io/v1 Resolver under transformers: or a SecretGenerator under generators:, with `kubectl kustomize --enable-alpha-plugins`.");
    if skipped > 0 {
        eprintln!(
            "kustodian: {skipped} plugin file(s) left alone; run with --force to replace them"
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
