//! Policies: which rules are on, the severity that blocks, allowlists, extra safe values, custom
//! rules and strict scanning. Read from `.kustodian.yaml` at the repository root (or the current
//! folder outside a repository) or from `--policy FILE`; the schema is in `docs/policy.md` and
//! `policies/schema.json`. A policy file that does not parse, or holds an unknown key or a bad
//! value, is an error naming its file, line and column: it is never silently ignored.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use globset::{Glob, GlobSet, GlobSetBuilder};
use kustodian_manifest::{Node, NodeKind};
use regex::bytes::Regex;

use crate::finding::{Finding, Severity};
use crate::rules::Rule;

/// The file name of a repository's policy.
pub const POLICY_FILE: &str = ".kustodian.yaml";

/// Decides what is reported and which findings block.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Findings at or above this severity block. The default, [`Severity::Low`], blocks every
    /// plaintext Secret value.
    pub block_at: Severity,
    /// Rules turned off.
    pub rules_off: BTreeSet<Rule>,
    /// Findings matching one of these are not reported.
    pub allow: Vec<Allow>,
    /// A value (raw or base64-decoded) matching one of these is safe.
    pub safe_values: Vec<Regex>,
    /// Extra rules: a regex on the decoded value, with a severity and a message.
    pub custom_rules: Vec<CustomRule>,
    /// Also flag private keys and cloud tokens anywhere in YAML (rule `token-outside-secret`).
    pub scan_everywhere: bool,
    /// Judge only Secret data, secretGenerators and SOPS documents (`scan --only secrets`):
    /// no `known-credential` or `credential-value` findings, other files not read.
    pub only_secrets: bool,
}

/// One allowlist entry: a finding matches when every field given matches (a field matches when
/// one of its items does).
#[derive(Clone, Debug, Default)]
pub struct Allow {
    /// Path globs, repository-relative.
    pub paths: Option<GlobSet>,
    /// Namespaces.
    pub namespaces: Vec<String>,
    /// Object names.
    pub names: Vec<String>,
    /// Secret types (`kubernetes.io/tls`, ...).
    pub types: Vec<String>,
    /// Keys (`password`, `tls.key`).
    pub keys: Vec<String>,
    /// Why this is allowed.
    pub reason: Option<String>,
}

/// A rule from the policy file; its findings are of [`crate::Rule::CustomRule`] and report its
/// id as their rule id.
#[derive(Clone, Debug)]
pub struct CustomRule {
    /// The rule's id.
    pub id: String,
    /// Matched against the decoded value.
    pub regex: Regex,
    /// Severity of its findings.
    pub severity: Severity,
    /// What its findings say.
    pub message: String,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            block_at: Severity::Low,
            // Opt-in: a policy turns it on (docs/rules.md).
            rules_off: BTreeSet::from([Rule::SopsRecipientDrift]),
            allow: Vec::new(),
            safe_values: Vec::new(),
            custom_rules: Vec::new(),
            scan_everywhere: false,
            only_secrets: false,
        }
    }
}

impl PolicyError {
    /// `FILE:LINE:COLUMN`, or `FILE` when the file could not be read.
    fn place(&self) -> String {
        if self.line == 0 {
            self.file.clone()
        } else {
            format!("{}:{}:{}", self.file, self.line, self.column)
        }
    }
}

/// A policy file that cannot be used.
#[derive(Clone, Debug, thiserror::Error, miette::Diagnostic)]
#[error("{}: invalid policy: {message}", self.place())]
#[diagnostic(code(kustodian::policy))]
pub struct PolicyError {
    /// The policy file.
    pub file: String,
    /// Line, from 1 (0 when the file could not be read).
    pub line: usize,
    /// Column, from 1.
    pub column: usize,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    #[help]
    pub help: Option<String>,
}

const HELP: &str = "a policy is a YAML mapping with the keys version, rules, block_at, allow, safe_values, custom_rules and scan_everywhere; `kustodian scan --help` names the rule codes";

