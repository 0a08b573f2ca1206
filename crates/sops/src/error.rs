//! What can go wrong, and what to do about it. No message ever holds a secret value, a key or
//! a plaintext: only file names, key paths, recipients and locations.

/// Every error of this crate.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[non_exhaustive]
pub enum Error {
    /// The file is not valid YAML or JSON.
    #[error("{file}: cannot be read as {format}: {message} (line {line}, column {column})")]
    #[diagnostic(
        code(sops::parse),
        help("fix the syntax, or pass --input-type if the file is in another format")
    )]
    Parse {
        /// The file's display name.
        file: String,
        /// `YAML` or `JSON`.
        format: &'static str,
        /// The parser's message (never file content).
        message: String,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
    },

    /// The file's structure is not one sops can hold.
    #[error("{file}: {what}")]
    #[diagnostic(
        code(sops::unsupported_shape),
        help("sops files are mappings at the top level with string keys")
    )]
    Shape {
        /// The file's display name.
        file: String,
        /// What is wrong.
        what: String,
    },

    /// Asked to decrypt a file that has no `sops` metadata.
    #[error("{file}: not a SOPS file (no `sops` metadata block)")]
    #[diagnostic(
        code(sops::not_encrypted),
        help("encrypt it first with `kustodian encrypt`")
    )]
    NotEncrypted {
        /// The file's display name.
        file: String,
    },

    /// Asked to encrypt a file that already has `sops` metadata.
    #[error("{file}: already encrypted (it has a `sops` metadata block)")]
    #[diagnostic(
        code(sops::already_encrypted),
        help("use `kustodian edit` to change it, or decrypt it first")
    )]
    AlreadyEncrypted {
        /// The file's display name.
        file: String,
    },

    /// The `sops` metadata block is malformed.
    #[error("{file}: bad `sops` metadata: {what}")]
    #[diagnostic(
        code(sops::metadata),
        help(
            "restore the file from version control; the metadata is written by sops or kustodian"
        )
    )]
    Metadata {
        /// The file's display name.
        file: String,
        /// What is wrong.
        what: String,
    },

    /// The file uses a sops feature this crate does not implement.
    #[error("{file}: {what} is not supported")]
    #[diagnostic(
        code(sops::unsupported),
        help("use the real sops binary for this file")
    )]
    Unsupported {
        /// The file's display name.
        file: String,
        /// The feature.
        what: String,
    },

    /// The file has no `mac`.
    #[error("{file}: has no MAC, so its integrity cannot be checked; refusing to decrypt")]
    #[diagnostic(
        code(sops::missing_mac),
        help("the file was truncated or tampered with; restore it from version control")
    )]
    MissingMac {
        /// The file's display name.
        file: String,
    },

    /// The MAC does not match the values.
    #[error(
        "{file}: MAC mismatch: the values or their order changed since the file was encrypted"
    )]
    #[diagnostic(
        code(sops::mac_mismatch),
        help("the file was edited without sops or tampered with; restore it from version control")
    )]
    MacMismatch {
        /// The file's display name.
        file: String,
    },

    /// A value failed authentication (wrong data key, changed ciphertext, or moved to another key path).
    #[error("{file}: the value at `{path}` could not be decrypted (authentication failed)")]
    #[diagnostic(
        code(sops::tampered),
        help("the value was changed or moved by hand; restore the file from version control")
    )]
    Tampered {
        /// The file's display name.
        file: String,
        /// The key path, joined with `:` as sops does.
        path: String,
    },

    /// A value that should be encrypted is not in the `ENC[...]` form.
    #[error("{file}: the value at `{path}` should be encrypted but is not a well-formed ENC[AES256_GCM,...] value")]
    #[diagnostic(
        code(sops::malformed_value),
        help("values in an encrypted file must be changed with `kustodian edit`, not by hand")
    )]
    MalformedValue {
        /// The file's display name.
        file: String,
        /// The key path.
        path: String,
    },

    /// No identity decrypts the data key.
    #[error("{file}: no age identity matches the file's recipients {recipients:?} (looked in: {looked})")]
    #[diagnostic(code(sops::no_identity), help("put the matching AGE-SECRET-KEY in SOPS_AGE_KEY, a file named by SOPS_AGE_KEY_FILE, or $XDG_CONFIG_HOME/sops/age/keys.txt"))]
    NoIdentity {
        /// The file's display name.
        file: String,
        /// The age recipients the file was encrypted to.
        recipients: Vec<String>,
        /// Where identities were looked for, and what was found there.
        looked: String,
    },

    /// The file has no age recipients (only PGP, KMS, ...).
    #[error("{file}: has no age recipients (its data key is wrapped with {others})")]
    #[diagnostic(
        code(sops::no_age),
        help(
            "only age recipients are supported; add an age recipient with sops (`sops updatekeys`)"
        )
    )]
    NoAgeRecipients {
        /// The file's display name.
        file: String,
        /// The other key types present.
        others: String,
    },

    /// An identity source holds something that is not an age identity.
    #[error("{location}: line {line} is not an age identity (AGE-SECRET-KEY-1...)")]
    #[diagnostic(
        code(sops::bad_identity),
        help("identity files hold one AGE-SECRET-KEY-1... per line; `#` starts a comment")
    )]
    BadIdentity {
        /// The environment variable or file.
        location: String,
        /// 1-based line.
        line: usize,
    },

    /// An identity file could not be read.
    #[error("{location}: cannot read identity file {path}: {source}")]
    #[diagnostic(code(sops::identity_file), help("check the path and its permissions"))]
    IdentityFile {
        /// Where the path came from.
        location: String,
        /// The path.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },

    /// A recipient string is not an age X25519 recipient.
    #[error("`{recipient}` is not an age recipient")]
    #[diagnostic(
        code(sops::bad_recipient),
        help(
            "age recipients look like age1... (run `kustodian keygen` or `age-keygen` to make one)"
        )
    )]
    BadRecipient {
        /// The offending recipient (public, not secret).
        recipient: String,
    },

    /// Nothing to encrypt to.
    #[error("no master keys given")]
    #[diagnostic(code(sops::no_recipients), help("pass --age age1... (or --pgp, --kms, --hc-vault-transit), set SOPS_AGE_RECIPIENTS, or add a creation rule to .sops.yaml"))]
    NoRecipients,

    /// A regex option does not compile.
    #[error("{option} `{regex}` is not a valid regular expression: {message}")]
    #[diagnostic(
        code(sops::bad_regex),
        help("sops uses RE2 syntax (no look-around or back-references)")
    )]
    BadRegex {
        /// The option's name.
        option: &'static str,
        /// The expression.
        regex: String,
        /// Why it failed.
        message: String,
    },

    /// More than one of the encrypted/unencrypted selection options.
    #[error("cannot use more than one of encrypted_suffix, unencrypted_suffix, encrypted_regex, unencrypted_regex, encrypted_comment_regex, unencrypted_comment_regex")]
    #[diagnostic(code(sops::conflicting_rules), help("keep one selection option"))]
    ConflictingRules,

    /// `.sops.yaml` is malformed.
    #[error("{path}: {what}")]
    #[diagnostic(
        code(sops::config),
        help("`.sops.yaml` holds `creation_rules:`, a list of rules with `path_regex` and the keys (`age`, `pgp`, `kms`, `hc_vault_transit_uri`, or `key_groups`), as sops reads it")
    )]
    Config {
        /// The config file.
        path: String,
        /// What is wrong.
        what: String,
    },

    /// No creation rule matches the file.
    #[error("{config}: no creation rule matches {file}")]
    #[diagnostic(
        code(sops::no_rule),
        help("add a rule whose path_regex matches the file, or pass --age")
    )]
    NoCreationRule {
        /// The config file.
        config: String,
        /// The file being encrypted.
        file: String,
    },

    /// The matching creation rule names no master keys.
    #[error("{config}: the creation rule for {file} names no master keys (age, pgp, kms, hc_vault_transit_uri or key_groups)")]
    #[diagnostic(
        code(sops::only_age),
        help("add `age: age1...` (or pgp, kms, hc_vault_transit_uri) to the rule, or pass --age/--pgp/--kms/--hc-vault-transit")
    )]
    OnlyAge {
        /// The config file.
        config: String,
        /// The file being encrypted.
        file: String,
    },

    /// No master key (or too few key groups) could unwrap the data key.
    #[error("{file}: cannot decrypt the data key: {needed}\n{report}")]
    #[diagnostic(
        code(sops::no_master_key),
        help("give kustodian an identity for one key of each group listed: an age key (SOPS_AGE_KEY, SOPS_AGE_KEY_FILE), the PGP secret key in the gpg keyring (GNUPGHOME), AWS credentials allowed kms:Decrypt, or a Vault token allowed transit decrypt (VAULT_ADDR, VAULT_TOKEN)")
    )]
    DataKey {
        /// The file's display name.
        file: String,
        /// What was needed (`one key` or `2 of 3 key groups`).
        needed: String,
        /// For each group and master key, why it could not be used.
        report: String,
    },

    /// A master key given on the command line or in `.sops.yaml` cannot be read.
    #[error("`{key}`: {what}")]
    #[diagnostic(
        code(sops::bad_master_key),
        help("age keys start with age1, PGP keys are 40-hex-digit fingerprints, KMS keys are ARNs (arn:aws:kms:REGION:ACCOUNT:key/ID), transit keys are URLs ending in /v1/MOUNT/keys/NAME")
    )]
    BadMasterKey {
        /// The key as given.
        key: String,
        /// What is wrong.
        what: String,
    },

    /// The data key could not be wrapped for a master key.
    #[error("cannot encrypt the data key for {key}: {why}")]
    #[diagnostic(
        code(sops::wrap),
        help("check that the key exists and that your identity may encrypt with it; nothing was written")
    )]
    Wrap {
        /// The master key (`pgp FPR`, `kms ARN`, `hc_vault URI`).
        key: String,
        /// Why.
        why: String,
    },

    /// A Shamir threshold that the key groups cannot meet.
    #[error("shamir_threshold {threshold} does not fit {groups} key groups")]
    #[diagnostic(
        code(sops::bad_threshold),
        help("use a threshold from 2 to the number of key groups, or a single key group")
    )]
    BadThreshold {
        /// The threshold asked for.
        threshold: usize,
        /// How many groups there are.
        groups: usize,
    },

    /// The operating system's random number generator or age failed.
    #[error("encryption failed: {0}")]
    #[diagnostic(code(sops::crypto), help("this does not come from the file; check that the system's random number generator works, then report it"))]
    Crypto(String),
}

/// The result of this crate's operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;
