//! The one table of rules. Every reporter (human, JSON, and later SARIF and GitHub annotations),
//! the docs page `docs/rules.md` and policies name rules by the stable kebab-case [`Rule::code`]
//! and take their description and help from here.

use std::fmt;
use std::str::FromStr;

use crate::finding::Finding;

/// What a finding is about. The code of each rule is stable: baselines, policies and CI
/// annotations refer to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Rule {
    /// A `kind: Secret` holds a plaintext (or only base64-encoded) value in `data` or `stringData`.
    PlaintextSecretData,
    /// A kustomize `secretGenerator` has a plaintext value in `literals`.
    GeneratorLiteral,
    /// A kustomize `secretGenerator` reads plaintext from a file in the repository (`envs`/`files`).
    GeneratorFile,
    /// A value stayed plaintext inside a SOPS-encrypted document.
    SopsPlaintextValue,
    /// A SOPS `ENC[...]` value in a document without `sops` metadata (nothing can decrypt it).
    SopsValueWithoutMetadata,
    /// A private key or cloud token outside Secret data (policy `scan_everywhere`).
    TokenOutsideSecret,
    /// A SOPS file whose selection rules encrypt none of the values it holds.
    SopsEncryptsNothing,
    /// A SOPS file whose master keys differ from its `.sops.yaml` creation rule.
    SopsRecipientDrift,
    /// A value matched a custom rule of the policy.
    CustomRule,
    /// A file that may hold a Secret could not be read in full (bad YAML, too deep, an alias
    /// bomb, not UTF-8, too large): what was not read was not judged.
    UnreadableManifest,
    /// A mapping repeats a key in or around a Secret; tools disagree on which one wins.
    DuplicateKey,
    /// A known credential format (cloud key, VCS or chat token, Vault token, age key, private
    /// key, JWT, URL password, htpasswd line) in any text file, outside Secret data.
    KnownCredential,
    /// A literal that looks like a credential under a credential key name outside a Secret.
    CredentialValue,
    /// A blob of the scanned commits or index could not be read (a partial or damaged clone).
    UnreadableBlob,
}

/// One row of the rule table.
#[derive(Clone, Copy, Debug)]
pub struct RuleInfo {
    /// The rule.
    pub rule: Rule,
    /// Stable kebab-case code.
    pub code: &'static str,
    /// One line: what the rule finds.
    pub summary: &'static str,
    /// A paragraph: why it matters.
    pub description: &'static str,
    /// How to fix a finding of this rule.
    pub help: &'static str,
}