impl Policy {
    /// Whether the finding blocks the commit.
    pub fn blocks(&self, f: &Finding) -> bool {
        f.severity >= self.block_at
    }

    /// Whether a rule is on.
    pub fn rule_on(&self, rule: Rule) -> bool {
        !self.rules_off.contains(&rule)
    }

    /// Whether an allowlist entry covers a finding with these attributes.
    pub fn allows(
        &self,
        path: &str,
        namespace: Option<&str>,
        name: Option<&str>,
        secret_type: Option<&str>,
        key: &str,
    ) -> bool {
        let one = |list: &[String], v: Option<&str>| {
            list.is_empty() || v.is_some_and(|v| list.iter().any(|x| x == v))
        };
        self.allow.iter().any(|a| {
            a.paths.as_ref().is_none_or(|g| g.is_match(path))
                && one(&a.namespaces, namespace)
                && one(&a.names, name)
                && one(&a.types, secret_type)
                && one(&a.keys, Some(key))
        })
    }

    /// Whether `value` (raw, and base64-decoded if it decodes) matches a safe value pattern.
    pub fn safe_value(&self, value: &[u8]) -> bool {
        if self.safe_values.is_empty() {
            return false;
        }
        if self.safe_values.iter().any(|r| r.is_match(value)) {
            return true;
        }
        let decoded = std::str::from_utf8(value)
            .ok()
            .and_then(crate::value::decode_base64);
        decoded.is_some_and(|d| self.safe_values.iter().any(|r| r.is_match(&d)))
    }

    /// The first custom rule matching the decoded value.
    pub fn custom_match(&self, value: &[u8]) -> Option<&CustomRule> {
        self.custom_rules.iter().find(|c| c.regex.is_match(value))
    }

    /// The policy file for `cwd`: `.kustodian.yaml` at the root of the repository holding `cwd`,
    /// or in `cwd` outside a repository, if it exists.
    pub fn discover(cwd: &Path) -> Option<PathBuf> {
        let root = git2::Repository::discover(cwd)
            .ok()
            .and_then(|r| r.workdir().map(Path::to_path_buf))
            .unwrap_or_else(|| cwd.to_path_buf());
        let p = root.join(POLICY_FILE);
        p.is_file().then_some(p)
    }

    /// Reads a policy file.
    pub fn load(file: &Path) -> Result<Policy, PolicyError> {
        let text = std::fs::read_to_string(file).map_err(|e| PolicyError {
            file: file.display().to_string(),
            line: 0,
            column: 0,
            message: format!("cannot read it: {e}"),
            help: Some("check the path given with --policy".into()),
        })?;
        Policy::parse(&file.display().to_string(), &text)
    }

