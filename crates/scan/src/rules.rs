//! The one table of rules. Every reporter (human, JSON, and later SARIF and GitHub annotations),
//! the docs page `docs/rules.md` and policies name rules by the stable kebab-case [`Rule::code`]
//! and take their description and help from here.

use std::fmt;
use std::str::FromStr;

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
        help: "replace the value with a reference such as `<path:secret/data/app#key>` (kustodian \
               render resolves it), encrypt the file with `kustodian encrypt --in-place` (or sops), \
               or seal it with kubeseal; if this is not a secret, mark the line `# kustodian:allow`",
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
        description: "Only with `scan_everywhere: true` in the policy (as in `policies/strict.yaml`): \
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
];

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
