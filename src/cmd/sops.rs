//! The sops verbs: `encrypt`, `decrypt`, `edit`, `keygen`, `updatekeys`, `rotate`, with sops's
//! flags, so that sops users need nothing new. The format work is in `kustodian-sops`, the
//! master keys that need I/O (PGP, AWS KMS, Vault transit) in `kustodian-stores`; this file
//! reads and writes files, runs the editor and turns errors into diagnostics.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use kustodian_sops::{
    config, encrypt_for, gcp_kms_keys_from_list, generate_identity_file, kms_keys_from_list,
    AzureKvKey, EncryptOptions, EncryptedFile, Format, Identities, KeyPlan, MasterKey, Plaintext,
    Selection, Value, VaultKey, Zeroizing,
};
use miette::{miette, IntoDiagnostic, Report};

const FORMATS: [&str; 4] = ["yaml", "json", "dotenv", "binary"];

/// Arguments of encrypt.
#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("selection").multiple(false)))]
pub struct EncryptArgs {
    /// The plaintext file (`-` reads stdin).
    file: PathBuf,
    /// Age recipients, comma-separated (default: $SOPS_AGE_RECIPIENTS, then .sops.yaml).
    #[arg(long, value_name = "R1,R2")]
    age: Option<String>,
    /// PGP fingerprints, comma-separated (default: $SOPS_PGP_FP).
    #[arg(long, value_name = "FP1,FP2")]
    pgp: Option<String>,
    /// AWS KMS key ARNs, comma-separated, each optionally ARN+ROLE_ARN (default: $SOPS_KMS_ARN).
    #[arg(long, value_name = "ARN1,ARN2")]
    kms: Option<String>,
    /// Google Cloud KMS keys, comma-separated:
    /// projects/P/locations/L/keyRings/R/cryptoKeys/K (default: $SOPS_GCP_KMS_IDS).
    #[arg(long, value_name = "ID1,ID2")]
    gcp_kms: Option<String>,
    /// Azure Key Vault keys, comma-separated:
    /// https://VAULT.vault.azure.net/keys/NAME/VERSION (default: $SOPS_AZURE_KEYVAULT_URLS).
    #[arg(long, value_name = "URL1,URL2")]
    azure_kv: Option<String>,
    /// Vault/OpenBao transit keys as URIs, comma-separated:
    /// https://vault:8200/v1/transit/keys/NAME (default: $SOPS_VAULT_URIS).
    #[arg(long, value_name = "URI1,URI2")]
    hc_vault_transit: Option<String>,
    /// With several key groups (from .sops.yaml), how many must open to decrypt.
    #[arg(long, value_name = "N")]
    shamir_secret_sharing_threshold: Option<usize>,
    /// Encrypt only values under keys matching this regex.
    #[arg(long, value_name = "RE", group = "selection")]
    encrypted_regex: Option<String>,
    /// Leave values under keys matching this regex in clear.
    #[arg(long, value_name = "RE", group = "selection")]
    unencrypted_regex: Option<String>,
    /// Encrypt only values under keys ending with this suffix.
    #[arg(long, value_name = "SUFFIX", group = "selection")]
    encrypted_suffix: Option<String>,
    /// Leave values under keys ending with this suffix in clear (default `_unencrypted`).
    #[arg(long, value_name = "SUFFIX", group = "selection")]
    unencrypted_suffix: Option<String>,
    /// Encrypt only values after a comment matching this regex.
    #[arg(long, value_name = "RE", group = "selection")]
    encrypted_comment_regex: Option<String>,
    /// Leave values after a comment matching this regex in clear.
    #[arg(long, value_name = "RE", group = "selection")]
    unencrypted_comment_regex: Option<String>,
    /// Write the result back to FILE instead of stdout.
    #[arg(short = 'i', long)]
    in_place: bool,
    /// Input format (default: from the extension; unknown extensions are binary).
    #[arg(long, value_parser = FORMATS)]
    input_type: Option<String>,
    /// Output format (default: the input format).
    #[arg(long, value_parser = FORMATS)]
    output_type: Option<String>,
    /// The .sops.yaml to use (default: the nearest one above FILE).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

/// Arguments of decrypt.
#[derive(clap::Args)]
pub struct DecryptArgs {
    /// The encrypted file (`-` reads stdin).
    file: PathBuf,
    /// Write the plaintext back to FILE instead of stdout.
    #[arg(short = 'i', long)]
    in_place: bool,
    /// Print only this part of the tree, as sops writes it: `["a"]["b"][0]`.
    #[arg(long, value_name = "PATH")]
    extract: Option<String>,
    /// Input format (default: from the extension).
    #[arg(long, value_parser = FORMATS)]
    input_type: Option<String>,
    /// Output format (default: the input format).
    #[arg(long, value_parser = FORMATS)]
    output_type: Option<String>,
}

/// Arguments of edit.
#[derive(clap::Args)]
pub struct EditArgs {
    /// The encrypted file.
    file: PathBuf,
    /// The file's format (default: from the extension).
    #[arg(long, value_parser = FORMATS)]
    input_type: Option<String>,
}

/// Arguments of keygen.
#[derive(clap::Args)]
pub struct KeygenArgs {
    /// Write the identity to FILE (created with mode 0600, missing folders with 0700; never
    /// overwritten) instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
}

fn formats(file: &Path, input: Option<&str>, output: Option<&str>) -> (Format, Format) {
    let by_name = |n: Option<&str>| n.and_then(Format::from_name);
    let default = if file == Path::new("-") {
        Format::Yaml
    } else {
        Format::from_path(file)
    };
    let input = by_name(input).unwrap_or(default);
    (input, by_name(output).unwrap_or(input))
}

fn name(file: &Path) -> String {
    if file == Path::new("-") {
        "<stdin>".into()
    } else {
        file.display().to_string()
    }
}

fn read_input(file: &Path) -> miette::Result<Zeroizing<String>> {
    let mut s = Zeroizing::new(String::new());
    if file == Path::new("-") {
        std::io::stdin().read_to_string(&mut s).into_diagnostic()?;
    } else {
        let mut f = std::fs::File::open(file).map_err(|e| {
            miette!(
                help = "check the path",
                "cannot open {}: {e}",
                file.display()
            )
        })?;
        f.read_to_string(&mut s).map_err(|e| {
            miette!(
                help = "sops files are UTF-8 text; pass --input-type binary for other files",
                "cannot read {}: {e}",
                file.display()
            )
        })?;
    }
    Ok(s)
}

fn write_output(file: &Path, in_place: bool, text: &str) -> miette::Result<()> {
    if in_place {
        if file == Path::new("-") {
            return Err(miette!(
                help = "name a file to write in place",
                "--in-place needs a file, not stdin"
            ));
        }
        std::fs::write(file, text).map_err(|e| miette!("cannot write {}: {e}", file.display()))
    } else {
        let mut out = std::io::stdout().lock();
        out.write_all(text.as_bytes())
            .and_then(|_| out.flush())
            .into_diagnostic()
    }
}

fn recipients_from(list: &str) -> Vec<String> {
    list.split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The operator's identities: age keys, and PGP/KMS/transit through `kustodian-stores`, from
/// the process environment.
fn identities() -> Identities {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let config =
        kustodian_stores::Config::from_vars(&cwd, &cwd, kustodian_stores::config::process_vars());
    Identities::load(&kustodian_stores::sops_files::key_sources(&config))
}

/// The master keys of sops's key flags, each falling back to its variable (`SOPS_AGE_RECIPIENTS`,
/// `SOPS_PGP_FP`, `SOPS_KMS_ARN`, `SOPS_GCP_KMS_IDS`, `SOPS_AZURE_KEYVAULT_URLS`,
/// `SOPS_VAULT_URIS`); `None` when none is given.
fn key_flags(
    age: Option<&str>,
    pgp: Option<&str>,
    kms: Option<&str>,
    gcp_kms: Option<&str>,
    azure_kv: Option<&str>,
    vault: Option<&str>,
) -> miette::Result<Option<Vec<MasterKey>>> {
    let pick = |flag: Option<&str>, var: &str| {
        flag.map(str::to_string)
            .or_else(|| std::env::var(var).ok())
            .filter(|s| !s.trim().is_empty())
    };
    let (age, pgp, kms, gcp_kms, azure_kv, vault) = (
        pick(age, "SOPS_AGE_RECIPIENTS"),
        pick(pgp, "SOPS_PGP_FP"),
        pick(kms, "SOPS_KMS_ARN"),
        pick(gcp_kms, "SOPS_GCP_KMS_IDS"),
        pick(azure_kv, "SOPS_AZURE_KEYVAULT_URLS"),
        pick(vault, "SOPS_VAULT_URIS"),
    );
    if [&age, &pgp, &kms, &gcp_kms, &azure_kv, &vault]
        .iter()
        .all(|l| l.is_none())
    {
        return Ok(None);
    }
    let mut keys: Vec<MasterKey> = Vec::new();
    keys.extend(
        age.iter()
            .flat_map(|l| recipients_from(l))
            .map(MasterKey::Age),
    );
    keys.extend(
        pgp.iter()
            .flat_map(|l| recipients_from(l))
            .map(MasterKey::Pgp),
    );
    if let Some(l) = &kms {
        keys.extend(
            kms_keys_from_list(l, &[], None)
                .into_iter()
                .map(MasterKey::Kms),
        );
    }
    keys.extend(gcp_kms.iter().flat_map(|l| gcp_kms_keys_from_list(l)));
    for url in azure_kv.iter().flat_map(|l| recipients_from(l)) {
        keys.push(MasterKey::AzureKv(
            AzureKvKey::from_url(&url).map_err(Report::new)?,
        ));
    }
    for uri in vault.iter().flat_map(|l| recipients_from(l)) {
        keys.push(MasterKey::Vault(
            VaultKey::from_uri(&uri).map_err(Report::new)?,
        ));
    }
    Ok(Some(keys))
}

/// encrypt
pub fn encrypt(a: EncryptArgs) -> miette::Result<ExitCode> {
    let (in_fmt, out_fmt) = formats(&a.file, a.input_type.as_deref(), a.output_type.as_deref());
    let display = name(&a.file);
    let src = read_input(&a.file)?;
    let plain = Plaintext::parse(&src, in_fmt, &display).map_err(Report::new)?;
    if plain.has_sops_key() {
        return Err(Report::new(kustodian_sops::Error::AlreadyEncrypted {
            file: display,
        }));
    }
    let flag_selection = [
        a.encrypted_regex.map(Selection::EncryptedRegex),
        a.unencrypted_regex.map(Selection::UnencryptedRegex),
        a.encrypted_suffix.map(Selection::EncryptedSuffix),
        a.unencrypted_suffix.map(Selection::UnencryptedSuffix),
        a.encrypted_comment_regex
            .map(Selection::EncryptedCommentRegex),
        a.unencrypted_comment_regex
            .map(Selection::UnencryptedCommentRegex),
    ]
    .into_iter()
    .flatten()
    .next();
    let explicit = key_flags(
        a.age.as_deref(),
        a.pgp.as_deref(),
        a.kms.as_deref(),
        a.gcp_kms.as_deref(),
        a.azure_kv.as_deref(),
        a.hc_vault_transit.as_deref(),
    )?;

    // The creation rule: required when no keys were given, advisory otherwise.
    let rule = if a.file == Path::new("-") && a.config.is_none() {
        None
    } else {
        let found = match &a.config {
            Some(cfg) => {
                config::load_creation_rule_from(cfg, &a.file).map(|r| r.map(|r| (cfg.clone(), r)))
            }
            None => config::load_creation_rule(&a.file),
        };
        match found {
            Ok(r) => r.map(|(_, r)| r),
            Err(e) if explicit.is_none() => return Err(Report::new(e)),
            Err(_) => None,
        }
    };
    let mut plan = match (explicit, &rule) {
        (Some(keys), _) => KeyPlan {
            groups: vec![keys],
            shamir_threshold: 0,
        },
        (None, Some(rule)) => rule.keys.clone(),
        (None, None) => KeyPlan::default(),
    };
    if let Some(t) = a.shamir_secret_sharing_threshold {
        plan.shamir_threshold = t;
    }
    let opts = EncryptOptions {
        recipients: Vec::new(),
        selection: flag_selection
            .or_else(|| rule.as_ref().and_then(|r| r.selection.clone()))
            .unwrap_or_default(),
        mac_only_encrypted: rule.as_ref().is_some_and(|r| r.mac_only_encrypted),
        lastmodified: None,
    };
    let out =
        encrypt_for(&plain, &opts, &plan, &identities(), out_fmt, &display).map_err(Report::new)?;
    write_output(&a.file, a.in_place, &out)?;
    Ok(ExitCode::SUCCESS)
}

/// Parses sops's `--extract` syntax: `["key"]['key'][0]`.
fn parse_extract(s: &str) -> miette::Result<Vec<String>> {
    let bad = || {
        miette!(
            help = "write the path as [\"key\"][\"key\"][0]",
            "cannot read --extract path `{s}`"
        )
    };
    let mut out = Vec::new();
    let mut rest = s.trim();
    while !rest.is_empty() {
        rest = rest.strip_prefix('[').ok_or_else(bad)?;
        let (step, after) = match rest.chars().next() {
            Some(q @ ('"' | '\'')) => {
                let body = &rest[1..];
                let end = body.find(q).ok_or_else(bad)?;
                (
                    body[..end].to_string(),
                    body[end + 1..].strip_prefix(']').ok_or_else(bad)?,
                )
            }
            _ => {
                let end = rest.find(']').ok_or_else(bad)?;
                let idx = rest[..end].trim();
                idx.parse::<usize>().map_err(|_| bad())?;
                (idx.to_string(), &rest[end + 1..])
            }
        };
        out.push(step);
        rest = after.trim_start();
    }
    Ok(out)
}

/// decrypt
pub fn decrypt(a: DecryptArgs) -> miette::Result<ExitCode> {
    let (in_fmt, out_fmt) = formats(&a.file, a.input_type.as_deref(), a.output_type.as_deref());
    let display = name(&a.file);
    let src = read_input(&a.file)?;
    let file = EncryptedFile::parse(&src, in_fmt, &display).map_err(Report::new)?;
    let plain = file.decrypt(&identities()).map_err(Report::new)?;
    let text: Zeroizing<String> = match &a.extract {
        None => plain.to_text(out_fmt, &display).map_err(Report::new)?,
        Some(path) => {
            let steps = parse_extract(path)?;
            let v = plain.lookup(&steps).ok_or_else(|| {
                miette!(
                    help = "check the path against the decrypted file",
                    "{display}: nothing at {path}"
                )
            })?;
            match v {
                Value::Str(s) => Zeroizing::new(s.as_str().to_string()),
                Value::Map(_) => {
                    let fmt = if out_fmt == Format::Binary {
                        Format::Yaml
                    } else {
                        out_fmt
                    };
                    Plaintext::from_documents(vec![v.clone()])
                        .to_text(fmt, &display)
                        .map_err(Report::new)?
                }
                Value::Seq(_) => {
                    let json = serde_json::to_string_pretty(&v.to_json()).into_diagnostic()?;
                    Zeroizing::new(json + "\n")
                }
                Value::Null => Zeroizing::new("null\n".to_string()),
                other => Zeroizing::new(format!(
                    "{}\n",
                    other.to_text().as_deref().map_or("", |s| s.as_str())
                )),
            }
        }
    };
    write_output(&a.file, a.in_place, &text)?;
    Ok(ExitCode::SUCCESS)
}

/// A private temporary directory (mode 0700) removed on drop, with its files overwritten.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> miette::Result<TempDir> {
        use std::os::unix::fs::DirBuilderExt;
        let base = std::env::temp_dir();
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        for i in 0..100u32 {
            let p = base.join(format!(
                "kustodian-edit-{}-{seed:x}-{i}",
                std::process::id()
            ));
            match std::fs::DirBuilder::new().mode(0o700).create(&p) {
                Ok(()) => return Ok(TempDir(p)),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(miette!(
                        help = "set TMPDIR to a writable directory",
                        "cannot create a temporary directory: {e}"
                    ))
                }
            }
        }
        Err(miette!(
            "cannot create a temporary directory in {}",
            base.display()
        ))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        wipe(&self.0);
    }
}

