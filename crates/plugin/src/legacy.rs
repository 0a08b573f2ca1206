//! The legacy kustomize exec plugin: `<plugin dir>/<Kind> CONFIG_FILE`.
//!
//! kustomize (`--enable-alpha-plugins`) runs the plugin with the kustomization folder as the
//! working directory, the path of a temporary copy of the configuration as argv[1] (and the
//! same text in `KUSTOMIZE_PLUGIN_CONFIG_STRING`). A transformer (`Resolver`) gets every
//! resource on stdin, each with its `kustomize.config.k8s.io/id` annotation, and must print
//! them all back: the annotations are kept as they are. A generator (`SecretGenerator`,
//! `ksops`) prints what it generates. On failure it prints nothing on stdout, a short report on
//! stderr (kustomize shows it) and exits 1.

use std::io::Write;
use std::path::Path;

use kustodian_manifest::read::{
    read_stream_to_string_bounded, read_to_string_bounded, MANIFEST_LIMIT, SMALL_FILE_LIMIT,
};
use std::process::ExitCode;

use super::config::{self, PluginConfig};
use super::context::{is_tool_document, Context, Problem};
use super::generate;

/// Most problem lines printed, so that the report fits on a screen.
const MAX_LINES: usize = 20;

/// Prints problems to stderr, one line each, with a help line.
pub fn report(what: &str, problems: &[Problem], help: &str) {
    let mut err = std::io::stderr().lock();
    for p in problems.iter().take(MAX_LINES) {
        let _ = writeln!(err, "kustodian: {}", p.message);
    }
    if problems.len() > MAX_LINES {
        let _ = writeln!(
            err,
            "kustodian: ... and {} more",
            problems.len() - MAX_LINES
        );
    }
    let _ = writeln!(err, "kustodian: {what}");
    let _ = writeln!(err, "  help: {help}");
}

fn config_text(path: &Path) -> Result<String, String> {
    match read_to_string_bounded(path, SMALL_FILE_LIMIT) {
        Ok(t) => Ok(t),
        Err(e) => std::env::var("KUSTOMIZE_PLUGIN_CONFIG_STRING")
            .ok()
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| format!("cannot read the plugin configuration {e}")),
    }
}

/// Runs as a legacy exec plugin with the configuration at `config_path`.
pub fn run(config_path: &Path) -> ExitCode {
    let fail = |what: &str, problems: Vec<Problem>, help: &str| {
        report(what, &problems, help);
        ExitCode::from(1)
    };
    let text = match config_text(config_path) {
        Ok(t) => t,
        Err(e) => {
            return fail(
                "the plugin could not start",
                vec![Problem::general(e)],
                "run kustodian through kustomize (`kustomize build --enable-alpha-plugins`)",
            )
        }
    };
    let node = match kustodian_manifest::parse_stream(&text) {
        Ok(docs) if !docs.is_empty() => docs
            .into_iter()
            .next()
            .map(|d| d.root)
            .unwrap_or_else(kustodian_manifest::Node::map),
        Ok(_) => {
            return fail(
                "the plugin configuration is empty",
                Vec::new(),
                "the configuration kinds are kustodian.io/v1 Resolver and SecretGenerator, and viaduct.ai/v1 ksops",
            )
        }
        Err(e) => {
            return fail(
                "the plugin configuration is not YAML",
                vec![Problem::general(format!(
                    "line {}, column {}: {}",
                    e.pos.line, e.pos.column, e.message
                ))],
                "fix the file listed under generators: or transformers: in kustomization.yaml",
            )
        }
    };
    let parsed = match config::parse(&node) {
        Ok(p) => p,
        Err(e) => {
            return fail(
                "the plugin configuration cannot be used",
                vec![Problem::general(e.what())],
                e.help(),
            )
        }
    };
    for w in &parsed.warnings {
        eprintln!("kustodian: warning: {w}");
    }
    let cwd = match std::env::current_dir() {
        Ok(c) => c,
        Err(e) => {
            return fail(
                "no working directory",
                vec![Problem::general(e.to_string())],
                "run kustodian through kustomize",
            )
        }
    };
    let ctx = match Context::new(&cwd, parsed.config.settings()) {
        Ok(c) => c,
        Err(p) => {
            return fail(
                "the plugin configuration cannot be used",
                vec![p],
                "keep `dir` inside the repository, relative to the kustomization folder",
            )
        }
    };
    let (result, what, help) = match &parsed.config {
        PluginConfig::Resolver(_) => {
            let input = match read_stream_to_string_bounded(std::io::stdin().lock(), MANIFEST_LIMIT, "<stdin>") {
                Ok(t) => t,
                Err(e) => return fail("could not read the resources on stdin", vec![Problem::general(e.to_string())], "run kustodian through kustomize"),
            };
            let result = match kustodian_render::input::load_stream(&input, "<kustomize resources>") {
                Ok(mut docs) => ctx.resolve_except(&mut docs, is_tool_document).map(|_| docs),
                Err(e) => Err(vec![Problem::general(e.to_string())]),
            };
            (
                result,
                "references could not be resolved; nothing was output (Resolver)",
                "check that each path and key exists in its store and that kustodian can read it (for SOPS files: SOPS_AGE_KEY_FILE or SOPS_AGE_KEY); paths are relative to the kustomization folder",
            )
        }
        PluginConfig::SecretGenerator(spec, _) => (
            generate::secret_generator(spec, &ctx),
            "the Secret could not be generated; nothing was output (SecretGenerator)",
            "check the references and SOPS files the generator names, relative to the kustomization folder, and that kustodian can decrypt them",
        ),
        PluginConfig::Ksops(spec, _) => (
            generate::ksops(spec, &ctx),
            "the KSOPS generator failed; nothing was output",
            "check the files listed, relative to the kustomization folder, and that kustodian can decrypt them (SOPS_AGE_KEY_FILE or SOPS_AGE_KEY)",
        ),
    };
    match result {
        Ok(docs) => {
            let out = kustodian_manifest::emit_stream(docs.iter());
            let mut stdout = std::io::stdout().lock();
            match stdout
                .write_all(out.as_bytes())
                .and_then(|_| stdout.flush())
            {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
                Err(e) => fail(
                    "could not write the output",
                    vec![Problem::general(e.to_string())],
                    "kustomize stopped reading",
                ),
            }
        }
        Err(problems) => fail(what, problems, help),
    }
}