/// Every rule, in the order of `docs/rules.md`.
pub const RULES: &[RuleInfo] = &[
    RuleInfo {
        rule: Rule::PlaintextSecretData,
        code: "plaintext-secret-data",
        summary: "A Kubernetes Secret holds a plaintext value in `data` or `stringData`",
        description: "Values under `data` are only base64-encoded and values under `stringData` are \
                      plain text: anyone who can read the repository, its forks or its history can \
                      read them. A value is safe when it is a reference (`<path:...#key>`, \
                      `ref+...`), a SOPS `ENC[...]` value in a SOPS-encrypted document, or a \
                      template expression (`{{ ... }}`).",
        help: "encrypt the Secret's values and keep apiVersion, kind and metadata readable with \
               `kustodian encrypt --in-place --encrypted-regex '^(data|stringData)$' FILE`, or \
               replace the value with a reference that kustodian render resolves, such as \
               `<path:secrets.enc.yaml#key>` (a key of a SOPS file in the repository) or \
               `<path:secret/data/app#key>` (Vault/OpenBao); if this is not a secret, mark the \
               line `# kustodian:allow`",
    },
    RuleInfo {
        rule: Rule::GeneratorLiteral,
        code: "generator-literal",
        summary: "A kustomize secretGenerator has a plaintext value in `literals`",
        description: "`secretGenerator` literals end up in a Secret, and the literal itself is \
                      committed in the kustomization file.",
        help: "make the literal a reference (`KEY=<path:secret/data/app#key>`) and render with \
               kustodian, or generate the Secret with kustodian's SecretGenerator from a SOPS \
               file; if this is not a secret, mark the line `# kustodian:allow`",
    },
    RuleInfo {
        rule: Rule::GeneratorFile,
        code: "generator-file",
        summary: "A kustomize secretGenerator reads plaintext from a file in the repository",
        description: "`secretGenerator` `envs` and `files` entries that point at files inside the \
                      repository put those files' contents into a Secret, so the files themselves \
                      hold the secret in plain text.",
        help: "keep the file out of Git (add it to .gitignore) and provide it at build time, put \
               references in it instead of values, or encrypt it with `kustodian encrypt \
               --in-place` (or sops); if this is not a secret, mark the line `# kustodian:allow`",
    },
    RuleInfo {
        rule: Rule::SopsPlaintextValue,
        code: "sops-plaintext-value",
        summary: "A value stayed plaintext inside a SOPS-encrypted document",
        description: "SOPS encrypts values, not files: a key added after the file was encrypted, \
                      or a value the document's `unencrypted_suffix`/`unencrypted_regex`/\
                      `encrypted_regex` rules leave clear, is stored in plain text next to the \
                      encrypted ones. Values under `data`/`stringData` of a Secret are always \
                      judged, whatever those rules say.",
        help: "open the file with `kustodian edit` (or `sops edit`) and save it so the value is \
               encrypted, or re-encrypt it with `kustodian encrypt --in-place`; if the value must \
               stay clear and is not a secret, mark the line `# kustodian:allow`",
    },
    RuleInfo {
        rule: Rule::SopsValueWithoutMetadata,
        code: "sops-value-without-metadata",
        summary: "A SOPS `ENC[...]` value in a Secret whose document has no `sops` metadata",
        description: "The value looks SOPS-encrypted, but the document carries no `sops` block, so \
                      nothing can decrypt it: it was probably copied out of an encrypted file, and \
                      the Secret would hold the ciphertext text.",
        help: "keep encrypted values in the SOPS file they belong to and reference them \
               (`ref+sops://file.yaml#/key`), or encrypt the whole document with `kustodian encrypt`",
    },
    RuleInfo {
        rule: Rule::TokenOutsideSecret,
        code: "token-outside-secret",
        summary: "A private key or cloud token sits in YAML outside a Secret's data",
        description: "Only with `scan_everywhere: true` in the policy (as in kustodian's strict policy): \
                      private keys and cloud or VCS tokens in any YAML value, such as a \
                      ConfigMap, Helm values or an Argo CD Application, are as readable as a \
                      plaintext Secret.",
        help: "move the value into a Secret that holds a reference (`<path:secret/data/app#key>`) \
               or is encrypted with `kustodian encrypt --in-place`, and point the object at it; \
               if this is not a secret, mark the line `# kustodian:allow`",
    },
    RuleInfo {
        rule: Rule::SopsEncryptsNothing,
        code: "sops-encrypts-nothing",
        summary: "A SOPS file whose selection rules encrypt none of its values",
        description: "The file has `sops` metadata, so it looks encrypted, but its \
                      `encrypted_regex`/`encrypted_suffix`/... setting matches none of its keys \
                      (`encrypted_regex: ^(data|stringData)$` on a file that is not a Secret, for \
                      instance): every value is stored in plain text.",
        help: "decrypt the file, then encrypt it again with a selection that matches its keys \
               (or none: sops then encrypts every value)",
    },
    RuleInfo {
        rule: Rule::SopsRecipientDrift,
        code: "sops-recipient-drift",
        summary: "A SOPS file's master keys differ from its .sops.yaml creation rule",
        description: "Off unless a policy turns it on (`rules: {sops-recipient-drift: on}`); low \
                      severity. The file is still wrapped for keys the rule no longer names (a \
                      teammate who left), or not yet for keys it added.",
        help: "run `kustodian updatekeys FILE` (or `kustodian updatekeys --all`), and \
               `kustodian rotate -i FILE` when a key was removed",
    },
    RuleInfo {
        rule: Rule::CustomRule,
        code: "custom-rule",
        summary: "A value matched a custom rule of the policy",
        description: "The policy's `custom_rules` match a regex against the decoded value of \
                      every judged value; a match is reported under the custom rule's own id \
                      (in JSON, SARIF and annotations) with its message and severity. \
                      `custom-rule: off` under `rules` turns every custom rule off.",
        help: "follow the custom rule's message, or change the policy's `custom_rules`",
    },
    RuleInfo {
        rule: Rule::UnreadableManifest,
        code: "unreadable-manifest",
        summary: "A file that may hold a Secret could not be read in full",
        description: "The scanner judges what it can read; the rest of such a file could hide \
                      a plaintext Secret, so it blocks instead of passing in silence. It covers \
                      YAML or JSON that does not parse (a syntax error, an invalid escape such \
                      as a lone `\\ud800`), a document nested deeper than 256 levels or whose \
                      aliases expand to more than 100,000 nodes, text that is not UTF-8 or \
                      UTF-16 with a byte-order mark (a NUL byte, invalid bytes), and a file \
                      over 8 MiB. A file counts when its raw bytes mention `Secret`, \
                      `secretGenerator` or `sops` (also in UTF-16) or hold escapes (`\\u`, \
                      `\\x`, `\\U`) that could spell them; other unreadable files are \
                      skipped with a note. Documents before and after the bad one are still \
                      judged as usual.",
        help: "fix the file at the line and column given so that it parses as YAML or JSON \
               (indentation, quotes, brackets, escapes), save it as UTF-8, split a document \
               that is too deep, too large or alias-heavy into plain ones; if the file is not \
               a manifest, rename it so it does not end in .yaml, .yml or .json",
    },
    RuleInfo {
        rule: Rule::DuplicateKey,
        code: "duplicate-key",
        summary: "A mapping in or around a Secret repeats a key",
        description: "YAML forbids repeated keys, and tools disagree on which one wins: \
                      kubectl and kustomize read the last, other parsers the first. The scanner \
                      judges every one (a `kind: ConfigMap` followed by `kind: Secret` is a \
                      Secret for someone, and both `data` blocks are judged), and reports the \
                      repetition itself in Secrets and SOPS documents, where a reviewer may be \
                      looking at the wrong value.",
        help: "remove one of the repeated keys so that every tool reads the same object",
    },
    RuleInfo {
        rule: Rule::KnownCredential,
        code: "known-credential",
        summary: "A known credential format sits in a file outside Secret data",
        description: "Cloud access keys (AWS, Google, Azure), GitHub/GitLab/npm/PyPI tokens, \
                      Slack tokens and webhooks, Stripe live keys, Vault `hvs.`/`hvb.` tokens, \
                      age `AGE-SECRET-KEY-1` keys, PEM private keys, JWTs, URLs with a password \
                      and htpasswd lines are found in every text file of the repository \
                      (manifests and their comments, Helm values, scripts, Markdown, \
                      `.env.sample`), and in base64 values (`client-key-data`). Documentation \
                      samples (`AKIAIOSFODNN7EXAMPLE`) and URLs whose password is a variable \
                      (`${DB_PASSWORD}`) are let through.",
        help: "rotate the credential, then remove it: keep it in a Secret that holds a \
               reference (`<path:secret/data/app#key>`) or is encrypted with `kustodian encrypt \
               --in-place`, and point the object or script at it; if this is not a credential, \
               mark the line `# kustodian:allow`",
    },
    RuleInfo {
        rule: Rule::CredentialValue,
        code: "credential-value",
        summary: "A credential-looking literal under a credential key name outside a Secret",
        description: "Values under keys such as `password`, `token`, `apiKey`, `clientSecret`, \
                      `default_pass` in ConfigMaps, container `env`, Helm values (Flux \
                      `HelmRelease` `spec.values`, Argo CD `helm.values`/`valuesObject`/\
                      `parameters`/`plugin.env`, values files), ExternalSecret templates, \
                      SopsSecrets, Talos and kubeconfig documents and `key = value` config text \
                      inside strings are as readable as a plaintext Secret. References \
                      (`<path:...>`, `<key>`, `ref+`, `op://`, `${VAR}`, `{{ }}`), placeholders \
                      (`changeme`, `<your-token>`, `xxx`), short or dictionary values, \
                      resource names, paths, digests and UUIDs are let through.",
        help: "move the value into a Secret that holds a reference (`<path:secret/data/app#key>`) \
               or is encrypted with `kustodian encrypt --in-place`, and read it with \
               `valueFrom.secretKeyRef` or the chart's `existingSecret`; if this is not a \
               credential, mark the line `# kustodian:allow`",
    },
    RuleInfo {
        rule: Rule::UnreadableBlob,
        code: "unreadable-blob",
        summary: "A blob of the scanned commits could not be read",
        description: "A history (`--range`, `--since`, `--pushed`) or `--staged` scan reads \
                      every blob the commits add. In a partial clone (`git clone \
                      --filter=blob:none`, common in CI) git fetches a missing blob on demand; \
                      one that still cannot be read (no promisor remote, a damaged repository) \
                      was not scanned, so it blocks, naming the commit and the path, and the \
                      scan goes on with the other blobs.",
        help: "fetch the missing objects (`git fetch --refetch`, or clone without `--filter`) \
               and scan again",
    },
];

