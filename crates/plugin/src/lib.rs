//! kustodian inside kustomize, kpt and Argo CD: the plugin front doors' logic.
//!
//! - The KRM function (a `config.kubernetes.io/v1` ResourceList on stdin and stdout) for
//!   kustomize's exec functions and `kpt fn eval --exec` / `kpt fn render --allow-exec`
//!   ([`run_function`], the processing in `resource_list`).
//! - The legacy exec plugin: kustomize runs `<plugin dir>/<Kind> CONFIG_FILE`;
//!   [`run_as_legacy_plugin`] recognises that invocation before any argument parsing.
//! - [`install`] puts the binary where kustomize looks.
//!
//! The configuration kinds (`Resolver`, `SecretGenerator`, KSOPS's `ksops`) are in `config`,
//! the generators in `generate`; every path resolves references through the render pipeline
//! (`kustodian-render`). This crate does not parse command lines: the binary does.

#![forbid(unsafe_code)]

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

mod config;
mod context;
mod generate;
mod install;
mod kpt;
mod legacy;
mod resource_list;
mod sopsfile;

pub use install::install;

/// Runs the KRM function: a ResourceList from stdin to stdout; exit 1 when the results hold an
/// error.
pub fn run_function() -> ExitCode {
    let input = match kustodian_manifest::read::read_stream_to_string_bounded(
        std::io::stdin().lock(),
        kustodian_manifest::read::MANIFEST_LIMIT,
        "<stdin>",
    ) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("kustodian: could not read the ResourceList on stdin: {e}");
            return ExitCode::from(1);
        }
    };
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let outcome = resource_list::process(&input, &cwd);
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout
        .write_all(outcome.output.as_bytes())
        .and_then(|_| stdout.flush())
    {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("kustodian: could not write the ResourceList: {e}");
            return ExitCode::from(1);
        }
    }
    if outcome.ok() {
        return ExitCode::SUCCESS;
    }
    let problems: Vec<_> = outcome
        .errors
        .into_iter()
        .map(context::Problem::general)
        .collect();
    legacy::report(
        "the function failed; see the results in its output",
        &problems,
        "fix what the results name; no resource was changed",
    );
    ExitCode::from(1)
}

/// The file names kustodian answers to as a legacy plugin (`NAME CONFIG_FILE`).
const PLUGIN_NAMES: &[&str] = &["Resolver", "SecretGenerator", "ksops"];
/// The file names under which kustodian, run without arguments, is a KRM function (kustomize's
/// `exec: {path: ...}` takes no arguments).
const FUNCTION_NAMES: &[&str] = &["Resolver", "SecretGenerator", "ksops", "kustodian-krm"];

/// Whether `path` is a small file holding a kustodian or KSOPS plugin configuration.
fn is_config_file(path: &Path) -> bool {
    let Ok(text) = kustodian_manifest::read::read_to_string_bounded(
        path,
        kustodian_manifest::read::SMALL_FILE_LIMIT,
    ) else {
        return false;
    };
    if !text.contains(config::API_VERSION) && !text.contains(config::KSOPS_API_VERSION) {
        return false;
    }
    kustodian_manifest::parse_stream(&text)
        .ok()
        .and_then(|d| d.into_iter().next())
        .is_some_and(|d| config::is_plugin_config(&d.root))
}

/// When invoked as a legacy kustomize exec plugin, handles it and returns the exit code:
/// argv[0]'s file name is `Resolver`, `SecretGenerator` or `ksops`, or argv[1] is a file with
/// a `kustodian.io/v1` or `viaduct.ai/v1` configuration. Invoked as `ksops` (or another plugin
/// name, or `kustodian-krm`) without arguments, it is a KRM function, as KSOPS's
/// `exec: {path: ksops}` expects.
pub fn run_as_legacy_plugin() -> Option<ExitCode> {
    let args: Vec<OsString> = std::env::args_os().collect();
    let name = args
        .first()
        .and_then(|a| Path::new(a).file_name())
        .and_then(|n| n.to_str())
        .unwrap_or("");
    let by_name = PLUGIN_NAMES.contains(&name);
    match args.len() {
        1 if FUNCTION_NAMES.contains(&name) => Some(run_function()),
        2 => {
            let p = Path::new(&args[1]);
            (by_name || is_config_file(p)).then(|| legacy::run(p))
        }
        _ => None,
    }
}
