//! (not yet built)

use std::process::ExitCode;

/// Arguments.
#[derive(clap::Args)]
pub struct Args {}

/// Runs the verb.
pub fn run(_args: Args) -> miette::Result<ExitCode> {
    Err(miette::miette!("not yet built"))
}