/// Which store a reference example in a help line should name: the repository's SOPS files
/// (the default), or Vault/OpenBao when the scanner's environment points at one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum StoreHint {
    /// SOPS/age files in the repository: `<path:secrets.enc.yaml#key>`.
    #[default]
    Sops,
    /// Vault or OpenBao: `<path:secret/data/app#key>`.
    Vault,
}

impl StoreHint {
    /// [`StoreHint::Vault`] when `VAULT_ADDR` is set or `AVP_TYPE` is `vault` (also as their
    /// `ARGOCD_ENV_` twins), as `var` reads them.
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> StoreHint {
        let set = |k: &str| {
            var(k)
                .or_else(|| var(&format!("ARGOCD_ENV_{k}")))
                .filter(|v| !v.is_empty())
        };
        if set("VAULT_ADDR").is_some() || set("AVP_TYPE").is_some_and(|t| t == "vault") {
            StoreHint::Vault
        } else {
            StoreHint::Sops
        }
    }

    /// A reference to write in place of a value, and what it points at.
    fn example(self) -> &'static str {
        match self {
            StoreHint::Sops => "`<path:secrets.enc.yaml#key>` (a key of a SOPS file in the repository, made with `kustodian encrypt`)",
            StoreHint::Vault => "`<path:secret/data/app#key>` (a Vault/OpenBao secret)",
        }
    }
}

