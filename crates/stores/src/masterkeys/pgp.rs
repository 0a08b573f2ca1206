//! PGP master keys through the user's own `gpg` (as sops does): `SOPS_GPG_EXEC` names the
//! program (default `gpg`); `GNUPGHOME`, the agent and pinentry are gpg's business and are
//! left alone. The program is used rather than an OpenPGP crate so that keys on smartcards,
//! in the agent or behind a passphrase work exactly as they do for sops.

use std::io::Write;
use std::process::{Command, Stdio};

use kustodian_sops::Zeroizing;

use crate::Config;

/// Longest armored message or data key accepted from gpg.
const OUTPUT_LIMIT: usize = 64 * 1024;

fn program(config: &Config) -> String {
    config
        .var("SOPS_GPG_EXEC")
        .filter(|p| !p.trim().is_empty())
        .unwrap_or("gpg")
        .to_string()
}

/// Runs gpg with `input` on stdin; its stdout, or why it failed (gpg's own messages, which
/// name keys, never data).
fn run(config: &Config, args: &[&str], input: &[u8]) -> Result<Zeroizing<Vec<u8>>, String> {
    let exe = program(config);
    let mut child = Command::new(&exe)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            format!("cannot run `{exe}` ({e}); install GnuPG or set SOPS_GPG_EXEC to its path")
        })?;
    let mut stdin = child.stdin.take().ok_or("gpg has no stdin")?;
    let data = Zeroizing::new(input.to_vec());
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
    let out = child
        .wait_with_output()
        .map_err(|e| format!("`{exe}` failed: {e}"))?;
    let _ = writer.join();
    let stdout = Zeroizing::new(out.stdout);
    if out.status.success() && !stdout.is_empty() && stdout.len() <= OUTPUT_LIMIT {
        return Ok(stdout);
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("gpg: WARNING"))
        .collect();
    let tail = lines[lines.len().saturating_sub(2)..].join("; ");
    Err(if tail.is_empty() {
        format!("`{exe}` failed ({})", out.status)
    } else {
        tail.chars().take(300).collect()
    })
}

/// Encrypts `plaintext` to the key `fp`; the armored message.
pub(super) fn encrypt(config: &Config, fp: &str, plaintext: &[u8]) -> Result<String, String> {
    let fp = fp.trim();
    if fp.is_empty() || !fp.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err("a PGP fingerprint is hexadecimal (40 digits for a v4 key)".into());
    }
    let short = &fp[fp.len().saturating_sub(16)..];
    let out = run(
        config,
        &[
            "--batch",
            "--no-default-recipient",
            "--yes",
            "--encrypt",
            "-a",
            "-r",
            fp,
            "--trusted-key",
            short,
            "--no-encrypt-to",
        ],
        plaintext,
    )?;
    String::from_utf8(out.to_vec()).map_err(|_| "gpg wrote something that is not armor".into())
}

/// Decrypts an armored message with the user's keyring and agent.
pub(super) fn decrypt(config: &Config, enc: &str) -> Result<Zeroizing<Vec<u8>>, String> {
    run(config, &["--use-agent", "-d"], enc.as_bytes())
}