    /// Parses policy text; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Policy, PolicyError> {
        let err = |n: Option<&Node>, message: String| {
            let p = n.map(|n| n.span.start).unwrap_or_default();
            PolicyError {
                file: file.to_string(),
                line: p.line.max(1),
                column: p.column.max(1),
                message,
                help: Some(HELP.into()),
            }
        };
        let docs = kustodian_manifest::parse_stream(text).map_err(|e| PolicyError {
            file: file.to_string(),
            line: e.pos.line.max(1),
            column: e.pos.column.max(1),
            message: format!("not valid YAML: {}", e.message),
            help: Some("fix the YAML syntax at that place".into()),
        })?;
        let [doc] = docs.as_slice() else {
            return Err(err(
                docs.get(1).map(|d| &d.root),
                "a policy file holds exactly one YAML document".into(),
            ));
        };
        let root = &doc.root;
        let entries = root
            .as_map()
            .ok_or_else(|| err(Some(root), "the policy must be a mapping".into()))?;
        let mut p = Policy::default();
        let mut version = false;
        for e in entries {
            let k = e.key.as_scalar().unwrap_or("");
            let v = &e.value;
            match k {
                "version" => {
                    if v.as_scalar() != Some("1") {
                        return Err(err(Some(v), "`version` must be 1".into()));
                    }
                    version = true;
                }
                "block_at" => {
                    let s = scalar(v, "block_at").map_err(|m| err(Some(v), m))?;
                    p.block_at = s.parse().map_err(|m| err(Some(v), m))?;
                }
                "scan_everywhere" => {
                    p.scan_everywhere = boolean(v).map_err(|m| err(Some(v), m))?;
                }
                "rules" => {
                    let m = v.as_map().ok_or_else(|| {
                        err(Some(v), "`rules` must map rule codes to on or off".into())
                    })?;
                    for r in m {
                        let code = r.key.as_scalar().unwrap_or("");
                        let rule: Rule = code
                            .parse()
                            .map_err(|e| err(Some(&r.key), format!("{e}")))?;
                        let on = match r.value.as_scalar() {
                            Some("on") | Some("true") => true,
                            Some("off") | Some("false") => false,
                            _ => {
                                return Err(err(
                                    Some(&r.value),
                                    format!("rule `{code}` must be `on` or `off`"),
                                ))
                            }
                        };
                        if on {
                            p.rules_off.remove(&rule);
                        } else {
                            p.rules_off.insert(rule);
                        }
                    }
                }
                "allow" => {
                    for item in seq(v, "allow").map_err(|m| err(Some(v), m))? {
                        p.allow
                            .push(allow_entry(item).map_err(|(n, m)| err(Some(n), m))?);
                    }
                }
                "safe_values" => {
                    for item in seq(v, "safe_values").map_err(|m| err(Some(v), m))? {
                        let s = scalar(item, "a safe value").map_err(|m| err(Some(item), m))?;
                        p.safe_values
                            .push(regex(s).map_err(|m| err(Some(item), m))?);
                    }
                }
                "custom_rules" => {
                    for item in seq(v, "custom_rules").map_err(|m| err(Some(v), m))? {
                        let rule = custom_rule(item).map_err(|(n, m)| err(Some(n), m))?;
                        if p.custom_rules.iter().any(|c| c.id == rule.id) {
                            return Err(err(
                                Some(item),
                                format!("a second custom rule with the id `{}`", rule.id),
                            ));
                        }
                        p.custom_rules.push(rule);
                    }
                }
                other => {
                    return Err(err(
                        Some(&e.key),
                        format!(
                            "unknown key `{other}` (expected version, rules, block_at, allow, \
                             safe_values, custom_rules or scan_everywhere)"
                        ),
                    ))
                }
            }
        }
        if !version {
            return Err(err(Some(root), "`version: 1` is missing".into()));
        }
        Ok(p)
    }
}

fn scalar<'a>(n: &'a Node, what: &str) -> Result<&'a str, String> {
    match &n.kind {
        NodeKind::Scalar { value, .. } if !n.is_null() => Ok(value),
        _ => Err(format!("{what} must be a string")),
    }
}

fn boolean(n: &Node) -> Result<bool, String> {
    match n.as_scalar() {
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        _ => Err("`scan_everywhere` must be true or false".into()),
    }
}

fn seq<'a>(n: &'a Node, what: &str) -> Result<&'a [Node], String> {
    if n.is_null() {
        return Ok(&[]);
    }
    n.as_seq().ok_or_else(|| format!("`{what}` must be a list"))
}

fn regex(s: &str) -> Result<Regex, String> {
    Regex::new(s).map_err(|e| format!("not a valid regex: {}", e.to_string().replace('\n', " ")))
}

fn strings<'a>(n: &'a Node, what: &str) -> Result<Vec<String>, (&'a Node, String)> {
    let items = seq(n, what).map_err(|m| (n, m))?;
    items
        .iter()
        .map(|i| scalar(i, what).map(str::to_string).map_err(|m| (i, m)))
        .collect()
}