/// Overwrites the files in `dir` with zeros, then removes it.
fn wipe(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if let Ok(len) = e.metadata().map(|m| m.len()) {
                let _ = std::fs::write(e.path(), vec![0u8; len as usize]);
            }
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// While alive, SIGINT, SIGTERM and SIGHUP wipe the temporary folder and end the process
/// (exit status 128 + the signal), so an interrupted `edit` leaves no plaintext behind.
struct WipeOnSignal {
    handle: signal_hook::iterator::Handle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl WipeOnSignal {
    fn new(dir: PathBuf) -> miette::Result<WipeOnSignal> {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
            .map_err(|e| miette!("cannot install the signal handlers: {e}"))?;
        let handle = signals.handle();
        let thread = std::thread::spawn(move || {
            if let Some(sig) = signals.forever().next() {
                wipe(&dir);
                std::process::exit(128 + sig);
            }
        });
        Ok(WipeOnSignal {
            handle,
            thread: Some(thread),
        })
    }
}

impl Drop for WipeOnSignal {
    fn drop(&mut self) {
        self.handle.close();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

fn run_editor(path: &Path) -> miette::Result<()> {
    let editor = ["SOPS_EDITOR", "EDITOR"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()))
        .unwrap_or_else(|| "vi".into());
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("kustodian-edit")
        .arg(path)
        .status()
        .map_err(|e| {
            miette!(
                help = "set EDITOR to your editor",
                "cannot run the editor `{editor}`: {e}"
            )
        })?;
    if !status.success() {
        return Err(miette!(
            help = "the file was left unchanged",
            "the editor `{editor}` failed ({status})"
        ));
    }
    Ok(())
}

/// edit
pub fn edit(a: EditArgs) -> miette::Result<ExitCode> {
    let (fmt, _) = formats(&a.file, a.input_type.as_deref(), None);
    let display = name(&a.file);
    if !a.file.is_file() {
        return Err(miette!(
            help = "create it as plaintext and run `kustodian encrypt --in-place` on it",
            "{display} does not exist"
        ));
    }
    let src = read_input(&a.file)?;
    let file = EncryptedFile::parse(&src, fmt, &display).map_err(Report::new)?;
    if file.metadata().mac.is_none() {
        return Err(Report::new(kustodian_sops::Error::MissingMac {
            file: display,
        }));
    }
    let key = file.data_key(&identities()).map_err(Report::new)?;
    let plain = file.decrypt_with_key(&key).map_err(Report::new)?;
    let before = plain.to_text(fmt, &display).map_err(Report::new)?;

    let dir = TempDir::new()?;
    let on_signal = WipeOnSignal::new(dir.0.clone())?;
    let base = a
        .file
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "file".into());
    let tmp = dir.0.join(base);
    write_private(&tmp, &before).map_err(|e| miette!("cannot write the temporary file: {e}"))?;
    run_editor(&tmp)?;
    let after = Zeroizing::new(
        std::fs::read_to_string(&tmp)
            .map_err(|e| miette!("cannot read back the temporary file: {e}"))?,
    );
    // From here on the signals are ignored (signal-hook does not restore the default action):
    // the rest is short, and an interrupted write would truncate the encrypted file.
    drop(on_signal);
    drop(dir);
    if *after == *before {
        eprintln!("{display}: no changes; the file is left as it was");
        return Ok(ExitCode::SUCCESS);
    }
    let edited = Plaintext::parse(&after, fmt, &display).map_err(|e| {
        Report::new(e).wrap_err(
            "the edited text is not valid; nothing was written (run `kustodian edit` again)",
        )
    })?;
    let out = file.reencrypt(&key, &edited, fmt).map_err(Report::new)?;
    write_output(&a.file, true, &out)?;
    Ok(ExitCode::SUCCESS)
}

/// keygen
pub fn keygen(a: KeygenArgs) -> miette::Result<ExitCode> {
    let (public, text) = generate_identity_file();
    match &a.output {
        Some(path) => {
            use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
            // Missing folders are created private (0700), as for ~/.config/sops/age/.
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(parent)
                    .map_err(|e| miette!("cannot create the folder {}: {e}", parent.display()))?;
            }
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| {
                    if e.kind() == std::io::ErrorKind::AlreadyExists {
                        miette!(
                            help = "choose another path, or remove the old key if you are sure",
                            "{} already exists; refusing to overwrite a key",
                            path.display()
                        )
                    } else {
                        miette!("cannot create {}: {e}", path.display())
                    }
                })?;
            f.write_all(text.as_bytes()).into_diagnostic()?;
        }
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())
                .and_then(|_| out.flush())
                .into_diagnostic()?;
        }
    }
    eprintln!("Public key: {public}");
    Ok(ExitCode::SUCCESS)
}

