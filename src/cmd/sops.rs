//! (not yet built)

use std::process::ExitCode;

/// Arguments of encrypt.
#[derive(clap::Args)]
pub struct EncryptArgs {}
/// Arguments of decrypt.
#[derive(clap::Args)]
pub struct DecryptArgs {}
/// Arguments of edit.
#[derive(clap::Args)]
pub struct EditArgs {}
/// Arguments of keygen.
#[derive(clap::Args)]
pub struct KeygenArgs {}

/// encrypt
pub fn encrypt(_a: EncryptArgs) -> miette::Result<ExitCode> {
    Err(miette::miette!("not yet built"))
}
/// decrypt
pub fn decrypt(_a: DecryptArgs) -> miette::Result<ExitCode> {
    Err(miette::miette!("not yet built"))
}
/// edit
pub fn edit(_a: EditArgs) -> miette::Result<ExitCode> {
    Err(miette::miette!("not yet built"))
}
/// keygen
pub fn keygen(_a: KeygenArgs) -> miette::Result<ExitCode> {
    Err(miette::miette!("not yet built"))
}