/// What a finding's help line says: how to fix this finding in this file, with a reference
/// example for `store`. A finding from history says first that the value is already in Git
/// history.
pub fn finding_help(f: &Finding, store: StoreHint) -> String {
    let base = match f.rule {
        Rule::PlaintextSecretData => format!(
            "encrypt the Secret's values and keep apiVersion, kind and metadata readable with \
             `kustodian encrypt --in-place --encrypted-regex '^(data|stringData)$' {}`, or \
             replace the value with a reference that kustodian render resolves, such as {}; if \
             this is not a secret, mark the line `# kustodian:allow`",
            shell_word(&f.location.path),
            store.example()
        ),
        rule => rule.help().to_string(),
    };
    match history_advice(f) {
        Some(h) => format!("{h}; then {base}"),
        None => base,
    }
}

/// For a finding from history about a value: it is already in Git history, and what to do.
pub(crate) fn history_advice(f: &Finding) -> Option<&'static str> {
    let structural = matches!(
        f.rule,
        Rule::UnreadableManifest | Rule::DuplicateKey | Rule::UnreadableBlob
    );
    (f.commit.is_some() && !structural).then_some(
        "the value is already in Git history: rotate the credential and rewrite or revert the \
         commit; replacing the line is not enough",
    )
}

/// A path as one shell word: as is when it is plain, else in single quotes.
fn shell_word(path: &str) -> String {
    if !path.is_empty()
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._/+,:@".contains(&b))
    {
        path.to_string()
    } else {
        format!("'{}'", path.replace('\'', "'\\''"))
    }
}