/// Arguments of updatekeys.
#[derive(clap::Args)]
pub struct UpdatekeysArgs {
    /// The SOPS files to bring in line with their `.sops.yaml` creation rule.
    #[arg(required_unless_present = "all")]
    files: Vec<PathBuf>,
    /// Every SOPS file under DIR (default `.`) whose rule's keys changed.
    #[arg(long, value_name = "DIR", num_args = 0..=1, default_missing_value = ".")]
    all: Option<PathBuf>,
    /// Do not ask before writing.
    #[arg(short, long)]
    yes: bool,
    /// The .sops.yaml to use (default: the nearest one above each file).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// The files' format (default: from the extension).
    #[arg(long, value_parser = FORMATS)]
    input_type: Option<String>,
}

/// Arguments of rotate.
#[derive(clap::Args)]
pub struct RotateArgs {
    /// The SOPS files to give a new data key.
    #[arg(required_unless_present = "all")]
    files: Vec<PathBuf>,
    /// Every SOPS file under DIR (default `.`); needs --in-place.
    #[arg(long, value_name = "DIR", num_args = 0..=1, default_missing_value = ".")]
    all: Option<PathBuf>,
    /// Write the result back to each file instead of stdout.
    #[arg(short = 'i', long)]
    in_place: bool,
    /// Age recipients to add (comma-separated).
    #[arg(long, value_name = "R1,R2")]
    add_age: Option<String>,
    /// Age recipients to remove.
    #[arg(long, value_name = "R1,R2")]
    rm_age: Option<String>,
    /// PGP fingerprints to add.
    #[arg(long, value_name = "FP1,FP2")]
    add_pgp: Option<String>,
    /// PGP fingerprints to remove.
    #[arg(long, value_name = "FP1,FP2")]
    rm_pgp: Option<String>,
    /// AWS KMS ARNs to add.
    #[arg(long, value_name = "ARN1,ARN2")]
    add_kms: Option<String>,
    /// AWS KMS ARNs to remove.
    #[arg(long, value_name = "ARN1,ARN2")]
    rm_kms: Option<String>,
    /// Google Cloud KMS resource ids to add.
    #[arg(long, value_name = "ID1,ID2")]
    add_gcp_kms: Option<String>,
    /// Google Cloud KMS resource ids to remove.
    #[arg(long, value_name = "ID1,ID2")]
    rm_gcp_kms: Option<String>,
    /// Azure Key Vault key URLs to add.
    #[arg(long, value_name = "URL1,URL2")]
    add_azure_kv: Option<String>,
    /// Azure Key Vault key URLs to remove.
    #[arg(long, value_name = "URL1,URL2")]
    rm_azure_kv: Option<String>,
    /// Vault transit URIs to add.
    #[arg(long, value_name = "URI1,URI2")]
    add_hc_vault_transit: Option<String>,
    /// Vault transit URIs to remove.
    #[arg(long, value_name = "URI1,URI2")]
    rm_hc_vault_transit: Option<String>,
    /// The files' format (default: from the extension).
    #[arg(long, value_parser = FORMATS)]
    input_type: Option<String>,
}

