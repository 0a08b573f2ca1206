//! `kustodian scan [PATH...]` and `kustodian scan --staged [PATH...]`: find plaintext Secret data
//! before it reaches Git. Findings go to stdout in the chosen format, notes (skipped files) to
//! stderr. Exit 0: nothing blocks; 1: findings block; 2: the scan could not run or is incomplete.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use kustodian_scan::report::{Human, Json, Report};
use kustodian_scan::{Policy, Scanner, Source};

/// Arguments of `scan`.
#[derive(clap::Args)]
pub struct Args {
    /// Files and folders to scan (default: the current folder). Folders are walked, honouring
    /// .gitignore; only .yaml, .yml, .json and kustomization files are read.
    pub paths: Vec<PathBuf>,
    /// Scan the staged blobs in the git index (what the commit will hold), not the working tree.
    /// With PATHs, the staged version of those paths; without, every file the commit adds or
    /// changes.
    #[arg(long)]
    pub staged: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

/// Output formats (`sarif` and `github` come with the CI work).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Diagnostics with the file, line, column and a redacted excerpt, then a summary.
    Human,
    /// `{"findings": [...]}` with paths relative to the repository root.
    Json,
}

impl Format {
    fn reporter(self) -> Box<dyn Report> {
        match self {
            Format::Human => {
                let color =
                    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
                let theme = if color {
                    miette::GraphicalTheme::unicode()
                } else {
                    miette::GraphicalTheme::unicode_nocolor()
                };
                let handler = miette::GraphicalReportHandler::new_themed(theme)
                    .with_links(false)
                    .with_urls(false)
                    .with_context_lines(0)
                    .with_show_related_as_nested(true)
                    .with_wrap_lines(false);
                Box::new(Human::new(Box::new(handler)))
            }
            Format::Json => Box::new(Json),
        }
    }
}

/// Runs `scan`.
pub fn run(args: Args) -> miette::Result<ExitCode> {
    let cwd = std::env::current_dir()
        .map_err(|e| miette::miette!("cannot read the current folder: {e}"))?;
    let source = if args.staged {
        Source::Staged(args.paths)
    } else {
        Source::Paths(args.paths)
    };
    let scanner = Scanner::new();
    let policy = Policy::default();
    let result = kustodian_scan::scan(&scanner, &source, &cwd)?;

    let mut stderr = std::io::stderr().lock();
    for note in &result.notes {
        let _ = writeln!(stderr, "{note}");
    }
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = args
        .format
        .reporter()
        .report(&result, &policy, &mut stdout)
        .and_then(|()| stdout.flush())
    {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            return Err(miette::miette!("could not write the report: {e}"));
        }
    }
    Ok(if result.has_errors() {
        ExitCode::from(2)
    } else if result.findings.iter().any(|f| policy.blocks(f)) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