impl Rule {
    /// The row of this rule in [`RULES`].
    pub fn info(self) -> &'static RuleInfo {
        RULES
            .iter()
            .find(|r| r.rule == self)
            .expect("every rule has a row in RULES")
    }

    /// Stable kebab-case code.
    pub fn code(self) -> &'static str {
        self.info().code
    }

    /// How to fix a finding of this rule.
    pub fn help(self) -> &'static str {
        self.info().help
    }

    /// Whether the rule comes from the credential search outside Secrets (`known-credential`,
    /// `credential-value`), which `scan --only secrets` turns off.
    pub fn is_credential_search(self) -> bool {
        matches!(self, Rule::KnownCredential | Rule::CredentialValue)
    }

    /// Every rule.
    pub fn all() -> impl Iterator<Item = Rule> {
        RULES.iter().map(|r| r.rule)
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// The code is not one of [`RULES`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown rule code `{0}`")]
pub struct UnknownRule(pub String);

impl FromStr for Rule {
    type Err = UnknownRule;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RULES
            .iter()
            .find(|r| r.code == s)
            .map(|r| r.rule)
            .ok_or_else(|| UnknownRule(s.to_string()))
    }
}

impl serde::Serialize for Rule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_has_one_row_and_a_kebab_case_code() {
        let all = [
            Rule::PlaintextSecretData,
            Rule::GeneratorLiteral,
            Rule::GeneratorFile,
            Rule::SopsPlaintextValue,
            Rule::SopsValueWithoutMetadata,
            Rule::TokenOutsideSecret,
            Rule::SopsEncryptsNothing,
            Rule::SopsRecipientDrift,
            Rule::CustomRule,
            Rule::UnreadableManifest,
            Rule::DuplicateKey,
            Rule::KnownCredential,
            Rule::CredentialValue,
            Rule::UnreadableBlob,
        ];
        assert_eq!(RULES.len(), all.len());
        for r in all {
            assert_eq!(RULES.iter().filter(|i| i.rule == r).count(), 1);
            let code = r.code();
            assert!(
                code.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'),
                "{code}"
            );
            assert_eq!(code.parse::<Rule>(), Ok(r));
        }
        assert!("nope".parse::<Rule>().is_err());
    }

    #[test]
    fn plaintext_help_encrypts_only_data_and_names_the_right_store() {
        let mut f = crate::engine::Scanner::new()
            .scan_file(
                "apps/db secret.yaml",
                b"kind: Secret\nstringData:\n  p: plaintext-value\n",
            )
            .findings
            .remove(0);
        let sops = finding_help(&f, StoreHint::Sops);
        assert!(
            sops.contains("kustodian encrypt --in-place --encrypted-regex '^(data|stringData)$' 'apps/db secret.yaml'"),
            "{sops}"
        );
        assert!(sops.contains("<path:secrets.enc.yaml#key>"), "{sops}");
        assert!(!sops.contains("history"), "{sops}");
        let vault = finding_help(&f, StoreHint::Vault);
        assert!(vault.contains("<path:secret/data/app#key>"), "{vault}");
        let env = |vars: &'static [(&'static str, &'static str)]| {
            StoreHint::from_env(move |k| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            })
        };
        assert_eq!(env(&[]), StoreHint::Sops);
        assert_eq!(
            env(&[("VAULT_ADDR", "https://vault:8200")]),
            StoreHint::Vault
        );
        assert_eq!(env(&[("ARGOCD_ENV_AVP_TYPE", "vault")]), StoreHint::Vault);
        assert_eq!(env(&[("AVP_TYPE", "sops")]), StoreHint::Sops);
        f.commit = Some(crate::finding::Commit {
            id: "a".repeat(40),
            author: "A".into(),
            email: "a@example.com".into(),
            date: "2024-01-01T00:00:00Z".into(),
        });
        let h = finding_help(&f, StoreHint::Sops);
        assert!(
            h.starts_with("the value is already in Git history: rotate the credential"),
            "{h}"
        );
        assert!(f
            .full_message()
            .contains("replacing the line is not enough"));
    }

    #[test]
    fn docs_have_a_section_per_rule() {
        let docs = include_str!("../../../docs/rules.md");
        for r in Rule::all() {
            assert!(
                docs.contains(&format!("## `{}`", r.code())),
                "docs/rules.md lacks {r}"
            );
        }
    }
}