/// Writes `text` to `file` atomically: a private temporary file beside it (with the file's
/// permissions), then a rename.
fn write_atomic(file: &Path, text: &str) -> miette::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let base = file
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{base}.kustodian-{}", std::process::id()));
    let mode = std::fs::metadata(file)
        .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()))
        .unwrap_or(0o644);
    let result = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode & 0o777)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(text.as_bytes())?;
            f.sync_all()
        })
        .and_then(|_| std::fs::rename(&tmp, file));
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(miette!("cannot write {}: {e}", file.display()));
    }
    Ok(())
}

/// `+pgp FP, -age R` between two key sets.
fn describe_change(old: &KeyPlan, new: &KeyPlan) -> String {
    let all = |p: &KeyPlan| p.groups.iter().flatten().cloned().collect::<Vec<_>>();
    let (o, n) = (all(old), all(new));
    let mut out: Vec<String> = n
        .iter()
        .filter(|k| !o.iter().any(|x| x.same(k)))
        .map(|k| format!("+{k}"))
        .collect();
    out.extend(
        o.iter()
            .filter(|k| !n.iter().any(|x| x.same(k)))
            .map(|k| format!("-{k}")),
    );
    if old.groups.len() != new.groups.len() || old.shamir_threshold != new.shamir_threshold {
        out.push(format!(
            "key groups {} (threshold {}) -> {} (threshold {})",
            old.groups.len(),
            old.shamir_threshold,
            new.groups.len(),
            new.shamir_threshold
        ));
    }
    if out.is_empty() {
        "the same keys, regrouped".into()
    } else {
        out.join(", ")
    }
}

