//! The commit-time scanner of kustodian: finds Kubernetes Secret data that would reach Git in
//! plain text (or only base64-encoded).
//!
//! What it judges, per value, at the key's line and column:
//! - `data`/`stringData` of `kind: Secret` (YAML, JSON, multi-document files, `List` items,
//!   whole Secret objects nested anywhere), read as YAML or, for Helm templates and broken
//!   YAML, line by line;
//! - every value of a SOPS-encrypted document (a value its rules encrypt must be `ENC[...]`;
//!   Secret data must be encrypted whatever the rules say);
//! - kustomize `secretGenerator` `literals`, and the `envs`/`files` they read from the
//!   repository.
//!
//! It never fails open: a file that may hold a Secret and cannot be read in full (bad YAML, a
//! document too deep or alias-heavy, a NUL byte, not UTF-8, over 8 MiB) is an
//! `unreadable-manifest` finding, with every document it could read judged as usual; escapes
//! are decoded before judging (`kind: "\u0053ecret"`), and every reading of a repeated key is
//! judged (`duplicate-key`). At most [`MAX_FINDINGS_PER_FILE`] findings are listed per file,
//! then one that counts the rest.
//!
//! References (`<path:...#key>`, `ref+...`, also inside base64), SOPS values, template
//! expressions, empty values, lines marked `# kustodian:allow` and objects annotated
//! `kustodian.io/allow` are let through. Severity comes from what the (decoded) value looks
//! like ([`Severity`]); every rule is in one table ([`RULES`]).
//!
//! Layout: [`Scanner`] is the pure core (bytes and a path in, findings out, no I/O); [`source`]
//! reads the working tree, the git index or the commits of a range; [`report`] prints.
//! [`Finding`]s never hold value text, and nothing this crate prints does either.
//!
//! It does not decrypt SOPS files or resolve references. A [`Policy`] (`.kustodian.yaml`, see
//! `docs/policy.md`) turns rules off, allowlists findings, adds safe values and custom rules,
//! sets the blocking severity and can scan every YAML value for keys and tokens.
//!
//! ```
//! use kustodian_scan::{Rule, Scanner, Severity};
//!
//! let src = b"apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData:\n  url: <path:kv/data/db#url>\n  token: ghp_0123456789abcdefghijklmnopqrstuvwxyz\n";
//! let found = Scanner::new().scan_file("db.yaml", src).findings;
//! assert_eq!(found.len(), 1);
//! assert_eq!((found[0].location.line, found[0].rule, found[0].severity), (6, Rule::PlaintextSecretData, Severity::Critical));
//! assert!(!found[0].message.contains("ghp_"));
//! ```

#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod baseline;
mod credentials;
mod engine;
mod finding;
mod generator;
mod manifest;
mod policy;
pub mod report;
mod rules;
mod sops;
pub mod source;
mod template;
mod value;

pub use engine::{
    FileScan, FollowKind, FollowRequest, Scanner, ALLOW_ANNOTATION, ALLOW_MARKER, MAX_FILE_SIZE,
    MAX_FINDINGS_PER_FILE,
};
pub use finding::{fingerprint, Excerpt, Finding, Location, Note, Related, Severity};
pub use policy::{Allow, CustomRule, Policy, PolicyError, POLICY_FILE};
pub use rules::{finding_help, Rule, RuleInfo, StoreHint, UnknownRule, RULES};
pub use source::{scan, Commits, ScanResult, Source, SourceError};