fn allow_entry(n: &Node) -> Result<Allow, (&Node, String)> {
    let entries = n
        .as_map()
        .ok_or_else(|| (n, "an `allow` entry must be a mapping".to_string()))?;
    let mut a = Allow::default();
    let mut any = false;
    for e in entries {
        let k = e.key.as_scalar().unwrap_or("");
        let v = &e.value;
        match k {
            "paths" => {
                let mut b = GlobSetBuilder::new();
                for g in strings(v, "paths")? {
                    let glob = Glob::new(&g).map_err(|e| (v, format!("bad glob `{g}`: {e}")))?;
                    b.add(glob);
                }
                a.paths = Some(b.build().map_err(|e| (v, e.to_string()))?);
                any = true;
            }
            "namespaces" => (a.namespaces, any) = (strings(v, k)?, true),
            "names" => (a.names, any) = (strings(v, k)?, true),
            "types" => (a.types, any) = (strings(v, k)?, true),
            "keys" => (a.keys, any) = (strings(v, k)?, true),
            "reason" => a.reason = Some(scalar(v, "reason").map_err(|m| (v, m))?.to_string()),
            other => {
                return Err((
                    &e.key,
                    format!(
                        "unknown key `{other}` in an `allow` entry (expected paths, namespaces, \
                         names, types, keys or reason)"
                    ),
                ))
            }
        }
    }
    if !any {
        return Err((
            n,
            "an `allow` entry needs at least one of paths, namespaces, names, types or keys".into(),
        ));
    }
    Ok(a)
}

fn custom_rule(n: &Node) -> Result<CustomRule, (&Node, String)> {
    let entries = n
        .as_map()
        .ok_or_else(|| (n, "a custom rule must be a mapping".to_string()))?;
    let (mut id, mut re, mut sev, mut msg) = (None, None, None, None);
    for e in entries {
        let k = e.key.as_scalar().unwrap_or("");
        let v = &e.value;
        let s = || scalar(v, k).map_err(|m| (v, m));
        match k {
            "id" => {
                let v_id = s()?;
                if v_id.is_empty() || crate::rules::RULES.iter().any(|r| r.code == v_id) {
                    return Err((
                        v,
                        format!(
                            "custom rule id `{v_id}` is empty or the code of a built-in rule; \
                             give it a name of its own"
                        ),
                    ));
                }
                id = Some(v_id.to_string())
            }
            "regex" => re = Some(regex(s()?).map_err(|m| (v, m))?),
            "severity" => sev = Some(s()?.parse::<Severity>().map_err(|m| (v, m))?),
            "message" => msg = Some(s()?.to_string()),
            other => {
                return Err((
                    &e.key,
                    format!(
                        "unknown key `{other}` in a custom rule (expected id, regex, severity, message)"
                    ),
                ))
            }
        }
    }
    match (id, re, sev, msg) {
        (Some(id), Some(regex), Some(severity), Some(message)) => Ok(CustomRule {
            id,
            regex,
            severity,
            message,
        }),
        _ => Err((
            n,
            "a custom rule needs id, regex, severity and message".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_line_and_column() {
        let e = Policy::parse("p.yaml", "version: 1\nblock_at: huge\n").unwrap_err();
        assert_eq!((e.line, e.column), (2, 11));
        let e = Policy::parse("p.yaml", "version: 1\nbogus: 1\n").unwrap_err();
        assert_eq!((e.line, e.column), (2, 1));
        assert!(Policy::parse("p.yaml", "version: 1\nrules: {generator-file: off}\n").is_ok());
    }

    #[test]
    fn shipped_policies_parse() {
        let d = Policy::parse("d", include_str!("../../../policies/default.yaml")).unwrap();
        assert_eq!(d.block_at, Severity::Low);
        assert!(!d.scan_everywhere && d.allow.is_empty());
        assert_eq!(
            d.rules_off.iter().copied().collect::<Vec<_>>(),
            vec![Rule::SopsRecipientDrift]
        );
        let s = Policy::parse("s", include_str!("../../../policies/strict.yaml")).unwrap();
        assert!(s.scan_everywhere);
    }
}