fn confirm(question: &str) -> bool {
    eprint!("{question} [y/N] ");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).is_ok()
        && matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

/// Every file under `dir` (hidden folders and `.git` skipped) that parses as a SOPS file.
fn sops_files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        let mut entries: Vec<_> = entries.flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            let name = e.file_name().to_string_lossy().to_string();
            let Ok(ft) = e.file_type() else { continue };
            if ft.is_dir() && !name.starts_with('.') {
                stack.push(p);
            } else if ft.is_file() && name != ".sops.yaml" {
                let fmt = Format::from_path(&p);
                if fmt == Format::Binary {
                    continue;
                }
                let Ok(text) = kustodian_manifest::read::read_to_string_bounded(
                    &p,
                    kustodian_manifest::read::MANIFEST_LIMIT,
                ) else {
                    continue;
                };
                if text.contains("sops") && EncryptedFile::parse(&text, fmt, "").is_ok() {
                    out.push(p);
                }
            }
        }
    }
    out.sort();
    out
}

/// What happened to one file.
enum Outcome {
    Updated(String),
    Unchanged,
    Skipped,
}

/// Re-wraps one file for `plan` (and with a new data key when `rotate`); writes it with
/// `write` when the keys change (or always, when rotating).
fn rekey_one(
    file: &Path,
    fmt_name: Option<&str>,
    ids: &Identities,
    rotate: bool,
    plan_for: &dyn Fn(&EncryptedFile) -> miette::Result<KeyPlan>,
    ask: bool,
    write: &dyn Fn(&Path, &str) -> miette::Result<()>,
) -> miette::Result<Outcome> {
    let (fmt, _) = formats(file, fmt_name, None);
    let display = name(file);
    let src = read_input(file)?;
    let parsed = EncryptedFile::parse(&src, fmt, &display).map_err(Report::new)?;
    let old = KeyPlan::of(parsed.metadata());
    let plan = plan_for(&parsed)?;
    let changed = !old.same_keys(&plan);
    if !changed && !rotate {
        return Ok(Outcome::Unchanged);
    }
    let change = if changed {
        describe_change(&old, &plan)
    } else {
        "new data key".into()
    };
    if ask && !confirm(&format!("{display}: {change}. Write?")) {
        return Ok(Outcome::Skipped);
    }
    let key = parsed.data_key(ids).map_err(Report::new)?;
    let out = parsed
        .rekey(&key, &plan, ids, rotate, fmt)
        .map_err(Report::new)?;
    write(file, &out)?;
    Ok(Outcome::Updated(change))
}

/// Runs `one` over `files`, reporting each on stderr; exit 2 when any could not be opened.
fn over_files(
    files: &[PathBuf],
    (verb, done): (&str, &str),
    one: &dyn Fn(&Path) -> miette::Result<Outcome>,
) -> miette::Result<ExitCode> {
    let mut failed = 0;
    for f in files {
        match one(f) {
            Ok(Outcome::Updated(what)) => eprintln!("{}: {done}: {what}", f.display()),
            Ok(Outcome::Unchanged) => eprintln!("{}: already up to date", f.display()),
            Ok(Outcome::Skipped) => eprintln!("{}: left as it was", f.display()),
            Err(e) => {
                failed += 1;
                eprintln!("{}: could not {verb}: {e:?}", f.display());
            }
        }
    }
    if failed > 0 {
        eprintln!("{failed} of {} files could not be changed", files.len());
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}

/// updatekeys
pub fn updatekeys(a: UpdatekeysArgs) -> miette::Result<ExitCode> {
    let mut files = a.files.clone();
    if let Some(dir) = &a.all {
        files.extend(sops_files_under(dir));
    }
    let ids = identities();
    let ask = !a.yes;
    let plan_for = |f: &EncryptedFile| -> miette::Result<KeyPlan> {
        let path = Path::new(f.name());
        let found = match &a.config {
            Some(cfg) => config::load_creation_rule_from(cfg, path),
            None => config::load_creation_rule(path).map(|r| r.map(|(_, r)| r)),
        };
        match found.map_err(Report::new)? {
            Some(rule) => Ok(rule.keys),
            None => Err(miette!(
                help = "add a creation rule for it to .sops.yaml",
                "no .sops.yaml creation rule for {}",
                f.name()
            )),
        }
    };
    let write = |f: &Path, t: &str| write_atomic(f, t);
    over_files(&files, ("update the keys of", "keys updated"), &|f| {
        rekey_one(
            f,
            a.input_type.as_deref(),
            &ids,
            false,
            &plan_for,
            ask,
            &write,
        )
    })
}

/// rotate
pub fn rotate(a: RotateArgs) -> miette::Result<ExitCode> {
    let add = key_flags(
        a.add_age.as_deref().or(Some("")),
        a.add_pgp.as_deref().or(Some("")),
        a.add_kms.as_deref().or(Some("")),
        a.add_gcp_kms.as_deref().or(Some("")),
        a.add_azure_kv.as_deref().or(Some("")),
        a.add_hc_vault_transit.as_deref().or(Some("")),
    )?
    .unwrap_or_default();
    let rm = key_flags(
        a.rm_age.as_deref().or(Some("")),
        a.rm_pgp.as_deref().or(Some("")),
        a.rm_kms.as_deref().or(Some("")),
        a.rm_gcp_kms.as_deref().or(Some("")),
        a.rm_azure_kv.as_deref().or(Some("")),
        a.rm_hc_vault_transit.as_deref().or(Some("")),
    )?
    .unwrap_or_default();
    let mut files = a.files.clone();
    if let Some(dir) = &a.all {
        files.extend(sops_files_under(dir));
    }
    if !a.in_place && (files.len() > 1 || a.all.is_some()) {
        return Err(miette!(
            help = "add --in-place to rotate several files",
            "rotate prints one file to stdout; several files need --in-place"
        ));
    }
    let ids = identities();
    let plan_for = |f: &EncryptedFile| -> miette::Result<KeyPlan> {
        let mut plan = KeyPlan::of(f.metadata());
        for g in plan.groups.iter_mut() {
            g.retain(|k| !rm.iter().any(|r| r.same(k)));
        }
        if let Some(first) = plan.groups.first_mut() {
            for k in &add {
                if !first.iter().any(|x| x.same(k)) {
                    first.push(k.clone());
                }
            }
        }
        if plan.is_empty() {
            return Err(miette!(
                help = "keep at least one key, or add one with --add-age/--add-pgp/...",
                "{}: removing these keys would leave no master key",
                f.name()
            ));
        }
        Ok(plan)
    };
    let in_place = a.in_place;
    let write = move |f: &Path, t: &str| {
        if in_place {
            write_atomic(f, t)
        } else {
            write_output(f, false, t)
        }
    };
    over_files(&files, ("rotate", "rotated"), &|f| {
        rekey_one(
            f,
            a.input_type.as_deref(),
            &ids,
            true,
            &plan_for,
            false,
            &write,
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extract_paths() {
        assert_eq!(
            parse_extract(r#"["a"]['b'][0]"#).unwrap(),
            vec!["a", "b", "0"]
        );
        assert!(parse_extract(r#"["a"#).is_err());
        assert!(parse_extract("[x]").is_err());
    }
}
